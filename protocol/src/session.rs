//! The per-connection state machine, in the style of `quinn-proto`: bytes
//! in (`handle_bytes`), commands (`send`, `close`, `admit_*`), output polled
//! (`poll_transmit`, `poll_event`, `poll_timeout`). Time is passed in and
//! randomness is drawn from the caller's RNG once, at construction. It owns
//! one connection's handshake, encryption, padding and timers; it never
//! touches a socket, a clock or a global RNG.
//!
//! ```text
//!  initiator                                   responder
//!  HELLO(header ‖ noise msg 1) ───────────────▶ admit? ─▶ (REFUSE)
//!                 ◀──────────── HANDSHAKE(noise msg 2)
//!  [intake] HANDSHAKE(noise msg 3) ───────────▶
//!  TRANSPORT(padded message) ◀═══════════════▶ TRANSPORT
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::address::OnionId;
use crate::error::{CloseCause, ProtocolError};
use crate::frame::{
    FRAME_MAX, Frame, FrameDecoder, FrameType, HANDSHAKE_FRAME_MAX, HelloHeader, Purpose,
    write_frame,
};
use crate::identity::{IdentityKey, IdentityProof, StaticKeypair, StaticPublicKey};
use crate::message::{self, CloseReason, MAX_MESSAGE, Message, RefuseReason};
use crate::noise::{NoiseHandshake, TAG_LEN, noise_internal, prologue};
use crate::replay::ReplayCache;
use crate::{HISTORY_VERSION, SUPPORTED_VERSIONS};

/// Timers of a session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// From creation until the handshake completes. Tor circuits are slow,
    /// so this is generous; it also bounds a stranger's unauthenticated
    /// connection.
    pub handshake_timeout: Duration,
    /// Nothing received for this long closes the session.
    pub idle_timeout: Duration,
    /// Nothing sent for this long sends a keepalive.
    pub keepalive_interval: Duration,
    /// The versions an initiator offers, preferred first, and those a
    /// responder accepts: strictly decreasing, each one supported.
    /// Normally [`SUPPORTED_VERSIONS`]; for an initiator whose peer
    /// refused them, the highest common one (§4.3); `[2]` plays an older
    /// build in tests.
    pub versions: Vec<u8>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            handshake_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(40),
            keepalive_interval: Duration::from_secs(10),
            versions: SUPPORTED_VERSIONS.to_vec(),
        }
    }
}

/// Our keys, as a session needs them.
#[derive(Clone)]
pub struct LocalIdentity {
    /// The contact identity: the intake onion key. It signs our identity
    /// proof, and it is the id we claim when we dial.
    pub identity: IdentityKey,
    /// Our endpoint's onion id (the endpoint key signs nothing here).
    pub endpoint: OnionId,
    /// Our Noise static key.
    pub static_key: StaticKeypair,
}

/// What a responder learns from a hello, before it decides to go on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    /// Intake or endpoint.
    pub purpose: Purpose,
    /// The onion id the initiator claims (not yet proven at this point).
    pub claimed: OnionId,
    /// The initiator's static key (endpoint handshakes only; authenticated
    /// by Noise but not yet matched to `claimed`).
    pub static_key: Option<StaticPublicKey>,
}

/// Output of a session for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// Responder only: a hello arrived. Call [`Session::admit_stranger`],
    /// [`Session::admit_contact`] or [`Session::refuse`].
    Admission(PeerHello),
    /// The handshake finished: `peer` is proven.
    Established {
        /// Who the peer is. A responder learns the initiator's contact
        /// identity (its intake id, proven by an identity proof at the intake
        /// or by the static key on file at the endpoint). An initiator gets
        /// the onion id it dialled (the intake id, proven by the responder's
        /// proof; or the endpoint id, authenticated by Tor and by the
        /// contact's static key).
        peer: OnionId,
        /// The peer's Noise static key.
        peer_static: StaticPublicKey,
        /// The protocol version both sides now speak (§4.2).
        version: u8,
    },
    /// A message from the peer.
    Message(Message),
    /// The session is over; no other event follows.
    Closed(CloseCause),
}

