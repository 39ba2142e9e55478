//! A deterministic simulator of many engine cores (issue 14).
//!
//! Peers are [`Core`]s on one simulated clock. The simulator carries out
//! every effect itself: services, dials, saves, connections (`net.rs`)
//! and file work, and feeds the results back as inputs after a drawn
//! delay. Every random choice, the cores' own RNGs included, comes from
//! one seed, and nothing is iterated in an order that changes between
//! runs, so a seed always gives the same run. Faults come from the seed
//! too: dials refused, connections cut mid-frame, deliveries delayed,
//! saves that fail or are slow, crashes that restart a peer from its last
//! *durable* profile. After every step the touched core is held to its
//! bounds, and every message received is checked against what was sent
//! (`check.rs`); at the end every message must have arrived once, in
//! order, and every outbox must be empty.
//!
//! It lives inside the crate rather than in `tests/` because it drives
//! the core's crate-private inputs and effects and looks at the core's own
//! queues; those are not an API for anyone else. A failing run names its
//! seed; every seed that ever failed is kept in `regressions.txt` and
//! replayed by `seeds_that_once_failed`.
//!
//! This file (about 670 lines) keeps the world's types, its peers and the
//! phases of a run together, since each phase reads most of them; what a
//! step does is in `step.rs`, the network in `streams.rs` and `net.rs`,
//! the people in `people.rs`, the checks in `check.rs`.

mod check;
mod net;
mod people;
mod step;
mod streams;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use allium_onion::{ClientKey, DialError};
use allium_protocol::{OnionId, Purpose};
use allium_vault::{ContactId, ContactState, Profile, ProfileKeys, Secret32};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use tokio::sync::oneshot;

use super::conn::ConnId;
use super::core::{Core, Input, Now, Service, StreamId};
use super::{Command, EngineConfig, EngineError};
use net::{Pipe, PipeId, Side};

/// The answer to a command, when it comes later.
type Answer<T> = oneshot::Receiver<Result<T, EngineError>>;

/// What can go wrong, and how often.
#[derive(Clone, Debug)]
pub(super) struct Faults {
    /// Share of dials refused (the contact looks offline).
    pub(super) refuse_dial: f64,
    /// Share of deliveries after which the stream is cut, mid-frame.
    pub(super) cut: f64,
    /// Longest delay of a delivery (the shortest is 5 ms).
    pub(super) max_latency: Duration,
    /// Mean time between crashes of some peer; `None`: no crashes.
    pub(super) crash_every: Option<Duration>,
    /// Share of saves that fail.
    pub(super) save_fail: f64,
    /// Share of saves that take up to 1.5 s.
    pub(super) slow_save: f64,
}

impl Faults {
    pub(super) fn none() -> Self {
        Faults {
            refuse_dial: 0.0,
            cut: 0.0,
            max_latency: Duration::from_millis(40),
            crash_every: None,
            save_fail: 0.0,
            slow_save: 0.0,
        }
    }

    pub(super) fn all() -> Self {
        Faults {
            refuse_dial: 0.05,
            cut: 0.002,
            max_latency: Duration::from_millis(300),
            crash_every: Some(Duration::from_secs(2)),
            save_fail: 0.02,
            slow_save: 0.02,
        }
    }
}

/// One run: who, how much, and what goes wrong.
#[derive(Clone, Debug)]
pub(super) struct Plan {
    pub(super) peers: usize,
    /// Each peer asks this many of the next peers (in a ring) to be its
    /// contacts.
    pub(super) contacts_each: usize,
    pub(super) messages: u64,
    /// Simulated time between two messages (of any pair).
    pub(super) message_every: Duration,
    /// Files sent (of 20 to 200 KiB each).
    pub(super) files: u64,
    pub(super) faults: Faults,
}

/// What a run did.
#[derive(Debug, Default)]
pub(super) struct Report {
    pub(super) steps: u64,
    pub(super) simulated: Duration,
    pub(super) delivered: u64,
    /// Files received (each transfer counted once).
    pub(super) files_completed: u64,
    /// Files received a second time (see `people.rs`).
    pub(super) files_received_twice: u64,
    pub(super) crashes: u64,
    pub(super) cuts: u64,
    pub(super) refused_dials: u64,
    pub(super) failed_saves: u64,
    /// Sessions closed because another one with the same contact won
    /// (PROTOCOL.md §6.8), counted at the side that closed them.
    pub(super) replaced: u64,
}

