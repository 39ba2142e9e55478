//! Application messages: what travels inside an established session.
//!
//! Each message is one type byte followed by its fields in a fixed order
//! (PROTOCOL.md §6). Decoding is strict and canonical: every field is
//! bounded before it is read, text is validated, and a message has exactly
//! one encoding, so `encode(decode(b)) == b` for every accepted `b`. Senders
//! put no timestamps on the wire; the receiver stamps with its own clock.

use std::fmt;

use curve25519_dalek::montgomery::MontgomeryPoint;
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::address::OnionId;
use crate::codec::{Reader, Writer};
use crate::error::DecodeError;
use crate::text::TextField;

/// Largest file the protocol can describe (1 TiB). Applications set their
/// own, smaller cap.
pub const MAX_FILE_SIZE: u64 = 1 << 40;
/// Largest amount of file data in one chunk (63 KiB), so that a chunk with
/// its header fits the largest padding bucket.
pub const MAX_CHUNK: usize = 63 * 1024;

/// A restricted-discovery (Tor client authorization) secret key: the X25519
/// key with which its holder can fetch and decrypt the issuer's endpoint
/// descriptor. Zeroized on drop; redacted in `Debug`.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct DiscoveryKey(pub [u8; 32]);

impl DiscoveryKey {
    /// A fresh key: 32 bytes from a cryptographic RNG, clamped, as
    /// PROTOCOL.md §6.1 asks an issuer to send it.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut key = DiscoveryKey([0u8; 32]);
        rng.fill_bytes(&mut key.0);
        Self::clamp(&mut key.0);
        key
    }

    /// Clamps a secret in place as X25519 does (RFC 7748 §5): bits 0–2 of
    /// the first byte cleared, bit 7 of the last cleared and bit 6 set.
    /// Clamping changes no key (X25519 clamps on use), only its bytes, so
    /// that every encoding of §6.1 shows one secret one way.
    pub fn clamp(secret: &mut [u8; 32]) {
        secret[0] &= 0xf8;
        secret[31] &= 0x7f;
        secret[31] |= 0x40;
    }

    /// The public half, which the issuer's endpoint authorizes:
    /// `X25519(secret, 9)`, the secret clamped as X25519 does.
    pub fn public_key(&self) -> [u8; 32] {
        MontgomeryPoint::mul_base_clamped(self.0).to_bytes()
    }
}

impl fmt::Debug for DiscoveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DiscoveryKey(redacted)")
    }
}

/// A stranger asks to become a contact. Sent to the responder's intake.
///
/// It carries everything the responder needs to answer later, even hours
/// later and after the requester switched its intake off: the requester's
/// endpoint id and a discovery key the requester has already authorized on
/// that endpoint for this responder alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactRequest {
    /// A name the requester suggests for itself (may be empty).
    pub nickname: String,
    /// Free text shown to the responder, as plain text.
    pub greeting: String,
    /// The requester's endpoint onion service.
    pub endpoint: OnionId,
    /// The key with which the responder may discover that endpoint.
    pub discovery_key: DiscoveryKey,
}

/// The answer "yes", carrying the accepting side's endpoint and a discovery
/// key for it, authorized for the requester alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactAccept {
    /// The acceptor's endpoint onion service.
    pub endpoint: OnionId,
    /// The key with which the requester may discover that endpoint.
    pub discovery_key: DiscoveryKey,
}

/// A chat message. `id` numbers the sender's messages to this contact
/// 1, 2, 3, …: the receiver acknowledges ids, drops duplicates and keeps
/// order (PROTOCOL.md §6.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chat {
    /// Per-sender, per-contact sequence number, starting at 1.
    pub id: u64,
    /// The text.
    pub text: String,
}

/// Identifies one file transfer (random, chosen by the sender).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(pub [u8; 16]);

/// A file the sender offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileOffer {
    /// The transfer.
    pub transfer: TransferId,
    /// Size in bytes, at most [`MAX_FILE_SIZE`].
    pub size: u64,
    /// SHA-256 of the whole file.
    pub sha256: [u8; 32],
    /// The file's name: one path component, validated.
    pub name: String,
}

/// A chunk of file data at `offset`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChunk {
    /// The transfer.
    pub transfer: TransferId,
    /// Where `data` starts in the file.
    pub offset: u64,
    /// 1 to [`MAX_CHUNK`] bytes.
    pub data: Vec<u8>,
}