/// Largest early message, padded: the 1,024-byte bucket, so that the hello
/// stays under the handshake frame cap.
const EARLY_PADDED_MAX: usize = 1024;
/// Messages that can wait for the handshake before `send` refuses more.
const MAX_PENDING: usize = 256;

enum State {
    /// Initiator, hello not yet written (written at the first poll so that a
    /// message sent before can ride it).
    InitiatorStart {
        handshake: NoiseHandshake,
        header: Vec<u8>,
    },
    /// Initiator, waiting for the responder's handshake message.
    AwaitResponse { handshake: NoiseHandshake },
    /// Responder, waiting for the hello.
    AwaitHello,
    /// Responder, hello read, waiting for the application to admit.
    AwaitAdmission {
        handshake: NoiseHandshake,
        hello: PeerHello,
        ephemeral: [u8; 32],
        early: Option<Message>,
    },
    /// Intake responder, waiting for the third handshake message.
    AwaitFinal {
        handshake: NoiseHandshake,
        claimed: OnionId,
    },
    /// Handshake done.
    Established {
        transport: Box<snow::TransportState>,
    },
    /// Over.
    Closed,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            State::InitiatorStart { .. } => "starting",
            State::AwaitResponse { .. } => "waiting for the responder",
            State::AwaitHello => "waiting for a hello",
            State::AwaitAdmission { .. } => "waiting for admission",
            State::AwaitFinal { .. } => "waiting for the last handshake message",
            State::Established { .. } => "established",
            State::Closed => "closed",
        }
    }
}

/// Decodes a message as a peer speaking `version` may send it: HISTORY
/// is an unknown type below version 3, as it is to a version-2 decoder.
fn decode_in(version: u8, body: &[u8]) -> Result<Message, ProtocolError> {
    Ok(Message::decode_for(version, body)?)
}

/// One connection, from hello to close.
pub struct Session {
    config: SessionConfig,
    local: LocalIdentity,
    purpose: Purpose,
    initiator: bool,
    /// Initiator: the id we dialled. Responder: the service that accepted.
    service: OnionId,
    state: State,
    decoder: FrameDecoder,
    outgoing: Vec<u8>,
    events: VecDeque<Event>,
    pending: VecDeque<Message>,
    peer: Option<(OnionId, StaticPublicKey)>,
    handshake_deadline: Instant,
    last_received: Instant,
    last_sent: Instant,
    /// The responder's Noise RNG seed until the hello arrives.
    rng_seed: Option<Zeroizing<[u8; 32]>>,
    /// The protocol version: the initiator's first offer, which the
    /// responder takes or refuses (0 until the hello is read).
    version: u8,
}

