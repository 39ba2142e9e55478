//! The engine's tokio shell: the only part of the engine that spawns,
//! sleeps, reads the clock, dials, publishes, saves and touches files. It
//! feeds the [`Core`] its inputs with the time they arrived, carries out
//! the [`Effect`]s the core queues, and turns what that work returns back
//! into [`Input`]s. It decides nothing about contacts, sessions or
//! delivery; anything it would have to decide belongs in the core.
//!
//! Backpressure lives here, because it is about the channels: while
//! whoever reads the events (the window, a JSON-RPC client) is behind,
//! the shell takes no input that would add to them, and connection tasks
//! then stop reading their peers.

use std::collections::{HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use allium_onion::{Connection, DialError, ServiceError, ServiceHandle, Transport};
use allium_protocol::{CloseCause, CloseReason, Event as SessionEvent, Purpose};
use allium_vault::{ContactId, Profile};
use rand_core::OsRng;
use tokio::sync::mpsc;

use super::conn::{self, ConnEvent, ConnId, FromConn, ToConn};
use super::core::{Core, Effect, Input, Now, Service, StreamId};
use super::{Command, EngineConfig, Event, Notify, ProfileSaver, SaveError, ServiceState};

/// Events waiting for the window or the JSON-RPC client. When they stop
/// reading, the engine stops taking input (see `run`): backpressure, so
/// nothing is dropped and nothing grows.
pub(super) const EVENT_QUEUE: usize = 4096;
/// Room the engine wants in the event queue before it handles the next
/// input (most inputs emit a few events).
const EVENT_MARGIN: usize = 256;
/// Events from connection tasks waiting for the engine; a full queue makes
/// them stop reading their peers.
const CONN_EVENT_QUEUE: usize = 1024;

/// What the shell's helper tasks report: an input for the core as it is,
/// or a result holding what the core must not hold (a stream, a service
/// handle, the store).
enum Done {
    Input(Input),
    Dialed {
        contact: ContactId,
        purpose: Purpose,
        result: Result<Connection, DialError>,
    },
    Published {
        service: Service,
        generation: u64,
        result: Result<ServiceHandle, ServiceError>,
    },
    Incoming {
        service: Service,
        generation: u64,
        conn: Connection,
    },
    Saved {
        generation: u64,
        result: Result<(), SaveError>,
        store: Box<dyn ProfileSaver>,
    },
}

struct Shell<T: Transport> {
    core: Core,
    transport: T,
    events: mpsc::Sender<Event>,
    /// Events emitted while the queue was full: by the input that filled
    /// it, by local requests, and by sends resumed when a peer read
    /// (bounded by the outbox and the transfers), never by further peer
    /// input, which waits for room.
    overflow: VecDeque<Event>,
    notify: Option<Notify>,
    done_tx: mpsc::UnboundedSender<Done>,
    conn_tx: mpsc::Sender<FromConn>,
    /// Each running connection task's command channel.
    conns: HashMap<ConnId, mpsc::UnboundedSender<ToConn>>,
    /// Streams the core has not yet opened a session on or let go.
    streams: HashMap<StreamId, Connection>,
    next_stream: StreamId,
    /// The launch of each service the core asked for last.
    launching: HashMap<Service, u64>,
    /// Running services (dropping a handle takes the service down).
    services: HashMap<Service, ServiceHandle>,
    /// Out while a save runs.
    store: Option<Box<dyn ProfileSaver>>,
    /// A save asked for while one was running.
    pending_save: Option<(u64, Box<Profile>)>,
}

fn now() -> Now {
    Now {
        at: tokio::time::Instant::now().into_std(),
        unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }
}

/// Starts the engine for `profile`: its core, and the task that runs it.
pub(super) fn spawn<T: Transport>(
    transport: T,
    profile: Profile,
    store: Box<dyn ProfileSaver>,
    config: EngineConfig,
    requests: mpsc::UnboundedReceiver<Command>,
    events: mpsc::Sender<Event>,
    notify: Option<Notify>,
) -> (allium_protocol::OnionId, tokio::task::JoinHandle<()>) {
    let core = Core::new(
        profile,
        config,
        store.keeps_nothing(),
        now(),
        Box::new(OsRng),
    );
    let address = core.address();
    let (done_tx, done_rx) = mpsc::unbounded_channel();
    let (conn_tx, conn_rx) = mpsc::channel(CONN_EVENT_QUEUE);
    let shell = Shell {
        core,
        transport,
        events,
        overflow: VecDeque::new(),
        notify,
        done_tx,
        conn_tx,
        conns: HashMap::new(),
        streams: HashMap::new(),
        next_stream: 1,
        launching: HashMap::new(),
        services: HashMap::new(),
        store: Some(store),
        pending_save: None,
    };
    (address, tokio::spawn(shell.run(requests, done_rx, conn_rx)))
}

impl<T: Transport> Shell<T> {
    async fn run(
        mut self,
        mut requests: mpsc::UnboundedReceiver<Command>,
        mut done: mpsc::UnboundedReceiver<Done>,
        mut conn_events: mpsc::Receiver<FromConn>,
    ) {
        self.core.start(now());
        let mut requests_open = true;
        loop {
            self.run_effects();
            if self.core.finished() {
                self.run_effects();
                break;
            }
            self.drain_overflow();
            // Shutting down, every connection must be heard closing, so
            // the gate opens (what it emits is bounded by the
            // connections). Requests are never held back: a client that
            // stops reading is held back by its own output, and `Shutdown`
            // must get through.
            let room = self.has_event_room() || self.core.shutting_down();
            let wake = tokio::time::Instant::from_std(self.core.poll_timeout());
            let input = tokio::select! {
                req = requests.recv(), if requests_open => match req {
                    Some(c) => Input::Command(c),
                    None => {
                        requests_open = false;
                        Input::RequestsClosed
                    }
                },
                Some(ev) = conn_events.recv(), if room => {
                    if matches!(ev.event, ConnEvent::Session(SessionEvent::Closed(_))) {
                        // Its last event: the task is ending.
                        self.conns.remove(&ev.conn);
                    }
                    Input::Conn(ev)
                }
                Some(d) = done.recv(), if room => self.input_from(d),
                _ = tokio::time::sleep_until(wake) => Input::Tick,
            };
            self.core.handle(now(), input);
        }
    }

    /// What a helper task's report means to the core (keeping what the
    /// core must not hold: streams, service handles, the store).
    fn input_from(&mut self, done: Done) -> Input {
        match done {
            Done::Dialed {
                contact,
                purpose,
                result,
            } => Input::Dialed {
                contact,
                purpose,
                result: result.map(|conn| self.keep_stream(conn)),
            },
            Done::Published {
                service,
                generation,
                result,
            } => {
                let result = result.map(|handle| {
                    if self.launching.get(&service) == Some(&generation) {
                        self.watch(service, generation, handle);
                    }
                });
                Input::Published {
                    service,
                    generation,
                    result,
                }
            }
            Done::Input(input) => input,
            Done::Incoming {
                service,
                generation,
                conn,
            } => Input::Incoming {
                service,
                generation,
                stream: self.keep_stream(conn),
            },
            Done::Saved {
                generation,
                result,
                store,
            } => {
                self.store = Some(store);
                if let Some((generation, profile)) = self.pending_save.take() {
                    self.save(generation, profile);
                }
                Input::Saved { generation, result }
            }
        }
    }

    fn keep_stream(&mut self, conn: Connection) -> StreamId {
        let id = self.next_stream;
        self.next_stream += 1;
        self.streams.insert(id, conn);
        id
    }

    /// A launched service: its streams and its state go to the core under
    /// its generation; the handle is kept (dropping it stops the service).
    fn watch(&mut self, service: Service, generation: u64, mut handle: ServiceHandle) {
        let tx = self.done_tx.clone();
        if let Some(mut incoming) = handle.take_incoming() {
            let tx = tx.clone();
            tokio::spawn(async move {
                while let Some(conn) = incoming.accept().await {
                    let done = Done::Incoming {
                        service,
                        generation,
                        conn,
                    };
                    if tx.send(done).is_err() {
                        break;
                    }
                }
            });
        }
        let mut status = handle.status();
        tokio::spawn(async move {
            loop {
                let state = ServiceState::from(*status.borrow_and_update());
                let done = Done::Input(Input::ServiceState {
                    service,
                    generation,
                    state,
                });
                if tx.send(done).is_err() || status.changed().await.is_err() {
                    break;
                }
            }
        });
        self.services.insert(service, handle);
    }

    fn run_effects(&mut self) {
        while let Some(effect) = self.core.poll_effect() {
            self.run_effect(effect);
        }
    }

    fn run_effect(&mut self, effect: Effect) {
        match effect {
            Effect::Event(e) => self.emit(e),
            Effect::Save {
                generation,
                profile,
            } => self.save(generation, profile),
            Effect::Publish {
                service,
                generation,
                key,
                authorized,
            } => {
                // A new launch replaces the old one.
                self.services.remove(&service);
                self.launching.insert(service, generation);
                let transport = self.transport.clone();
                let tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let result = match service {
                        Service::Intake => transport.publish_intake(&key).await,
                        Service::Endpoint => transport.publish_endpoint(&key, authorized).await,
                    };
                    let _ = tx.send(Done::Published {
                        service,
                        generation,
                        result,
                    });
                });
            }
            Effect::Stop(service) => {
                self.launching.remove(&service);
                self.services.remove(&service);
            }
            Effect::Authorize(desired) => self.authorize(&desired),
            Effect::Dial {
                contact,
                purpose,
                target,
                key,
            } => {
                let transport = self.transport.clone();
                let tx = self.done_tx.clone();
                tokio::spawn(async move {
                    let result = transport.dial(target, key.as_ref()).await;
                    drop(key);
                    let _ = tx.send(Done::Dialed {
                        contact,
                        purpose,
                        result,
                    });
                });
            }
            Effect::Open {
                conn,
                stream,
                session,
                replay,
                queue,
            } => {
                let Some(stream) = self.streams.remove(&stream) else {
                    // Cannot happen (the core opens each stream it was
                    // given once); if it did, the core hears the end.
                    tracing::error!("the engine opened a stream it does not have");
                    let closed = SessionEvent::Closed(CloseCause::Local(CloseReason::Shutdown));
                    let _ = self.conn_tx.try_send(FromConn {
                        conn,
                        event: ConnEvent::Session(closed),
                    });
                    return;
                };
                let (tx, rx) = mpsc::unbounded_channel();
                self.conns.insert(conn, tx);
                tokio::spawn(conn::run(
                    conn,
                    *session,
                    stream,
                    rx,
                    self.conn_tx.clone(),
                    replay,
                    queue,
                ));
            }
            Effect::Discard(stream) => {
                self.streams.remove(&stream);
            }
            Effect::Conn(conn, command) => {
                if let Some(tx) = self.conns.get(&conn) {
                    let _ = tx.send(command);
                }
            }
            Effect::File(job) => {
                let tx = self.done_tx.clone();
                tokio::task::spawn_blocking(move || {
                    let _ = tx.send(Done::Input(Input::File(job.run())));
                });
            }
        }
    }

    fn save(&mut self, generation: u64, profile: Box<Profile>) {
        let Some(mut store) = self.store.take() else {
            self.pending_save = Some((generation, profile));
            return;
        };
        let tx = self.done_tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = store.save(&profile);
            let _ = tx.send(Done::Saved {
                generation,
                result,
                store,
            });
        });
    }

    /// Makes the running endpoint's authorized set `desired`.
    fn authorize(&mut self, desired: &std::collections::BTreeSet<allium_onion::ClientKey>) {
        let Some(handle) = self.services.get_mut(&Service::Endpoint) else {
            return;
        };
        let current = handle.authorized().clone();
        for gone in current.difference(desired) {
            if let Err(e) = handle.revoke(gone) {
                tracing::warn!("could not revoke a contact's discovery key: {e}");
            }
        }
        for new in desired.difference(&current) {
            if let Err(e) = handle.authorize(*new) {
                tracing::warn!("could not authorize a contact's discovery key: {e}");
            }
        }
    }

    // ----- events out -------------------------------------------------

    fn emit(&mut self, e: Event) {
        if !self.overflow.is_empty() {
            self.overflow.push_back(e);
        } else if let Err(mpsc::error::TrySendError::Full(e)) = self.events.try_send(e) {
            self.overflow.push_back(e);
        }
        if let Some(n) = &self.notify {
            n();
        }
    }

    fn drain_overflow(&mut self) {
        while let Some(e) = self.overflow.pop_front() {
            match self.events.try_send(e) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(e)) => {
                    self.overflow.push_front(e);
                    break;
                }
                // Nobody listens any more.
                Err(mpsc::error::TrySendError::Closed(_)) => self.overflow.clear(),
            }
        }
    }

    fn has_event_room(&self) -> bool {
        self.events.is_closed()
            || (self.overflow.is_empty() && self.events.capacity() >= EVENT_MARGIN)
    }
}
