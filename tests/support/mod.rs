//! Peers on the in-memory network, and waiting for what they report.
#![allow(dead_code)]

use std::time::Duration;

use allium::engine::{ContactSummary, Engine, EngineConfig, EngineHandle, Event, MemoryStore};
use allium_onion::{MemoryNetwork, MemoryTransport};
use allium_protocol::{OnionId, SessionConfig};
use allium_vault::{ContactId, Profile, ProfileKeys, Secret32};
use rand_core::{OsRng, RngCore};

/// Upper bound for anything to happen: only a failing test waits this long.
pub const PATIENCE: Duration = Duration::from_secs(60);

pub fn keys() -> ProfileKeys {
    let k = || {
        let mut b = [0u8; 32];
        OsRng.fill_bytes(&mut b);
        Secret32(b)
    };
    ProfileKeys {
        intake_seed: k(),
        endpoint_seed: k(),
        static_secret: k(),
    }
}

pub fn config() -> EngineConfig {
    EngineConfig {
        session: SessionConfig::default(),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        requests_per_minute: 6000,
        receipt_delay: Duration::from_millis(100),
        ..EngineConfig::default()
    }
}

/// One running profile. Its events are forwarded into [`Peer::events`] as
/// they come, so a test that looks at them only now and then never holds
/// the engine back (the engine stops taking input while its own bounded
/// event queue is full); [`Peer::pause_reading`] makes it a reader that
/// stopped.
pub struct Peer {
    pub events: tokio::sync::mpsc::UnboundedReceiver<Event>,
    paused: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub net: MemoryNetwork,
    pub transport: MemoryTransport,
    pub store: MemoryStore,
    pub engine: Engine,
    pub config: EngineConfig,
    /// Every event seen so far, in order.
    pub seen: Vec<Event>,
    /// How long each save takes (kept across restarts).
    pub save_delay: Duration,
}

impl Peer {
    pub fn start(net: &MemoryNetwork) -> Peer {
        Self::start_with(net, Profile::new(keys()), config())
    }

    pub fn start_with(net: &MemoryNetwork, profile: Profile, config: EngineConfig) -> Peer {
        let store = MemoryStore::with(profile.clone());
        Self::start_on(net, profile, config, store.clone(), Box::new(store))
    }

    /// The engine saving to `saves`; `store` is what the test looks at
    /// (the same store, or an empty one when nothing is saved).
    fn start_on(
        net: &MemoryNetwork,
        profile: Profile,
        config: EngineConfig,
        store: MemoryStore,
        saves: Box<dyn allium::engine::ProfileSaver>,
    ) -> Peer {
        let transport = net.node();
        let mut engine = Engine::start(transport.clone(), profile, saves, config.clone(), None);
        let (events, paused) = forward(&mut engine);
        Peer {
            events,
            paused,
            net: net.clone(),
            transport,
            store,
            engine,
            config,
            seen: Vec::new(),
            save_delay: Duration::ZERO,
        }
    }

    /// A peer in an amnesic session: its engine saves nowhere
    /// (`NoStore`); `store` stays empty.
    pub fn start_amnesic(net: &MemoryNetwork) -> Peer {
        let saves = Box::new(allium::engine::NoStore);
        Self::start_on(
            net,
            Profile::new(keys()),
            config(),
            MemoryStore::default(),
            saves,
        )
    }