impl Session {
    /// Dials a stranger's intake (`intake` is the address the person typed)
    /// to send a contact request. Noise XX.
    pub fn connect_intake(
        config: SessionConfig,
        local: &LocalIdentity,
        intake: OnionId,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, ProtocolError> {
        let me = local.identity.onion_id();
        Self::connect(config, local, me, Purpose::Intake, intake, None, now, rng)
    }

    /// Dials a contact's endpoint. `contact_static` is the static key the
    /// contact proved at the intake handshake. Noise IK: the first message
    /// sent before the first `poll_transmit` rides the hello.
    pub fn connect_endpoint(
        config: SessionConfig,
        local: &LocalIdentity,
        endpoint: OnionId,
        contact_static: StaticPublicKey,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, ProtocolError> {
        let me = local.identity.onion_id();
        Self::connect(
            config,
            local,
            me,
            Purpose::Endpoint,
            endpoint,
            Some(contact_static),
            now,
            rng,
        )
    }

    /// `claimed` is always our own id outside of tests, which use it to
    /// play an initiator that lies about who it is.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect(
        config: SessionConfig,
        local: &LocalIdentity,
        claimed: OnionId,
        purpose: Purpose,
        target: OnionId,
        remote_static: Option<StaticPublicKey>,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, ProtocolError> {
        if target == local.identity.onion_id() || target == local.endpoint {
            return Err(ProtocolError::Reflected);
        }
        let offered = &config.versions;
        let valid = !offered.is_empty()
            && offered.len() <= crate::MAX_VERSIONS
            && offered.windows(2).all(|w| w[0] > w[1])
            && offered.iter().all(|v| SUPPORTED_VERSIONS.contains(v));
        if !valid {
            return Err(ProtocolError::WrongState(
                "the offered versions must be supported ones, strictly decreasing",
            ));
        }
        let version = offered[0];
        let header = HelloHeader {
            versions: offered.clone(),
            purpose,
            responder: target,
            initiator: claimed,
        }
        .encode();
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        let handshake = NoiseHandshake::new(
            purpose,
            true,
            &local.static_key,
            remote_static.as_ref(),
            &prologue(&header),
            &seed,
        );
        let mut s = Self::new(config, local, purpose, true, target, now);
        s.version = version;
        s.state = State::InitiatorStart {
            handshake: handshake?,
            header,
        };
        Ok(s)
    }

    /// Accepts a connection at our intake (`local.identity` is the intake).
    pub fn accept_intake(
        config: SessionConfig,
        local: &LocalIdentity,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        let service = local.identity.onion_id();
        Self::accept(config, local, Purpose::Intake, service, now, rng)
    }

    /// Accepts a connection at our endpoint (`local.endpoint`).
    pub fn accept_endpoint(
        config: SessionConfig,
        local: &LocalIdentity,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        let service = local.endpoint;
        Self::accept(config, local, Purpose::Endpoint, service, now, rng)
    }

    pub(crate) fn accept(
        config: SessionConfig,
        local: &LocalIdentity,
        purpose: Purpose,
        service: OnionId,
        now: Instant,
        rng: &mut impl CryptoRngCore,
    ) -> Self {
        let mut s = Self::new(config, local, purpose, false, service, now);
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(seed.as_mut());
        s.rng_seed = Some(seed);
        s
    }

    fn new(
        config: SessionConfig,
        local: &LocalIdentity,
        purpose: Purpose,
        initiator: bool,
        service: OnionId,
        now: Instant,
    ) -> Self {
        Session {
            handshake_deadline: now + config.handshake_timeout,
            config,
            local: local.clone(),
            purpose,
            initiator,
            service,
            state: State::AwaitHello,
            decoder: FrameDecoder::default(),
            outgoing: Vec::new(),
            events: VecDeque::new(),
            pending: VecDeque::new(),
            peer: None,
            last_received: now,
            last_sent: now,
            rng_seed: None,
            version: 0,
        }
    }

    // ---- getters ----

    /// Intake or endpoint.
    pub fn purpose(&self) -> Purpose {
        self.purpose
    }

    /// The protocol version of this session (§4.2): what a message may
    /// carry depends on it.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Whether we dialled.
    pub fn is_initiator(&self) -> bool {
        self.initiator
    }

    /// The proven peer, once established.
    pub fn peer(&self) -> Option<(OnionId, StaticPublicKey)> {
        self.peer
    }

    /// Whether the handshake is done and the session open.
    pub fn is_established(&self) -> bool {
        matches!(self.state, State::Established { .. })
    }

    /// Whether the session is over (flush `poll_transmit`, then close the
    /// stream).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    // ---- input ----

    /// Feeds bytes received from the stream, in any split. On error the
    /// session is closed (a final frame may still be waiting in
    /// `poll_transmit`), and a [`Event::Closed`] is queued.
    pub fn handle_bytes(&mut self, now: Instant, mut input: &[u8]) -> Result<(), ProtocolError> {
        if self.is_closed() {
            return Ok(());
        }
        if !input.is_empty() {
            self.last_received = now;
        }
        while !input.is_empty() && !self.is_closed() {
            let max = if self.is_established() {
                FRAME_MAX
            } else {
                HANDSHAKE_FRAME_MAX
            };
            let frame = match self.decoder.next_frame(&mut input, max) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(self.fail(e)),
            };
            if let Err(e) = self.handle_frame(now, frame) {
                return Err(self.fail(e));
            }
        }
        Ok(())
    }

    /// The stream ended (EOF or reset). Closes the session; unless the
    /// peer had closed it properly, reports [`ProtocolError::UnexpectedEof`].
    pub fn handle_eof(&mut self) {
        if !self.is_closed() {
            let mid_frame = self.decoder.is_mid_frame();
            self.fail(ProtocolError::UnexpectedEof { mid_frame });
        }
    }

    fn handle_frame(&mut self, now: Instant, frame: Frame) -> Result<(), ProtocolError> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match (state, frame.kind) {
            (State::AwaitHello, FrameType::Hello) => self.on_hello(&frame.body),
            (State::AwaitResponse { handshake }, FrameType::Handshake) => {
                self.on_response(now, handshake, &frame.body)
            }
            (State::AwaitResponse { .. }, FrameType::Refuse) => {
                let reason = RefuseReason::decode(&frame.body).map_err(ProtocolError::Message)?;
                self.events
                    .push_back(Event::Closed(CloseCause::Refused(reason.clone())));
                Err(ProtocolError::Refused(reason))
            }
            (State::AwaitFinal { handshake, claimed }, FrameType::Handshake) => {
                self.on_final(now, handshake, claimed, &frame.body)
            }
            (State::Established { transport }, FrameType::Transport) => {
                self.state = State::Established { transport };
                self.on_transport(&frame.body)
            }
            (state, kind) => {
                let err = ProtocolError::UnexpectedFrame {
                    frame: kind.name(),
                    state: state.name(),
                };
                self.state = state;
                Err(err)
            }
        }
    }

