//! The shared body of the fuzz targets (`protocol/fuzz/fuzz_targets/`) and
//! of the corpus replay test (`protocol/tests/fuzz_corpus.rs`). Not an API:
//! nothing outside those two may call it, and it may change at any time.
//!
//! Every function takes arbitrary bytes and must not panic on any of them,
//! except through an assertion of a property the protocol promises; a
//! failed assertion is a bug the fuzzer found. Runs are deterministic: the
//! sessions use fixed identities and fixed RNG seeds, so a corpus file can
//! hold a *valid* transcript (recorded from real sessions built by the
//! functions below) and the fuzzer can start from deep states instead of
//! having to forge a Noise handshake.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::error::{CloseCause, ProtocolError};
use crate::frame::{
    FRAME_MAX, Frame, FrameDecoder, HANDSHAKE_FRAME_MAX, HelloHeader, Purpose, write_frame,
};
use crate::identity::{IdentityKey, IdentityProof, StaticKeypair};
use crate::message::{
    self, Chat, CloseReason, ContactRequest, DiscoveryKey, Message, RefuseReason,
};
use crate::replay::ReplayCache;
use crate::session::{Event, LocalIdentity, PeerHello, Session, SessionConfig};

/// Seed of the initiator's keys ("alice"): the known contact of the
/// endpoint responder.
pub const ALICE_SEED: u8 = 1;
/// Seed of the responder's keys ("bob"): the identity every initiator dials.
pub const BOB_SEED: u8 = 2;
/// Seed of the RNG of every initiator session.
pub const INITIATOR_RNG_SEED: u8 = 100;
/// Seed of the RNG of every responder session.
pub const RESPONDER_RNG_SEED: u8 = 101;

/// A profile's keys generated from a seed, as the integration tests do.
pub fn identity(seed: u8) -> LocalIdentity {
    let mut r = ChaCha20Rng::from_seed([seed; 32]);
    let identity = IdentityKey::generate(&mut r);
    let endpoint = IdentityKey::generate(&mut r).onion_id();
    let static_key = StaticKeypair::generate(&mut r);
    LocalIdentity {
        identity,
        endpoint,
        static_key,
    }
}

/// The initiator's fixed identity (derived once: key generation would
/// otherwise dominate a fuzzing run).
pub fn alice() -> &'static LocalIdentity {
    static ALICE: OnceLock<LocalIdentity> = OnceLock::new();
    ALICE.get_or_init(|| identity(ALICE_SEED))
}

/// The responder's fixed identity.
pub fn bob() -> &'static LocalIdentity {
    static BOB: OnceLock<LocalIdentity> = OnceLock::new();
    BOB.get_or_init(|| identity(BOB_SEED))
}

/// Seed of a third party's keys ("mallory"), for seeds of impostors.
pub const MALLORY_SEED: u8 = 3;

/// Neither Alice nor Bob.
pub fn mallory() -> &'static LocalIdentity {
    static MALLORY: OnceLock<LocalIdentity> = OnceLock::new();
    MALLORY.get_or_init(|| identity(MALLORY_SEED))
}

/// The message the intake initiator queues before its hello (sent once the
/// handshake is done).
pub fn contact_request() -> Message {
    Message::ContactRequest(ContactRequest {
        nickname: "Ana".into(),
        greeting: "I have documents about the port contract.".into(),
        endpoint: alice().endpoint,
        discovery_key: DiscoveryKey([42; 32]),
    })
}

/// The message the endpoint initiator queues before its hello (it rides the
/// hello as early data).
pub fn early_chat() -> Message {
    Message::Chat(Chat {
        id: 1,
        text: "are you there?".into(),
    })
}

/// Alice dialling Bob (his intake, or his endpoint with his static key),
/// with her first message already queued. Exactly the session the
/// initiator targets drive; transcripts recorded against it replay.
pub fn initiator_session(purpose: Purpose, now: Instant) -> Session {
    let (a, b) = (alice(), bob());
    let mut rng = ChaCha20Rng::from_seed([INITIATOR_RNG_SEED; 32]);
    let config = SessionConfig::default();
    let (session, first) = match purpose {
        Purpose::Intake => (
            Session::connect_intake(config, a, b.identity.onion_id(), now, &mut rng),
            contact_request(),
        ),
        Purpose::Endpoint => (
            Session::connect_endpoint(config, a, b.endpoint, b.static_key.public(), now, &mut rng),
            early_chat(),
        ),
    };
    let mut session = match session {
        Ok(s) => s,
        Err(e) => panic!("fixed identities are distinct, yet connecting failed: {e}"),
    };
    if let Err(e) = session.send(now, first) {
        panic!("a fixed, valid first message was refused: {e}");
    }
    session
}

