//! Every way the protocol can fail, one enum per layer.
//!
//! Each variant says what was wrong and, where it helps, its likely cause, so
//! that a log line or a UI message can tell a person what happened.

use crate::message::{CloseReason, RefuseReason};

/// Why an address typed or pasted by a person (or received from a peer) was
/// not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    /// Nothing was given.
    #[error("the address is empty")]
    Empty,
    /// The identifier part does not have the 56 characters of a v3 onion id.
    #[error("an Allium address has 56 characters after \"allium:\", this one has {0}")]
    WrongLength(usize),
    /// A character outside the base32 alphabet (a–z, 2–7).
    #[error(
        "the address contains a character that cannot appear in an address (only a–z and 2–7 can)"
    )]
    InvalidCharacter,
    /// The checksum does not match: most likely a typo or a truncated copy.
    #[error("the address has a typo: its checksum does not match")]
    BadChecksum,
    /// The version byte is not 3 (only v3 onion services exist).
    #[error("the address is for onion service version {0}, only version 3 is supported")]
    UnsupportedVersion(u8),
    /// The key bytes are not a valid Ed25519 public key.
    #[error("the address does not contain a valid public key")]
    InvalidKey,
    /// The key bytes are a non-canonical encoding of a point (another,
    /// shorter encoding names the same key): never produced by an honest
    /// key generator.
    #[error("the address contains a key in a non-standard form and cannot be used")]
    NonCanonicalKey,
    /// The key is a small-order (weak) Ed25519 point: never produced by an
    /// honest key generator, so an attack or a corrupted address.
    #[error("the address contains a weak key and cannot belong to anyone")]
    WeakKey,
}