    fn on_hello(&mut self, body: &[u8]) -> Result<(), ProtocolError> {
        let (hello, header_bytes, noise) = HelloHeader::decode(body)?;
        let preferred = hello.versions.first().copied().unwrap_or(0);
        // Only supported versions, at most eight, in order: a misconfigured
        // list must not make a REFUSE the peer cannot decode.
        let mut ours: Vec<u8> = self
            .config
            .versions
            .iter()
            .copied()
            .filter(|v| SUPPORTED_VERSIONS.contains(v))
            .collect();
        ours.sort_unstable_by(|a, b| b.cmp(a));
        ours.dedup();
        ours.truncate(crate::MAX_VERSIONS);
        if ours.is_empty() {
            ours = SUPPORTED_VERSIONS.to_vec();
        }
        if !ours.contains(&preferred) {
            self.refuse_frame(&RefuseReason::UnsupportedVersion(ours.clone()));
            return Err(ProtocolError::UnsupportedVersion {
                offered: hello.versions,
                supported: ours,
            });
        }
        self.version = preferred;
        if hello.purpose != self.purpose {
            self.refuse_frame(&RefuseReason::WrongDomain);
            return Err(ProtocolError::WrongDomain(hello.purpose.name()));
        }
        if hello.responder != self.service {
            self.refuse_frame(&RefuseReason::WrongDestination);
            return Err(ProtocolError::WrongDestination);
        }
        if hello.initiator == self.local.identity.onion_id()
            || hello.initiator == self.local.endpoint
        {
            return Err(ProtocolError::Reflected);
        }
        let Some(seed) = self.rng_seed.take() else {
            return Err(ProtocolError::WrongState("hello already handled"));
        };
        let mut handshake = NoiseHandshake::new(
            self.purpose,
            false,
            &self.local.static_key,
            None,
            &prologue(header_bytes),
            &seed,
        )?;
        let payload = handshake.read(noise)?;
        let ephemeral: [u8; 32] = noise.get(..32).and_then(|e| e.try_into().ok()).ok_or(
            ProtocolError::MalformedHandshake("handshake message too short"),
        )?;
        let (static_key, early) = match self.purpose {
            Purpose::Intake => {
                if !payload.is_empty() {
                    return Err(ProtocolError::MalformedHandshake(
                        "payload in the first intake message",
                    ));
                }
                (None, None)
            }
            Purpose::Endpoint => {
                let rs = self.checked_remote_static(&handshake)?;
                let early = if payload.is_empty() {
                    None
                } else {
                    let body = message::unpad(&payload)?;
                    Some(decode_in(self.version, body)?)
                };
                (Some(rs), early)
            }
        };
        let hello = PeerHello {
            purpose: self.purpose,
            claimed: hello.initiator,
            static_key,
        };
        self.events.push_back(Event::Admission(hello.clone()));
        self.state = State::AwaitAdmission {
            handshake,
            hello,
            ephemeral,
            early,
        };
        Ok(())
    }

