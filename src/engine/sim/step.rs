//! One step of the simulation: an event due now, and the effects it led
//! to, carried out as the shell would.

use std::time::Duration;

use rand_core::RngCore;

use super::super::conn::ConnEvent;
use super::super::core::{Core, Effect, Input, Service};
use super::super::{SaveError, ServiceState};
use super::streams::conn_input;
use super::{Ev, World, between, chance};

impl World {
    // ----- events -----------------------------------------------------

    pub(super) fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Input { peer, life, input } => {
                if self.peers[peer].life == life {
                    self.handle(peer, input);
                }
            }
            Ev::Tick { peer, life } => {
                if self.peers[peer].life == life {
                    self.peers[peer].tick_at = None;
                    self.handle(peer, Input::Tick);
                }
            }
            Ev::Published {
                peer,
                life,
                service,
                generation,
            } => {
                let pe = &mut self.peers[peer];
                if pe.life == life && pe.launching.get(&service) == Some(&generation) {
                    pe.up.insert(service, generation);
                    let result = Ok(());
                    self.handle(
                        peer,
                        Input::Published {
                            service,
                            generation,
                            result,
                        },
                    );
                    let state = ServiceState::Reachable;
                    self.handle(
                        peer,
                        Input::ServiceState {
                            service,
                            generation,
                            state,
                        },
                    );
                }
            }
            Ev::Dialed {
                peer,
                life,
                contact,
                purpose,
                result,
            } => {
                if self.peers[peer].life != life {
                    if let Ok(pipe) = result {
                        self.end_gone(pipe, 0);
                    }
                    return;
                }
                let result = result.map(|pipe| self.give_stream(peer, pipe, 0));
                self.handle(
                    peer,
                    Input::Dialed {
                        contact,
                        purpose,
                        result,
                    },
                );
            }
            Ev::Incoming {
                peer,
                life,
                service,
                generation,
                pipe,
            } => {
                if self.peers[peer].life != life {
                    self.end_gone(pipe, 1);
                    return;
                }
                let stream = self.give_stream(peer, pipe, 1);
                self.handle(
                    peer,
                    Input::Incoming {
                        service,
                        generation,
                        stream,
                    },
                );
            }
            Ev::Saved {
                peer,
                life,
                generation,
            } => {
                if self.peers[peer].life != life {
                    return;
                }
                let Some((g, profile, lands)) = self.peers[peer].saving.take() else {
                    return;
                };
                debug_assert_eq!(g, generation);
                let result = if lands {
                    self.peers[peer].durable = *profile;
                    Ok(())
                } else {
                    self.report.failed_saves += 1;
                    Err(SaveError::DiskFull)
                };
                self.handle(peer, Input::Saved { generation, result });
            }
            Ev::Bytes { pipe, to, bytes } => self.deliver(pipe, to, bytes),
            Ev::Eof { pipe, to } => {
                if let Some(end) = self.end_mut(pipe, to)
                    && !end.gone
                {
                    end.eof();
                    self.pump(pipe, to);
                }
            }
            Ev::Timer { pipe, side } => {
                let now = self.now().at;
                if let Some(end) = self.end_mut(pipe, side) {
                    end.timer_at = None;
                    if !end.gone {
                        end.timeout(now);
                        self.pump(pipe, side);
                    }
                }
            }
            Ev::Crash => {
                if !self.faults {
                    return;
                }
                let p = (self.rng.next_u32() as usize) % self.peers.len();
                if self.peers[p].core.is_some() {
                    self.crash(p);
                    let d = between(
                        &mut self.rng,
                        Duration::from_millis(500),
                        Duration::from_secs(5),
                    );
                    self.at(d, Ev::Restart { peer: p });
                }
                if let Some(every) = self.plan.faults.crash_every {
                    let d = between(&mut self.rng, every / 2, every * 3 / 2);
                    self.at(d, Ev::Crash);
                }
            }
            Ev::Restart { peer } => self.restart(peer),
            Ev::Workload => self.send_next(),
            Ev::OfferFile => self.offer_next_file(),
        }
    }

    // ----- effects ----------------------------------------------------

    /// Carries out what the cores touched in this step asked for, until
    /// none asks more.
    pub(super) fn settle_effects(&mut self) {
        while let Some(p) = self.unsettled.pop() {
            while let Some(effect) = self.peers[p].core.as_mut().and_then(Core::poll_effect) {
                self.effect(p, effect);
            }
            self.schedule_tick(p);
        }
    }

    pub(super) fn schedule_tick(&mut self, p: usize) {
        let Some(core) = &self.peers[p].core else {
            return;
        };
        let at = core
            .poll_timeout()
            .saturating_duration_since(self.base)
            .max(self.t + Duration::from_micros(1));
        if self.peers[p].tick_at.is_none_or(|t| at < t) {
            self.peers[p].tick_at = Some(at);
            let life = self.peers[p].life;
            self.seq += 1;
            self.due.insert((at, self.seq), Ev::Tick { peer: p, life });
        }
    }

    pub(super) fn effect(&mut self, p: usize, effect: Effect) {
        let life = self.peers[p].life;
        match effect {
            Effect::Event(e) => self.observe(p, e),
            Effect::Save {
                generation,
                profile,
            } => {
                if self.peers[p].saving.is_some() {
                    self.fail(format!("peer {p} started a save while one was running"));
                }
                let faults = self.faults;
                let lands = !(faults && chance(&mut self.rng, self.plan.faults.save_fail));
                let slow = faults && chance(&mut self.rng, self.plan.faults.slow_save);
                let d = if slow {
                    between(
                        &mut self.rng,
                        Duration::from_millis(200),
                        Duration::from_millis(1500),
                    )
                } else {
                    between(
                        &mut self.rng,
                        Duration::from_millis(1),
                        Duration::from_millis(20),
                    )
                };
                self.peers[p].saving = Some((generation, profile, lands));
                if self.peers[p].hold_saves {
                    return;
                }
                self.at(
                    d,
                    Ev::Saved {
                        peer: p,
                        life,
                        generation,
                    },
                );
            }
            Effect::Publish {
                service,
                generation,
                authorized,
                ..
            } => {
                let peer = &mut self.peers[p];
                peer.up.remove(&service);
                peer.launching.insert(service, generation);
                if service == Service::Endpoint {
                    peer.authorized = authorized;
                }
                let d = between(
                    &mut self.rng,
                    Duration::from_millis(20),
                    Duration::from_millis(300),
                );
                self.at(
                    d,
                    Ev::Published {
                        peer: p,
                        life,
                        service,
                        generation,
                    },
                );
            }
            Effect::Stop(service) => {
                self.peers[p].up.remove(&service);
                self.peers[p].launching.remove(&service);
            }
            Effect::Authorize(set) => self.peers[p].authorized = set,
            Effect::Dial {
                contact,
                purpose,
                target,
                key,
            } => self.dial(p, contact, purpose, target, key),
            Effect::Open {
                conn,
                stream,
                session,
                replay,
                queue,
            } => {
                let Some((pipe, side)) = self.peers[p].streams.remove(&stream) else {
                    self.fail(format!(
                        "peer {p} opened stream {stream}, which it was not given"
                    ));
                    return;
                };
                self.peers[p].conns.insert(conn, (pipe, side));
                let now = self.now().at;
                if let Some(end) = self.end_mut(pipe, side) {
                    end.open(conn, *session, replay, queue, now);
                }
                self.pump(pipe, side);
            }
            Effect::Discard(stream) => {
                if let Some((pipe, side)) = self.peers[p].streams.remove(&stream) {
                    self.end_gone(pipe, side);
                }
            }
            Effect::Conn(conn, command) => {
                let Some(&(pipe, side)) = self.peers[p].conns.get(&conn) else {
                    return;
                };
                let now = self.now().at;
                let drained = match self.end_mut(pipe, side) {
                    Some(end) if end.is_open() => end.apply(now, command),
                    _ => return,
                };
                if drained {
                    self.handle(p, conn_input(conn, ConnEvent::Drained));
                }
                self.pump(pipe, side);
            }
            Effect::File(job) => {
                let done = job.run();
                let d = between(
                    &mut self.rng,
                    Duration::from_millis(1),
                    Duration::from_millis(50),
                );
                self.at(
                    d,
                    Ev::Input {
                        peer: p,
                        life,
                        input: Input::File(done),
                    },
                );
            }
        }
    }
}
