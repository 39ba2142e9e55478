//! The workloads both bench targets time: `protocol.rs` through criterion,
//! `figures.rs` with a plain timer that prints JSON. Each Allium workload
//! has a bare twin built from the same primitives, so that a figure reads
//! as a ratio (allium / bare):
//!
//! * handshakes: a whole `Session` handshake (hello, admission, identity
//!   proofs, key checks, replay cache, framing) against a bare `snow`
//!   handshake of the same Noise pattern with empty payloads;
//! * seal + open: one message through `send` / `poll_transmit` /
//!   `handle_bytes` / `poll_event` of an established pair (encoding,
//!   padding, framing, Noise transport, decoding) against one
//!   ChaCha20-Poly1305 encryption and decryption of the same payload, and
//!   against one stock `snow` transport message of it.
//!
//! Everything random comes from ChaCha20 RNGs with fixed seeds, so two runs
//! do the same work.
//!
//! The bare handshakes need an RNG from `snow`, and our build of `snow`
//! has none (`use-getrandom` is off: it would pull a second `getrandom`
//! into the tree, and an OS RNG would make runs differ). [`BareResolver`]
//! therefore hands `snow` a seeded RNG and delegates DH, hash and cipher to
//! `snow`'s own `DefaultResolver`, i.e. stock `snow`.

#![allow(dead_code)] // each bench target uses a different part

use std::sync::Mutex;
use std::time::Instant;

use allium_protocol::message::{MAX_CHUNK, PADDING_BUCKETS};
use allium_protocol::noise::{ENDPOINT_PATTERN, INTAKE_PATTERN};
use allium_protocol::{
    Chat, Event, FileChunk, IdentityKey, LocalIdentity, Message, OnionId, ReplayCache, Session,
    SessionConfig, StaticKeypair, StaticPublicKey, TransferId,
};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{CryptoResolver, DefaultResolver};
use snow::types::{Cipher, Dh, Hash, Random};

/// Seed of the RNG that the sessions (and bare handshakes) draw from.
pub const SESSION_SEED: [u8; 32] = [0xA1; 32];
/// Seeds of the two profiles' keys.
pub const INITIATOR_SEED: u8 = 1;
pub const RESPONDER_SEED: u8 = 2;

/// The payload of the small seal + open case.
pub const SMALL_PAYLOAD: usize = 1024;
/// The payload of the large case: the largest chunk a `FileChunk` may carry
/// (63 KiB). With its 29-byte header and 2-byte length it fills the largest
/// padding bucket (65,504 bytes); a 64 KiB chunk does not fit a message.
pub const LARGE_PAYLOAD: usize = MAX_CHUNK;

/// A profile's keys, generated from a seed (as in the tests).
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

/// Puts glibc's allocator in the state a long-running process is in.
///
/// A sealed 63 KiB message goes through several fresh buffers of about
/// 64 KiB each. glibc's allocator gives memory at the top of the heap back
/// to the system (trims it) once more than `M_TRIM_THRESHOLD` (128 KiB at
/// start) is free there, so a young process frees and re-faults those
/// pages on every message: a `--quick` run of `figures` took 42,000 page
/// faults instead of 2,300, and the 63 KiB case lost a quarter of its
/// throughput (320 instead of 430-455 MiB/s). Freeing one chunk too big
/// for the heap (served by `mmap`) raises that threshold for good, which
/// almost every real process, and criterion itself, does early on; doing
/// it here makes both bench targets measure that steady state, whichever
/// runs first. With another allocator the call is merely useless.
pub fn settle_allocator() {
    drop(std::hint::black_box(vec![0u8; 8 << 20]));
}

/// Which handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// The intake: Noise XX, identity proofs both ways.
    Intake,
    /// The endpoint: Noise IK, the responder checks the key on file.
    Endpoint,
}

impl Pattern {
    pub fn noise_name(self) -> &'static str {
        match self {
            Pattern::Intake => INTAKE_PATTERN,
            Pattern::Endpoint => ENDPOINT_PATTERN,
        }
    }
}

/// Two profiles that shake hands over and over. The RNG is seeded once and
/// advances, so each handshake uses fresh ephemeral keys (as in life, and
/// as the replay cache requires) and a run is still reproducible.
pub struct Handshakes {
    a: LocalIdentity,
    b: LocalIdentity,
    b_intake: OnionId,
    b_endpoint: OnionId,
    a_static: StaticPublicKey,
    b_static: StaticPublicKey,
    rng: ChaCha20Rng,
    /// The responder's, shared by all its sessions as in the application.
    replay: ReplayCache,
    now: Instant,
}

impl Default for Handshakes {
    fn default() -> Self {
        let a = identity(INITIATOR_SEED);
        let b = identity(RESPONDER_SEED);
        Handshakes {
            b_intake: b.identity.onion_id(),
            b_endpoint: b.endpoint,
            a_static: a.static_key.public(),
            b_static: b.static_key.public(),
            a,
            b,
            rng: ChaCha20Rng::from_seed(SESSION_SEED),
            replay: ReplayCache::default(),
            now: Instant::now(),
        }
    }
}