    fn checked_remote_static(
        &self,
        handshake: &NoiseHandshake,
    ) -> Result<StaticPublicKey, ProtocolError> {
        let rs = handshake
            .remote_static()
            .ok_or(ProtocolError::Noise("no remote static key".into()))?;
        let rs = StaticPublicKey::from_peer(rs)?;
        if rs == self.local.static_key.public() {
            return Err(ProtocolError::Reflected);
        }
        Ok(rs)
    }

    /// Admits a stranger at the intake after its hello (the application
    /// may first look at the claimed id, for example to drop a blocked
    /// requester with [`Session::refuse`]). Checks the replay cache.
    pub fn admit_stranger(
        &mut self,
        now: Instant,
        replay: &mut ReplayCache,
    ) -> Result<(), ProtocolError> {
        if self.purpose != Purpose::Intake {
            return Err(ProtocolError::WrongState(
                "admit_stranger is for the intake",
            ));
        }
        self.admit(now, replay, None)
    }

    /// Admits a contact at the endpoint. `known_static` is the static key on
    /// file for the claimed contact; the initiator's must equal it.
    pub fn admit_contact(
        &mut self,
        now: Instant,
        replay: &mut ReplayCache,
        known_static: StaticPublicKey,
    ) -> Result<(), ProtocolError> {
        if self.purpose != Purpose::Endpoint {
            return Err(ProtocolError::WrongState(
                "admit_contact is for the endpoint",
            ));
        }
        self.admit(now, replay, Some(known_static))
    }