/// Why a file transfer was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// A person declined or cancelled it.
    ByUser = 1,
    /// The received file did not match the offered digest.
    DigestMismatch = 2,
    /// Bigger than the receiver accepts.
    TooLarge = 3,
    /// The receiver or sender could not read or write the file.
    Io = 4,
    /// The other side broke the transfer rules (offset, size).
    Protocol = 5,
}

impl CancelReason {
    fn from_u8(v: u8) -> Result<Self, DecodeError> {
        Ok(match v {
            1 => CancelReason::ByUser,
            2 => CancelReason::DigestMismatch,
            3 => CancelReason::TooLarge,
            4 => CancelReason::Io,
            5 => CancelReason::Protocol,
            _ => return Err(DecodeError::InvalidValue("cancel reason")),
        })
    }
}

/// Why a session is closed, sent in [`Message::Close`].
///
/// Unknown codes from newer peers are kept as [`CloseReason::Other`] so that
/// they re-encode to the same bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// Nothing wrong; the application is done.
    Normal,
    /// The peer broke the protocol.
    ProtocolViolation,
    /// Nothing was received for too long.
    IdleTimeout,
    /// The application is shutting down or going offline.
    Shutdown,
    /// Another session with the same contact won (both sides dialled).
    Replaced,
    /// The peer is not (or no longer) a contact.
    NotAContact,
    /// A code this version does not know.
    Other(u16),
}

impl CloseReason {
    /// Wire code.
    pub fn code(self) -> u16 {
        match self {
            CloseReason::Normal => 0,
            CloseReason::ProtocolViolation => 1,
            CloseReason::IdleTimeout => 2,
            CloseReason::Shutdown => 3,
            CloseReason::Replaced => 4,
            CloseReason::NotAContact => 5,
            CloseReason::Other(c) => c,
        }
    }

    /// From a wire code.
    pub fn from_code(c: u16) -> Self {
        match c {
            0 => CloseReason::Normal,
            1 => CloseReason::ProtocolViolation,
            2 => CloseReason::IdleTimeout,
            3 => CloseReason::Shutdown,
            4 => CloseReason::Replaced,
            5 => CloseReason::NotAContact,
            c => CloseReason::Other(c),
        }
    }
}

/// Why a responder refused a connection before the handshake finished,
/// sent in cleartext in a REFUSE frame (PROTOCOL.md §4.5).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefuseReason {
    /// No common version; the responder lists what it supports.
    #[error("no protocol version in common (the peer supports {0:?})")]
    UnsupportedVersion(Vec<u8>),
    /// The hello was for the other kind of service.
    #[error("the handshake was for a different kind of service")]
    WrongDomain,
    /// The hello named another onion service.
    #[error("the handshake was addressed to a different onion service")]
    WrongDestination,
    /// Too many connections at once; try again later.
    #[error("the peer is busy; try again later")]
    Busy,
    /// The initiator is not a contact, or its key does not match.
    #[error("not authorized")]
    NotAuthorized,
    /// The hello or first handshake message was malformed.
    #[error("the peer could not understand our handshake")]
    ProtocolError,
}

impl RefuseReason {
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        match self {
            RefuseReason::UnsupportedVersion(v) => {
                out.put_u8(1);
                out.put_u8(u8::try_from(v.len()).unwrap_or(u8::MAX));
                out.put_slice(&v[..v.len().min(255)]);
            }
            RefuseReason::WrongDomain => out.put_u8(2),
            RefuseReason::WrongDestination => out.put_u8(3),
            RefuseReason::Busy => out.put_u8(4),
            RefuseReason::NotAuthorized => out.put_u8(5),
            RefuseReason::ProtocolError => out.put_u8(6),
        }
    }

    /// Decodes a REFUSE frame's body (PROTOCOL.md §4.8): exactly one
    /// encoding of each reason; anything else is malformed.
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let reason = match r.u8("refuse code")? {
            1 => {
                let n = usize::from(r.u8("version count")?);
                if n == 0 || n > crate::MAX_VERSIONS {
                    return Err(DecodeError::InvalidValue("version count"));
                }
                let versions = r.take(n, "versions")?.to_vec();
                // The same rule as a hello's list (§4.2), so the list can
                // be offered back as it is.
                if crate::frame::version_list_problem(&versions).is_some() {
                    return Err(DecodeError::InvalidValue("version list"));
                }
                RefuseReason::UnsupportedVersion(versions)
            }
            2 => RefuseReason::WrongDomain,
            3 => RefuseReason::WrongDestination,
            4 => RefuseReason::Busy,
            5 => RefuseReason::NotAuthorized,
            6 => RefuseReason::ProtocolError,
            _ => return Err(DecodeError::InvalidValue("refuse code")),
        };
        r.finish()?;
        Ok(reason)
    }
}