impl Handshakes {
    /// One complete Allium handshake: both sessions built, driven in
    /// memory until both are established. Returns (initiator, responder).
    pub fn allium(&mut self, pattern: Pattern) -> (Session, Session) {
        let now = self.now;
        let config = SessionConfig::default();
        let (init, mut resp) = match pattern {
            Pattern::Intake => (
                Session::connect_intake(config.clone(), &self.a, self.b_intake, now, &mut self.rng),
                Session::accept_intake(config, &self.b, now, &mut self.rng),
            ),
            Pattern::Endpoint => (
                Session::connect_endpoint(
                    config.clone(),
                    &self.a,
                    self.b_endpoint,
                    self.b_static,
                    now,
                    &mut self.rng,
                ),
                Session::accept_endpoint(config, &self.b, now, &mut self.rng),
            ),
        };
        let mut init = init.expect("connect");
        let (replay, a_static) = (&mut self.replay, self.a_static);
        drive(&mut init, &mut resp, now, |resp| match pattern {
            Pattern::Intake => resp.admit_stranger(now, replay),
            Pattern::Endpoint => resp.admit_contact(now, replay, a_static),
        });
        (init, resp)
    }

    /// One complete bare `snow` handshake of the same pattern, with the
    /// same static keys and empty payloads, ending in transport mode.
    pub fn bare(&mut self, pattern: Pattern) -> (snow::TransportState, snow::TransportState) {
        let params: snow::params::NoiseParams = pattern.noise_name().parse().expect("pattern name");
        let mut init = snow::Builder::with_resolver(
            params.clone(),
            Box::new(BareResolver::new(&mut self.rng)),
        )
        .local_private_key(self.a.static_key.secret())
        .expect("initiator static key");
        if pattern == Pattern::Endpoint {
            init = init
                .remote_public_key(&self.b_static.0)
                .expect("responder static key");
        }
        let mut init = init.build_initiator().expect("initiator");
        let mut resp =
            snow::Builder::with_resolver(params, Box::new(BareResolver::new(&mut self.rng)))
                .local_private_key(self.b.static_key.secret())
                .expect("responder static key")
                .build_responder()
                .expect("responder");
        // The longest message with an empty payload is 96 bytes (XX's second).
        let mut wire = [0u8; 256];
        let mut payload = [0u8; 256];
        for _ in 0..3 {
            if init.is_handshake_finished() && resp.is_handshake_finished() {
                break;
            }
            let (writer, reader) = if init.is_my_turn() {
                (&mut init, &mut resp)
            } else {
                (&mut resp, &mut init)
            };
            let n = writer.write_message(&[], &mut wire).expect("write");
            reader.read_message(&wire[..n], &mut payload).expect("read");
        }
        (
            init.into_transport_mode().expect("initiator done"),
            resp.into_transport_mode().expect("responder done"),
        )
    }
}

/// Moves bytes both ways until neither side has more to send; the
/// responder is admitted by `admit` when its hello arrives. Panics unless
/// both sides end established without error.
fn drive(
    init: &mut Session,
    resp: &mut Session,
    now: Instant,
    mut admit: impl FnMut(&mut Session) -> Result<(), allium_protocol::ProtocolError>,
) {
    for _ in 0..8 {
        let mut progress = false;
        if let Some(bytes) = init.poll_transmit() {
            progress = true;
            resp.handle_bytes(now, &bytes).expect("responder reads");
        }
        while let Some(event) = resp.poll_event() {
            match event {
                Event::Admission(_) => admit(resp).expect("admitted"),
                Event::Established { .. } => {}
                other => panic!("responder: unexpected {other:?}"),
            }
        }
        if let Some(bytes) = resp.poll_transmit() {
            progress = true;
            init.handle_bytes(now, &bytes).expect("initiator reads");
        }
        while let Some(event) = init.poll_event() {
            match event {
                Event::Established { .. } => {}
                other => panic!("initiator: unexpected {other:?}"),
            }
        }
        if !progress {
            break;
        }
    }
    assert!(
        init.is_established() && resp.is_established(),
        "handshake did not finish"
    );
}

/// Stock `snow` crypto with a seeded RNG (see the module documentation).
struct BareResolver {
    rng: Mutex<Option<ChaCha20Rng>>,
}

impl BareResolver {
    fn new(rng: &mut ChaCha20Rng) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        BareResolver {
            rng: Mutex::new(Some(ChaCha20Rng::from_seed(seed))),
        }
    }
}

struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        self.0.fill_bytes(dest);
        Ok(())
    }
}

impl CryptoResolver for BareResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        let rng = self.rng.lock().ok()?.take()?;
        Some(Box::new(SeededRandom(rng)))
    }
    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

/// What travels in the seal + open workloads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Payload {
    /// `Message::FileChunk` with this many bytes of data.
    Chunk(usize),
    /// `Message::Chat` with this many bytes of (ASCII) text.
    Chat(usize),
}