    fn admit(
        &mut self,
        now: Instant,
        replay: &mut ReplayCache,
        known_static: Option<StaticPublicKey>,
    ) -> Result<(), ProtocolError> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::AwaitAdmission {
            mut handshake,
            hello,
            ephemeral,
            early,
        } = state
        else {
            self.state = state;
            return Err(ProtocolError::WrongState(
                "no hello is waiting for admission",
            ));
        };
        let result = (|| {
            // The static key first: a hello claiming a contact with the
            // wrong key must leave no trace in the replay cache, or a
            // repeat of it would be answered differently from a hello
            // claiming a stranger (which the application refuses outright).
            if self.purpose == Purpose::Endpoint && hello.static_key != known_static {
                return Err(ProtocolError::IdentityMismatch);
            }
            replay.check_and_insert(now, &ephemeral)?;
            match self.purpose {
                Purpose::Intake => {
                    let proof = self.local.identity.prove(&self.local.static_key.public());
                    let msg = handshake.write(&proof.to_bytes())?;
                    self.push_frame(now, FrameType::Handshake, &msg);
                    self.state = State::AwaitFinal {
                        handshake,
                        claimed: hello.claimed,
                    };
                }
                Purpose::Endpoint => {
                    let rs = hello
                        .static_key
                        .ok_or(ProtocolError::WrongState("no static key"))?;
                    if Some(rs) != known_static {
                        return Err(ProtocolError::IdentityMismatch);
                    }
                    let msg = handshake.write(&[])?;
                    self.push_frame(now, FrameType::Handshake, &msg);
                    let transport = handshake.into_transport()?;
                    self.establish(now, transport, hello.claimed, rs);
                    if let Some(m) = early {
                        self.deliver(m);
                    }
                }
            }
            Ok(())
        })();
        result.map_err(|e| {
            if e == ProtocolError::IdentityMismatch {
                self.refuse_frame(&RefuseReason::NotAuthorized);
            }
            self.fail(e)
        })
    }

    /// Refuses a hello waiting for admission (blocked requester, unknown
    /// contact, too busy). With `None` the connection is closed without a
    /// word, which tells a stranger nothing (PROTOCOL.md §7.7).
    pub fn refuse(&mut self, reason: Option<RefuseReason>) {
        if matches!(self.state, State::AwaitAdmission { .. }) {
            if let Some(r) = &reason {
                self.refuse_frame(r);
            }
            self.state = State::Closed;
            self.events
                .push_back(Event::Closed(CloseCause::RefusedByUs(reason)));
        }
    }

    fn on_response(
        &mut self,
        now: Instant,
        mut handshake: NoiseHandshake,
        body: &[u8],
    ) -> Result<(), ProtocolError> {
        let payload = handshake.read(body)?;
        let rs = self.checked_remote_static(&handshake)?;
        match self.purpose {
            Purpose::Intake => {
                // The responder must prove the identity we dialled.
                IdentityProof::from_bytes(&payload)?.verify(&self.service, &rs)?;
                let proof = self.local.identity.prove(&self.local.static_key.public());
                let msg = handshake.write(&proof.to_bytes())?;
                self.push_frame(now, FrameType::Handshake, &msg);
            }
            Purpose::Endpoint => {
                if !payload.is_empty() {
                    return Err(ProtocolError::MalformedHandshake(
                        "payload in the endpoint response",
                    ));
                }
            }
        }
        let transport = handshake.into_transport()?;
        self.establish(now, transport, self.service, rs);
        Ok(())
    }

    fn on_final(
        &mut self,
        now: Instant,
        mut handshake: NoiseHandshake,
        claimed: OnionId,
        body: &[u8],
    ) -> Result<(), ProtocolError> {
        let payload = handshake.read_final(body)?;
        let rs = self.checked_remote_static(&handshake)?;
        IdentityProof::from_bytes(&payload)?.verify(&claimed, &rs)?;
        let transport = handshake.into_transport()?;
        self.establish(now, transport, claimed, rs);
        Ok(())
    }

    fn establish(
        &mut self,
        now: Instant,
        transport: snow::TransportState,
        peer: OnionId,
        rs: StaticPublicKey,
    ) {
        self.state = State::Established {
            transport: Box::new(transport),
        };
        self.peer = Some((peer, rs));
        self.last_received = now;
        self.events.push_back(Event::Established {
            peer,
            peer_static: rs,
            version: self.version,
        });
        while let Some(m) = self.pending.pop_front() {
            if let Err(e) = self.encrypt_and_queue(now, &m) {
                self.fail(e);
                return;
            }
        }
    }

    fn on_transport(&mut self, body: &[u8]) -> Result<(), ProtocolError> {
        let State::Established { transport } = &mut self.state else {
            return Err(ProtocolError::WrongState("not established"));
        };
        let mut plain = vec![0u8; body.len()];
        let n = transport
            .read_message(body, &mut plain)
            .map_err(|_| ProtocolError::DecryptFailed)?;
        let msg = decode_in(self.version, message::unpad(&plain[..n])?)?;
        self.deliver(msg);
        Ok(())
    }

    fn deliver(&mut self, msg: Message) {
        match msg {
            Message::Keepalive => {}
            Message::Close(reason) => {
                self.state = State::Closed;
                self.events
                    .push_back(Event::Closed(CloseCause::Peer(reason)));
            }
            other => self.events.push_back(Event::Message(other)),
        }
    }

    // ---- commands ----

    /// Queues a message. Before the handshake completes it waits (an
    /// endpoint initiator's first message rides the hello if it is small).
    pub fn send(&mut self, now: Instant, msg: Message) -> Result<(), ProtocolError> {
        msg.validate().map_err(ProtocolError::InvalidOutgoing)?;
        if matches!(msg, Message::History { .. }) && self.version < HISTORY_VERSION {
            return Err(ProtocolError::WrongState(
                "HISTORY needs protocol version 3 on both sides",
            ));
        }
        match self.state {
            State::Closed => Err(ProtocolError::Closed),
            State::Established { .. } => self.encrypt_and_queue(now, &msg),
            _ if msg.encode().len() > MAX_MESSAGE => Err(ProtocolError::MessageTooLarge {
                len: msg.encode().len(),
                max: MAX_MESSAGE,
            }),
            _ if self.pending.len() >= MAX_PENDING => Err(ProtocolError::WrongState(
                "too many messages waiting for the handshake",
            )),
            _ => {
                self.pending.push_back(msg);
                Ok(())
            }
        }
    }

    /// Closes the session, telling the peer why if the handshake is done.
    pub fn close(&mut self, now: Instant, reason: CloseReason) {
        if self.is_closed() {
            return;
        }
        if self.is_established() {
            // Failure to encrypt only means the peer will see the stream end.
            let _ = self.encrypt_and_queue(now, &Message::Close(reason));
        }
        self.state = State::Closed;
        self.events
            .push_back(Event::Closed(CloseCause::Local(reason)));
    }

    /// Runs the timers; call when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() {
            return;
        }
        if !self.is_established() {
            if now >= self.handshake_deadline {
                self.fail(ProtocolError::HandshakeTimeout);
            }
            return;
        }
        if now >= self.last_received + self.config.idle_timeout {
            let _ = self.encrypt_and_queue(now, &Message::Close(CloseReason::IdleTimeout));
            self.state = State::Closed;
            self.events
                .push_back(Event::Closed(CloseCause::Error(ProtocolError::IdleTimeout)));
            return;
        }
        if now >= self.last_sent + self.config.keepalive_interval
            && let Err(e) = self.encrypt_and_queue(now, &Message::Keepalive)
        {
            self.fail(e);
        }
    }

    // ---- output ----

    /// Bytes to write to the stream, if any.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if matches!(self.state, State::InitiatorStart { .. })
            && let Err(e) = self.write_hello()
        {
            self.fail(e);
        }
        if self.outgoing.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.outgoing))
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Closed => None,
            State::Established { .. } => Some(std::cmp::min(
                self.last_received + self.config.idle_timeout,
                self.last_sent + self.config.keepalive_interval,
            )),
            _ => Some(self.handshake_deadline),
        }
    }

    // ---- internals ----

    fn write_hello(&mut self) -> Result<(), ProtocolError> {
        let state = std::mem::replace(&mut self.state, State::Closed);
        let State::InitiatorStart {
            mut handshake,
            header,
        } = state
        else {
            self.state = state;
            return Ok(());
        };
        // Only an endpoint initiator's first message rides the hello, and
        // only if it is small (PROTOCOL.md §4.6).
        let mut early = Vec::new();
        if self.purpose == Purpose::Endpoint
            && let Some(padded) = self.pending.front().and_then(message::encode_padded)
            && padded.len() <= EARLY_PADDED_MAX
        {
            self.pending.pop_front();
            early = padded;
        }
        let msg = handshake.write(&early)?;
        let mut body = header;
        body.extend_from_slice(&msg);
        let now = self.last_sent;
        self.push_frame(now, FrameType::Hello, &body);
        self.state = State::AwaitResponse { handshake };
        Ok(())
    }

    /// Encodes, pads and encrypts straight into the outgoing buffer.
    fn encrypt_and_queue(&mut self, now: Instant, msg: &Message) -> Result<(), ProtocolError> {
        let State::Established { transport } = &mut self.state else {
            return Err(ProtocolError::Closed);
        };
        let padded = message::encode_padded(msg).ok_or_else(|| ProtocolError::MessageTooLarge {
            len: msg.encode().len(),
            max: MAX_MESSAGE,
        })?;
        let start = self.outgoing.len();
        self.outgoing.resize(start + 3 + padded.len() + TAG_LEN, 0);
        let n = transport
            .write_message(&padded, &mut self.outgoing[start + 3..])
            .map_err(noise_internal);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                self.outgoing.truncate(start);
                return Err(e);
            }
        };
        // n + 1 ≤ 65,521: the largest bucket plus tag and type byte.
        let len = u16::try_from(n + 1).unwrap_or(u16::MAX);
        self.outgoing[start..start + 2].copy_from_slice(&len.to_be_bytes());
        self.outgoing[start + 2] = FrameType::Transport as u8;
        self.outgoing.truncate(start + 3 + n);
        self.last_sent = now;
        Ok(())
    }

    fn push_frame(&mut self, now: Instant, kind: FrameType, body: &[u8]) {
        write_frame(&mut self.outgoing, kind, body);
        self.last_sent = now;
    }

    fn refuse_frame(&mut self, reason: &RefuseReason) {
        let mut body = Vec::new();
        reason.encode(&mut body);
        write_frame(&mut self.outgoing, FrameType::Refuse, &body);
    }

    /// Closes on an error: tells an established peer, queues the event, and
    /// hands the error back for the caller to return.
    fn fail(&mut self, e: ProtocolError) -> ProtocolError {
        if self.is_established() {
            let now = self.last_sent;
            let _ = self.encrypt_and_queue(now, &Message::Close(CloseReason::ProtocolViolation));
        }
        if !matches!(self.events.back(), Some(Event::Closed(_))) {
            self.events
                .push_back(Event::Closed(CloseCause::Error(e.clone())));
        }
        self.state = State::Closed;
        e
    }
}