/// Every application message of protocol version 2.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// 0x01: ask to become a contact (intake only).
    ContactRequest(ContactRequest),
    /// 0x02: accept a request.
    ContactAccept(ContactAccept),
    /// 0x03: decline a request.
    ContactReject,
    /// 0x10: a chat message.
    Chat(Chat),
    /// 0x11: cumulative acknowledgement: every chat message with an id up
    /// to `id` was received (PROTOCOL.md §6.3).
    Ack {
        /// The highest id received in order.
        id: u64,
    },
    /// 0x12: where this side stands, sent first on every endpoint session
    /// (PROTOCOL.md §6.3), so that both sides notice when either went back
    /// in time (a restored older profile) and resynchronise.
    Sync {
        /// The lowest message id the sender still holds unacknowledged
        /// (its next id when it holds none).
        resend_from: u64,
        /// The sender's `last`: the highest id it received from the peer.
        last: u64,
    },
    /// 0x13 (version 3): whether the sender keeps a history of this
    /// conversation on its disk. Sent once on every endpoint session after
    /// SYNC, and again whenever it changes (PROTOCOL.md §6.3).
    History {
        /// True: the sender keeps what both sides write.
        kept: bool,
    },
    /// 0x20: offer a file.
    FileOffer(FileOffer),
    /// 0x21: accept an offer, starting at `offset` (non-zero to resume).
    FileAccept {
        /// The transfer.
        transfer: TransferId,
        /// First byte wanted.
        offset: u64,
    },
    /// 0x22: file data.
    FileChunk(FileChunk),
    /// 0x23: receiver's flow control: every byte below `received` is
    /// stored; the sender may have at most a window beyond it in flight.
    FileAck {
        /// The transfer.
        transfer: TransferId,
        /// Contiguous bytes stored.
        received: u64,
    },
    /// 0x24: receiver has the whole file and its digest matched.
    FileDone {
        /// The transfer.
        transfer: TransferId,
    },
    /// 0x25: either side abandons a transfer.
    FileCancel {
        /// The transfer.
        transfer: TransferId,
        /// Why.
        reason: CancelReason,
    },
    /// 0x30: nothing to say; keeps the session from idling out.
    Keepalive,
    /// 0x31: the sender is closing the session.
    Close(CloseReason),
}

mod tag {
    pub const CONTACT_REQUEST: u8 = 0x01;
    pub const CONTACT_ACCEPT: u8 = 0x02;
    pub const CONTACT_REJECT: u8 = 0x03;
    pub const CHAT: u8 = 0x10;
    pub const ACK: u8 = 0x11;
    pub const SYNC: u8 = 0x12;
    pub const HISTORY: u8 = 0x13;
    pub const FILE_OFFER: u8 = 0x20;
    pub const FILE_ACCEPT: u8 = 0x21;
    pub const FILE_CHUNK: u8 = 0x22;
    pub const FILE_ACK: u8 = 0x23;
    pub const FILE_DONE: u8 = 0x24;
    pub const FILE_CANCEL: u8 = 0x25;
    pub const KEEPALIVE: u8 = 0x30;
    pub const CLOSE: u8 = 0x31;
}

