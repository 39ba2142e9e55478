//! A `Pair` driver in the manner of quinn-proto's: two sessions joined in
//! memory, with simulated time, delivery in any chunk size, and an
//! admission policy for the responder.
#![allow(dead_code)]

pub mod noise;
pub mod vector_file;

use std::time::{Duration, Instant};

use allium_protocol::{
    Event, IdentityKey, LocalIdentity, ReplayCache, Session, SessionConfig, StaticKeypair,
    StaticPublicKey,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A deterministic RNG; tests print the seed when they fail.
pub fn rng(seed: u8) -> ChaCha20Rng {
    ChaCha20Rng::from_seed([seed; 32])
}

/// A profile's keys, generated from a seed.
pub fn identity(seed: u8) -> LocalIdentity {
    let mut r = rng(seed);
    let identity = IdentityKey::generate(&mut r);
    let endpoint = IdentityKey::generate(&mut r).onion_id();
    let static_key = StaticKeypair::generate(&mut r);
    LocalIdentity {
        identity,
        endpoint,
        static_key,
    }
}

/// What the responder does on `Event::Admission`.
#[derive(Clone, Copy)]
pub enum Admit {
    Stranger,
    Contact(StaticPublicKey),
    Nobody,
}

pub struct Pair {
    pub initiator: Session,
    pub responder: Session,
    pub now: Instant,
    pub admit: Admit,
    pub replay: ReplayCache,
    pub init_events: Vec<Event>,
    pub resp_events: Vec<Event>,
    /// Bytes per delivery (usize::MAX: everything at once).
    pub chunk: usize,
    pub init_errors: Vec<allium_protocol::ProtocolError>,
    pub resp_errors: Vec<allium_protocol::ProtocolError>,
    /// Every transmission, in order: (from initiator?, bytes).
    pub wire: Vec<(bool, Vec<u8>)>,
}

impl Pair {
    pub fn intake(a: &LocalIdentity, b: &LocalIdentity) -> Self {
        let now = Instant::now();
        let initiator = Session::connect_intake(
            SessionConfig::default(),
            a,
            b.identity.onion_id(),
            now,
            &mut rng(100),
        )
        .expect("connect");
        let responder = Session::accept_intake(SessionConfig::default(), b, now, &mut rng(101));
        Self::new(initiator, responder, now, Admit::Stranger)
    }

    pub fn endpoint(a: &LocalIdentity, b: &LocalIdentity) -> Self {
        let now = Instant::now();
        let initiator = Session::connect_endpoint(
            SessionConfig::default(),
            a,
            b.endpoint,
            b.static_key.public(),
            now,
            &mut rng(102),
        )
        .expect("connect");
        let responder = Session::accept_endpoint(SessionConfig::default(), b, now, &mut rng(103));
        Self::new(
            initiator,
            responder,
            now,
            Admit::Contact(a.static_key.public()),
        )
    }

    pub fn new(initiator: Session, responder: Session, now: Instant, admit: Admit) -> Self {
        Pair {
            initiator,
            responder,
            now,
            admit,
            replay: ReplayCache::default(),
            init_events: Vec::new(),
            resp_events: Vec::new(),
            chunk: usize::MAX,
            init_errors: Vec::new(),
            resp_errors: Vec::new(),
            wire: Vec::new(),
        }
    }

    /// Runs until neither side has anything to send.
    pub fn drive(&mut self) {
        for _ in 0..1000 {
            let mut progress = false;
            if let Some(bytes) = self.initiator.poll_transmit() {
                progress = true;
                self.wire.push((true, bytes.clone()));
                for piece in bytes.chunks(self.chunk.min(bytes.len()).max(1)) {
                    if let Err(e) = self.responder.handle_bytes(self.now, piece) {
                        self.resp_errors.push(e);
                    }
                }
            }
            self.pump_responder_events();
            if let Some(bytes) = self.responder.poll_transmit() {
                progress = true;
                self.wire.push((false, bytes.clone()));
                for piece in bytes.chunks(self.chunk.min(bytes.len()).max(1)) {
                    if let Err(e) = self.initiator.handle_bytes(self.now, piece) {
                        self.init_errors.push(e);
                    }
                }
            }
            while let Some(e) = self.initiator.poll_event() {
                self.init_events.push(e);
            }
            if !progress {
                return;
            }
        }
        panic!("pair did not settle");
    }

    fn pump_responder_events(&mut self) {
        while let Some(e) = self.responder.poll_event() {
            if let Event::Admission(_) = &e {
                let result = match self.admit {
                    Admit::Stranger => self.responder.admit_stranger(self.now, &mut self.replay),
                    Admit::Contact(k) => {
                        self.responder.admit_contact(self.now, &mut self.replay, k)
                    }
                    Admit::Nobody => {
                        self.responder
                            .refuse(Some(allium_protocol::RefuseReason::NotAuthorized));
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    self.resp_errors.push(e);
                }
            }
            self.resp_events.push(e);
        }
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.initiator.handle_timeout(self.now);
        self.responder.handle_timeout(self.now);
        self.drive();
    }

    /// Messages each side received, in order.
    pub fn messages(events: &[Event]) -> Vec<allium_protocol::Message> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::Message(m) => Some(m.clone()),
                _ => None,
            })
            .collect()
    }
}