    /// Stops (or resumes) reading the engine's events, like a window that
    /// hangs or a JSON-RPC client that stops reading.
    pub fn pause_reading(&self, paused: bool) {
        self.paused
            .store(paused, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn h(&self) -> &EngineHandle {
        &self.engine.handle
    }

    pub fn address(&self) -> String {
        self.engine.address.to_address()
    }

    pub fn id(&self) -> OnionId {
        self.engine.address
    }

    /// Waits for an event matching `f` (looking at unseen events first).
    pub async fn wait<F: FnMut(&Event) -> bool>(&mut self, what: &str, mut f: F) -> Event {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(e)) => {
                    self.seen.push(e.clone());
                    if f(&e) {
                        return e;
                    }
                }
                Ok(None) => panic!("engine stopped while waiting for {what}"),
                Err(_) => panic!("timed out waiting for {what}"),
            }
        }
    }

    /// Drains events without waiting.
    pub fn drain(&mut self) {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
    }

    /// Stops the engine (like quitting) and starts it again from what it
    /// saved, with a fresh event stream.
    pub async fn restart(&mut self) {
        let _ = self.engine.handle.shutdown().await;
        let saved = self.store.saved().expect("a saved profile");
        self.kill_and_restart_from(saved).await;
    }

    /// Simulates a crash: the engine dies at once, and starts again from
    /// whatever its store held at that moment.
    /// Returns what it restarted from.
    pub async fn crash(&mut self) -> Profile {
        self.engine.task.abort();
        if !self.engine.task.is_finished() {
            let _ = (&mut self.engine.task).await;
        }
        // What a real crash leaves: every save completed before it.
        let saved = self.store.saved().expect("a saved profile");
        self.kill_and_restart_from(saved.clone()).await;
        saved
    }

    /// Quits cleanly and stays offline until [`Peer::come_back`].
    pub async fn go_offline(&mut self) -> allium_vault::Profile {
        let _ = self.engine.handle.shutdown().await;
        let _ = (&mut self.engine.task).await;
        self.store.saved().expect("a saved profile")
    }

    /// Starts again from `saved` after [`Peer::go_offline`].
    pub async fn come_back(&mut self, saved: Profile) {
        self.kill_and_restart_from(saved).await;
    }

    /// Drops the engine without a clean shutdown, then starts from `saved`.
    pub async fn kill_and_restart_from(&mut self, saved: Profile) {
        self.engine.task.abort();
        if !self.engine.task.is_finished() {
            let _ = (&mut self.engine.task).await;
        }
        // Let the aborted tasks drop their services.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let fresh = Peer::start_with(&self.net, saved, self.config.clone());
        fresh.store.set_delay(self.save_delay);
        self.store = fresh.store;
        self.engine = fresh.engine;
        self.events = fresh.events;
        self.paused = fresh.paused;
        self.transport = fresh.transport;
    }
}

fn forward(
    engine: &mut Engine,
) -> (
    tokio::sync::mpsc::UnboundedReceiver<Event>,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut from = std::mem::replace(&mut engine.events, tokio::sync::mpsc::channel(1).1);
    let p = paused.clone();
    tokio::spawn(async move {
        loop {
            if p.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
            match from.recv().await {
                Some(e) => {
                    if tx.send(e).is_err() {
                        return;
                    }
                }
                None => return,
            }
        }
    });
    (rx, paused)
}

pub async fn wait_online(p: &mut Peer, c: ContactId) {
    let online = p
        .h()
        .contacts()
        .await
        .expect("contacts")
        .iter()
        .any(|s| s.id == c && s.online);
    if !online {
        p.wait(
            "presence online",
            |e| matches!(e, Event::Presence { contact, online: true } if *contact == c),
        )
        .await;
    }
}

/// The next contact request `p` receives.
pub async fn next_request(p: &mut Peer) -> ContactSummary {
    let ev = p
        .wait("request", |e| matches!(e, Event::RequestReceived { .. }))
        .await;
    let Event::RequestReceived { contact } = ev else {
        unreachable!()
    };
    contact
}

/// `a` adds `b`'s address with `greeting` (suggesting the name "b") and `b`
/// receives the request. Returns (b's id at a, the request at b).
pub async fn ask(a: &mut Peer, b: &mut Peer, greeting: &str) -> (ContactId, ContactSummary) {
    let b_at_a = a
        .h()
        .add_contact(&b.address(), "b", greeting)
        .await
        .expect("add");
    let contact = next_request(b).await;
    assert_eq!(contact.greeting, greeting);
    (b_at_a, contact)
}

/// Makes `a` and `b` contacts the way people do: a adds b's address, b
/// accepts. Returns (b's id at a, a's id at b).
pub async fn befriend(a: &mut Peer, b: &mut Peer) -> (ContactId, ContactId) {
    let (b_at_a, contact) = ask(a, b, "hello, it is a").await;
    b.h().accept(contact.id, Some("a")).await.expect("accept");
    a.wait(
        "accepted",
        |e| matches!(e, Event::RequestAccepted { contact } if *contact == b_at_a),
    )
    .await;
    wait_online(a, b_at_a).await;
    wait_online(b, contact.id).await;
    (b_at_a, contact.id)
}

impl Peer {
    /// Makes this peer's saves slow, now and after restarts.
    pub fn set_save_delay(&mut self, d: Duration) {
        self.save_delay = d;
        self.store.set_delay(d);
    }

    /// This peer's endpoint id (for faults on dials to it).
    pub fn endpoint(&self) -> OnionId {
        let saved = self.store.saved().expect("saved");
        allium_protocol::IdentityKey::from_seed(&saved.keys.endpoint_seed.0).onion_id()
    }
}