impl Message {
    /// Checks the limits a decoder would check, so that we never send what
    /// a peer must reject.
    pub fn validate(&self) -> Result<(), DecodeError> {
        match self {
            Message::ContactRequest(r) => {
                TextField::Nickname.validate(&r.nickname)?;
                TextField::Greeting.validate(&r.greeting)
            }
            Message::Chat(c) => {
                if c.id == 0 {
                    return Err(DecodeError::InvalidValue("message id"));
                }
                TextField::ChatText.validate(&c.text)
            }
            Message::Ack { id } if *id == 0 => Err(DecodeError::InvalidValue("message id")),
            Message::Sync { resend_from, .. } if *resend_from == 0 => {
                Err(DecodeError::InvalidValue("message id"))
            }
            Message::FileOffer(o) => {
                if o.size > MAX_FILE_SIZE {
                    return Err(DecodeError::InvalidValue("file size"));
                }
                TextField::FileName.validate(&o.name)
            }
            Message::FileAccept { offset, .. } if *offset > MAX_FILE_SIZE => {
                Err(DecodeError::InvalidValue("file offset"))
            }
            Message::FileAck { received, .. } if *received > MAX_FILE_SIZE => {
                Err(DecodeError::InvalidValue("file offset"))
            }
            Message::FileChunk(c) => check_chunk(c.offset, c.data.len()),
            _ => Ok(()),
        }
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Message::ContactRequest(r) => {
                out.put_u8(tag::CONTACT_REQUEST);
                out.put_slice(r.endpoint.as_bytes());
                out.put_slice(&r.discovery_key.0);
                out.put_bytes16(r.nickname.as_bytes());
                out.put_bytes16(r.greeting.as_bytes());
            }
            Message::ContactAccept(a) => {
                out.put_u8(tag::CONTACT_ACCEPT);
                out.put_slice(a.endpoint.as_bytes());
                out.put_slice(&a.discovery_key.0);
            }
            Message::ContactReject => out.put_u8(tag::CONTACT_REJECT),
            Message::Chat(c) => {
                out.put_u8(tag::CHAT);
                out.put_u64(c.id);
                out.put_bytes16(c.text.as_bytes());
            }
            Message::Ack { id } => {
                out.put_u8(tag::ACK);
                out.put_u64(*id);
            }
            Message::Sync { resend_from, last } => {
                out.put_u8(tag::SYNC);
                out.put_u64(*resend_from);
                out.put_u64(*last);
            }
            Message::History { kept } => {
                out.put_u8(tag::HISTORY);
                out.put_u8(u8::from(*kept));
            }
            Message::FileOffer(o) => {
                out.put_u8(tag::FILE_OFFER);
                out.put_slice(&o.transfer.0);
                out.put_u64(o.size);
                out.put_slice(&o.sha256);
                out.put_bytes16(o.name.as_bytes());
            }
            Message::FileAccept { transfer, offset } => {
                out.put_u8(tag::FILE_ACCEPT);
                out.put_slice(&transfer.0);
                out.put_u64(*offset);
            }
            Message::FileChunk(c) => {
                out.put_u8(tag::FILE_CHUNK);
                out.put_slice(&c.transfer.0);
                out.put_u64(c.offset);
                out.put_bytes32(&c.data);
            }
            Message::FileAck { transfer, received } => {
                out.put_u8(tag::FILE_ACK);
                out.put_slice(&transfer.0);
                out.put_u64(*received);
            }
            Message::FileDone { transfer } => {
                out.put_u8(tag::FILE_DONE);
                out.put_slice(&transfer.0);
            }
            Message::FileCancel { transfer, reason } => {
                out.put_u8(tag::FILE_CANCEL);
                out.put_slice(&transfer.0);
                out.put_u8(*reason as u8);
            }
            Message::Keepalive => out.put_u8(tag::KEEPALIVE),
            Message::Close(reason) => {
                out.put_u8(tag::CLOSE);
                out.put_u16(reason.code());
            }
        }
    }

    /// Decodes a message as a peer speaking protocol `version` may send
    /// it: HISTORY is an unknown type below version 3 (PROTOCOL.md §4.3).
    pub fn decode_for(version: u8, input: &[u8]) -> Result<Self, DecodeError> {
        let msg = Self::decode(input)?;
        if matches!(msg, Message::History { .. }) && version < crate::HISTORY_VERSION {
            return Err(DecodeError::UnknownMessageType(tag::HISTORY));
        }
        Ok(msg)
    }

    /// Decodes exactly one message that fills `input`.
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(input);
        let msg = match r.u8("message type")? {
            tag::CONTACT_REQUEST => {
                let endpoint = onion_id(&mut r)?;
                let discovery_key = DiscoveryKey(r.array("discovery key")?);
                let nickname = text(&mut r, TextField::Nickname)?;
                let greeting = text(&mut r, TextField::Greeting)?;
                Message::ContactRequest(ContactRequest {
                    nickname,
                    greeting,
                    endpoint,
                    discovery_key,
                })
            }
            tag::CONTACT_ACCEPT => {
                let endpoint = onion_id(&mut r)?;
                let discovery_key = DiscoveryKey(r.array("discovery key")?);
                Message::ContactAccept(ContactAccept {
                    endpoint,
                    discovery_key,
                })
            }
            tag::CONTACT_REJECT => Message::ContactReject,
            tag::CHAT => {
                let id = message_id(&mut r)?;
                let text = text(&mut r, TextField::ChatText)?;
                Message::Chat(Chat { id, text })
            }
            tag::ACK => Message::Ack {
                id: message_id(&mut r)?,
            },
            tag::SYNC => Message::Sync {
                resend_from: message_id(&mut r)?,
                last: r.u64("last received id")?,
            },
            tag::HISTORY => Message::History {
                kept: match r.u8("history flag")? {
                    0 => false,
                    1 => true,
                    _ => return Err(DecodeError::InvalidValue("history flag")),
                },
            },
            tag::FILE_OFFER => {
                let transfer = TransferId(r.array("transfer id")?);
                let size = r.u64("file size")?;
                if size > MAX_FILE_SIZE {
                    return Err(DecodeError::InvalidValue("file size"));
                }
                let sha256 = r.array("file digest")?;
                let name = text(&mut r, TextField::FileName)?;
                Message::FileOffer(FileOffer {
                    transfer,
                    size,
                    sha256,
                    name,
                })
            }
            tag::FILE_ACCEPT => {
                let transfer = TransferId(r.array("transfer id")?);
                let offset = file_offset(&mut r)?;
                Message::FileAccept { transfer, offset }
            }
            tag::FILE_CHUNK => {
                let transfer = TransferId(r.array("transfer id")?);
                let offset = r.u64("chunk offset")?;
                let data = r.bytes32("chunk data", MAX_CHUNK)?;
                check_chunk(offset, data.len())?;
                Message::FileChunk(FileChunk {
                    transfer,
                    offset,
                    data: data.to_vec(),
                })
            }
            tag::FILE_ACK => {
                let transfer = TransferId(r.array("transfer id")?);
                let received = file_offset(&mut r)?;
                Message::FileAck { transfer, received }
            }
            tag::FILE_DONE => Message::FileDone {
                transfer: TransferId(r.array("transfer id")?),
            },
            tag::FILE_CANCEL => {
                let transfer = TransferId(r.array("transfer id")?);
                let reason = CancelReason::from_u8(r.u8("cancel reason")?)?;
                Message::FileCancel { transfer, reason }
            }
            tag::KEEPALIVE => Message::Keepalive,
            tag::CLOSE => Message::Close(CloseReason::from_code(r.u16("close reason")?)),
            other => return Err(DecodeError::UnknownMessageType(other)),
        };
        r.finish()?;
        Ok(msg)
    }
}

