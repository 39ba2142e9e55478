//! The engine's state machine: owns the profile, the services' state and
//! the bookkeeping of every connection, and applies commands, session
//! events and the results of I/O one at a time, in
//! [`Core::handle`]. It never awaits, spawns, sleeps, reads the clock or
//! draws from the operating system's RNG: the time comes with each input
//! and the RNG is passed in, and what it wants done (dial, publish, save,
//! open a connection, run file work, tell the window) it queues as an
//! [`Effect`] for the shell (`shell.rs`) to carry out. So the same inputs
//! in the same order always give the same effects, which is what the
//! simulator (`sim/`) relies on.
//!
//! This file holds the core's state, its inputs and effects, the timers
//! and persistence; each concern's handlers are in their own file
//! (`services`, `commands`, `dials`, `conns`, `contacts`, `delivery`), and
//! the sub-states that own their data and rules are beside it
//! (`admission.rs`, `durability.rs`, `links.rs`, `files/`). The transfers
//! see the core only through the host it lends them for a call
//! (`transfers.rs`). It must never do I/O, read the clock or use an RNG it
//! was not given.
//!
//! Two things are shared with the connection tasks instead of coming back
//! as inputs, on purpose: each connection's [`SendQueue`] (byte counters
//! that the writer lowers as bytes leave; an input per write would cost a
//! message per frame and leave the core behind the truth, and the core
//! only reads them to decide whether bulk data may go), and the two replay
//! caches (a session checks and records a hello's key in the step that
//! admits it, inside its task, PROTOCOL.md §7.4). Both are plain data
//! behind a lock or atomics, with no I/O, and the simulator drives them
//! the same way.
//!
//! Two durability rules keep delivery exact across crashes (PROTOCOL.md
//! §6.3): a new message goes on the wire only once the outbox holding it is
//! saved (or an id could be reused after a crash), and a received message is
//! acknowledged only once the new `last` is saved (or a crash could make us
//! wait forever for an id the sender already dropped).

mod commands;
mod conns;
mod contacts;
mod delivery;
mod dials;
mod services;
mod transfers;

use commands::{Removal, trim_history};
use conns::{ConnInfo, ConnKind, queue_send};
use services::Slot;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admission::RequestGate;
use super::durability::{Durability, SaveReport};
use super::links::{Dial, Flow, Link};
use super::store::SaveError;
use allium_onion::{ClientKey, DialError, ServiceError};
use allium_protocol::flow::{self, Dialler};
use allium_protocol::text::TextField;
use allium_protocol::{
    Chat, CloseCause, CloseReason, ContactAccept, ContactRequest, DiscoveryKey,
    Event as SessionEvent, IdentityKey, LocalIdentity, Message, OnionId, Purpose, RefuseReason,
    ReplayCache, Session, StaticKeypair, StaticPublicKey,
};
use allium_vault::{
    BlockedName, Contact, ContactId, ContactState, Direction, HistoryEntry, Profile, Public32,
    QueuedMessage, Secret32,
};
use rand_core::{CryptoRngCore, RngCore};
use tokio::sync::oneshot;

use super::conn::{self, Admission, ConnEvent, ConnId, FromConn, SendQueue, ToConn};
use super::files::{FileDone, FileJob, Transfers};
use super::{
    Answer, BlockedView, Command, ContactSummary, DeliveryState, EngineConfig, EngineError, Event,
    MessageView, ServiceState, Settings, Status, normalize_address,
};