impl Payload {
    /// Application bytes per message (what `Throughput::Bytes` counts).
    pub fn bytes(self) -> usize {
        match self {
            Payload::Chunk(n) | Payload::Chat(n) => n,
        }
    }
}

/// An established endpoint session pair; the initiator sends, the
/// responder receives. The received message is sent again next time, so a
/// round trip allocates only what the protocol itself allocates.
pub struct Link {
    sender: Session,
    receiver: Session,
    now: Instant,
    message: Option<Message>,
}

impl Link {
    pub fn new(payload: Payload) -> Self {
        let mut hs = Handshakes::default();
        let (sender, receiver) = hs.allium(Pattern::Endpoint);
        let mut rng = ChaCha20Rng::from_seed([0xB2; 32]);
        let message = match payload {
            Payload::Chunk(n) => {
                let mut data = vec![0u8; n];
                rng.fill_bytes(&mut data);
                Message::FileChunk(FileChunk {
                    transfer: TransferId([7; 16]),
                    offset: 0,
                    data,
                })
            }
            Payload::Chat(n) => {
                let text = (0..n)
                    .map(|_| char::from(b'a' + (rng.next_u32() % 26) as u8))
                    .collect();
                Message::Chat(Chat { id: 1, text })
            }
        };
        Link {
            sender,
            receiver,
            now: hs.now,
            message: Some(message),
        }
    }

    /// Bytes that are actually encrypted per message: the encoded message
    /// with its length, padded up to its bucket.
    pub fn padded_len(&self) -> usize {
        let need = self.message.as_ref().map_or(0, |m| m.encode().len() + 2);
        PADDING_BUCKETS
            .iter()
            .copied()
            .find(|b| *b >= need)
            .unwrap_or(0)
    }

    /// Seals one message on one side and opens it on the other.
    pub fn round_trip(&mut self) {
        let message = self
            .message
            .take()
            .expect("message back from the last trip");
        self.sender.send(self.now, message).expect("send");
        let bytes = self.sender.poll_transmit().expect("a transport frame");
        self.receiver
            .handle_bytes(self.now, &bytes)
            .expect("receive");
        match self.receiver.poll_event() {
            Some(Event::Message(m)) => self.message = Some(m),
            other => panic!("receiver: expected the message, got {other:?}"),
        }
    }
}

/// Stock `snow` transport mode (from a bare IK handshake): the payload as
/// one Noise transport message, written on one side and read on the other,
/// into buffers allocated once. Between the bare AEAD and a `Session`: it
/// adds `snow`'s own copy and its instance of the cipher, so the gap from
/// here to Allium is the protocol's framing, encoding and padding alone.
pub struct BareSnowTransport {
    sender: snow::TransportState,
    receiver: snow::TransportState,
    payload: Vec<u8>,
    wire: Vec<u8>,
    opened: Vec<u8>,
}

impl BareSnowTransport {
    pub fn new(payload: usize) -> Self {
        let (sender, receiver) = Handshakes::default().bare(Pattern::Endpoint);
        let mut rng = ChaCha20Rng::from_seed([0xD4; 32]);
        let mut data = vec![0u8; payload];
        rng.fill_bytes(&mut data);
        BareSnowTransport {
            sender,
            receiver,
            payload: data,
            wire: vec![0u8; 65535],
            opened: vec![0u8; 65535],
        }
    }

    /// Seals the payload on one side and opens it on the other.
    pub fn round_trip(&mut self) {
        let n = self
            .sender
            .write_message(&self.payload, &mut self.wire)
            .expect("seal");
        let m = self
            .receiver
            .read_message(&self.wire[..n], &mut self.opened)
            .expect("open");
        std::hint::black_box(&self.opened[..m]);
    }
}

/// The bare AEAD: one ChaCha20-Poly1305 key, Noise's nonce layout (four
/// zero bytes, then a little-endian counter), no associated data, in place.
pub struct BareAead {
    cipher: ChaCha20Poly1305,
    buffer: Vec<u8>,
    counter: u64,
}

impl BareAead {
    pub fn new(payload: usize) -> Self {
        let mut rng = ChaCha20Rng::from_seed([0xC3; 32]);
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let mut buffer = vec![0u8; payload];
        rng.fill_bytes(&mut buffer);
        BareAead {
            cipher: ChaCha20Poly1305::new(&key.into()),
            buffer,
            counter: 0,
        }
    }

    /// Encrypts the payload and decrypts it again.
    pub fn round_trip(&mut self) {
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&self.counter.to_le_bytes());
        self.counter += 1;
        let nonce = Nonce::from(nonce);
        let tag = self
            .cipher
            .encrypt_in_place_detached(&nonce, &[], &mut self.buffer)
            .expect("encrypt");
        std::hint::black_box(&mut self.buffer);
        self.cipher
            .decrypt_in_place_detached(&nonce, &[], &mut self.buffer, &tag)
            .expect("decrypt");
    }
}
