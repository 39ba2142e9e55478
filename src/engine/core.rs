//! The engine's state machine: owns the profile, the services' state and
//! the bookkeeping of every connection, and applies commands, session
//! events and the results of I/O one at a time, in
//! [`Core::handle`]. It never awaits, spawns, sleeps, reads the clock or
//! draws from the operating system's RNG: the time comes with each input
//! and the RNG is passed in, and what it wants done (dial, publish, save,
//! open a connection, run file work, tell the window) it queues as an
//! [`Effect`] for the shell (`shell.rs`) to carry out. So the same inputs
//! in the same order always give the same effects, which is what the
//! simulator (`tests/simulator.rs`) relies on.
//!
//! Two durability rules keep delivery exact across crashes (PROTOCOL.md
//! §6.3): a new message goes on the wire only once the outbox holding it is
//! saved (or an id could be reused after a crash), and a received message is
//! acknowledged only once the new `last` is saved (or a crash could make us
//! wait forever for an id the sender already dropped).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::admission::RequestGate;
use super::durability::{Durability, SaveReport};
use super::links::Link;
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
    BlockedView, Command, ContactSummary, DeliveryState, EngineConfig, EngineError, Event,
    MessageView, Reply, Request, ServiceState, Status, normalize_address,
};

/// Kept history per contact; older lines are dropped.
const MAX_HISTORY: usize = 10_000;
/// Replay cache window (PROTOCOL.md §7.4); the size is
/// `EngineConfig::replay_keys`.
const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// Spare discovery keys kept authorized on the endpoint (see
/// `Profile::spare_discovery_keys`).
const SPARE_KEYS: usize = 2;
/// How many responder steps (`step_timeout` each) a requester waits on the
/// intake for its request's receipt (PROTOCOL.md §8 step 2).
const RECEIPT_STEPS: u32 = 4;
/// How often the dial schedule and the timeouts are looked at when nothing
/// else happens.
pub(super) const TICK: Duration = Duration::from_millis(250);
/// How long a failed save waits before it is tried again.
const SAVE_RETRY: Duration = Duration::from_secs(2);
/// Refused file offers reported to the person per contact and minute; more
/// are still refused, without an event each.
pub(super) const REFUSALS_SHOWN_PER_MINUTE: u32 = 10;
/// An unfinished connection this long without a step is no live peer
/// mid-handshake: it is evicted first. Younger ones are evicted at random,
/// so that opening streams fast cannot push out a requester in order.
const CLEARLY_STALLED: Duration = Duration::from_secs(2);
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
    Request(Request),
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
        result: Result<(), String>,
    },
    /// File work finished (`files.rs`).
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

/// Which service a connection belongs to, and which way it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ConnKind {
    IntakeIn,
    IntakeOut(ContactId),
    EndpointIn,
    EndpointOut(ContactId),
}

pub(super) struct ConnInfo {
    pub(super) kind: ConnKind,
    /// Known once the peer is identified.
    pub(super) contact: Option<ContactId>,
    pub(super) established: bool,
    pub(super) peer_static: Option<StaticPublicKey>,
    /// The peer's proven contact identity (intake id), once established.
    pub(super) peer: Option<OnionId>,
    /// Outgoing request: sent on this connection.
    pub(super) request_sent: bool,
    /// Incoming request: received on this connection.
    pub(super) request_received: bool,
    /// Bytes waiting to be written.
    pub(super) queue: SendQueue,
    /// When the connection last moved a step (opened, hello, handshake):
    /// who is evicted first when the unauthenticated slots are full.
    progress_at: Instant,
    /// We asked it to close; it no longer counts against any cap.
    closing: bool,
    /// The protocol version, once established (§4.2).
    pub(super) version: u8,
}

impl ConnInfo {
    /// Still costing us a slot before it has proven anything useful: an
    /// incoming connection before its handshake, or at the intake before
    /// its request.
    fn unfinished(&self) -> bool {
        if self.closing {
            return false;
        }
        match self.kind {
            ConnKind::IntakeIn => !self.request_received,
            ConnKind::EndpointIn => !self.established,
            _ => false,
        }
    }
}

struct Slot {
    /// Launched and not taken down since.
    up: bool,
    generation: u64,
    state: ServiceState,
    /// Failed launches in a row (for the retry delay).
    attempts: u32,
    /// When to launch again after a failure.
    retry_at: Option<Instant>,
}

impl Slot {
    fn off() -> Self {
        Slot {
            up: false,
            generation: 0,
            state: ServiceState::Off,
            attempts: 0,
            retry_at: None,
        }
    }
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
    /// Ordered maps here and in `files.rs`: iterating them gives the same
    /// order every run, so the same inputs give the same effects (a
    /// `HashMap`'s order changes from one process to the next).
    pub(super) conns: BTreeMap<ConnId, ConnInfo>,
    next_conn: ConnId,
    pub(super) links: BTreeMap<ContactId, Link>,
    /// Separate replay caches, so that strangers flooding the intake
    /// cannot flush the endpoint's entries (review finding L4).
    intake_replay: Arc<Mutex<ReplayCache>>,
    endpoint_replay: Arc<Mutex<ReplayCache>>,
    dials_in_flight: usize,
    intake: Slot,
    endpoint: Slot,
    /// Who may put a request into the profile (`admission.rs`).
    request_gate: RequestGate,
    /// When timeouts and stalled queues were last looked at.
    last_sweep: Instant,
    /// Nothing saved reaches a disk (`ProfileStore::keeps_nothing`).
    keeps_nothing: bool,
    /// What is on disk, and what waits for it (`durability.rs`).
    disk: Durability,
    /// When a failed save is tried again.
    save_retry_at: Option<Instant>,
    pub(super) files: Transfers,
    /// Commands are no longer taken: the window or client went away.
    requests_closed: bool,
    shutting_down: Option<oneshot::Sender<Result<Reply, EngineError>>>,
}

fn onion(p: &Public32) -> Option<OnionId> {
    OnionId::from_bytes(p.0).ok()
}

fn client_key(secret: &Secret32) -> ClientKey {
    ClientKey::from_secret(&DiscoveryKey(secret.0))
}