enum Ev {
    /// An input for a core, if it has not crashed since.
    Input {
        peer: usize,
        life: u32,
        input: Input,
    },
    Tick {
        peer: usize,
        life: u32,
    },
    Published {
        peer: usize,
        life: u32,
        service: Service,
        generation: u64,
    },
    Dialed {
        peer: usize,
        life: u32,
        contact: ContactId,
        purpose: Purpose,
        result: Result<PipeId, DialError>,
    },
    Incoming {
        peer: usize,
        life: u32,
        service: Service,
        generation: u64,
        pipe: PipeId,
    },
    Saved {
        peer: usize,
        life: u32,
        generation: u64,
    },
    Bytes {
        pipe: PipeId,
        to: Side,
        bytes: Vec<u8>,
    },
    Eof {
        pipe: PipeId,
        to: Side,
    },
    Timer {
        pipe: PipeId,
        side: Side,
    },
    Crash,
    Restart {
        peer: usize,
    },
    /// The simulated people send the next message.
    Workload,
    /// The simulated people offer the next file.
    OfferFile,
}

struct Peer {
    core: Option<Core>,
    /// Bumped by each crash: what was under way for the old life is lost.
    life: u32,
    /// The profile as the last successful save left it.
    durable: Profile,
    /// The save in flight: its generation, snapshot and whether it lands.
    saving: Option<(u64, Box<Profile>, bool)>,
    intake: OnionId,
    up: BTreeMap<Service, u64>,
    launching: BTreeMap<Service, u64>,
    authorized: BTreeSet<ClientKey>,
    streams: BTreeMap<StreamId, (PipeId, Side)>,
    conns: BTreeMap<ConnId, (PipeId, Side)>,
    next_stream: StreamId,
    tick_at: Option<Duration>,
    /// Contact id → the peer it is.
    contacts: BTreeMap<ContactId, usize>,
    /// Saves do not finish until released (a disk that hangs).
    hold_saves: bool,
}

struct World {
    rng: ChaCha8Rng,
    plan: Plan,
    config: EngineConfig,
    base: Instant,
    t: Duration,
    seq: u64,
    due: BTreeMap<(Duration, u64), Ev>,
    peers: Vec<Peer>,
    /// Which peer runs each onion id (intake and endpoint).
    by_id: BTreeMap<[u8; 32], (usize, Service)>,
    pipes: BTreeMap<PipeId, Pipe>,
    next_pipe: PipeId,
    ledger: check::Ledger,
    report: Report,
    faults: bool,
    files_left: u64,
    folder: PathBuf,
    /// Files offered and not yet ended, by (sender, transfer id).
    files_open: BTreeSet<(usize, String)>,
    /// Sources of offered files, by transfer id (to compare on arrival).
    file_sources: BTreeMap<String, PathBuf>,
    /// Why incoming transfers were cancelled, by receiver.
    incoming_cancels: Vec<(usize, String)>,
    /// Offers made whose answer has not come yet.
    offers: Vec<(usize, Answer<String>, PathBuf)>,
    /// Transfers received, by id, with the receiver's life then.
    files_received: BTreeMap<String, u32>,
    failure: Option<String>,
    touched: Vec<usize>,
    /// A `Workload` event is due.
    workload_on: bool,
    /// Cores that were handed an input since their effects were last
    /// carried out.
    unsettled: Vec<usize>,
}

/// Runs `plan` under `seed`: the report, or what broke.
pub(super) fn run(seed: u64, plan: &Plan, folder: &std::path::Path) -> Result<Report, String> {
    let mut w = World::new(seed, plan.clone(), folder.to_path_buf());
    w.run().map_err(|e| format!("seed {seed}: {e}"))?;
    w.report.delivered = w.ledger.delivered;
    Ok(w.report)
}

fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    p > 0.0 && (rng.next_u64() as f64 / u64::MAX as f64) < p
}

fn between(rng: &mut ChaCha8Rng, lo: Duration, hi: Duration) -> Duration {
    let span = hi.saturating_sub(lo).as_micros() as u64;
    lo + Duration::from_micros(if span == 0 { 0 } else { rng.next_u64() % span })
}