fn onion_id(r: &mut Reader<'_>) -> Result<OnionId, DecodeError> {
    OnionId::from_bytes(r.array("endpoint id")?)
        .map_err(|_| DecodeError::InvalidValue("endpoint id"))
}

fn text(r: &mut Reader<'_>, field: TextField) -> Result<String, DecodeError> {
    field.decode(r.bytes16(field.name(), field.max_bytes())?)
}

fn message_id(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    match r.u64("message id")? {
        0 => Err(DecodeError::InvalidValue("message id")),
        id => Ok(id),
    }
}

fn file_offset(r: &mut Reader<'_>) -> Result<u64, DecodeError> {
    let v = r.u64("file offset")?;
    if v > MAX_FILE_SIZE {
        return Err(DecodeError::InvalidValue("file offset"));
    }
    Ok(v)
}

fn check_chunk(offset: u64, len: usize) -> Result<(), DecodeError> {
    if len == 0 {
        return Err(DecodeError::Empty("chunk data"));
    }
    if len > MAX_CHUNK {
        return Err(DecodeError::TooLong {
            field: "chunk data",
            len,
            max: MAX_CHUNK,
        });
    }
    // `len` ≤ MAX_CHUNK, so the sum cannot overflow after this check.
    if offset > MAX_FILE_SIZE || offset + len as u64 > MAX_FILE_SIZE {
        return Err(DecodeError::InvalidValue("chunk offset"));
    }
    Ok(())
}