/// Bob accepting at his intake or his endpoint. Exactly the session the
/// responder targets drive.
pub fn responder_session(purpose: Purpose, now: Instant) -> Session {
    let b = bob();
    let mut rng = ChaCha20Rng::from_seed([RESPONDER_RNG_SEED; 32]);
    let config = SessionConfig::default();
    match purpose {
        Purpose::Intake => Session::accept_intake(config, b, now, &mut rng),
        Purpose::Endpoint => Session::accept_endpoint(config, b, now, &mut rng),
    }
}

/// Mallory answering at Bob's intake address (having taken the place of
/// his service, say): she can only prove her own identity, so the answer
/// she gives [`initiator_session`] must be refused. Seeds only.
pub fn impostor_responder_session(now: Instant) -> Session {
    let mut rng = ChaCha20Rng::from_seed([RESPONDER_RNG_SEED; 32]);
    let bob_id = bob().identity.onion_id();
    Session::accept(
        SessionConfig::default(),
        mallory(),
        Purpose::Intake,
        bob_id,
        now,
        &mut rng,
    )
}

/// An intake initiator that claims `claimed` in its hello while holding
/// only `local`'s keys: it can send the hello but never a valid proof. For
/// tests of what a responder reveals before the proof (the engine's
/// hostile-peer tests). Not an API.
pub fn claiming_intake_initiator(
    local: &LocalIdentity,
    claimed: crate::OnionId,
    target: crate::OnionId,
    now: Instant,
    rng: &mut impl rand_core::CryptoRngCore,
) -> Result<Session, ProtocolError> {
    Session::connect(
        SessionConfig::default(),
        local,
        claimed,
        Purpose::Intake,
        target,
        None,
        now,
        rng,
    )
}

/// Bob's admission policy, as an application would have it: the intake
/// admits every stranger; the endpoint admits Alice, its one contact, with
/// the static key on file for her, and refuses anyone else.
pub fn admit(
    session: &mut Session,
    hello: &PeerHello,
    now: Instant,
    replay: &mut ReplayCache,
) -> Result<(), ProtocolError> {
    match hello.purpose {
        Purpose::Intake => session.admit_stranger(now, replay),
        Purpose::Endpoint => {
            let a = alice();
            if hello.claimed == a.identity.onion_id() {
                session.admit_contact(now, replay, a.static_key.public())
            } else {
                session.refuse(Some(RefuseReason::NotAuthorized));
                Ok(())
            }
        }
    }
}

// ---- the targets ----

/// Frame decoding. The first byte picks the cap (even: the handshake cap,
/// odd: the transport cap); the rest is a stream. Decoding it in one piece,
/// byte by byte, and in data-derived pieces must give the same frames, the
/// same error at the same position, and each frame must re-encode to
/// exactly the bytes it was decoded from.
pub fn frames(data: &[u8]) {
    let Some((&selector, stream)) = data.split_first() else {
        return;
    };
    let max = if selector & 1 == 0 {
        HANDSHAKE_FRAME_MAX
    } else {
        FRAME_MAX
    };

    // In one piece, remembering the bytes each frame came from.
    let mut decoder = FrameDecoder::default();
    let mut input = stream;
    let mut whole = Decoded::default();
    loop {
        let before = stream.len() - input.len();
        match decoder.next_frame(&mut input, max) {
            Ok(Some(f)) => {
                let consumed = &stream[before..stream.len() - input.len()];
                let mut again = Vec::new();
                write_frame(&mut again, f.kind, &f.body);
                assert_eq!(
                    again, consumed,
                    "a frame must re-encode to the bytes it came from"
                );
                assert!(
                    f.body.len() < max,
                    "a frame of {} bytes passed the cap {max}",
                    f.body.len() + 1
                );
                whole.frames.push(f);
            }
            Ok(None) => {
                assert!(
                    input.is_empty(),
                    "the decoder stopped before the end of its input"
                );
                break;
            }
            Err(e) => {
                whole.error = Some((e, stream.len() - input.len()));
                break;
            }
        }
    }
    whole.mid_frame = decoder.is_mid_frame();
    if whole.error.is_none() {
        // Bytes after the last complete frame are exactly a partial frame.
        let framed: usize = whole.frames.iter().map(|f| f.body.len() + 3).sum();
        assert_eq!(
            whole.mid_frame,
            framed < stream.len(),
            "mid-frame state disagrees with the bytes left"
        );
    }

    let bytewise = decode_in_pieces(stream, max, &mut std::iter::repeat(1));
    assert_eq!(
        bytewise, whole,
        "byte-at-a-time decoding differs from decoding in one piece"
    );
    let mut split = Splitter::new(data);
    let pieces = decode_in_pieces(
        stream,
        max,
        &mut std::iter::from_fn(|| Some(split.piece_len())),
    );
    assert_eq!(
        pieces, whole,
        "decoding in pieces differs from decoding in one piece"
    );
}