/// Kept history per contact; older lines are dropped.
const MAX_HISTORY: usize = 10_000;
/// Replay cache window (PROTOCOL.md §7.4); the size is
/// `EngineConfig::replay_keys`.
const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Spare discovery keys kept authorized on the endpoint (see
/// `Profile::spare_discovery_keys`).
const SPARE_KEYS: usize = 2;
/// Contacts one profile can have: the clients one endpoint descriptor can
/// authorize, less one kept for a spare key.
const MAX_CONTACTS: usize = allium_onion::MAX_AUTHORIZED_CLIENTS - 1;
/// How many responder steps (`step_timeout` each) a requester waits on the
/// intake for its request's receipt (PROTOCOL.md §8 step 2).
const RECEIPT_STEPS: u32 = 4;
/// How often the dial schedule and the timeouts are looked at when nothing
/// else happens.
pub(super) const TICK: Duration = Duration::from_millis(250);
/// How long a failed save waits before it is tried again.
const SAVE_RETRY: Duration = Duration::from_secs(2);
/// SYNC values past this are a protocol violation (PROTOCOL.md §6.3): no
/// conversation gets there, and ids near `u64::MAX` would overflow.
const MAX_SYNC_ID: u64 = 1 << 62;

/// The RNG the core draws every secret and every random choice from: the
/// operating system's in the app, a seeded one in the simulator.
pub(crate) type Rng = Box<dyn CryptoRngCore + Send>;

/// The time an input arrives: the monotonic clock for every timer, the
/// wall clock only for the times shown next to messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Now {
    pub(crate) at: Instant,
    pub(crate) unix: u64,
}

/// One of the profile's onion services. (Today one intake and one
/// endpoint; the slots are kept apart by this key so that more endpoints
/// can be added without touching the rest.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Service {
    Intake,
    Endpoint,
}

/// A stream the shell holds for the core (dialled, or accepted by a
/// service) until the core opens a session on it or lets it go.
pub(crate) type StreamId = u64;

/// What happened, handed to [`Core::handle`].
pub(crate) enum Input {
    /// A command from the window or the JSON-RPC interface.
    Command(Command),
    /// Nobody can send commands any more (every handle was dropped).
    RequestsClosed,
    /// Time passed ([`Core::poll_timeout`] was reached).
    Tick,
    Dialed {
        contact: ContactId,
        purpose: Purpose,
        result: Result<StreamId, DialError>,
    },
    Published {
        service: Service,
        generation: u64,
        result: Result<(), ServiceError>,
    },
    ServiceState {
        service: Service,
        generation: u64,
        state: ServiceState,
    },
    Incoming {
        service: Service,
        generation: u64,
        stream: StreamId,
    },
    Saved {
        generation: u64,
        result: Result<(), SaveError>,
    },
    /// File work finished (`files/`).
    File(FileDone),
    /// A connection task reported.
    Conn(FromConn),
}

/// What the core wants done, taken with [`Core::poll_effect`].
pub(crate) enum Effect {
    /// Tell whoever listens (the window, a JSON-RPC client).
    Event(Event),
    /// Write this snapshot of the profile; answer with [`Input::Saved`].
    Save {
        generation: u64,
        profile: Box<Profile>,
    },
    /// Launch the service under this key (dropping any earlier launch of
    /// it); answer with [`Input::Published`], then report its streams and
    /// its state under `generation`.
    Publish {
        service: Service,
        generation: u64,
        key: IdentityKey,
        authorized: BTreeSet<ClientKey>,
    },
    /// Take the service down.
    Stop(Service),
    /// Who may discover the running endpoint, from now on.
    Authorize(BTreeSet<ClientKey>),
    /// Open a stream to a contact's service; answer with [`Input::Dialed`].
    Dial {
        contact: ContactId,
        purpose: Purpose,
        target: OnionId,
        key: Option<DiscoveryKey>,
    },
    /// Run `session` over the stream, reporting as `conn`.
    Open {
        conn: ConnId,
        stream: StreamId,
        session: Box<Session>,
        replay: Arc<Mutex<ReplayCache>>,
        queue: SendQueue,
    },
    /// The stream is not wanted: close it.
    Discard(StreamId),
    /// Tell a connection task.
    Conn(ConnId, ToConn),
    /// Run blocking file work; answer with [`Input::File`].
    File(FileJob),
}