fn secret(rng: &mut ChaCha8Rng) -> Secret32 {
    let mut s = Secret32([0; 32]);
    rng.fill_bytes(&mut s.0);
    s
}

impl World {
    pub(super) fn new(seed: u64, plan: Plan, folder: PathBuf) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let config = EngineConfig {
            // A request's receipt and a save's interval as in the app.
            ..EngineConfig::default()
        };
        let base = Instant::now();
        let mut by_id = BTreeMap::new();
        let mut peers = Vec::new();
        for i in 0..plan.peers {
            let keys = ProfileKeys {
                intake_seed: secret(&mut rng),
                endpoint_seed: secret(&mut rng),
                static_secret: secret(&mut rng),
            };
            let intake = allium_protocol::IdentityKey::from_seed(&keys.intake_seed.0).onion_id();
            let endpoint =
                allium_protocol::IdentityKey::from_seed(&keys.endpoint_seed.0).onion_id();
            by_id.insert(*intake.as_bytes(), (i, Service::Intake));
            by_id.insert(*endpoint.as_bytes(), (i, Service::Endpoint));
            let mut profile = Profile::new(keys);
            profile.settings.display_name = format!("peer {i}");
            peers.push(Peer {
                core: None,
                life: 0,
                durable: profile,
                saving: None,
                intake,
                up: BTreeMap::new(),
                launching: BTreeMap::new(),
                authorized: BTreeSet::new(),
                streams: BTreeMap::new(),
                conns: BTreeMap::new(),
                next_stream: 1,
                tick_at: None,
                contacts: BTreeMap::new(),
                hold_saves: false,
            });
        }
        let files_left = plan.files;
        World {
            rng,
            plan,
            config,
            base,
            t: Duration::ZERO,
            seq: 0,
            due: BTreeMap::new(),
            peers,
            by_id,
            pipes: BTreeMap::new(),
            next_pipe: 1,
            ledger: check::Ledger::default(),
            report: Report::default(),
            faults: false,
            files_left,
            folder,
            files_open: BTreeSet::new(),
            file_sources: BTreeMap::new(),
            files_received: BTreeMap::new(),
            offers: Vec::new(),
            incoming_cancels: Vec::new(),
            failure: None,
            touched: Vec::new(),
            workload_on: false,
            unsettled: Vec::new(),
        }
    }

    pub(super) fn now(&self) -> Now {
        Now {
            at: self.base + self.t,
            unix: 1_800_000_000 + self.t.as_secs(),
        }
    }

    pub(super) fn at(&mut self, delay: Duration, ev: Ev) {
        self.seq += 1;
        self.due.insert((self.t + delay, self.seq), ev);
    }

    pub(super) fn latency(&mut self) -> Duration {
        let max = self.plan.faults.max_latency;
        between(&mut self.rng, Duration::from_millis(5), max)
    }

    pub(super) fn fail(&mut self, why: String) {
        if self.failure.is_none() {
            self.failure = Some(format!("at {:?}: {why}", self.t));
        }
    }

    // ----- the run ----------------------------------------------------

    pub(super) fn run(&mut self) -> Result<(), String> {
        self.befriend()?;
        self.traffic()?;
        self.quiet()
    }

    /// Boots every peer and makes the plan's contacts, without faults:
    /// each peer asks the next ones, each asked one accepts.
    pub(super) fn befriend(&mut self) -> Result<(), String> {
        for p in 0..self.peers.len() {
            self.boot(p);
        }
        let n = self.peers.len();
        for p in 0..n {
            for k in 1..=self.plan.contacts_each.min(n - 1) {
                let q = (p + k) % n;
                if self.peers[q].contacts.values().any(|&x| x == p) {
                    continue;
                }
                self.ask(p, q)?;
            }
        }
        self.run_until(Duration::from_secs(600), |w| w.all_accepted())
    }

    /// `p` asks `q` to be its contact.
    pub(super) fn ask(&mut self, p: usize, q: usize) -> Result<ContactId, String> {
        let address = self.peers[q].intake.to_address();
        let asked = self.command(p, |answer| Command::AddContact {
            address,
            nickname: format!("peer {q}"),
            greeting: format!("hello from {p}"),
            answer,
        });
        match asked {
            Ok(id) => {
                self.peers[p].contacts.insert(id, q);
                Ok(id)
            }
            Err(e) => Err(format!("peer {p} could not add peer {q}: {e}")),
        }
    }

    /// The plan's messages and files, with its faults.
    fn traffic(&mut self) -> Result<(), String> {
        self.faults = true;
        self.workload_on = true;
        self.at(Duration::ZERO, Ev::Workload);
        if self.files_left > 0 {
            self.at(Duration::ZERO, Ev::OfferFile);
        }
        if let Some(every) = self.plan.faults.crash_every {
            let d = between(&mut self.rng, every / 2, every * 3 / 2);
            self.at(d, Ev::Crash);
        }
        let sending = self.plan.message_every * self.plan.messages as u32;
        self.run_until(sending + Duration::from_secs(3600), |w| {
            w.ledger.allocated_total() >= w.plan.messages && w.files_left == 0
        })
    }

    /// No more faults: everything must arrive, every outbox empty, every
    /// transfer ended.
    pub(super) fn quiet(&mut self) -> Result<(), String> {
        self.faults = false;
        for p in 0..self.peers.len() {
            if self.peers[p].core.is_none() {
                self.restart(p);
            }
        }
        let quiet = self.t + Duration::from_secs(3600);
        self.run_until(quiet, |w| w.settled())?;
        for (p, peer) in self.peers.iter().enumerate() {
            if let Some(core) = &peer.core {
                check::drained(p, core)?;
            }
        }
        if !self.files_open.is_empty() {
            return Err(format!("transfers never ended: {:?}", self.files_open));
        }
        self.report.simulated = self.t;
        Ok(())
    }

    /// Steps until `done` holds (checked after each step) or `limit` of
    /// simulated time has passed.
    pub(super) fn run_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&World) -> bool,
    ) -> Result<(), String> {
        let end = self.t + limit;
        self.settle_effects();
        loop {
            if let Some(f) = self.failure.take() {
                return Err(f);
            }
            if done(self) {
                return Ok(());
            }
            let Some(((t, _), ev)) = self.due.pop_first() else {
                return Err("nothing left to happen, and not done".into());
            };
            if t > end {
                let behind = self.ledger.behind();
                return Err(format!(
                    "not done after {limit:?} of simulated time; behind: {behind:?}; \
                     open transfers: {:?}",
                    self.files_open
                ));
            }
            self.t = t;
            self.advance(ev);
        }
    }

    /// Steps through whatever is due in the next `d` of simulated time.
    pub(super) fn run_for(&mut self, d: Duration) -> Result<(), String> {
        let end = self.t + d;
        self.settle_effects();
        while self
            .due
            .first_key_value()
            .is_some_and(|((t, _), _)| *t <= end)
        {
            let Some(((t, _), ev)) = self.due.pop_first() else {
                break;
            };
            self.t = t;
            self.advance(ev);
            if let Some(f) = self.failure.take() {
                return Err(f);
            }
        }
        self.t = end;
        Ok(())
    }

    /// One step: the event, the effects it led to, the bounds of every
    /// core it touched.
    fn advance(&mut self, ev: Ev) {
        self.report.steps += 1;
        self.step(ev);
        self.settle_effects();
        if !self.offers.is_empty() {
            self.collect_offers();
        }
        for p in std::mem::take(&mut self.touched) {
            if let Some(core) = &self.peers[p].core
                && let Err(e) = check::bounds(p, core)
            {
                self.fail(e);
            }
        }
    }

    /// Every contact accepted on both sides, and on disk.
    pub(super) fn all_accepted(&self) -> bool {
        let accepted = |contacts: &[allium_vault::Contact]| {
            contacts.iter().all(|c| c.state == ContactState::Accepted)
        };
        self.peers.iter().all(|p| {
            p.saving.is_none()
                && p.durable.contacts.len() == p.contacts.len()
                && accepted(&p.durable.contacts)
                && p.core
                    .as_ref()
                    .is_some_and(|c| accepted(&c.profile.contacts))
        })
    }

    pub(super) fn settled(&self) -> bool {
        self.ledger.behind().is_empty()
            && self.offers.is_empty()
            && self.files_open.is_empty()
            && self.peers.iter().all(|p| {
                p.core
                    .as_ref()
                    .is_some_and(|c| c.profile.contacts.iter().all(|c| c.outbox.is_empty()))
            })
    }

    // ----- peers ------------------------------------------------------

    pub(super) fn boot(&mut self, p: usize) {
        let rng = Box::new(ChaCha8Rng::seed_from_u64(self.rng.next_u64()));
        let profile = self.peers[p].durable.clone();
        let mut core = Core::new(profile, self.config.clone(), false, self.now(), rng);
        core.start(self.now());
        self.peers[p].core = Some(core);
        self.touch(p);
    }

    pub(super) fn handle(&mut self, p: usize, input: Input) {
        let now = self.now();
        if let Some(core) = &mut self.peers[p].core {
            core.handle(now, input);
            self.touch(p);
        }
    }

    pub(super) fn touch(&mut self, p: usize) {
        if !self.unsettled.contains(&p) {
            self.unsettled.push(p);
        }
        if !self.touched.contains(&p) {
            self.touched.push(p);
        }
    }

    /// Gives `p` a command and takes its answer, which comes while it is
    /// handled for all but those that wait for I/O (see `later`); its
    /// effects are carried out with the rest of the step's.
    pub(super) fn command<T>(
        &mut self,
        p: usize,
        ask: impl FnOnce(super::Answer<T>) -> Command,
    ) -> Result<T, EngineError> {
        let mut rx = self.later(p, ask);
        rx.try_recv().unwrap_or(Err(EngineError::Stopped))
    }

    /// Gives `p` a command whose answer comes later.
    pub(super) fn later<T>(
        &mut self,
        p: usize,
        ask: impl FnOnce(super::Answer<T>) -> Command,
    ) -> Answer<T> {
        let (answer, rx) = oneshot::channel();
        self.handle(p, Input::Command(ask(answer)));
        rx
    }

    pub(super) fn crash(&mut self, p: usize) {
        self.report.crashes += 1;
        let peer = &mut self.peers[p];
        peer.core = None;
        peer.life += 1;
        // A save in flight may have reached the disk, or not.
        if let Some((_, profile, lands)) = peer.saving.take()
            && lands
            && self.rng.next_u32().is_multiple_of(2)
        {
            peer.durable = *profile;
        }
        peer.up.clear();
        peer.launching.clear();
        peer.authorized.clear();
        peer.streams.clear();
        peer.conns.clear();
        peer.tick_at = None;
        let contacts: Vec<(u64, usize)> = peer.contacts.iter().map(|(c, q)| (c.0, *q)).collect();
        let durable = peer.durable.clone();
        self.ledger.crashed(p, &durable, &contacts);
        if self.ledger.any_waiting() && !self.workload_on {
            self.workload_on = true;
            self.at(Duration::ZERO, Ev::Workload);
        }
        // Transfers live in memory only: a crashed sender's are gone.
        self.files_open.retain(|(sender, _)| *sender != p);
        // Every stream it had ends at the other side.
        let ids: Vec<PipeId> = self.pipes.keys().copied().collect();
        for id in ids {
            for side in 0..2 {
                let mine = self.pipes.get(&id).is_some_and(|pipe| {
                    let end = &pipe.ends[side];
                    end.peer == p && !end.gone
                });
                if mine {
                    if let Some(pipe) = self.pipes.get_mut(&id) {
                        pipe.ends[side].gone = true;
                    }
                    let d = self.latency();
                    self.at(
                        d,
                        Ev::Eof {
                            pipe: id,
                            to: 1 - side,
                        },
                    );
                }
            }
        }
    }

    /// Saves of `p` hang (`true`) or finish again (`false`; what hung
    /// finishes now).
    pub(super) fn hold_saves(&mut self, p: usize, hold: bool) {
        self.peers[p].hold_saves = hold;
        if !hold && let Some((generation, _, _)) = &self.peers[p].saving {
            let (generation, life) = (*generation, self.peers[p].life);
            self.at(
                Duration::ZERO,
                Ev::Saved {
                    peer: p,
                    life,
                    generation,
                },
            );
        }
    }

    pub(super) fn restart(&mut self, p: usize) {
        if self.peers[p].core.is_none() {
            self.boot(p);
        }
    }
}

#[cfg(test)]
mod rules;
#[cfg(test)]
mod tests;