/// The result of decoding a stream: frames, then an error (with the number
/// of bytes consumed when it was raised) or a clean end.
#[derive(Debug, Default, PartialEq, Eq)]
struct Decoded {
    frames: Vec<Frame>,
    error: Option<(ProtocolError, usize)>,
    mid_frame: bool,
}

fn decode_in_pieces(stream: &[u8], max: usize, lens: &mut dyn Iterator<Item = usize>) -> Decoded {
    let mut decoder = FrameDecoder::default();
    let mut out = Decoded::default();
    let mut offset = 0;
    while offset < stream.len() {
        let len = lens
            .next()
            .unwrap_or(usize::MAX)
            .clamp(1, stream.len() - offset);
        let piece = &stream[offset..offset + len];
        let mut input = piece;
        loop {
            match decoder.next_frame(&mut input, max) {
                Ok(Some(f)) => out.frames.push(f),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some((e, offset + piece.len() - input.len()));
                    out.mid_frame = decoder.is_mid_frame();
                    return out;
                }
            }
        }
        offset += len;
    }
    out.mid_frame = decoder.is_mid_frame();
    out
}

/// The wire decoders of messages and handshake fields: whatever one of them
/// accepts must re-encode to exactly the same bytes (one encoding per
/// value), and an accepted message must be valid and fit a padded frame.
pub fn message(data: &[u8]) {
    if let Ok(msg) = Message::decode(data) {
        assert_eq!(
            msg.encode(),
            data,
            "message encoding is not canonical: {msg:?}"
        );
        assert!(
            msg.validate().is_ok(),
            "decoded message fails validation: {msg:?}"
        );
        let padded = message::pad(data);
        assert!(
            padded.is_some(),
            "decoded message does not fit the largest bucket"
        );
        if let Some(p) = padded {
            assert_eq!(message::unpad(&p), Ok(data), "padding does not round-trip");
        }
    }
    if let Ok(body) = message::unpad(data) {
        assert_eq!(
            message::pad(body).as_deref(),
            Some(data),
            "padding is not canonical"
        );
    }
    if let Ok(reason) = RefuseReason::decode(data) {
        let mut again = Vec::new();
        reason.encode(&mut again);
        assert_eq!(
            again, data,
            "refuse reason encoding is not canonical: {reason:?}"
        );
    }
    if let Ok((header, header_bytes, noise)) = HelloHeader::decode(data) {
        assert_eq!(
            header.encode(),
            header_bytes,
            "hello header encoding is not canonical"
        );
        assert_eq!(header_bytes.len() + noise.len(), data.len());
    }
    if let Ok(proof) = IdentityProof::from_bytes(data) {
        assert_eq!(
            proof.to_bytes().as_slice(),
            data,
            "identity proof encoding is not canonical"
        );
    }
}

/// Bob's intake fed `data` as the bytes from a stranger.
pub fn intake_responder(data: &[u8]) {
    run_responder(Purpose::Intake, data);
}

/// Bob's endpoint fed `data` as the bytes from a contact.
pub fn endpoint_responder(data: &[u8]) {
    run_responder(Purpose::Endpoint, data);
}

