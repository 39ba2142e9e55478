//! The hostile-peer harness: a test peer that speaks the real protocol
//! (`allium-protocol` sessions) over the in-memory network against a real
//! engine, and can send any message in any order, any number of times,
//! stop reading, or go silent at any point. Every finding of the outside
//! review has a test written with it (`tests/hostile_peers.rs`); the next
//! reviewer's attacks belong there too.
//!
//! It never goes through the engine's own code for what it sends: what a
//! hostile peer can do is what the wire allows.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use allium_onion::{ClientKey, Connection, MemoryNetwork, ServiceHandle, Transport};
use allium_protocol::fuzz_harness::claiming_intake_initiator;
use allium_protocol::{
    CloseCause, ContactRequest, DiscoveryKey, Event as SessionEvent, IdentityKey, LocalIdentity,
    Message, OnionId, ReplayCache, Session, SessionConfig, StaticKeypair, StaticPublicKey,
};
use rand_core::{OsRng, RngCore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{PATIENCE, Peer};

/// A peer under the test's full control.
pub struct Hostile {
    pub net: MemoryNetwork,
    pub local: LocalIdentity,
    pub endpoint_key: IdentityKey,
    /// The discovery key we hand the target in our request, for our
    /// endpoint.
    pub our_discovery: DiscoveryKey,
    endpoint: Option<ServiceHandle>,
    intake: Option<ServiceHandle>,
    /// The target's static key, once an intake handshake proved it.
    pub target_static: Option<StaticPublicKey>,
    /// The target's endpoint and the discovery key for it, once its
    /// CONTACT_ACCEPT came.
    pub target_endpoint: Option<(OnionId, DiscoveryKey)>,
}

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

impl Hostile {
    /// Fresh keys: a stranger nobody has heard of.
    pub fn new(net: &MemoryNetwork) -> Hostile {
        let endpoint_key = IdentityKey::from_seed(&random32());
        Hostile {
            net: net.clone(),
            local: LocalIdentity {
                identity: IdentityKey::from_seed(&random32()),
                endpoint: endpoint_key.onion_id(),
                static_key: StaticKeypair::from_secret(&random32()),
            },
            endpoint_key,
            our_discovery: DiscoveryKey(random32()),
            endpoint: None,
            intake: None,
            target_static: None,
            target_endpoint: None,
        }
    }

    /// Our intake id (the id we claim, and can prove).
    pub fn id(&self) -> OnionId {
        self.local.identity.onion_id()
    }

    /// A stream to `target` that we do nothing with yet.
    pub async fn stream(&self, target: OnionId, key: Option<&DiscoveryKey>) -> Connection {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match self.net.node().dial(target, key).await {
                Ok(c) => return c,
                Err(e) => {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "could not reach the target: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }

    /// An intake session to `target`, not yet started.
    pub async fn intake(&self, target: OnionId) -> Raw {
        let session = Session::connect_intake(
            SessionConfig::default(),
            &self.local,
            target,
            Instant::now(),
            &mut OsRng,
        )
        .expect("session");
        Raw::new(session, self.stream(target, None).await)
    }

    /// An intake session whose hello claims `claimed` (whose key we do not
    /// hold): it gets as far as the hello's answer, never past the proof.
    pub async fn intake_claiming(&self, target: OnionId, claimed: OnionId) -> Raw {
        let session =
            claiming_intake_initiator(&self.local, claimed, target, Instant::now(), &mut OsRng)
                .expect("session");
        Raw::new(session, self.stream(target, None).await)
    }

    /// The request our [`Hostile::intake`] sends: names our endpoint and the
    /// discovery key for it.
    pub fn request(&self, greeting: &str) -> Message {
        Message::ContactRequest(ContactRequest {
            nickname: "h".into(),
            greeting: greeting.into(),
            endpoint: self.local.endpoint,
            discovery_key: DiscoveryKey(self.our_discovery.0),
        })
    }

    /// Publishes our endpoint (authorizing our own discovery key), so that
    /// an engine that accepts us can dial it.
    pub async fn publish_endpoint(&mut self) {
        let keys: BTreeSet<ClientKey> = [ClientKey::from_secret(&self.our_discovery)].into();
        let handle = self
            .net
            .node()
            .publish_endpoint(&self.endpoint_key, keys)
            .await
            .expect("publish");
        self.endpoint = Some(handle);
    }

    /// Becomes a contact of `target` the way a real peer does (request,
    /// accept, the engine dials our endpoint with CONTACT_ACCEPT), and
    /// returns the engine's id for us and the endpoint session it opened,
    /// established, with the CONTACT_ACCEPT read and confirmed.
    pub async fn become_contact(&mut self, target: &mut Peer) -> (allium_vault::ContactId, Raw) {
        self.publish_endpoint().await;
        let mut intake = self.intake(target.id()).await;
        intake.queue(self.request("let me in"));
        let their_static = intake.handshake().await.expect("intake handshake");
        self.target_static = Some(their_static);
        intake.closed(PATIENCE).await;
        let request = crate::support::next_request(target).await;
        target
            .h()
            .accept(request.id, Some("hostile"))
            .await
            .expect("accept");
        let mut session = self.accept_endpoint(their_static).await;
        match session.next_message(PATIENCE).await {
            Some(Message::ContactAccept(a)) => {
                self.target_endpoint = Some((a.endpoint, a.discovery_key));
            }
            other => panic!("expected CONTACT_ACCEPT first, got {other:?}"),
        }
        match session.next_message(PATIENCE).await {
            Some(Message::Sync { .. }) => {}
            other => panic!("expected SYNC next, got {other:?}"),
        }
        // Where we stand: nothing sent, nothing received.
        session
            .send(Message::Sync {
                resend_from: 1,
                last: 0,
            })
            .await;
        crate::support::wait_online(target, request.id).await;
        (request.id, session)
    }

    /// The bytes of a hello to the target's endpoint, as a contact sends it
    /// (IK, with a SYNC as its early message), written on a new stream;
    /// returns the stream and the bytes, for replaying them.
    pub async fn endpoint_hello(&self) -> (Connection, Vec<u8>) {
        let (endpoint, key) = self.target_endpoint.as_ref().expect("accepted");
        let peer_static = self.target_static.expect("proved at the intake");
        let mut session = self.endpoint_session(*endpoint, peer_static);
        let hello = session.poll_transmit().expect("a hello");
        let mut stream = self.stream(*endpoint, Some(key)).await;
        stream.write_all(&hello).await.expect("write");
        (stream, hello)
    }

    /// A session that dials `endpoint` (IK, expecting `peer_static`), its
    /// SYNC queued as the early message, as a contact's first message.
    fn endpoint_session(&self, endpoint: OnionId, peer_static: StaticPublicKey) -> Session {
        let mut session = Session::connect_endpoint(
            SessionConfig::default(),
            &self.local,
            endpoint,
            peer_static,
            Instant::now(),
            &mut OsRng,
        )
        .expect("session");
        session
            .send(
                Instant::now(),
                Message::Sync {
                    resend_from: 1,
                    last: 0,
                },
            )
            .expect("sync");
        session
    }

    /// An endpoint session to `endpoint` (IK, expecting `peer_static`),
    /// with a SYNC as its early message, as a contact opens one; the
    /// handshake driven to its end.
    pub async fn dial_endpoint(
        &self,
        endpoint: OnionId,
        peer_static: StaticPublicKey,
        key: &DiscoveryKey,
    ) -> Raw {
        let session = self.endpoint_session(endpoint, peer_static);
        let mut raw = Raw::new(session, self.stream(endpoint, Some(key)).await);
        raw.handshake().await.expect("admitted");
        raw
    }

    /// Publishes our intake, so that an engine can send us a request.
    pub async fn publish_intake(&mut self) {
        let handle = self
            .net
            .node()
            .publish_intake(&self.local.identity)
            .await
            .expect("publish");
        self.intake = Some(handle);
    }

    /// The next connection to our intake, admitted as a stranger, its
    /// handshake done: the session and the requester's static key.
    pub async fn accept_intake(&mut self) -> (Raw, StaticPublicKey) {
        let intake = self.intake.as_mut().expect("intake published");
        let stream = tokio::time::timeout(PATIENCE, intake.accept())
            .await
            .expect("the target dialled our intake")
            .expect("incoming");
        let session = Session::accept_intake(
            SessionConfig::default(),
            &self.local,
            Instant::now(),
            &mut OsRng,
        );
        let mut raw = Raw::new(session, stream);
        raw.admit_stranger = true;
        let their_static = raw.handshake().await.expect("intake handshake");
        (raw, their_static)
    }

    /// The next connection to our endpoint, admitted if it is the peer
    /// whose static key is `peer_static`.
    pub async fn accept_endpoint(&mut self, peer_static: StaticPublicKey) -> Raw {
        let endpoint = self.endpoint.as_mut().expect("endpoint published");
        let stream = tokio::time::timeout(PATIENCE, endpoint.accept())
            .await
            .expect("the target dialled our endpoint")
            .expect("incoming");
        let session = Session::accept_endpoint(
            SessionConfig::default(),
            &self.local,
            Instant::now(),
            &mut OsRng,
        );
        let mut raw = Raw::new(session, stream);
        raw.admit_as = Some(peer_static);
        raw.handshake().await.expect("endpoint handshake");
        raw
    }
}

/// One session driven by hand.
pub struct Raw {
    pub session: Session,
    pub stream: Connection,
    buf: Vec<u8>,
    /// Responder: the static key a hello must carry to be admitted.
    admit_as: Option<StaticPublicKey>,
    /// Responder at an intake: admit whoever proves an id.
    admit_stranger: bool,
    replay: ReplayCache,
    /// Messages that arrived while we waited for something else.
    inbox: std::collections::VecDeque<Message>,
    /// The last HISTORY the engine sent (version 3 sends one after its
    /// SYNC); kept aside so that tests read the conversation in order.
    pub peer_history: Option<bool>,
    closed: Option<CloseCause>,
    /// The handshake ended while [`Raw::hello_answered`] read (our last
    /// message not yet sent).
    answered: Option<StaticPublicKey>,
}

impl Raw {
    pub fn new(session: Session, stream: Connection) -> Raw {
        Raw {
            session,
            stream,
            buf: vec![0u8; 70_000],
            admit_as: None,
            admit_stranger: false,
            replay: ReplayCache::default(),
            inbox: Default::default(),
            peer_history: None,
            closed: None,
            answered: None,
        }
    }

    /// Queues a message without writing it yet (before the handshake, it
    /// waits for it).
    pub fn queue(&mut self, m: Message) {
        self.session.send(Instant::now(), m).expect("send");
    }

    /// Writes everything the session has to send.
    pub async fn flush(&mut self) -> bool {
        while let Some(t) = self.session.poll_transmit() {
            if self.stream.write_all(&t).await.is_err() {
                return false;
            }
        }
        self.stream.flush().await.is_ok()
    }

    /// Sends one message now.
    pub async fn send(&mut self, m: Message) -> bool {
        self.queue(m);
        self.flush().await
    }

    fn take_events(&mut self) -> Option<StaticPublicKey> {
        let mut established = None;
        while let Some(ev) = self.session.poll_event() {
            match ev {
                SessionEvent::Admission(hello) => {
                    let now = Instant::now();
                    match (self.admit_as, hello.static_key) {
                        (Some(want), Some(got)) if want == got => {
                            let _ = self.session.admit_contact(now, &mut self.replay, want);
                        }
                        _ if self.admit_stranger => {
                            let _ = self.session.admit_stranger(now, &mut self.replay);
                        }
                        _ => self.session.refuse(None),
                    }
                }
                SessionEvent::Established { peer_static, .. } => established = Some(peer_static),
                SessionEvent::Message(Message::History { kept }) => {
                    self.peer_history = Some(kept);
                }
                SessionEvent::Message(m) => self.inbox.push_back(m),
                SessionEvent::Closed(c) => self.closed = Some(c),
                _ => {}
            }
        }
        established
    }

    /// Reads once (up to `within`); false when the stream ended or the wait
    /// ran out.
    async fn read_once(&mut self, within: Duration) -> bool {
        match tokio::time::timeout(within, self.stream.read(&mut self.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => {
                self.session.handle_eof();
                false
            }
            Ok(Ok(n)) => {
                let _ = self.session.handle_bytes(Instant::now(), &self.buf[..n]);
                true
            }
            Err(_) => false,
        }
    }

    /// Drives the handshake to its end: the peer's static key, or why it
    /// closed.
    pub async fn handshake(&mut self) -> Result<StaticPublicKey, Option<CloseCause>> {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            self.flush().await;
            let established = self.take_events().or(self.answered.take());
            // What admitting the hello produced (message 2) goes out now.
            self.flush().await;
            if let Some(s) = established {
                return Ok(s);
            }
            if self.closed.is_some() || self.session.is_closed() {
                return Err(self.closed.clone());
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_once(left).await {
                self.take_events();
                return Err(self.closed.clone());
            }
        }
    }

    /// Sends the hello and reads until the peer has answered it, without
    /// sending what the answer calls for: the peer holds this connection
    /// one step past its hello. False if no answer came within `within`.
    pub async fn hello_answered(&mut self, within: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        self.flush().await;
        loop {
            if let Some(s) = self.take_events() {
                self.answered = Some(s);
                return true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_once(left).await {
                return false;
            }
        }
    }

    /// The next message from the peer within `within`, if any.
    pub async fn next_message(&mut self, within: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.take_events();
            if let Some(m) = self.inbox.pop_front() {
                return Some(m);
            }
            if self.closed.is_some() {
                return None;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() || !self.read_once(left).await {
                self.take_events();
                return self.inbox.pop_front();
            }
        }
    }

    /// The next CHAT from the peer within `within`, passing over anything
    /// else; `None` if none came.
    pub async fn next_chat(&mut self, within: Duration) -> Option<allium_protocol::Chat> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_message(left).await {
                Some(Message::Chat(c)) => return Some(c),
                Some(_) if !left.is_zero() => continue,
                _ => return None,
            }
        }
    }

    /// Reads until the session closes (within `within`); why it closed.
    pub async fn closed(&mut self, within: Duration) -> Option<CloseCause> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            self.take_events();
            self.inbox.clear();
            if self.closed.is_some() {
                return self.closed.clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return None;
            }
            if !self.read_once(left).await {
                self.take_events();
                return self.closed.clone();
            }
        }
    }
}

/// Everything a stream delivers until it ends (or `within` passes), as
/// (frame type, frame length) pairs: the shape of an answer, which is all
/// an observer can compare when the bytes themselves are random.
pub async fn answer_shape(stream: &mut Connection, within: Duration) -> (Vec<(u8, usize)>, bool) {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    let ended = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let mut frames = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        frames.push((rest[2], len));
        rest = rest.get(2 + len..).unwrap_or_default();
    }
    (frames, ended)
}

/// This process's resident memory, in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}