#[cfg(test)]
mod tests {
    //! Peers that lie about who they are, which the public API cannot build.
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn identity(seed: u8) -> LocalIdentity {
        let mut r = ChaCha20Rng::from_seed([seed; 32]);
        LocalIdentity {
            identity: IdentityKey::generate(&mut r),
            endpoint: IdentityKey::generate(&mut r).onion_id(),
            static_key: StaticKeypair::generate(&mut r),
        }
    }

    /// Moves bytes both ways until quiet, admitting strangers; returns the
    /// errors of (initiator, responder).
    fn run(
        a: &mut Session,
        b: &mut Session,
        now: Instant,
    ) -> (Vec<ProtocolError>, Vec<ProtocolError>) {
        let (mut ea, mut eb) = (Vec::new(), Vec::new());
        let mut replay = ReplayCache::default();
        for _ in 0..10 {
            if let Some(x) = a.poll_transmit()
                && let Err(e) = b.handle_bytes(now, &x)
            {
                eb.push(e);
            }
            while let Some(ev) = b.poll_event() {
                if let Event::Admission(_) = ev
                    && let Err(e) = b.admit_stranger(now, &mut replay)
                {
                    eb.push(e);
                }
            }
            if let Some(x) = b.poll_transmit()
                && let Err(e) = a.handle_bytes(now, &x)
            {
                ea.push(e);
            }
        }
        (ea, eb)
    }