pub(crate) struct Core {
    pub(super) config: EngineConfig,
    pub(super) profile: Profile,
    pub(super) local: LocalIdentity,
    endpoint_key: IdentityKey,
    /// The time of the input being handled.
    pub(super) now: Instant,
    /// The wall clock at that time, in seconds since 1970.
    unix: u64,
    pub(super) rng: Rng,
    /// What the shell is to do, in order.
    pub(super) effects: VecDeque<Effect>,
    /// Ordered maps here and in `files/`: iterating them gives the same
    /// order every run, so the same inputs give the same effects (a
    /// `HashMap`'s order changes from one process to the next).
    pub(super) conns: BTreeMap<ConnId, ConnInfo>,
    next_conn: ConnId,
    pub(super) links: BTreeMap<ContactId, Link>,
    /// Separate replay caches, so that strangers flooding the intake
    /// cannot flush the endpoint's entries (review finding L4).
    intake_replay: Arc<Mutex<ReplayCache>>,
    endpoint_replay: Arc<Mutex<ReplayCache>>,
    intake: Slot,
    endpoint: Slot,
    /// Who may put a request into the profile (`admission.rs`).
    request_gate: RequestGate,
    /// When timeouts and stalled queues were last looked at.
    last_sweep: Instant,
    /// Nothing saved reaches a disk (`ProfileSaver::keeps_nothing`).
    keeps_nothing: bool,
    /// What is on disk, and what waits for it (`durability.rs`).
    disk: Durability,
    /// When a failed save is tried again.
    save_retry_at: Option<Instant>,
    pub(super) files: Transfers,
    /// Commands are no longer taken: the window or client went away.
    requests_closed: bool,
    shutting_down: Option<Answer<()>>,
}

fn onion(p: &Public32) -> Option<OnionId> {
    OnionId::from_bytes(p.0).ok()
}

fn client_key(secret: &Secret32) -> ClientKey {
    ClientKey::from_secret(&DiscoveryKey(secret.0))
}

fn text_error(e: allium_protocol::DecodeError) -> EngineError {
    EngineError::InvalidText(e)
}

impl Core {
    /// The core of one profile's engine, as it starts: nothing published,
    /// nothing dialled. `keeps_nothing`: what is saved reaches no disk (an
    /// amnesic session).
    pub(crate) fn new(
        profile: Profile,
        config: EngineConfig,
        keeps_nothing: bool,
        now: Now,
        rng: Rng,
    ) -> Self {
        let identity = IdentityKey::from_seed(&profile.keys.intake_seed.0);
        let endpoint_key = IdentityKey::from_seed(&profile.keys.endpoint_seed.0);
        let local = LocalIdentity {
            endpoint: endpoint_key.onion_id(),
            static_key: StaticKeypair::from_secret(&profile.keys.static_secret.0),
            identity,
        };
        let mut links = BTreeMap::new();
        // Where this run's ids start, unless an earlier run since the last
        // SYNC started lower: that boundary is kept with the contact, so a
        // restart between a restore and the next SYNC does not move it.
        let mut profile = profile;
        let mut boundary_moved = false;
        for c in &mut profile.contacts {
            if c.unsynced_from.is_none() {
                c.unsynced_from = Some(c.next_message_id);
                boundary_moved = true;
            }
        }
        for c in &profile.contacts {
            let upto = c.next_message_id.saturating_sub(1);
            links.insert(
                c.id,
                Link {
                    flow: Flow::loaded(upto, c.unsynced_from.unwrap_or(c.next_message_id)),
                    dial: Dial::new(config.backoff_initial, None),
                    ..Link::default()
                },
            );
        }
        let replay = || {
            Arc::new(Mutex::new(ReplayCache::new(
                config.replay_keys,
                REPLAY_WINDOW,
            )))
        };
        let (intake_replay, endpoint_replay) = (replay(), replay());
        Core {
            request_gate: RequestGate::new(config.requests_per_minute, now.at),
            last_sweep: now.at,
            now: now.at,
            unix: now.unix,
            rng,
            effects: VecDeque::new(),
            config,
            profile,
            local,
            endpoint_key,
            conns: BTreeMap::new(),
            next_conn: 1,
            links,
            intake_replay,
            endpoint_replay,
            intake: Slot::off(),
            endpoint: Slot::off(),
            keeps_nothing,
            disk: Durability::new(u64::from(boundary_moved)),
            save_retry_at: None,
            files: Transfers::default(),
            requests_closed: false,
            shutting_down: None,
        }
    }

    /// The profile's contact address.
    pub(crate) fn address(&self) -> OnionId {
        self.local.identity.onion_id()
    }