/// Alice dialling Bob's intake, fed `data` as Bob's bytes.
pub fn intake_initiator(data: &[u8]) {
    run_initiator(Purpose::Intake, data);
}

/// Alice dialling Bob's endpoint, fed `data` as Bob's bytes.
pub fn endpoint_initiator(data: &[u8]) {
    run_initiator(Purpose::Endpoint, data);
}

/// Runs [`responder_session`] on `data` and returns every event it raised.
pub fn run_responder(purpose: Purpose, data: &[u8]) -> Vec<Event> {
    let now = Instant::now();
    let run = Run::new(responder_session(purpose, now), purpose, false, now);
    run.feed(data)
}

/// Runs [`initiator_session`] on `data` and returns every event it raised.
pub fn run_initiator(purpose: Purpose, data: &[u8]) -> Vec<Event> {
    let now = Instant::now();
    let mut run = Run::new(initiator_session(purpose, now), purpose, true, now);
    run.pump(); // the hello
    run.feed(data)
}

/// One session under test, with everything it has said.
struct Run {
    session: Session,
    purpose: Purpose,
    initiator: bool,
    now: Instant,
    replay: ReplayCache,
    events: Vec<Event>,
    written: Vec<u8>,
}

impl Run {
    fn new(session: Session, purpose: Purpose, initiator: bool, now: Instant) -> Self {
        Run {
            session,
            purpose,
            initiator,
            now,
            replay: ReplayCache::default(),
            events: Vec::new(),
            written: Vec::new(),
        }
    }

    /// Feeds `data` in data-derived pieces. Until the handshake is done a
    /// piece never spans two frames: an honest peer waits for our answer
    /// between handshake frames, and the responder must be able to admit a
    /// hello before the next frame arrives. Then ends the session in a
    /// data-derived way and checks everything it did.
    fn feed(mut self, data: &[u8]) -> Vec<Event> {
        let mut split = Splitter::new(data);
        let mut rest = data;
        while !rest.is_empty() {
            let region = if self.session.is_established() || self.session.is_closed() {
                rest.len()
            } else {
                match rest {
                    [hi, lo, ..] => {
                        (2 + usize::from(u16::from_be_bytes([*hi, *lo]))).min(rest.len())
                    }
                    _ => rest.len(),
                }
            };
            let (mut region, tail) = rest.split_at(region);
            rest = tail;
            while !region.is_empty() {
                let (piece, tail) = region.split_at(split.piece_len().clamp(1, region.len()));
                region = tail;
                let was_closed = self.session.is_closed();
                let result = self.session.handle_bytes(self.now, piece);
                if let Err(e) = &result {
                    assert!(
                        self.session.is_closed(),
                        "session still open after the error {e:?}"
                    );
                }
                if was_closed {
                    assert!(result.is_ok(), "a closed session must ignore input");
                    assert!(
                        self.session.poll_event().is_none(),
                        "a closed session raised an event"
                    );
                }
                self.pump();
            }
        }

        // However it ends, it ends once.
        match split.next_u64() % 3 {
            0 => self.session.handle_eof(),
            1 => self.session.close(self.now, CloseReason::Normal),
            _ => self
                .session
                .handle_timeout(self.now + Duration::from_secs(3600)),
        }
        self.pump();
        assert!(
            self.session.is_closed(),
            "session still open after it was ended"
        );
        assert_eq!(
            self.session.send(self.now, Message::Keepalive),
            Err(ProtocolError::Closed)
        );
        assert_eq!(
            self.session.poll_timeout(),
            None,
            "a closed session still wants a timer"
        );
        self.check_events();
        self.check_written();
        self.events
    }