    #[test]
    fn responder_proving_another_identity_is_rejected() {
        let (a, x, y) = (identity(1), identity(2), identity(3));
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([9; 32]);
        let mut init = Session::connect_intake(
            SessionConfig::default(),
            &a,
            x.identity.onion_id(),
            now,
            &mut rng,
        )
        .expect("connect");
        // y answers at x's address (it accepts hellos for x) but can only
        // prove y.
        let mut resp = Session::accept(
            SessionConfig::default(),
            &y,
            Purpose::Intake,
            x.identity.onion_id(),
            now,
            &mut rng,
        );
        let (ea, _) = run(&mut init, &mut resp, now);
        assert_eq!(ea, vec![ProtocolError::IdentityMismatch]);
    }

    #[test]
    fn initiator_claiming_another_identity_is_rejected() {
        let (a, b, victim) = (identity(4), identity(5), identity(6));
        let now = Instant::now();
        let mut rng = ChaCha20Rng::from_seed([8; 32]);
        let mut init = Session::connect(
            SessionConfig::default(),
            &a,
            victim.identity.onion_id(),
            Purpose::Intake,
            b.identity.onion_id(),
            None,
            now,
            &mut rng,
        )
        .expect("connect");
        let mut resp = Session::accept_intake(SessionConfig::default(), &b, now, &mut rng);
        let (_, eb) = run(&mut init, &mut resp, now);
        assert_eq!(eb, vec![ProtocolError::IdentityMismatch]);
    }
}