    /// Publishes the services and schedules the first dials.
    pub(crate) fn start(&mut self, now: Now) {
        self.set_now(now);
        self.top_up_spares();
        self.publish(Service::Endpoint);
        if self.profile.settings.intake_enabled {
            self.publish(Service::Intake);
        }
        for r in self.links.values_mut() {
            r.dial.soon(now.at);
        }
        self.after_input();
    }

    /// Handles one input. What it leads to is taken with
    /// [`Core::poll_effect`].
    pub(crate) fn handle(&mut self, now: Now, input: Input) {
        self.set_now(now);
        match input {
            Input::Command(c) => self.on_command(c),
            Input::RequestsClosed => {
                self.requests_closed = true;
                if self.shutting_down.is_none() {
                    self.begin_shutdown(None);
                }
            }
            Input::Tick => {}
            Input::Dialed {
                contact,
                purpose,
                result,
            } => self.on_dialed(contact, purpose, result),
            Input::Published {
                service,
                generation,
                result,
            } => self.on_published(service, generation, result),
            Input::ServiceState {
                service,
                generation,
                state,
            } => {
                if self.slot_mut(service).observe(generation, state) {
                    self.emit(Event::Service {
                        intake: service == Service::Intake,
                        state,
                    });
                }
            }
            Input::Incoming {
                service,
                generation,
                stream,
            } => self.on_incoming(service, generation, stream),
            Input::Saved { generation, result } => self.on_saved(generation, result),
            Input::File(done) => self.on_file_done(done),
            Input::Conn(ev) => self.on_conn_event(ev),
        }
        self.after_input();
    }

    /// The next thing to do, if any.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When [`Input::Tick`] is next due: the sweep, a save waiting for its
    /// interval or its retry, a service's relaunch, whichever is first.
    pub(crate) fn poll_timeout(&self) -> Instant {
        let mut at = self.last_sweep + TICK;
        if let Some(d) = self.disk.wake_in(self.now, self.config.min_save_interval) {
            at = at.min(self.now + d);
        }
        for t in [
            self.save_retry_at,
            self.intake.retry_at(),
            self.endpoint.retry_at(),
        ]
        .into_iter()
        .flatten()
        {
            at = at.min(t);
        }
        at
    }

    /// Shut down and every change saved (or saving keeps failing): the
    /// shell may stop.
    pub(crate) fn finished(&mut self) -> bool {
        self.finished_shutdown()
    }

    /// Shutting down: every connection is being closed.
    pub(crate) fn shutting_down(&self) -> bool {
        self.shutting_down.is_some()
    }

    fn set_now(&mut self, now: Now) {
        // The monotonic clock never goes back; a shell that reads it late
        // must not make a timer fire twice.
        self.now = self.now.max(now.at);
        self.unix = now.unix;
    }

    /// What every input ends with: timers that fell due, the dial
    /// schedule, a save if one is due.
    fn after_input(&mut self) {
        if self.now.saturating_duration_since(self.last_sweep) >= TICK {
            self.last_sweep = self.now;
            self.expire_unfinished();
            self.resume_drained();
        }
        if self.save_retry_at.is_some_and(|t| t <= self.now) {
            self.save_retry_at = None;
            self.disk.retry();
        }
        let now = self.now;
        for service in [Service::Intake, Service::Endpoint] {
            // Only if nothing happened since (switched off, shut down).
            if self.slot_mut(service).relaunch_due(now) && self.shutting_down.is_none() {
                self.publish(service);
            }
        }
        if self.shutting_down.is_none() && !self.requests_closed {
            self.schedule_dials();
        }
        self.start_save();
    }

    fn slot_mut(&mut self, service: Service) -> &mut Slot {
        match service {
            Service::Intake => &mut self.intake,
            Service::Endpoint => &mut self.endpoint,
        }
    }