/// Plaintext sizes every encrypted message is padded to, so that an
/// observer of ciphertext sizes (the peer's Tor relays cannot see them, but
/// a compromised endpoint host could) learns only a coarse size class.
pub const PADDING_BUCKETS: [usize; 5] = [256, 1024, 4096, 16384, 65504];

/// Largest encoded message: the largest bucket less the 2-byte length.
pub const MAX_MESSAGE: usize = 65504 - 2;

/// Encodes and pads a message in one buffer: `len (u16) || message ||
/// zeros` up to the smallest bucket that holds it; `None` if it fits none.
pub(crate) fn encode_padded(msg: &Message) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(256);
    out.put_u16(0);
    msg.encode_into(&mut out);
    let len = out.len() - 2;
    let bucket = *PADDING_BUCKETS.iter().find(|b| **b >= out.len())?;
    out[..2].copy_from_slice(&u16::try_from(len).ok()?.to_be_bytes());
    out.resize(bucket, 0);
    Some(out)
}

/// Pads an already encoded message (see [`encode_padded`]).
pub(crate) fn pad(encoded: &[u8]) -> Option<Vec<u8>> {
    let need = encoded.len().checked_add(2)?;
    let bucket = *PADDING_BUCKETS.iter().find(|b| **b >= need)?;
    let mut out = Vec::with_capacity(bucket);
    out.put_u16(u16::try_from(encoded.len()).ok()?);
    out.extend_from_slice(encoded);
    out.resize(bucket, 0);
    Some(out)
}