/// Why a message body (the plaintext inside a transport frame) was rejected.
///
/// Decoding accepts exactly one encoding of each message (canonical), so any
/// of these is caused by a buggy or hostile peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended in the middle of a field.
    #[error("message ended early while reading {0}")]
    Truncated(&'static str),
    /// Bytes left over after a complete message.
    #[error("{0} unexpected bytes after the end of the message")]
    TrailingBytes(usize),
    /// The type byte names no message of this version.
    #[error("unknown message type {0:#04x}")]
    UnknownMessageType(u8),
    /// A length field is over the limit for that field.
    #[error("{field} is {len} bytes long, over the limit of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length as claimed or measured (bytes, or characters for text).
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A field that must not be empty was empty.
    #[error("{0} is empty")]
    Empty(&'static str),
    /// A text field is not valid UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A text field contains a character that field does not allow
    /// (controls, bidi overrides, non-characters, path separators, ...).
    #[error("{field} contains the forbidden character U+{code:04X}")]
    ForbiddenCharacter {
        /// The field.
        field: &'static str,
        /// The Unicode scalar value.
        code: u32,
    },
    /// A field holds a value outside its defined range.
    #[error("{0} holds a value that is not allowed")]
    InvalidValue(&'static str),
    /// The padded plaintext has a bad length header or non-zero padding.
    #[error("the padding of a message is malformed")]
    BadPadding,
}

/// Why a session failed. Every error closes the session it happened on, and
/// only that session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame declared a length of zero.
    #[error("peer sent an empty frame")]
    EmptyFrame,
    /// A frame declared a length over the cap in force (smaller during the
    /// handshake). Rejected before any of it is buffered.
    #[error("peer sent a frame of {len} bytes, over the limit of {max}")]
    FrameTooLarge {
        /// The declared length.
        len: usize,
        /// The cap in force.
        max: usize,
    },
    /// The frame type byte is not defined.
    #[error("peer sent a frame of unknown type {0:#04x}")]
    UnknownFrameType(u8),
    /// A frame type that is not allowed in the current state.
    #[error("peer sent a {frame} frame while {state}")]
    UnexpectedFrame {
        /// The frame type received.
        frame: &'static str,
        /// What the session was doing.
        state: &'static str,
    },
    /// The hello does not start with the Allium magic: not an Allium peer.
    #[error("the peer does not speak the Allium protocol")]
    BadMagic,
    /// The hello is malformed (bad version list, bad length, payload where
    /// none is allowed).
    #[error("the peer's handshake is malformed: {0}")]
    MalformedHandshake(&'static str),
    /// No protocol version in common.
    #[error(
        "the peer's preferred protocol version is not supported (peer offers {offered:?}, we support {supported:?}); it may retry with an older one"
    )]
    UnsupportedVersion {
        /// What the peer offered.
        offered: Vec<u8>,
        /// What we support.
        supported: Vec<u8>,
    },
    /// The hello is for the other kind of service (an endpoint handshake at
    /// the intake or the reverse), or the peer uses a different handshake
    /// domain: never accepted, so a handshake cannot be moved between
    /// contexts.
    #[error("the handshake was made for a different purpose ({0})")]
    WrongDomain(&'static str),
    /// The hello names a different responder than the one that received it:
    /// a handshake recorded for someone else, or ids swapped.
    #[error("the handshake was addressed to a different onion service")]
    WrongDestination,
    /// The peer presented our own identity or our own static key: a
    /// reflection of our own handshake back at us.
    #[error("the peer presented our own identity (reflected handshake)")]
    Reflected,
    /// An onion id in the handshake is not a valid identity key.
    #[error("the peer presented an invalid identity: {0}")]
    InvalidIdentity(AddressError),
    /// The identity proof was made by a different onion identity than the
    /// one expected (the dialled address, or the one the initiator claimed).
    #[error("the peer proved a different identity than the one expected")]
    IdentityMismatch,
    /// The identity proof's signature does not verify: forged, corrupted, or
    /// made for another domain or another static key.
    #[error("the peer's identity proof is invalid")]
    BadIdentityProof,
    /// A public key of all zeros.
    #[error("the peer sent an all-zero public key")]
    ZeroKey,
    /// A public key of small order (it would make a Diffie-Hellman result
    /// predictable).
    #[error("the peer sent a small-order public key")]
    SmallOrderKey,
    /// A handshake message whose ephemeral key has been seen before: a
    /// recorded handshake replayed.
    #[error("the handshake is a replay of an earlier one")]
    Replayed,
    /// A Noise handshake message failed to authenticate: tampered, truncated,
    /// or the peer does not hold the key we expect.
    #[error("the handshake failed to authenticate (tampered, or the peer has a different key)")]
    HandshakeFailed,
    /// A transport frame failed to authenticate.
    #[error("a message failed to authenticate (tampered or corrupted)")]
    DecryptFailed,
    /// A message inside a transport frame was malformed.
    #[error("the peer sent a malformed message: {0}")]
    Message(#[from] DecodeError),
    /// The responder refused the connection before the handshake finished.
    #[error("the peer refused the connection: {0}")]
    Refused(RefuseReason),
    /// The handshake did not finish in time.
    #[error("the handshake did not finish in time")]
    HandshakeTimeout,
    /// Nothing was received for longer than the idle timeout.
    #[error("the peer went silent")]
    IdleTimeout,
    /// The stream ended before the session was closed: in the middle of a
    /// frame, during the handshake, or without a close message.
    #[error("the connection ended unexpectedly{}", if *.mid_frame { " in the middle of a frame" } else { "" })]
    UnexpectedEof {
        /// Whether part of a frame had been received.
        mid_frame: bool,
    },
    /// `send` was called with a message that does not fit the limits.
    #[error("the message is too large to send ({len} bytes, limit {max})")]
    MessageTooLarge {
        /// The encoded size.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A message we were asked to send is itself invalid (for example a
    /// nickname with a control character).
    #[error("refusing to send an invalid message: {0}")]
    InvalidOutgoing(DecodeError),
    /// The session is closed; nothing more can be sent.
    #[error("the session is closed")]
    Closed,
    /// The call does not fit the session's state (for example `admit` on
    /// an initiator).
    #[error("not possible in this state: {0}")]
    WrongState(&'static str),
    /// The Noise library reported an error that none of the variants above
    /// explains; a bug on one side.
    #[error("internal handshake error: {0}")]
    Noise(String),
}

/// How a session ended: reported once, in [`crate::Event::Closed`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseCause {
    /// We closed it, with this reason.
    Local(CloseReason),
    /// The peer closed it, with this reason.
    Peer(CloseReason),
    /// The peer (a responder) refused us before the handshake finished.
    Refused(RefuseReason),
    /// We (a responder) refused the peer at admission, with this reason
    /// or silently.
    RefusedByUs(Option<RefuseReason>),
    /// An error closed it.
    Error(ProtocolError),
}