    /// A contact as it starts, before anything is known of it but its
    /// intake id: nothing sent or received, no history.
    fn new_contact(
        &self,
        id: ContactId,
        intake: Public32,
        state: ContactState,
        our_discovery_key: Secret32,
    ) -> Contact {
        Contact {
            id,
            intake,
            nickname: String::new(),
            state,
            greeting: String::new(),
            suggested_nickname: String::new(),
            request_delivered: false,
            accept_pending: false,
            their_static: None,
            their_endpoint: None,
            their_discovery_key: None,
            our_discovery_key,
            history_enabled: false,
            next_message_id: 1,
            last_received_id: 0,
            outbox: Vec::new(),
            history: Vec::new(),
            created_at: self.unix,
            unsynced_from: Some(1),
            verified: false,
            peer_keeps_history: None,
        }
    }

    /// A fresh random secret (placeholders). Filled in place, so no copy is
    /// left behind.
    pub(super) fn random_secret(&mut self) -> Secret32 {
        let mut k = Secret32([0u8; 32]);
        self.rng.fill_bytes(&mut k.0);
        k
    }

    /// A discovery secret to hand out (PROTOCOL.md §6.1: random, clamped).
    fn new_discovery_key(&mut self) -> Secret32 {
        Secret32(DiscoveryKey::generate(&mut self.rng).0)
    }

    /// 50% to 150% of `d`, so that peers who lost each other at the same
    /// moment do not redial in lockstep.
    fn jitter(&mut self, d: Duration) -> Duration {
        let r = self.rng.next_u32() as f64 / u32::MAX as f64;
        d.mul_f64(0.5 + r)
    }

    pub(super) fn emit(&mut self, e: Event) {
        self.effects.push_back(Effect::Event(e));
    }

    pub(super) fn summary(&self, c: &Contact) -> ContactSummary {
        ContactSummary {
            id: c.id,
            address: onion(&c.intake).map(|o| o.to_address()).unwrap_or_default(),
            nickname: c.nickname.clone(),
            state: c.state,
            greeting: c.greeting.clone(),
            suggested_nickname: c.suggested_nickname.clone(),
            request_delivered: c.request_delivered,
            online: self.links.get(&c.id).is_some_and(|r| r.active.is_some()),
            history_enabled: c.history_enabled,
            queued: c.outbox.len(),
            verified: c.verified,
            peer_keeps_history: c.peer_keeps_history,
        }
    }

    fn emit_contact(&mut self, id: ContactId) {
        if let Some(c) = self.profile.contact(id) {
            let contact = self.summary(c);
            self.emit(Event::ContactChanged { contact });
        }
    }

    /// Records that the profile changed; returns the change number.
    pub(super) fn changed(&mut self) -> u64 {
        self.disk.changed()
    }

    fn start_save(&mut self) {
        // Every change rewrites the whole profile (for now): however fast
        // peers make changes, saves start at most once per interval, and
        // whatever arrives meanwhile shares the next one (review finding M4).
        let Some(generation) = self
            .disk
            .begin_save(self.now, self.config.min_save_interval)
        else {
            return;
        };
        let profile = Box::new(self.profile.clone());
        self.effects.push_back(Effect::Save {
            generation,
            profile,
        });
    }

    fn on_saved(&mut self, generation: u64, result: Result<(), SaveError>) {
        let report = self.disk.finished(generation, result);
        match report {
            SaveReport::Saved | SaveReport::Recovered => {
                if report == SaveReport::Recovered {
                    self.emit(Event::SaveProblem { error: None });
                }
                self.release_durable();
            }
            SaveReport::NewProblem(_) | SaveReport::SameProblem => {
                if let SaveReport::NewProblem(e) = report {
                    self.emit(Event::SaveProblem { error: Some(e) });
                }
                // Try again later; nothing that needs the save goes out
                // meanwhile.
                self.save_retry_at = Some(self.now + SAVE_RETRY);
            }
        }
    }

    /// Sends what was waiting for the disk: new messages and acks.
    fn release_durable(&mut self) {
        let durable = self.disk.durable();
        self.release_receipts();
        let ids: Vec<ContactId> = self.links.keys().copied().collect();
        for id in ids {
            let Some(r) = self.links.get_mut(&id) else {
                continue;
            };
            if let Some(last) = r.on_durable(durable) {
                self.send_to_contact(id, Message::Ack { id: last });
            }
            self.flush_outbox(id);
        }
    }
}