/// Removes padding (PROTOCOL.md §5): the plaintext must be exactly the
/// smallest bucket that fits, `MLEN` within it, and the padding all zeros
/// (anything else is non-canonical). Public for the verdict vectors.
pub fn unpad(plaintext: &[u8]) -> Result<&[u8], DecodeError> {
    if !PADDING_BUCKETS.contains(&plaintext.len()) {
        return Err(DecodeError::BadPadding);
    }
    let mut r = Reader::new(plaintext);
    let len = usize::from(r.u16("padded length")?);
    let rest = r.remaining();
    if len > rest.len() {
        return Err(DecodeError::BadPadding);
    }
    let (body, padding) = rest.split_at(len);
    // The smallest bucket that fits must have been used.
    let smallest = PADDING_BUCKETS.iter().find(|b| **b >= len + 2);
    if smallest != Some(&plaintext.len()) || padding.iter().any(|b| *b != 0) {
        return Err(DecodeError::BadPadding);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_keys_are_fresh_and_clamped() {
        let a = DiscoveryKey::generate(&mut rand_core::OsRng);
        let b = DiscoveryKey::generate(&mut rand_core::OsRng);
        assert_ne!(a, b, "never a constant");
        for k in [&a, &b] {
            let mut c = k.0;
            DiscoveryKey::clamp(&mut c);
            assert_eq!(c, k.0, "sent clamped (PROTOCOL.md §6.1)");
        }
        // Clamping changes the bytes, never the key.
        let mut raw = a.0;
        raw[0] |= 7;
        raw[31] ^= 0xc0;
        assert_ne!(raw, a.0);
        assert_eq!(DiscoveryKey(raw).public_key(), a.public_key());
    }

    fn id() -> OnionId {
        OnionId::from_bytes(
            ed25519_dalek::SigningKey::from_bytes(&[9; 32])
                .verifying_key()
                .to_bytes(),
        )
        .expect("valid")
    }

    #[test]
    fn encode_padded_equals_pad_of_encode() {
        for m in [
            Message::Keepalive,
            Message::Chat(Chat {
                id: 7,
                text: "x".repeat(3000),
            }),
        ] {
            assert_eq!(encode_padded(&m), pad(&m.encode()));
        }
    }

    #[test]
    fn padding_round_trip_and_rejects() {
        for len in [0usize, 1, 254, 255, 1000, 4094, 16382, 16383, MAX_MESSAGE] {
            let body = vec![0xAB; len];
            let padded = pad(&body).expect("fits");
            assert!(PADDING_BUCKETS.contains(&padded.len()));
            assert_eq!(unpad(&padded), Ok(&body[..]));
        }
        assert_eq!(pad(&vec![0; MAX_MESSAGE + 1]), None);
        let mut p = pad(b"hi").expect("fits");
        p[100] = 1;
        assert_eq!(unpad(&p), Err(DecodeError::BadPadding), "non-zero padding");
        assert_eq!(
            unpad(&[0u8; 255]),
            Err(DecodeError::BadPadding),
            "not a bucket"
        );
        let mut p = vec![0u8; 1024];
        p[1] = 10;
        assert_eq!(
            unpad(&p),
            Err(DecodeError::BadPadding),
            "larger bucket than needed"
        );
        let mut p = vec![0u8; 256];
        p[0] = 1;
        assert_eq!(
            unpad(&p),
            Err(DecodeError::BadPadding),
            "length past the end"
        );
    }

    #[test]
    fn rejects_bad_messages_with_exact_errors() {
        assert_eq!(
            Message::decode(&[]),
            Err(DecodeError::Truncated("message type"))
        );
        assert_eq!(
            Message::decode(&[0x7f]),
            Err(DecodeError::UnknownMessageType(0x7f))
        );
        assert_eq!(
            Message::decode(&[0x30, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        // HISTORY: one byte, 0 or 1, nothing after it.
        assert_eq!(
            Message::decode(&[0x13, 1]),
            Ok(Message::History { kept: true })
        );
        assert_eq!(
            Message::decode(&[0x13, 0]),
            Ok(Message::History { kept: false })
        );
        assert_eq!(
            Message::decode(&[0x13, 2]),
            Err(DecodeError::InvalidValue("history flag"))
        );
        assert_eq!(
            Message::decode(&[0x13]),
            Err(DecodeError::Truncated("history flag"))
        );
        assert_eq!(
            Message::decode(&[0x13, 1, 0]),
            Err(DecodeError::TrailingBytes(1))
        );
        assert_eq!(
            Message::decode(&[0x11, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::InvalidValue("message id"))
        );
        // A chat whose length prefix claims more than the cap is refused
        // before the bytes are looked at.
        let mut m = vec![0x10, 0, 0, 0, 0, 0, 0, 0, 1, 0xFF, 0xFF];
        assert_eq!(
            Message::decode(&m),
            Err(DecodeError::TooLong {
                field: "message text",
                len: 65535,
                max: 16000
            })
        );
        m.truncate(9);
        m.extend_from_slice(&[0, 5, b'h', b'i']);
        assert_eq!(
            Message::decode(&m),
            Err(DecodeError::Truncated("message text"))
        );
        // Chunk past the protocol's size limit.
        let mut c = vec![0x22];
        c.extend_from_slice(&[0; 16]);
        c.extend_from_slice(&MAX_FILE_SIZE.to_be_bytes());
        c.extend_from_slice(&1u32.to_be_bytes());
        c.push(0);
        assert_eq!(
            Message::decode(&c),
            Err(DecodeError::InvalidValue("chunk offset"))
        );
        // Huge file offer.
        let mut o = vec![0x20];
        o.extend_from_slice(&[0; 16]);
        o.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            Message::decode(&o),
            Err(DecodeError::InvalidValue("file size"))
        );
        // Chunk data longer than the cap, refused before allocation.
        let mut c = vec![0x22];
        c.extend_from_slice(&[0; 16]);
        c.extend_from_slice(&0u64.to_be_bytes());
        c.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            Message::decode(&c),
            Err(DecodeError::TooLong {
                field: "chunk data",
                len: u32::MAX as usize,
                max: MAX_CHUNK
            })
        );
        assert_eq!(
            Message::decode(&[0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
            Err(DecodeError::InvalidValue("cancel reason"))
        );
    }

    #[test]
    fn request_with_weak_endpoint_is_rejected() {
        let mut m = vec![0x01];
        let mut identity = [0u8; 32];
        identity[0] = 1;
        m.extend_from_slice(&identity);
        m.extend_from_slice(&[0; 32]);
        m.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(
            Message::decode(&m),
            Err(DecodeError::InvalidValue("endpoint id"))
        );
    }

    #[test]
    fn unknown_close_codes_round_trip() {
        let m = Message::Close(CloseReason::Other(999));
        assert_eq!(Message::decode(&m.encode()), Ok(m));
        let req = Message::ContactRequest(ContactRequest {
            nickname: "Ana".into(),
            greeting: "hello".into(),
            endpoint: id(),
            discovery_key: DiscoveryKey([3; 32]),
        });
        assert_eq!(Message::decode(&req.encode()), Ok(req));
    }
}