    /// Collects output and events, admitting a hello the way Bob would.
    fn pump(&mut self) {
        while let Some(ev) = self.session.poll_event() {
            if let Event::Admission(hello) = &ev {
                assert!(!self.initiator, "an initiator was asked to admit");
                if admit(&mut self.session, hello, self.now, &mut self.replay).is_err() {
                    assert!(
                        self.session.is_closed(),
                        "session still open after a failed admission"
                    );
                }
            }
            self.events.push(ev);
        }
        if let Some(bytes) = self.session.poll_transmit() {
            self.written.extend_from_slice(&bytes);
        }
        let closed = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::Closed(_)))
            .count();
        assert_eq!(
            self.session.is_closed(),
            closed == 1,
            "closed state and Closed events disagree"
        );
    }

    /// The order and content of events: at most one admission (responders
    /// only, first), at most one establishment naming the right peer,
    /// messages only once established and valid, and exactly one Closed,
    /// last.
    fn check_events(&self) {
        let (a, b) = (alice(), bob());
        let closed = self.index_of(|e| matches!(e, Event::Closed(_)));
        let last = self.events.len().saturating_sub(1);
        assert!(
            closed == [last],
            "Closed must come exactly once, last: {:?}",
            self.events
        );
        let admissions = self.index_of(|e| matches!(e, Event::Admission(_)));
        if self.initiator {
            assert!(admissions.is_empty());
        } else {
            assert!(
                admissions.len() <= 1 && admissions.iter().all(|i| *i == 0),
                "{:?}",
                self.events
            );
        }
        let established = self.index_of(|e| matches!(e, Event::Established { .. }));
        assert!(
            established.len() <= 1,
            "established twice: {:?}",
            self.events
        );
        let first_message = self
            .index_of(|e| matches!(e, Event::Message(_)))
            .first()
            .copied();
        if let Some(m) = first_message {
            assert!(
                established.first().is_some_and(|e| *e < m),
                "message before the handshake finished"
            );
        }
        for ev in &self.events {
            match ev {
                Event::Established {
                    peer, peer_static, ..
                } => {
                    if self.initiator {
                        // We dialled Bob: only Bob can have answered.
                        let expected = match self.purpose {
                            Purpose::Intake => b.identity.onion_id(),
                            Purpose::Endpoint => b.endpoint,
                        };
                        assert_eq!(*peer, expected, "established with someone we did not dial");
                        assert_eq!(
                            *peer_static,
                            b.static_key.public(),
                            "Bob's static key was not his"
                        );
                    } else {
                        let claimed = self.events.iter().find_map(|e| match e {
                            Event::Admission(h) => Some(h.claimed),
                            _ => None,
                        });
                        assert_eq!(
                            Some(*peer),
                            claimed,
                            "established with someone other than claimed"
                        );
                        if self.purpose == Purpose::Endpoint || *peer == a.identity.onion_id() {
                            // Only Alice is admitted at the endpoint, and
                            // only Alice can prove her identity anywhere.
                            assert_eq!(
                                *peer,
                                a.identity.onion_id(),
                                "endpoint admitted a stranger"
                            );
                            assert_eq!(
                                *peer_static,
                                a.static_key.public(),
                                "Alice's static key was not hers"
                            );
                        }
                    }
                }
                Event::Message(m) => {
                    assert!(m.validate().is_ok(), "delivered an invalid message: {m:?}")
                }
                Event::Closed(CloseCause::Error(ProtocolError::Noise(e))) => {
                    panic!("an internal Noise error surfaced: {e}")
                }
                _ => {}
            }
        }
    }

    fn index_of(&self, pred: impl Fn(&Event) -> bool) -> Vec<usize> {
        self.events
            .iter()
            .enumerate()
            .filter(|(_, e)| pred(e))
            .map(|(i, _)| i)
            .collect()
    }

    /// Everything the session wrote is whole, well-formed frames.
    fn check_written(&self) {
        let mut decoder = FrameDecoder::default();
        let mut input = &self.written[..];
        loop {
            match decoder.next_frame(&mut input, FRAME_MAX) {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => panic!("the session wrote a malformed frame: {e}"),
            }
        }
        assert!(!decoder.is_mid_frame(), "the session wrote half a frame");
    }
}

/// Data-derived piece sizes: an FNV-1a hash of the input seeds a splitmix64
/// sequence, and picks one of four ways to cut (whole, byte by byte, small
/// pieces, larger pieces).
struct Splitter {
    state: u64,
    mode: u64,
}

impl Splitter {
    fn new(data: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in data {
            h = (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        Splitter {
            state: h,
            mode: h >> 62,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn piece_len(&mut self) -> usize {
        let r = usize::try_from(self.next_u64() & 0xffff).unwrap_or(1);
        match self.mode {
            0 => usize::MAX,
            1 => 1,
            2 => 1 + r % 16,
            _ => 1 + r % 1024,
        }
    }
}
