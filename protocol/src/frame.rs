//! Framing: how a byte stream is cut into frames, and the cleartext hello.
//!
//! A frame is `length (u16, big-endian) || type (u8) || body`, where
//! `length` counts the type byte and the body. The decoder checks a declared
//! length against the cap in force before it buffers a single byte of the
//! frame, and never holds more than one frame.

use crate::address::OnionId;
use crate::codec::{Reader, Writer};
use crate::error::ProtocolError;
use crate::{MAX_VERSIONS, PROTOCOL_MAGIC};

/// Cap on frames before the handshake is complete (hello, handshake and
/// refuse frames): strangers cannot make us buffer more than this.
pub const HANDSHAKE_FRAME_MAX: usize = 4096;
/// Cap on frames once the session is established (the u16 maximum).
pub const FRAME_MAX: usize = u16::MAX as usize;

/// Frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameType {
    /// The initiator's first frame: hello header and first Noise message.
    Hello = 1,
    /// Later Noise handshake messages.
    Handshake = 2,
    /// An encrypted, padded application message.
    Transport = 3,
    /// A responder's cleartext refusal before the handshake completes.
    Refuse = 4,
}

impl FrameType {
    /// The name used in errors and the spec.
    pub fn name(self) -> &'static str {
        match self {
            FrameType::Hello => "HELLO",
            FrameType::Handshake => "HANDSHAKE",
            FrameType::Transport => "TRANSPORT",
            FrameType::Refuse => "REFUSE",
        }
    }
}

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame {
    /// Its type.
    pub kind: FrameType,
    /// Everything after the type byte.
    pub body: Vec<u8>,
}

/// Appends one frame to `out`. `body.len() + 1` must fit the cap in force
/// (the session guarantees it by construction; a longer body is cut).
pub fn write_frame(out: &mut Vec<u8>, kind: FrameType, body: &[u8]) {
    let len = u16::try_from(body.len() + 1).unwrap_or(u16::MAX);
    out.put_u16(len);
    out.put_u8(kind as u8);
    out.extend_from_slice(&body[..usize::from(len) - 1]);
}

/// Incremental frame decoder: feed it any split of the stream.
#[derive(Debug, Default)]
pub struct FrameDecoder {
    /// Length bytes, then the type byte, of the frame being read.
    header: Vec<u8>,
    body: Vec<u8>,
    /// Body bytes (after the type byte) of the frame being read.
    want: Option<usize>,
}

impl FrameDecoder {
    /// Whether part of a frame has been received.
    pub fn is_mid_frame(&self) -> bool {
        !self.header.is_empty() || self.want.is_some()
    }

    /// Consumes bytes from `input` until one frame is complete (returned) or
    /// the input is exhausted (`None`). `max` is the cap in force.
    pub fn next_frame(
        &mut self,
        input: &mut &[u8],
        max: usize,
    ) -> Result<Option<Frame>, ProtocolError> {
        while self.want.is_none() {
            let Some((&b, rest)) = input.split_first() else {
                return Ok(None);
            };
            *input = rest;
            self.header.push(b);
            if self.header.len() == 2 {
                let len = usize::from(u16::from_be_bytes([self.header[0], self.header[1]]));
                if len == 0 {
                    return Err(ProtocolError::EmptyFrame);
                }
                if len > max {
                    return Err(ProtocolError::FrameTooLarge { len, max });
                }
            } else if self.header.len() == 3 {
                let len = usize::from(u16::from_be_bytes([self.header[0], self.header[1]]));
                frame_type(self.header[2])?;
                self.want = Some(len - 1);
                self.body = Vec::with_capacity(len - 1);
            }
        }
        let want = self.want.unwrap_or(0);
        let n = (want - self.body.len()).min(input.len());
        self.body.extend_from_slice(&input[..n]);
        *input = &input[n..];
        if self.body.len() < want {
            return Ok(None);
        }
        let kind = frame_type(self.header[2])?;
        self.want = None;
        self.header.clear();
        Ok(Some(Frame {
            kind,
            body: std::mem::take(&mut self.body),
        }))
    }
}

fn frame_type(b: u8) -> Result<FrameType, ProtocolError> {
    Ok(match b {
        1 => FrameType::Hello,
        2 => FrameType::Handshake,
        3 => FrameType::Transport,
        4 => FrameType::Refuse,
        t => return Err(ProtocolError::UnknownFrameType(t)),
    })
}

/// Which service a handshake is for: the handshake *domain*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A stranger's contact request at the public intake (Noise XX).
    Intake = 1,
    /// A contact connecting to a private endpoint (Noise IK).
    Endpoint = 2,
}

impl Purpose {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Purpose::Intake => "intake",
            Purpose::Endpoint => "endpoint",
        }
    }
}