/// Queues `m` on connection `conn`, counting its bytes at once so that
/// what is not yet encrypted holds back bulk data too.
fn queue_send(effects: &mut VecDeque<Effect>, conn: ConnId, queue: &SendQueue, m: Message) {
    let n = conn::estimate(&m);
    queue.add(n);
    effects.push_back(Effect::Conn(conn, ToConn::Send(m, n)));
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
                    durable_upto: upto,
                    first_new: c.unsynced_from.unwrap_or(c.next_message_id),
                    backoff: config.backoff_initial,
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
            dials_in_flight: 0,
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
            r.next_dial = Some(now.at);
        }
        self.after_input();
    }

    /// Handles one input. What it leads to is taken with
    /// [`Core::poll_effect`].
    pub(crate) fn handle(&mut self, now: Now, input: Input) {
        self.set_now(now);
        match input {
            Input::Request(r) => self.on_request(r),
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
                let slot = self.slot_mut(service);
                if slot.generation == generation && slot.state != state {
                    slot.state = state;
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
            self.intake.retry_at,
            self.endpoint.retry_at,
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
            let slot = self.slot_mut(service);
            if slot.retry_at.is_some_and(|t| t <= now) {
                slot.retry_at = None;
                // Only if nothing happened since (switched off, shut down).
                if !slot.up && self.shutting_down.is_none() {
                    self.publish(service);
                }
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

    // ----- randomness --------------------------------------------------

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

    // ----- events out -------------------------------------------------

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

    /// Tells the contact, on its session if one is up and speaks version 3,
    /// whether we keep a history of this conversation (PROTOCOL.md §6.3).
    /// A session that comes up later is told after its SYNC.
    fn tell_history(&mut self, id: ContactId) {
        let Some(on) = self.profile.contact(id).map(|c| c.history_enabled) else {
            return;
        };
        // "Kept" means kept on a disk: an amnesic session keeps nothing.
        let kept = on && !self.keeps_nothing;
        let Some(conn) = self.links.get(&id).and_then(|r| r.active) else {
            return;
        };
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.version >= allium_protocol::HISTORY_VERSION)
        {
            self.send_on(conn, Message::History { kept });
        } else if let Some(c) = self.profile.contact_mut(id)
            && c.peer_keeps_history.take().is_some()
        {
            // A version-2 session says nothing: what the contact said
            // before (from a newer build) may no longer hold.
            self.changed();
            self.emit_contact(id);
        }
    }

    fn emit_contact(&mut self, id: ContactId) {
        if let Some(c) = self.profile.contact(id) {
            let contact = self.summary(c);
            self.emit(Event::ContactChanged { contact });
        }
    }

    // ----- persistence -------------------------------------------------

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

    fn on_saved(&mut self, generation: u64, result: Result<(), String>) {
        let report = self.disk.finished(generation, result);
        match report {
            SaveReport::Saved | SaveReport::Recovered => {
                if report == SaveReport::Recovered {
                    self.emit(Event::SaveProblem { message: None });
                }
                self.release_durable();
            }
            SaveReport::NewProblem(_) | SaveReport::SameProblem => {
                if let SaveReport::NewProblem(message) = report {
                    self.emit(Event::SaveProblem {
                        message: Some(message),
                    });
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

    // ----- services ----------------------------------------------------

    fn desired_authorized(&self) -> BTreeSet<ClientKey> {
        self.profile
            .contacts
            .iter()
            .filter(|c| c.state != ContactState::IncomingPending)
            .map(|c| client_key(&c.our_discovery_key))
            .chain(self.profile.spare_discovery_keys.iter().map(client_key))
            .collect()
    }

    /// Keeps [`SPARE_KEYS`] spare discovery keys (fewer when the endpoint
    /// is nearly full: contacts come first).
    fn top_up_spares(&mut self) {
        let max = allium_onion::MAX_AUTHORIZED_CLIENTS - 1;
        let used = self
            .profile
            .contacts
            .iter()
            .filter(|c| c.state != ContactState::IncomingPending)
            .count();
        let want = SPARE_KEYS.min(max.saturating_sub(used));
        let mut added = false;
        while self.profile.spare_discovery_keys.len() < want {
            let key = self.new_discovery_key();
            self.profile.spare_discovery_keys.push(key);
            added = true;
        }
        if self.profile.spare_discovery_keys.len() > want {
            self.profile.spare_discovery_keys.truncate(want);
            added = true;
        }
        if added {
            self.changed();
        }
    }

    /// A discovery key for a new contact: a spare one (already in the
    /// published descriptor) if there is one, else a fresh one.
    fn take_discovery_key(&mut self) -> Secret32 {
        match self.profile.spare_discovery_keys.pop() {
            Some(key) => key,
            None => self.new_discovery_key(),
        }
    }

    /// Launches `service` (again): a new generation, so that whatever the
    /// shell still reports about an earlier launch is ignored.
    fn publish(&mut self, service: Service) {
        let key = match service {
            Service::Intake => self.local.identity.clone(),
            Service::Endpoint => self.endpoint_key.clone(),
        };
        let authorized = match service {
            Service::Intake => BTreeSet::new(),
            Service::Endpoint => self.desired_authorized(),
        };
        let slot = self.slot_mut(service);
        slot.generation += 1;
        slot.up = false;
        slot.retry_at = None;
        slot.state = ServiceState::Starting;
        let generation = slot.generation;
        self.emit(Event::Service {
            intake: service == Service::Intake,
            state: ServiceState::Starting,
        });
        self.effects.push_back(Effect::Publish {
            service,
            generation,
            key,
            authorized,
        });
    }

    /// Takes `service` down; what it still reports is ignored.
    fn unpublish(&mut self, service: Service) {
        let slot = self.slot_mut(service);
        slot.generation += 1;
        slot.up = false;
        slot.retry_at = None;
        self.effects.push_back(Effect::Stop(service));
    }

    fn on_published(
        &mut self,
        service: Service,
        generation: u64,
        result: Result<(), ServiceError>,
    ) {
        let slot = self.slot_mut(service);
        if slot.generation != generation {
            // Switched off (or republished) meanwhile; the shell dropped it.
            return;
        }
        match result {
            Ok(()) => {
                slot.up = true;
                slot.attempts = 0;
                if service == Service::Endpoint {
                    self.sync_authorized();
                }
            }
            Err(e) => {
                slot.state = ServiceState::Broken;
                // A launch can fail for passing reasons (Tor still
                // bootstrapping, a busy network): try again, slower each
                // time, until it works or the service is switched off.
                let attempt = slot.attempts;
                slot.attempts = slot.attempts.saturating_add(1);
                let wait = self
                    .config
                    .backoff_initial
                    .saturating_mul(1 << attempt.min(6))
                    .min(self.config.backoff_max);
                let at = self.now + self.jitter(wait);
                self.slot_mut(service).retry_at = Some(at);
                self.emit(Event::Service {
                    intake: service == Service::Intake,
                    state: ServiceState::Broken,
                });
                tracing::warn!("publishing a service failed: {e}");
            }
        }
    }

    /// Makes the running endpoint's authorized set match the contacts.
    /// (Capacity is checked before a contact is added, so the set always
    /// fits: [`Core::check_capacity`].)
    fn sync_authorized(&mut self) {
        if self.endpoint.up {
            let desired = self.desired_authorized();
            self.effects.push_back(Effect::Authorize(desired));
        }
    }

    // ----- commands ----------------------------------------------------

    fn on_request(&mut self, req: Request) {
        if self.shutting_down.is_some() {
            let _ = req.reply.send(Err(EngineError::Stopped));
            return;
        }
        if let Command::Shutdown = req.command {
            self.begin_shutdown(Some(req.reply));
            return;
        }
        let result = self.apply(req.command);
        let _ = req.reply.send(result);
    }

    fn apply(&mut self, command: Command) -> Result<Reply, EngineError> {
        match command {
            Command::Status => Ok(Reply::Status(self.status())),
            Command::AddContact {
                address,
                nickname,
                greeting,
            } => self
                .add_contact(&address, nickname, greeting)
                .map(Reply::Contact),
            Command::Contacts => Ok(Reply::Contacts(
                self.profile
                    .contacts
                    .iter()
                    .map(|c| self.summary(c))
                    .collect(),
            )),
            Command::Accept { contact, nickname } => {
                self.accept(contact, nickname).map(|()| Reply::Unit)
            }
            Command::Reject(id) => self.drop_contact(id, Removal::Reject).map(|()| Reply::Unit),
            Command::Block(id) => self.drop_contact(id, Removal::Block).map(|()| Reply::Unit),
            Command::Remove(id) => self.drop_contact(id, Removal::Remove).map(|()| Reply::Unit),
            Command::Rename(id, nickname) => {
                TextField::Nickname
                    .validate(&nickname)
                    .map_err(text_error)?;
                let c = self
                    .profile
                    .contact_mut(id)
                    .ok_or(EngineError::NoSuchContact)?;
                c.nickname = nickname;
                self.changed();
                self.emit_contact(id);
                Ok(Reply::Unit)
            }
            Command::SetVerified(id, on) => {
                let c = self.accepted_mut(id, "only an accepted contact can be verified")?;
                if c.verified != on {
                    c.verified = on;
                    self.changed();
                }
                self.emit_contact(id);
                Ok(Reply::Unit)
            }
            Command::Blocked => Ok(Reply::Blocked(
                self.profile
                    .blocked
                    .iter()
                    .map(|b| BlockedView {
                        address: onion(b).map(|o| o.to_address()).unwrap_or_default(),
                        nickname: self
                            .profile
                            .blocked_names
                            .iter()
                            .find(|n| n.intake == *b)
                            .map(|n| n.nickname.clone())
                            .unwrap_or_default(),
                    })
                    .collect(),
            )),
            Command::Unblock(address) => {
                let target = OnionId::parse(&normalize_address(&address))
                    .map_err(EngineError::BadAddress)?;
                let intake = Public32(*target.as_bytes());
                if !self.profile.blocked.contains(&intake) {
                    return Err(EngineError::NotBlocked);
                }
                self.profile.blocked.retain(|b| *b != intake);
                self.profile.blocked_names.retain(|n| n.intake != intake);
                self.changed();
                Ok(Reply::Unit)
            }
            Command::SendMessage(id, text) => self.queue_message(id, text).map(Reply::MessageId),
            Command::Conversation(id) => self.conversation(id).map(Reply::Conversation),
            Command::SetHistory(id, on) => {
                let c = self
                    .profile
                    .contact_mut(id)
                    .ok_or(EngineError::NoSuchContact)?;
                let changed = c.history_enabled != on;
                c.history_enabled = on;
                if !on {
                    c.history.clear();
                }
                self.changed();
                self.emit_contact(id);
                if changed {
                    self.tell_history(id);
                }
                Ok(Reply::Unit)
            }
            Command::SetIntake(on) => {
                if self.profile.settings.intake_enabled != on {
                    self.profile.settings.intake_enabled = on;
                    self.changed();
                }
                if on && self.intake.state == ServiceState::Off {
                    self.publish(Service::Intake);
                } else if !on {
                    self.unpublish(Service::Intake);
                    self.intake.state = ServiceState::Off;
                    // Connections already open at the intake end too.
                    let open: Vec<ConnId> = self
                        .conns
                        .iter()
                        .filter(|(_, c)| c.kind == ConnKind::IntakeIn)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in open {
                        self.close_conn(id, CloseReason::Shutdown);
                    }
                    self.emit(Event::Service {
                        intake: true,
                        state: ServiceState::Off,
                    });
                }
                Ok(Reply::Unit)
            }
            Command::SetDisplayName(name) => {
                TextField::Nickname.validate(&name).map_err(text_error)?;
                self.profile.settings.display_name = name;
                self.changed();
                Ok(Reply::Unit)
            }
            Command::Settings => Ok(Reply::Settings(Box::new(self.profile.settings.clone()))),
            Command::SetCustomNetwork(file) => {
                if self.profile.settings.custom_network != file {
                    self.profile.settings.custom_network = file;
                    self.changed();
                }
                Ok(Reply::Unit)
            }
            Command::SetNotificationContent(on) => {
                if self.profile.settings.notification_content != on {
                    self.profile.settings.notification_content = on;
                    self.changed();
                }
                Ok(Reply::Unit)
            }
            Command::SetAutoLock(minutes) => {
                if minutes > 24 * 60 {
                    return Err(EngineError::InvalidSetting(
                        "lock after at most a day (1,440 minutes)",
                    ));
                }
                if self.profile.settings.auto_lock_minutes != minutes {
                    self.profile.settings.auto_lock_minutes = minutes;
                    self.changed();
                }
                Ok(Reply::Unit)
            }
            Command::SendFile(id, path) => self.offer_file(id, path).map(Reply::Transfer),
            Command::AcceptFile(t, folder) => self.accept_file(t, folder).map(|()| Reply::Unit),
            Command::CancelFile(t) => self.cancel_file_by_user(t).map(|()| Reply::Unit),
            Command::Transfers => Ok(Reply::Transfers(self.transfer_views())),
            Command::Shutdown => Ok(Reply::Unit),
        }
    }

    fn status(&self) -> Status {
        Status {
            address: self.local.identity.onion_id().to_address(),
            intake_enabled: self.profile.settings.intake_enabled,
            intake: self
                .profile
                .settings
                .intake_enabled
                .then_some(self.intake.state),
            endpoint: self.endpoint.state,
            save_error: self.disk.error().map(str::to_owned),
        }
    }

    fn add_contact(
        &mut self,
        address: &str,
        nickname: String,
        greeting: String,
    ) -> Result<ContactId, EngineError> {
        let target =
            OnionId::parse(&normalize_address(address)).map_err(EngineError::BadAddress)?;
        if target == self.local.identity.onion_id() || target == self.local.endpoint {
            return Err(EngineError::OwnAddress);
        }
        TextField::Nickname
            .validate(&nickname)
            .map_err(text_error)?;
        TextField::Greeting
            .validate(&greeting)
            .map_err(text_error)?;
        let intake = Public32(*target.as_bytes());
        if self.profile.blocked.contains(&intake) {
            return Err(EngineError::Blocked);
        }
        if self.profile.contact_by_intake(&intake).is_some() {
            return Err(EngineError::AlreadyContact);
        }
        self.check_capacity()?;
        let key = self.take_discovery_key();
        let id = self.profile.allocate_contact_id();
        // A rejected requester we now ask ourselves is forgiven.
        self.profile.rejected.retain(|r| r != &intake);
        let history = self.profile.settings.history_by_default;
        self.profile.contacts.push(Contact {
            id,
            intake,
            nickname,
            state: ContactState::OutgoingPending,
            greeting,
            suggested_nickname: String::new(),
            request_delivered: false,
            accept_pending: false,
            their_static: None,
            their_endpoint: None,
            their_discovery_key: None,
            our_discovery_key: key,
            history_enabled: history,
            next_message_id: 1,
            last_received_id: 0,
            outbox: Vec::new(),
            history: Vec::new(),
            created_at: self.unix,
            unsynced_from: Some(1),
            verified: false,
            peer_keeps_history: None,
        });
        self.top_up_spares();
        self.links.insert(
            id,
            Link {
                first_new: 1,
                backoff: self.config.backoff_initial,
                next_dial: Some(self.now),
                ..Link::default()
            },
        );
        // Authorize before the request leaves, so that their answer can
        // find our endpoint (PROTOCOL.md §8 step 1): the shell applies this
        // before it dials.
        self.sync_authorized();
        self.changed();
        self.emit_contact(id);
        Ok(id)
    }

    fn check_capacity(&self) -> Result<(), EngineError> {
        let max = allium_onion::MAX_AUTHORIZED_CLIENTS - 1;
        // Spare keys make room: only contacts count.
        let contacts = self
            .profile
            .contacts
            .iter()
            .filter(|c| c.state != ContactState::IncomingPending)
            .count();
        if contacts >= max {
            return Err(EngineError::TooManyContacts(max));
        }
        Ok(())
    }

    fn accept(&mut self, id: ContactId, nickname: Option<String>) -> Result<(), EngineError> {
        if let Some(n) = &nickname {
            TextField::Nickname.validate(n).map_err(text_error)?;
        }
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        if c.state != ContactState::IncomingPending {
            return Err(EngineError::WrongState(
                "only a pending request can be accepted",
            ));
        }
        self.check_capacity()?;
        let key = self.take_discovery_key();
        let history = self.profile.settings.history_by_default;
        if let Some(c) = self.profile.contact_mut(id) {
            c.state = ContactState::Accepted;
            c.our_discovery_key = key;
            c.accept_pending = true;
            c.history_enabled = history;
            if let Some(n) = nickname {
                c.nickname = n;
            } else if c.nickname.is_empty() {
                c.nickname = c.suggested_nickname.clone();
            }
        }
        self.top_up_spares();
        self.sync_authorized();
        let change = self.changed();
        if let Some(r) = self.links.get_mut(&id) {
            r.next_dial = Some(self.now);
            r.backoff = self.config.backoff_initial;
            r.last_change = change;
        }
        self.emit_contact(id);
        Ok(())
    }

    fn drop_contact(&mut self, id: ContactId, how: Removal) -> Result<(), EngineError> {
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        if how == Removal::Reject && c.state != ContactState::IncomingPending {
            return Err(EngineError::WrongState(
                "only a pending request can be rejected",
            ));
        }
        let intake = c.intake;
        let name = if c.nickname.is_empty() {
            c.suggested_nickname.clone()
        } else {
            c.nickname.clone()
        };
        self.profile.contacts.retain(|c| c.id != id);
        match how {
            Removal::Reject => {
                if !self.profile.rejected.contains(&intake) {
                    self.profile.rejected.push(intake);
                }
            }
            Removal::Block => {
                if !self.profile.blocked.contains(&intake) {
                    self.profile.blocked.push(intake);
                    self.profile.blocked_names.push(BlockedName {
                        intake,
                        nickname: name,
                    });
                }
            }
            Removal::Remove => {}
        }
        // Revoke at once: from now on it cannot even find the endpoint.
        self.top_up_spares();
        self.sync_authorized();
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.contact == Some(id))
            .map(|(k, _)| *k)
            .collect();
        for conn in conns {
            self.close_conn(conn, CloseReason::NotAContact);
        }
        self.links.remove(&id);
        self.cancel_transfers_of(id);
        self.changed();
        self.emit(Event::ContactRemoved { contact: id });
        Ok(())
    }

    /// An accepted contact, or why not: `WrongState(why)` for a request.
    fn accepted_mut(
        &mut self,
        id: ContactId,
        why: &'static str,
    ) -> Result<&mut Contact, EngineError> {
        let c = self
            .profile
            .contact_mut(id)
            .ok_or(EngineError::NoSuchContact)?;
        if c.state != ContactState::Accepted {
            return Err(EngineError::WrongState(why));
        }
        Ok(c)
    }

    fn queue_message(&mut self, id: ContactId, text: String) -> Result<u64, EngineError> {
        TextField::ChatText.validate(&text).map_err(text_error)?;
        let now = self.unix;
        let c = self.accepted_mut(id, "messages can be sent once the contact has accepted")?;
        let msg_id = c.next_message_id;
        c.next_message_id += 1;
        if c.history_enabled {
            c.history.push(HistoryEntry {
                direction: Direction::Outgoing,
                id: msg_id,
                text: text.clone(),
                at: now,
                delivered: false,
            });
            trim_history(&mut c.history);
        }
        c.outbox.push(QueuedMessage {
            id: msg_id,
            text,
            queued_at: now,
        });
        let change = self.changed();
        if let Some(r) = self.links.get_mut(&id) {
            r.unsaved.push_back((msg_id, change));
            // Something to say: try now rather than at the next backoff.
            if r.active.is_none() && !r.dialing {
                r.next_dial = Some(self.now);
            }
        }
        self.emit(Event::MessageState {
            contact: id,
            id: msg_id,
            state: DeliveryState::Queued,
        });
        Ok(msg_id)
    }

    fn conversation(&self, id: ContactId) -> Result<Vec<MessageView>, EngineError> {
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        let sent_upto = self.links.get(&id).map(|r| r.sent_upto).unwrap_or(0);
        let state_of = |msg_id: u64, delivered: bool| {
            Some(if delivered {
                DeliveryState::Delivered
            } else if msg_id <= sent_upto {
                DeliveryState::Sent
            } else {
                DeliveryState::Queued
            })
        };
        let mut out: Vec<MessageView> = c
            .history
            .iter()
            .map(|h| MessageView {
                direction: h.direction,
                id: h.id,
                text: h.text.clone(),
                at: h.at,
                state: match h.direction {
                    Direction::Outgoing => state_of(h.id, h.delivered),
                    Direction::Incoming => None,
                },
            })
            .collect();
        if !c.history_enabled {
            out.extend(c.outbox.iter().map(|q| MessageView {
                direction: Direction::Outgoing,
                id: q.id,
                text: q.text.clone(),
                at: q.queued_at,
                state: state_of(q.id, false),
            }));
        }
        Ok(out)
    }

    // ----- shutdown ----------------------------------------------------

    fn begin_shutdown(&mut self, reply: Option<oneshot::Sender<Result<Reply, EngineError>>>) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close_conn(id, CloseReason::Shutdown);
        }
        self.unpublish(Service::Intake);
        self.unpublish(Service::Endpoint);
        let (tx, _rx) = oneshot::channel();
        self.shutting_down = Some(reply.unwrap_or(tx));
    }

    fn finished_shutdown(&mut self) -> bool {
        if self.shutting_down.is_none() {
            return false;
        }
        // Done once every change is saved (or saving keeps failing: then
        // the person was told, and waiting longer will not help) and every
        // connection reported its end.
        let saved = self.disk.settled();
        if !saved || !self.conns.is_empty() {
            return false;
        }
        if let Some(reply) = self.shutting_down.take() {
            let _ = reply.send(match self.disk.error() {
                None => Ok(Reply::Unit),
                Some(e) => Err(EngineError::File(format!(
                    "the latest changes could not be saved: {e}"
                ))),
            });
        }
        true
    }

    // ----- dialling ----------------------------------------------------

    fn wants_dial(&self, c: &Contact) -> Option<Purpose> {
        match c.state {
            ContactState::OutgoingPending if !c.request_delivered => Some(Purpose::Intake),
            ContactState::Accepted
                if c.their_endpoint.is_some()
                    && c.their_discovery_key.is_some()
                    && c.their_static.is_some() =>
            {
                Some(Purpose::Endpoint)
            }
            _ => None,
        }
    }

    fn schedule_dials(&mut self) {
        let now = self.now;
        let mut due: Vec<(Instant, ContactId, Purpose)> = Vec::new();
        for c in &self.profile.contacts {
            let Some(purpose) = self.wants_dial(c) else {
                continue;
            };
            let Some(r) = self.links.get(&c.id) else {
                continue;
            };
            if r.active.is_some() || r.dialing {
                continue;
            }
            if purpose == Purpose::Intake
                && self
                    .conns
                    .values()
                    .any(|k| k.kind == ConnKind::IntakeOut(c.id))
            {
                continue;
            }
            match r.next_dial {
                Some(at) if at <= now => due.push((at, c.id, purpose)),
                _ => {}
            }
        }
        // Longest-waiting first, within the dial budget.
        due.sort_by_key(|(at, id, _)| (*at, *id));
        for (_, id, purpose) in due {
            if self.dials_in_flight >= self.config.max_concurrent_dials.max(1) {
                break;
            }
            self.dial(id, purpose);
        }
    }

    fn dial(&mut self, id: ContactId, purpose: Purpose) {
        let Some(c) = self.profile.contact(id) else {
            return;
        };
        let (target, key) = match purpose {
            Purpose::Intake => (onion(&c.intake), None),
            Purpose::Endpoint => (
                c.their_endpoint.as_ref().and_then(onion),
                c.their_discovery_key.as_ref().map(|k| DiscoveryKey(k.0)),
            ),
        };
        let Some(target) = target else {
            return;
        };
        if let Some(r) = self.links.get_mut(&id) {
            r.dialing = true;
            r.next_dial = None;
        }
        // The one count of dials in flight: `schedule_dials` starts no
        // more than `max_concurrent_dials`.
        self.dials_in_flight += 1;
        self.effects.push_back(Effect::Dial {
            contact: id,
            purpose,
            target,
            key,
        });
    }

    fn retry_later(&mut self, id: ContactId, failed: bool) {
        let (initial, max) = (self.config.backoff_initial, self.config.backoff_max);
        let Some(r) = self.links.get_mut(&id) else {
            return;
        };
        let wait = if failed {
            let w = r.backoff;
            r.backoff = (r.backoff * 2).min(max);
            w
        } else {
            r.backoff = initial;
            initial
        };
        let at = self.now + self.jitter(wait);
        if let Some(r) = self.links.get_mut(&id) {
            r.next_dial = Some(at);
        }
    }

    fn on_dialed(&mut self, id: ContactId, purpose: Purpose, result: Result<StreamId, DialError>) {
        self.dials_in_flight = self.dials_in_flight.saturating_sub(1);
        if let Some(r) = self.links.get_mut(&id) {
            r.dialing = false;
        }
        let stream = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("dial failed: {e}");
                self.retry_later(id, true);
                return;
            }
        };
        match self.dialed_session(id, purpose) {
            Some((session, kind)) => self.open_conn(session, stream, kind, Some(id)),
            None => self.effects.push_back(Effect::Discard(stream)),
        }
    }

    /// The session to run on a stream just dialled to `id`, with what it
    /// sends first; `None` if it is no longer wanted.
    fn dialed_session(&mut self, id: ContactId, purpose: Purpose) -> Option<(Session, ConnKind)> {
        if self.shutting_down.is_some() {
            return None;
        }
        let c = self.profile.contact(id)?;
        if self.wants_dial(c) != Some(purpose) {
            return None;
        }
        if purpose == Purpose::Endpoint && self.links.get(&id).is_some_and(|r| r.active.is_some()) {
            // They dialled us meanwhile.
            return None;
        }
        // After a peer refused our versions, offer the highest common one.
        let mut session_config = self.config.session.clone();
        if let Some(v) = self.links.get(&id).and_then(|r| r.versions.clone()) {
            session_config.versions = v;
        }
        let session = match purpose {
            Purpose::Intake => match onion(&c.intake) {
                Some(target) => Session::connect_intake(
                    session_config,
                    &self.local,
                    target,
                    self.now,
                    &mut self.rng,
                ),
                None => return None,
            },
            Purpose::Endpoint => {
                let (Some(target), Some(rs)) = (
                    c.their_endpoint.as_ref().and_then(onion),
                    c.their_static
                        .and_then(|s| StaticPublicKey::from_peer(s.0).ok()),
                ) else {
                    return None;
                };
                Session::connect_endpoint(
                    session_config,
                    &self.local,
                    target,
                    rs,
                    self.now,
                    &mut self.rng,
                )
            }
        };
        let mut session = match session {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("could not start a session: {e}");
                self.retry_later(id, true);
                return None;
            }
        };
        let c = self.profile.contact(id)?;
        let kind = match purpose {
            Purpose::Intake => {
                let request = ContactRequest {
                    nickname: self.profile.settings.display_name.clone(),
                    greeting: c.greeting.clone(),
                    endpoint: self.local.endpoint,
                    discovery_key: DiscoveryKey(c.our_discovery_key.0),
                };
                let _ = session.send(self.now, Message::ContactRequest(request));
                ConnKind::IntakeOut(id)
            }
            Purpose::Endpoint => {
                if c.accept_pending {
                    // Rides the IK hello as early data (PROTOCOL.md §8).
                    let accept = self.contact_accept(id);
                    if let Some(a) = accept {
                        let _ = session.send(self.now, a);
                    }
                }
                ConnKind::EndpointOut(id)
            }
        };
        Some((session, kind))
    }

    fn contact_accept(&self, id: ContactId) -> Option<Message> {
        let c = self.profile.contact(id)?;
        Some(Message::ContactAccept(ContactAccept {
            endpoint: self.local.endpoint,
            discovery_key: DiscoveryKey(c.our_discovery_key.0),
        }))
    }

    /// Starts `session` on `stream` as a new connection.
    fn open_conn(
        &mut self,
        session: Session,
        stream: StreamId,
        kind: ConnKind,
        contact: Option<ContactId>,
    ) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let queue = SendQueue::default();
        self.conns.insert(
            conn,
            ConnInfo {
                kind,
                contact,
                established: false,
                peer_static: None,
                peer: None,
                request_sent: matches!(kind, ConnKind::IntakeOut(_)),
                request_received: false,
                queue: queue.clone(),
                progress_at: self.now,
                closing: false,
                version: 0,
            },
        );
        let replay = match kind {
            ConnKind::IntakeIn | ConnKind::IntakeOut(_) => self.intake_replay.clone(),
            ConnKind::EndpointIn | ConnKind::EndpointOut(_) => self.endpoint_replay.clone(),
        };
        self.effects.push_back(Effect::Open {
            conn,
            stream,
            session: Box::new(session),
            replay,
            queue,
        });
    }

    fn on_incoming(&mut self, service: Service, generation: u64, stream: StreamId) {
        let slot = match service {
            Service::Intake => &self.intake,
            Service::Endpoint => &self.endpoint,
        };
        if slot.generation != generation || self.shutting_down.is_some() {
            self.effects.push_back(Effect::Discard(stream));
            return;
        }
        let kind = match service {
            Service::Intake => ConnKind::IntakeIn,
            Service::Endpoint => ConnKind::EndpointIn,
        };
        // Full: one connection makes room for the newcomer (review finding
        // H3): one that has clearly stalled, else one at random. Whoever is
        // really asking moves a step per round trip, so silent or stalled
        // connections cannot keep a newcomer out (turning the newcomer away
        // instead would let them hold the intake shut), and streams opened
        // fast cannot push a requester out in order.
        let unfinished: Vec<(Instant, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.kind == kind && c.unfinished())
            .map(|(id, c)| (c.progress_at, *id))
            .collect();
        if unfinished.len() >= self.config.max_unauthenticated.max(1)
            && let Some(&(at, stalest)) = unfinished.iter().min()
        {
            let victim = if self.now.saturating_duration_since(at) >= CLEARLY_STALLED {
                stalest
            } else {
                // Sorted, so that the pick depends only on the RNG (a
                // map's order is not the same twice).
                let mut ids: Vec<ConnId> = unfinished.iter().map(|&(_, id)| id).collect();
                ids.sort_unstable();
                let pick = self.rng.next_u32() as usize % ids.len();
                ids.get(pick).copied().unwrap_or(stalest)
            };
            self.close_conn(victim, CloseReason::Shutdown);
        }
        let session = match service {
            Service::Intake => Session::accept_intake(
                self.config.session.clone(),
                &self.local,
                self.now,
                &mut self.rng,
            ),
            Service::Endpoint => Session::accept_endpoint(
                self.config.session.clone(),
                &self.local,
                self.now,
                &mut self.rng,
            ),
        };
        self.open_conn(session, stream, kind, None);
    }

    pub(super) fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            self.effects
                .push_back(Effect::Conn(conn, ToConn::Close(reason)));
        }
    }

    /// Closes connections that took longer than a step's time to move on
    /// (hello after opening, handshake after the hello, request after the
    /// handshake): a stranger cannot hold a slot by going quiet.
    fn expire_unfinished(&mut self) {
        let now = self.now;
        let limit = self.config.step_timeout;
        let stale: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.unfinished() && now.duration_since(c.progress_at) > limit)
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.close_conn(id, CloseReason::IdleTimeout);
        }
        self.release_receipts();
        // Our own request waits for its receipt at most this long: a
        // responder that keeps the session open without answering (its
        // keepalives keep it from idling out) does not hold the request.
        let receipt_limit = limit.saturating_mul(RECEIPT_STEPS);
        let unanswered: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                matches!(c.kind, ConnKind::IntakeOut(_))
                    && c.established
                    && !c.closing
                    && now.duration_since(c.progress_at) > receipt_limit
            })
            .map(|(id, _)| *id)
            .collect();
        for id in unanswered {
            self.close_conn(id, CloseReason::IdleTimeout);
        }
    }

    /// Sessions whose queue drained while the engine could not hear it.
    fn resume_drained(&mut self) {
        let drained: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.queue.take_drained())
            .map(|(id, _)| *id)
            .collect();
        for conn in drained {
            self.on_drained(conn);
        }
    }

    fn step_forward(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.progress_at = self.now;
        }
    }

    pub(super) fn send_on(&mut self, conn: ConnId, m: Message) {
        if let Some(c) = self.conns.get(&conn) {
            queue_send(&mut self.effects, conn, &c.queue, m);
        }
    }

    /// Whether the contact's active session can take more bulk data now
    /// (if not, a [`ConnEvent::Drained`] says when).
    pub(super) fn has_room(&self, id: ContactId) -> bool {
        self.links
            .get(&id)
            .and_then(|r| r.active)
            .and_then(|c| self.conns.get(&c))
            .is_some_and(|c| c.queue.has_room())
    }

    /// Sends on the contact's established session, if there is one.
    pub(super) fn send_to_contact(&mut self, id: ContactId, m: Message) -> bool {
        match self.links.get(&id).and_then(|r| r.active) {
            Some(conn) => {
                self.send_on(conn, m);
                true
            }
            None => false,
        }
    }

    /// Writes every saved, unsent outbox message to the active session.
    fn flush_outbox(&mut self, id: ContactId) {
        let Some(r) = self.links.get(&id) else { return };
        let Some(conn) = r.active else { return };
        if !r.peer_synced || r.sync_change.is_some() {
            return;
        }
        let (from, upto) = (r.sent_upto, r.durable_upto);
        let Some(c) = self.profile.contact(id) else {
            return;
        };
        let Some(queue) = self.conns.get(&conn).map(|c| c.queue.clone()) else {
            return;
        };
        let mut last = from;
        let mut sent = Vec::new();
        for q in c.outbox.iter().filter(|q| q.id > from && q.id <= upto) {
            // A large outbox goes out as the peer reads it, not all at once.
            if !queue.has_room() {
                break;
            }
            let chat = Message::Chat(Chat {
                id: q.id,
                text: q.text.clone(),
            });
            queue_send(&mut self.effects, conn, &queue, chat);
            last = q.id;
            sent.push(q.id);
        }
        let mut claimed_beyond = false;
        if let Some(r) = self.links.get_mut(&id) {
            let before = r.written_upto;
            r.sent_upto = r.sent_upto.max(last).max(from);
            r.written_upto = r.written_upto.max(last);
            claimed_beyond = r.ack_claimed > before && r.written_upto > before;
        }
        if claimed_beyond {
            // An acknowledgement that came before we had written this far
            // covers what we just wrote.
            self.on_ack(conn, id, 0);
        }
        for msg in sent {
            self.emit(Event::MessageState {
                contact: id,
                id: msg,
                state: DeliveryState::Sent,
            });
        }
    }

    // ----- session events ----------------------------------------------

    fn on_conn_event(&mut self, ev: FromConn) {
        let FromConn { conn, event } = ev;
        if !self.conns.contains_key(&conn) {
            return;
        }
        let event = match event {
            ConnEvent::Session(e) => e,
            ConnEvent::Drained => return self.on_drained(conn),
        };
        match event {
            SessionEvent::Admission(hello) => {
                self.step_forward(conn);
                let decision = self.admission(conn, hello.claimed);
                if self.conns.contains_key(&conn) {
                    self.effects
                        .push_back(Effect::Conn(conn, ToConn::Admit(decision)));
                }
            }
            SessionEvent::Established {
                peer,
                peer_static,
                version,
            } => {
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.version = version;
                }
                self.on_established(conn, peer, peer_static)
            }
            SessionEvent::Message(m) => self.on_message(conn, m),
            SessionEvent::Closed(cause) => self.on_closed(conn, cause),
            _ => {}
        }
    }

    /// The answer to a hello. At this point the initiator's id is only
    /// *claimed*, so at the intake nothing may depend on it: everyone gets
    /// the same answer at the same cost (review finding H2). Who it is
    /// counts only once the handshake has proven it (`on_contact_request`).
    fn admission(&mut self, conn: ConnId, claimed: OnionId) -> Admission {
        let Some(kind) = self.conns.get(&conn).map(|c| c.kind) else {
            return Admission::Refuse(None);
        };
        let intake = Public32(*claimed.as_bytes());
        match kind {
            ConnKind::IntakeIn => Admission::Stranger,
            // Only holders of a discovery key reach the endpoint. A claimed
            // id that is not a contact and a contact's id with the wrong
            // static key get the same REFUSE (the session checks the key
            // before the replay cache, so neither leaves a trace there).
            ConnKind::EndpointIn => {
                let Some(c) = self.profile.contact_by_intake(&intake) else {
                    return Admission::Refuse(Some(RefuseReason::NotAuthorized));
                };
                let allowed = c.state == ContactState::Accepted
                    || (c.state == ContactState::OutgoingPending && c.request_delivered);
                match (allowed, c.their_static) {
                    (true, Some(s)) => match StaticPublicKey::from_peer(s.0) {
                        Ok(s) => Admission::Contact(s),
                        Err(_) => Admission::Refuse(Some(RefuseReason::NotAuthorized)),
                    },
                    _ => Admission::Refuse(Some(RefuseReason::NotAuthorized)),
                }
            }
            _ => Admission::Refuse(None),
        }
    }

    fn on_established(&mut self, conn: ConnId, peer: OnionId, peer_static: StaticPublicKey) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        info.established = true;
        info.progress_at = self.now;
        info.peer_static = Some(peer_static);
        info.peer = Some(peer);
        let kind = info.kind;
        match kind {
            ConnKind::IntakeIn => {
                // The request follows; the peer is proven (identity proof).
                let id = self
                    .profile
                    .contact_by_intake(&Public32(*peer.as_bytes()))
                    .map(|c| c.id);
                if let Some(info) = self.conns.get_mut(&conn) {
                    info.contact = id;
                }
            }
            ConnKind::IntakeOut(id) => {
                // Their static key, proven for their intake id: what our
                // endpoint will demand when they answer.
                let s = Public32(peer_static.0);
                if let Some(c) = self.profile.contact_mut(id)
                    && c.their_static != Some(s)
                {
                    c.their_static = Some(s);
                    self.changed();
                }
            }
            ConnKind::EndpointIn => {
                let Some(id) = self
                    .profile
                    .contact_by_intake(&Public32(*peer.as_bytes()))
                    .map(|c| c.id)
                else {
                    self.close_conn(conn, CloseReason::NotAContact);
                    return;
                };
                if let Some(info) = self.conns.get_mut(&conn) {
                    info.contact = Some(id);
                }
                self.activate(conn, id, false);
            }
            ConnKind::EndpointOut(id) => self.activate(conn, id, true),
        }
    }

    /// An endpoint session with contact `id` is up: make it the one.
    fn activate(&mut self, conn: ConnId, id: ContactId, we_initiated: bool) {
        let Some(c) = self.profile.contact(id) else {
            self.close_conn(conn, CloseReason::NotAContact);
            return;
        };
        let their_intake = c.intake;
        let accept_pending = c.accept_pending && c.state == ContactState::Accepted;
        let previous = self.links.get(&id).and_then(|r| r.active);
        if let Some(prev) = previous.filter(|p| *p != conn) {
            // Both sides dialled. Keep the session opened by the side with
            // the smaller intake id, as the other side computes too; if one
            // side opened both, the newer one wins (the older is likely
            // dead).
            let dialler = |us: bool| if us { Dialler::Us } else { Dialler::Them };
            let prev_we_initiated = matches!(
                self.conns.get(&prev).map(|c| c.kind),
                Some(ConnKind::EndpointOut(_))
            );
            let theirs = OnionId::from_bytes(their_intake.0).ok();
            let new_wins = theirs.is_none_or(|theirs| {
                flow::survivor(
                    &self.local.identity.onion_id(),
                    &theirs,
                    dialler(prev_we_initiated),
                    dialler(we_initiated),
                ) == flow::Survivor::New
            });
            if new_wins {
                self.close_conn(prev, CloseReason::Replaced);
            } else {
                self.close_conn(conn, CloseReason::Replaced);
                return;
            }
        }
        let was_online = previous.is_some();
        let initial = self.config.backoff_initial;
        if let Some(r) = self.links.get_mut(&id) {
            r.active = Some(conn);
            r.sent_upto = 0;
            r.ack_sent = None;
            r.ack_claimed = 0;
            r.peer_synced = false;
            r.backoff = initial;
            r.next_dial = None;
        }
        if accept_pending
            && !we_initiated
            && let Some(a) = self.contact_accept(id)
        {
            self.send_on(conn, a);
        }
        // Start the outbox over on this session: the peer drops duplicates.
        // It goes out once the peer's SYNC has said where it stands.
        if let Some(c) = self.profile.contact(id) {
            let first = c.outbox.first().map(|q| q.id).unwrap_or(u64::MAX);
            let sync = Message::Sync {
                resend_from: c.outbox.first().map(|q| q.id).unwrap_or(c.next_message_id),
                last: c.last_received_id,
            };
            if let Some(r) = self.links.get_mut(&id) {
                r.sent_upto = first.saturating_sub(1).min(r.durable_upto);
            }
            self.send_on(conn, sync);
            self.tell_history(id);
        }
        self.resume_transfers(id);
        if !was_online {
            self.emit(Event::Presence {
                contact: id,
                online: true,
            });
            self.emit_contact(id);
        }
    }

    fn on_message(&mut self, conn: ConnId, m: Message) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        let kind = info.kind;
        let contact = info.contact;
        // We asked and have no answer yet: the contact's first message is
        // the answer (PROTOCOL.md §8 step 3).
        let awaiting_answer = contact
            .and_then(|id| self.profile.contact(id))
            .is_some_and(|c| c.state == ContactState::OutgoingPending);
        let role = match kind {
            ConnKind::IntakeIn => flow::SessionRole::IntakeResponder,
            ConnKind::IntakeOut(_) => flow::SessionRole::IntakeRequester,
            ConnKind::EndpointIn | ConnKind::EndpointOut(_) => flow::SessionRole::Endpoint,
        };
        if !flow::allowed(role, info.request_received, awaiting_answer, &m) {
            self.close_conn(conn, CloseReason::ProtocolViolation);
            return;
        }
        // A session that lost to another (PROTOCOL.md §6.8): only what does
        // not depend on the session is still handled.
        let lost = role == flow::SessionRole::Endpoint
            && contact
                .and_then(|id| self.links.get(&id))
                .and_then(|r| r.active)
                .is_some_and(|active| active != conn);
        if lost && !flow::kept_from_a_lost_session(&m) {
            return;
        }
        match m {
            Message::Keepalive | Message::Close(_) => {}
            Message::ContactRequest(req) => self.on_contact_request(conn, req),
            Message::ContactAccept(acc) => {
                let id = match kind {
                    ConnKind::IntakeOut(id) => Some(id),
                    _ => contact,
                };
                if let Some(id) = id {
                    self.on_contact_accept(conn, id, acc);
                }
            }
            Message::ContactReject => {
                let id = match kind {
                    ConnKind::IntakeOut(id) => Some(id),
                    _ => contact,
                };
                if let Some(id) = id
                    && self
                        .profile
                        .contact(id)
                        .is_some_and(|c| c.state == ContactState::OutgoingPending)
                {
                    let _ = self.drop_contact(id, Removal::Remove);
                    self.emit(Event::RequestRejected { contact: id });
                }
            }
            Message::Chat(chat) => {
                if let Some(id) = contact {
                    self.on_chat(conn, id, chat);
                }
            }
            Message::Ack { id: n } => {
                if let Some(id) = contact {
                    self.on_ack(conn, id, n);
                }
            }
            Message::Sync { resend_from, last } => {
                if let Some(id) = contact {
                    self.on_sync(conn, id, resend_from, last);
                }
            }
            Message::History { kept } => {
                if let Some(id) = contact
                    && let Some(c) = self.profile.contact_mut(id)
                    && c.peer_keeps_history != Some(kept)
                {
                    let before = c.peer_keeps_history;
                    c.peer_keeps_history = Some(kept);
                    self.changed();
                    self.emit_contact(id);
                    // The first word from a contact is no change to tell.
                    if before.is_some() {
                        self.emit(Event::PeerHistoryChanged { contact: id, kept });
                    }
                }
            }
            other => {
                if let Some(id) = contact {
                    self.on_file_message(conn, id, other);
                }
            }
        }
    }

    fn on_contact_request(&mut self, conn: ConnId, req: ContactRequest) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        info.request_received = true;
        let Some(peer_static) = info.peer_static else {
            return;
        };
        // Who asks is proven by the handshake; look them up again now.
        let Some(peer) = self.proven_peer(conn) else {
            return;
        };
        let intake = Public32(*peer.as_bytes());
        let their = (
            Some(Public32(peer_static.0)),
            Some(Public32(*req.endpoint.as_bytes())),
            Some(Secret32(req.discovery_key.0)),
        );
        // Review finding L5: the endpoint must be theirs to give.
        let ours = (&self.local.identity.onion_id(), &self.local.endpoint);
        if !flow::endpoint_is_theirs(&req.endpoint, ours, &peer) {
            self.close_conn(conn, CloseReason::ProtocolViolation);
            return;
        }
        let existing = self
            .profile
            .contact_by_intake(&intake)
            .map(|c| (c.id, c.state, c.their_static));
        // Everyone who is not already our contact (or someone we asked)
        // passes the same gate, whatever we hold about them: a stranger, a
        // pending requester asking again, a rejected or blocked one. So
        // none of them can tell from the answer which of these they are,
        // and none can make us write faster than the token bucket allows
        // (review findings H2, M4).
        let asked_or_contact = matches!(
            existing,
            Some((_, ContactState::OutgoingPending | ContactState::Accepted, _))
        );
        if !asked_or_contact && !self.take_request_token(intake) {
            // Not stored, and not a normal close: the requester tries again
            // later.
            self.close_conn(conn, CloseReason::Shutdown);
            return;
        }
        if self.profile.rejected.contains(&intake) || self.profile.blocked.contains(&intake) {
            // Dropped, with the receipt a stored request gets, as late as
            // one: it learns nothing.
            self.receipt(conn, 0);
            return;
        }
        if let Some((_, _, Some(on_file))) = existing
            && on_file != Public32(peer_static.0)
        {
            // Same intake id, another static key: not the person we know
            // (PROTOCOL.md §8 step 6). Nothing changes; it learns nothing.
            self.receipt(conn, 0);
            return;
        }
        let existing = existing.map(|(id, state, _)| (id, state));
        match existing {
            Some((id, ContactState::IncomingPending)) => {
                // A repeat: keep the latest details; an identical one
                // changes nothing and writes nothing.
                let changed = self.profile.contact_mut(id).is_some_and(|c| {
                    let same = c.their_static == their.0
                        && c.their_endpoint == their.1
                        && c.their_discovery_key == their.2
                        && c.greeting == req.greeting
                        && c.suggested_nickname == req.nickname;
                    if !same {
                        (c.their_static, c.their_endpoint, c.their_discovery_key) = their;
                        c.greeting = req.greeting;
                        c.suggested_nickname = req.nickname;
                    }
                    !same
                });
                if changed {
                    self.changed();
                    self.emit_contact(id);
                }
            }
            Some((id, state)) => {
                // We asked them too, or they lost their profile and ask
                // again: either way both want it, so it is accepted.
                let changed = self.profile.contact_mut(id).is_some_and(|c| {
                    let same = c.their_static == their.0
                        && c.their_endpoint == their.1
                        && c.their_discovery_key == their.2
                        && c.state == ContactState::Accepted
                        && c.request_delivered
                        && c.accept_pending;
                    (c.their_static, c.their_endpoint, c.their_discovery_key) = their;
                    c.state = ContactState::Accepted;
                    c.request_delivered = true;
                    c.accept_pending = true;
                    !same
                });
                if let Some(a) = self.contact_accept(id) {
                    self.send_on(conn, a);
                }
                if changed {
                    self.changed();
                    if let Some(r) = self.links.get_mut(&id) {
                        r.next_dial = Some(self.now);
                    }
                    if state == ContactState::OutgoingPending {
                        self.emit(Event::RequestAccepted { contact: id });
                    }
                    self.emit_contact(id);
                }
            }
            None => {
                let id = self.profile.allocate_contact_id();
                // Replaced by a fresh key on accept; never authorized
                // while pending.
                let placeholder = self.random_secret();
                self.profile.contacts.push(Contact {
                    id,
                    intake,
                    nickname: String::new(),
                    state: ContactState::IncomingPending,
                    greeting: req.greeting,
                    suggested_nickname: req.nickname,
                    request_delivered: false,
                    accept_pending: false,
                    their_static: their.0,
                    their_endpoint: their.1,
                    their_discovery_key: their.2,
                    our_discovery_key: placeholder,
                    history_enabled: false,
                    next_message_id: 1,
                    last_received_id: 0,
                    outbox: Vec::new(),
                    history: Vec::new(),
                    created_at: self.unix,
                    unsynced_from: Some(1),
                    verified: false,
                    peer_keeps_history: None,
                });
                self.links.insert(
                    id,
                    Link {
                        first_new: 1,
                        backoff: self.config.backoff_initial,
                        ..Link::default()
                    },
                );
                self.changed();
                if let Some(c) = self.profile.contact(id) {
                    let contact = self.summary(c);
                    self.emit(Event::RequestReceived { contact });
                }
            }
        }
        // "Received": the requester takes a normal close as delivery, so it
        // goes out only once the request is on disk.
        let change = self.disk.change();
        self.receipt(conn, change);
    }

    /// CLOSE 0 for a request on `conn` once `change` is on disk, and never
    /// sooner than `receipt_delay`: every outcome waits the same, so the
    /// wait does not tell a requester that it is blocked (§7.7).
    fn receipt(&mut self, conn: ConnId, change: u64) {
        self.disk.receipt(conn, change, self.now);
        self.release_receipts();
    }

    fn release_receipts(&mut self) {
        let due = self.disk.due_receipts(
            self.now,
            self.config.receipt_delay,
            self.config.step_timeout,
        );
        for (conn, reason) in due {
            self.close_conn(conn, reason);
        }
    }

    /// One token of the intake's bucket, if there is one, the pending list
    /// has room, and this (proven) requester did not take one lately.
    fn take_request_token(&mut self, requester: Public32) -> bool {
        let room = self.pending_requests() < self.config.max_pending_requests;
        self.request_gate.take(self.now, requester, room)
    }

    fn pending_requests(&self) -> usize {
        self.profile
            .contacts
            .iter()
            .filter(|c| c.state == ContactState::IncomingPending)
            .count()
    }

    /// The peer's id as the handshake proved it (`Established`).
    fn proven_peer(&self, conn: ConnId) -> Option<OnionId> {
        self.conns.get(&conn)?.peer
    }

    /// The peer read enough of what we queued: send more of what was held
    /// back (the outbox, file chunks).
    fn on_drained(&mut self, conn: ConnId) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        let id = match info.kind {
            ConnKind::EndpointOut(id) => Some(id),
            _ => info.contact,
        };
        let Some(id) = id else { return };
        if self.links.get(&id).and_then(|r| r.active) == Some(conn) {
            self.flush_outbox(id);
            self.pump_transfers_of(id);
        }
    }

    fn on_contact_accept(&mut self, conn: ConnId, id: ContactId, acc: ContactAccept) {
        let Some(c) = self.profile.contact(id) else {
            return;
        };
        let was = c.state;
        if was == ContactState::IncomingPending {
            return;
        }
        // An endpoint, once known, is final: only the holder of the
        // contact's static key can send this, and if that key was stolen a
        // new endpoint would carry our messages to the thief (PROTOCOL.md
        // §8 step 4). A new discovery key for the same endpoint is a
        // re-issue and is taken.
        let on_file = match (was, c.their_endpoint) {
            (ContactState::Accepted, Some(e)) => OnionId::from_bytes(e.0).ok().map(|e| {
                let key = c.their_discovery_key.as_ref().map_or([0; 32], |k| k.0);
                (e, key)
            }),
            _ => None,
        };
        let verdict =
            OnionId::from_bytes(c.intake.0).map_or(flow::AcceptVerdict::Violation, |theirs| {
                flow::accept_verdict(
                    on_file.as_ref().map(|(e, k)| (e, k)),
                    &acc.endpoint,
                    &acc.discovery_key.0,
                    (&self.local.identity.onion_id(), &self.local.endpoint),
                    &theirs,
                )
            });
        if verdict == flow::AcceptVerdict::Violation {
            self.close_conn(conn, CloseReason::ProtocolViolation);
            return;
        }
        let endpoint = Some(Public32(*acc.endpoint.as_bytes()));
        let key = Some(Secret32(acc.discovery_key.0));
        // A repeat (sent at the start of every session until confirmed)
        // changes nothing and writes nothing (review finding M4).
        let repeat = verdict == flow::AcceptVerdict::Repeat && c.request_delivered;
        let last = c.last_received_id;
        let change = if repeat {
            self.links.get(&id).map(|r| r.last_change).unwrap_or(0)
        } else {
            if let Some(c) = self.profile.contact_mut(id) {
                c.their_endpoint = endpoint;
                c.their_discovery_key = key;
                c.state = ContactState::Accepted;
                c.request_delivered = true;
            }
            self.changed()
        };
        if let Some(r) = self.links.get_mut(&id) {
            if !repeat {
                r.next_dial = Some(self.now);
            }
            // Confirm (PROTOCOL.md §8), once what it confirms is saved.
            r.ack_due = Some((last, change));
        }
        let kind = self.conns.get(&conn).map(|c| c.kind);
        if matches!(kind, Some(ConnKind::EndpointIn | ConnKind::EndpointOut(_))) {
            let active = self.links.get(&id).and_then(|r| r.active);
            if active.is_none() {
                let we = matches!(kind, Some(ConnKind::EndpointOut(_)));
                self.activate(conn, id, we);
            }
        } else {
            // On the intake: done there; the endpoint session follows.
            self.close_conn(conn, CloseReason::Normal);
        }
        if was == ContactState::OutgoingPending {
            self.emit(Event::RequestAccepted { contact: id });
            self.emit_contact(id);
        }
    }

    fn on_chat(&mut self, conn: ConnId, id: ContactId, chat: Chat) {
        let Some(r) = self.links.get(&id) else { return };
        if r.active != Some(conn) {
            // Not the session we keep: it is being replaced.
            return;
        }
        if !r.peer_synced {
            // A CHAT before the SYNC could reuse ids we would take for
            // duplicates (PROTOCOL.md §6.3).
            self.close_conn(conn, CloseReason::ProtocolViolation);
            return;
        }
        let Some(c) = self.profile.contact_mut(id) else {
            return;
        };
        if c.state != ContactState::Accepted {
            return;
        }
        let last = c.last_received_id;
        if chat.id == last.saturating_add(1) {
            c.last_received_id = chat.id;
            let at = self.unix;
            if c.history_enabled {
                c.history.push(HistoryEntry {
                    direction: Direction::Incoming,
                    id: chat.id,
                    text: chat.text.clone(),
                    at,
                    delivered: true,
                });
                trim_history(&mut c.history);
            }
            let change = self.changed();
            if let Some(r) = self.links.get_mut(&id) {
                r.ack_due = Some((chat.id, change));
                r.last_change = change;
            }
            self.emit(Event::MessageReceived {
                contact: id,
                message: MessageView {
                    direction: Direction::Incoming,
                    id: chat.id,
                    text: chat.text,
                    at,
                    state: None,
                },
            });
        } else if chat.id <= last {
            // A duplicate: acknowledge again once `last` is safe on disk,
            // but once per session (the stream is reliable): repeating a
            // message must not make us repeat an answer (review finding M2).
            let durable = self.disk.durable();
            let mut send = false;
            if let Some(r) = self.links.get_mut(&id) {
                if r.ack_sent == Some(last) {
                } else if r.last_change <= durable {
                    r.ack_sent = Some(last);
                    send = true;
                } else {
                    r.ack_due = Some((last, r.last_change));
                }
            }
            if send {
                self.send_on(conn, Message::Ack { id: last });
            }
        }
        // A gap: say nothing; the sender starts over from its first
        // unacknowledged message on the next session.
    }

    /// The contact's SYNC (PROTOCOL.md §6.3): where it stands. Either of us
    /// may have gone back in time (a profile restored from an older copy,
    /// or a contact removed and added again); both directions resume.
    fn on_sync(&mut self, conn: ConnId, id: ContactId, resend_from: u64, peer_last: u64) {
        let Some(r) = self.links.get_mut(&id) else {
            return;
        };
        if r.active != Some(conn) {
            return;
        }
        if resend_from > MAX_SYNC_ID || peer_last > MAX_SYNC_ID {
            self.close_conn(conn, CloseReason::ProtocolViolation);
            return;
        }
        let Some(r) = self.links.get_mut(&id) else {
            return;
        };
        let first = !r.synced;
        r.synced = true;
        r.peer_synced = true;
        let first_new = r.first_new;
        // They dropped messages we acknowledged, but our `last` no longer
        // covers them: we lost them. Say so, and take what comes next.
        let gap = self
            .profile
            .contact(id)
            .map(|c| c.last_received_id)
            .filter(|last| resend_from > last.saturating_add(1));
        if let Some(last) = gap {
            if let Some(c) = self.profile.contact_mut(id) {
                c.last_received_id = resend_from - 1;
            }
            let change = self.changed();
            if let Some(r) = self.links.get_mut(&id) {
                r.last_change = change;
            }
            self.emit(Event::MessagesMissing {
                contact: id,
                from: last + 1,
                to: resend_from - 1,
            });
        }
        // They hold ids we handed out before and forgot: our own state
        // went back. Checked on the first SYNC of this run, before any of
        // this run's messages can have reached them.
        if first && peer_last >= first_new {
            self.renumber(id, peer_last);
        }
        if first
            && let Some(c) = self.profile.contact_mut(id)
            && c.unsynced_from.take().is_some()
        {
            let change = self.changed();
            if let Some(r) = self.links.get_mut(&id) {
                r.sync_change = Some(change);
            }
        }
        self.flush_outbox(id);
    }

    /// Our sending state went back in time and the contact already has ids
    /// up to `peer_last`. What was in the restored outbox (ids below
    /// `first_new`) is what they received under those ids; what this run
    /// queued gets fresh ids after theirs, so nothing is taken for a
    /// duplicate and dropped.
    fn renumber(&mut self, id: ContactId, peer_last: u64) {
        let Some(first_new) = self.links.get(&id).map(|r| r.first_new) else {
            return;
        };
        let Some(c) = self.profile.contact_mut(id) else {
            return;
        };
        let mut delivered = Vec::new();
        c.outbox.retain(|q| {
            let had = q.id < first_new;
            if had {
                delivered.push(q.id);
            }
            !had
        });
        let mut renumbered = Vec::new();
        let mut next = peer_last.saturating_add(1);
        for q in &mut c.outbox {
            renumbered.push((q.id, next));
            q.id = next;
            next += 1;
        }
        for h in c
            .history
            .iter_mut()
            .filter(|h| h.direction == Direction::Outgoing)
        {
            if let Some(&(_, new)) = renumbered.iter().find(|(old, _)| *old == h.id) {
                h.id = new;
            } else if delivered.contains(&h.id) {
                h.delivered = true;
            }
        }
        c.next_message_id = next;
        let change = self.changed();
        if let Some(r) = self.links.get_mut(&id) {
            // Nothing renumbered is on disk under its new id yet.
            r.durable_upto = peer_last;
            r.sent_upto = peer_last;
            r.first_new = next;
            r.unsaved = renumbered.iter().map(|&(_, new)| (new, change)).collect();
        }
        for msg in delivered {
            self.emit(Event::MessageState {
                contact: id,
                id: msg,
                state: DeliveryState::Delivered,
            });
        }
        if !renumbered.is_empty() {
            self.emit(Event::MessagesRenumbered {
                contact: id,
                renumbered,
            });
        }
        self.emit_contact(id);
    }

    fn on_ack(&mut self, conn: ConnId, id: ContactId, n: u64) {
        let Some(c) = self.profile.contact_mut(id) else {
            return;
        };
        // The acceptor's confirmation (PROTOCOL.md §8).
        let mut changed = false;
        if c.accept_pending {
            c.accept_pending = false;
            changed = true;
        }
        // Never more than we wrote to a session: a hostile (or confused)
        // ack cannot drop mail it never received (review finding L5). The
        // claim is remembered and applied as more is written, since the
        // peer answers a duplicate only once per session.
        let n = match self.links.get_mut(&id) {
            Some(r) => {
                r.ack_claimed = r.ack_claimed.max(n);
                r.ack_claimed.min(r.written_upto)
            }
            None => 0,
        };
        let mut delivered = Vec::new();
        c.outbox.retain(|q| {
            if q.id <= n {
                delivered.push(q.id);
                false
            } else {
                true
            }
        });
        if !delivered.is_empty() {
            for h in c
                .history
                .iter_mut()
                .filter(|h| h.direction == Direction::Outgoing && h.id <= n)
            {
                h.delivered = true;
            }
            changed = true;
        }
        if changed {
            self.changed();
        }
        let _ = conn;
        for msg in &delivered {
            self.emit(Event::MessageState {
                contact: id,
                id: *msg,
                state: DeliveryState::Delivered,
            });
        }
        if !delivered.is_empty() {
            self.emit_contact(id);
        }
    }

    fn on_closed(&mut self, conn: ConnId, cause: CloseCause) {
        let Some(info) = self.conns.remove(&conn) else {
            return;
        };
        if info.kind == ConnKind::IntakeIn {
            self.disk.forget_receipt(conn);
        }
        // An older peer refused our versions: the next dial offers the
        // highest one both speak (PROTOCOL.md §4.3, version negotiation).
        if let CloseCause::Refused(RefuseReason::UnsupportedVersion(theirs)) = &cause
            && let ConnKind::IntakeOut(id) | ConnKind::EndpointOut(id) = info.kind
        {
            let common: Vec<u8> = allium_protocol::SUPPORTED_VERSIONS
                .iter()
                .copied()
                .filter(|v| theirs.contains(v))
                .collect();
            if let Some(r) = self.links.get_mut(&id)
                && !common.is_empty()
            {
                r.versions = Some(common);
            }
        }
        match info.kind {
            ConnKind::IntakeOut(id) => {
                let delivered = info.established
                    && flow::receipt(info.request_sent, &cause) == flow::Receipt::Received;
                let pending = self
                    .profile
                    .contact(id)
                    .is_some_and(|c| c.state == ContactState::OutgoingPending);
                if delivered && pending {
                    if let Some(c) = self.profile.contact_mut(id) {
                        c.request_delivered = true;
                    }
                    self.changed();
                    self.emit(Event::RequestDelivered { contact: id });
                    self.emit_contact(id);
                } else if pending {
                    self.retry_later(id, true);
                }
            }
            ConnKind::EndpointIn | ConnKind::EndpointOut(_) => {
                let id = match info.kind {
                    ConnKind::EndpointOut(id) => Some(id),
                    _ => info.contact,
                };
                let Some(id) = id else { return };
                let was_active = self.links.get(&id).and_then(|r| r.active) == Some(conn);
                if was_active {
                    let mut sent_upto = 0;
                    if let Some(r) = self.links.get_mut(&id) {
                        r.active = None;
                        sent_upto = std::mem::take(&mut r.sent_upto);
                    }
                    // What was written but not acknowledged may never have
                    // arrived: it waits again, and says so, until the next
                    // session resends it.
                    let unacked: Vec<u64> = self
                        .profile
                        .contact(id)
                        .map(|c| {
                            c.outbox
                                .iter()
                                .map(|q| q.id)
                                .filter(|m| *m <= sent_upto)
                                .collect()
                        })
                        .unwrap_or_default();
                    for msg in unacked {
                        self.emit(Event::MessageState {
                            contact: id,
                            id: msg,
                            state: DeliveryState::Queued,
                        });
                    }
                    self.pause_transfers(id);
                    self.emit(Event::Presence {
                        contact: id,
                        online: false,
                    });
                    self.emit_contact(id);
                    let failed = flow::redial_after(&cause) == flow::Redial::Backoff;
                    self.retry_later(id, failed);
                } else if matches!(info.kind, ConnKind::EndpointOut(_))
                    && self.links.get(&id).is_some_and(|r| r.active.is_none())
                {
                    // Our dial never became the session (refused, failed).
                    self.retry_later(id, true);
                }
            }
            ConnKind::IntakeIn => {}
        }
    }
}

/// How a contact or request ends (named so as not to shadow `Drop`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Removal {
    Reject,
    Block,
    Remove,
}

fn trim_history(h: &mut Vec<HistoryEntry>) {
    if h.len() > MAX_HISTORY {
        let extra = h.len() - MAX_HISTORY;
        h.drain(..extra);
    }
}