/// The cleartext part of the first frame. Its encoding (the *header*) is
/// also the Noise prologue's tail, so tampering with any of it breaks the
/// handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HelloHeader {
    pub(crate) versions: Vec<u8>,
    pub(crate) purpose: Purpose,
    pub(crate) responder: OnionId,
    pub(crate) initiator: OnionId,
}

impl HelloHeader {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(6 + 1 + self.versions.len() + 1 + 64);
        out.put_slice(PROTOCOL_MAGIC);
        out.put_u8(u8::try_from(self.versions.len()).unwrap_or(0));
        out.put_slice(&self.versions);
        out.put_u8(self.purpose as u8);
        out.put_slice(self.responder.as_bytes());
        out.put_slice(self.initiator.as_bytes());
        out
    }

    /// Splits a HELLO frame body into the header (decoded), the header's
    /// exact bytes, and the first Noise message.
    pub(crate) fn decode(body: &[u8]) -> Result<(Self, &[u8], &[u8]), ProtocolError> {
        let malformed = |_| ProtocolError::MalformedHandshake("truncated");
        let mut r = Reader::new(body);
        if r.take(PROTOCOL_MAGIC.len(), "magic").map_err(malformed)? != PROTOCOL_MAGIC {
            return Err(ProtocolError::BadMagic);
        }
        let n = usize::from(r.u8("version count").map_err(malformed)?);
        if n == 0 || n > MAX_VERSIONS {
            return Err(ProtocolError::MalformedHandshake(
                "version count out of range",
            ));
        }
        let versions = r.take(n, "versions").map_err(malformed)?.to_vec();
        if let Some(problem) = version_list_problem(&versions) {
            return Err(ProtocolError::MalformedHandshake(problem));
        }
        let purpose = match r.u8("purpose").map_err(malformed)? {
            1 => Purpose::Intake,
            2 => Purpose::Endpoint,
            _ => return Err(ProtocolError::MalformedHandshake("unknown purpose")),
        };
        let responder = OnionId::from_bytes(r.array("responder id").map_err(malformed)?)
            .map_err(ProtocolError::InvalidIdentity)?;
        let initiator = OnionId::from_bytes(r.array("initiator id").map_err(malformed)?)
            .map_err(ProtocolError::InvalidIdentity)?;
        let noise = r.remaining();
        let header_bytes = &body[..body.len() - noise.len()];
        Ok((
            HelloHeader {
                versions,
                purpose,
                responder,
                initiator,
            },
            header_bytes,
            noise,
        ))
    }
}

/// What is wrong with a version list (PROTOCOL.md §4.2), as a hello or a
/// REFUSE 1 carries it, if anything: no zero, and strictly decreasing
/// (preference order, no duplicates, one encoding). The count is checked
/// where it is read.
pub(crate) fn version_list_problem(versions: &[u8]) -> Option<&'static str> {
    if versions.contains(&0) {
        Some("version 0 offered")
    } else if versions.windows(2).any(|w| w[0] <= w[1]) {
        Some("version list not strictly decreasing")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_handles_any_split_and_rejects_bad_lengths() {
        let mut stream = Vec::new();
        write_frame(&mut stream, FrameType::Transport, b"hello");
        write_frame(&mut stream, FrameType::Handshake, b"");
        for chunk in [1usize, 2, 3, 7, 100] {
            let mut d = FrameDecoder::default();
            let mut frames = Vec::new();
            for piece in stream.chunks(chunk) {
                let mut input = piece;
                while let Some(f) = d.next_frame(&mut input, FRAME_MAX).expect("valid") {
                    frames.push((f.kind, f.body));
                }
                assert!(input.is_empty());
            }
            assert_eq!(
                frames,
                vec![
                    (FrameType::Transport, b"hello".to_vec()),
                    (FrameType::Handshake, vec![])
                ]
            );
        }
        let mut d = FrameDecoder::default();
        assert_eq!(
            d.next_frame(&mut &[0u8, 0][..], FRAME_MAX).err(),
            Some(ProtocolError::EmptyFrame)
        );
        let mut d = FrameDecoder::default();
        assert_eq!(
            d.next_frame(&mut &[0x10u8, 0x01][..], HANDSHAKE_FRAME_MAX)
                .err(),
            Some(ProtocolError::FrameTooLarge {
                len: 4097,
                max: 4096
            })
        );
        let mut d = FrameDecoder::default();
        assert_eq!(
            d.next_frame(&mut &[0u8, 1, 9][..], FRAME_MAX).err(),
            Some(ProtocolError::UnknownFrameType(9))
        );
        // Truncated: a partial frame is simply not complete yet.
        let mut d = FrameDecoder::default();
        assert!(matches!(
            d.next_frame(&mut &[0u8, 5, 3, 1][..], FRAME_MAX),
            Ok(None)
        ));
    }
}
