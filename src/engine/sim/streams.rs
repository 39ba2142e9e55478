//! The simulated network: dials, and the streams between peers
//! (`net.rs` holds one end).

use std::time::Duration;

use allium_onion::{ClientKey, DialError};
use allium_protocol::{CloseCause, CloseReason, Event as SessionEvent, Message, OnionId, Purpose};
use allium_vault::ContactId;
use rand_core::RngCore;

use super::super::conn::{ConnEvent, ConnId, FromConn};
use super::super::core::{Input, Service, StreamId};
use super::net::{End, Pipe, PipeId, Side};
use super::{Ev, World, chance};

impl World {
    pub(super) fn dial(
        &mut self,
        p: usize,
        contact: ContactId,
        purpose: Purpose,
        target: OnionId,
        key: Option<allium_protocol::DiscoveryKey>,
    ) {
        let life = self.peers[p].life;
        let d = self.latency() * 2;
        let wanted = match purpose {
            Purpose::Intake => Service::Intake,
            Purpose::Endpoint => Service::Endpoint,
        };
        let found = self.by_id.get(target.as_bytes()).copied();
        let result = match found {
            Some((q, service)) if service == wanted => {
                let peer = &self.peers[q];
                let generation = peer.up.get(&service).copied();
                let authorized = service == Service::Intake
                    || key
                        .as_ref()
                        .is_some_and(|k| peer.authorized.contains(&ClientKey::from_secret(k)));
                if self.faults && chance(&mut self.rng, self.plan.faults.refuse_dial) {
                    self.report.refused_dials += 1;
                    Err(DialError::Unreachable)
                } else if !authorized {
                    Err(DialError::NotAuthorized)
                } else if let (Some(generation), Some(_)) = (generation, &peer.core) {
                    let qlife = peer.life;
                    let pipe = self.next_pipe;
                    self.next_pipe += 1;
                    self.pipes.insert(
                        pipe,
                        Pipe {
                            ends: [End::new(p, life), End::new(q, qlife)],
                            cut: false,
                        },
                    );
                    self.at(
                        d,
                        Ev::Incoming {
                            peer: q,
                            life: qlife,
                            service,
                            generation,
                            pipe,
                        },
                    );
                    Ok(pipe)
                } else {
                    Err(DialError::NotFound)
                }
            }
            _ => Err(DialError::NotFound),
        };
        self.at(
            d,
            Ev::Dialed {
                peer: p,
                life,
                contact,
                purpose,
                result,
            },
        );
    }

    // ----- streams ----------------------------------------------------

    pub(super) fn end_mut(&mut self, pipe: PipeId, side: Side) -> Option<&mut End> {
        self.pipes.get_mut(&pipe).map(|p| &mut p.ends[side])
    }

    pub(super) fn give_stream(&mut self, p: usize, pipe: PipeId, side: Side) -> StreamId {
        let peer = &mut self.peers[p];
        let id = peer.next_stream;
        peer.next_stream += 1;
        peer.streams.insert(id, (pipe, side));
        id
    }

    /// This end is closed: the other side sees the stream end.
    pub(super) fn end_gone(&mut self, pipe: PipeId, side: Side) {
        let Some(end) = self.end_mut(pipe, side) else {
            return;
        };
        if end.gone {
            return;
        }
        end.gone = true;
        let at = end.sent_until;
        let d = at.saturating_sub(self.t) + Duration::from_millis(1);
        self.at(d, Ev::Eof { pipe, to: 1 - side });
        self.forget_pipe_if_done(pipe);
    }

    pub(super) fn forget_pipe_if_done(&mut self, pipe: PipeId) {
        if self
            .pipes
            .get(&pipe)
            .is_some_and(|p| p.ends.iter().all(|e| e.gone))
        {
            // Deliveries still due for it find nothing and are dropped.
            self.pipes.remove(&pipe);
        }
    }

    pub(super) fn deliver(&mut self, pipe: PipeId, to: Side, bytes: Vec<u8>) {
        let from = 1 - to;
        let now = self.now().at;
        let Some(p) = self.pipes.get_mut(&pipe) else {
            return;
        };
        // The writer wrote them.
        let sender = &p.ends[from];
        let resume = sender.queue.written(bytes.len()) && !sender.gone;
        let (sender_peer, sender_life, sender_conn) = (sender.peer, sender.life, sender.conn);
        let end = &mut p.ends[to];
        if !end.gone {
            end.receive(now, bytes);
        }
        if resume
            && self.peers[sender_peer].life == sender_life
            && let Some(conn) = sender_conn
        {
            self.handle(sender_peer, conn_input(conn, ConnEvent::Drained));
        }
        self.pump(pipe, to);
    }

    /// Moves what the session at this end produced: bytes to the other
    /// end, events to its core.
    pub(super) fn pump(&mut self, pipe: PipeId, side: Side) {
        let Some(end) = self.end_mut(pipe, side) else {
            return;
        };
        if end.gone {
            return;
        }
        let out = end.pump();
        let (peer, life, conn) = (end.peer, end.life, end.conn);
        for bytes in out.bytes {
            self.send_bytes(pipe, side, bytes);
        }
        if self.peers[peer].life == life
            && let Some(conn) = conn
        {
            for ev in out.events {
                if matches!(
                    ev,
                    SessionEvent::Closed(CloseCause::Local(CloseReason::Replaced))
                ) {
                    self.report.replaced += 1;
                }
                self.handle(peer, conn_input(conn, ConnEvent::Session(ev)));
            }
        }
        if out.finished {
            if let Some(conn) = conn {
                self.peers[peer].conns.remove(&conn);
            }
            self.end_gone(pipe, side);
            return;
        }
        if let Some(t) = out.timer {
            let at = t
                .saturating_duration_since(self.base)
                .max(self.t + Duration::from_micros(1));
            if let Some(end) = self.end_mut(pipe, side)
                && end.timer_at.is_none_or(|s| at < s)
            {
                end.timer_at = Some(at);
                self.seq += 1;
                self.due.insert((at, self.seq), Ev::Timer { pipe, side });
            }
        }
    }

    pub(super) fn send_bytes(&mut self, pipe: PipeId, from: Side, mut bytes: Vec<u8>) {
        let cut = self.faults && chance(&mut self.rng, self.plan.faults.cut);
        let latency = self.latency();
        let t = self.t;
        let Some(p) = self.pipes.get_mut(&pipe) else {
            return;
        };
        if p.cut {
            return;
        }
        let end = &mut p.ends[from];
        // In order: never before what it sent earlier.
        let at = (t + latency).max(end.sent_until);
        end.sent_until = at;
        if cut {
            p.cut = true;
            self.report.cuts += 1;
            let keep = (self.rng.next_u32() as usize) % bytes.len().max(1);
            bytes.truncate(keep);
        }
        let to = 1 - from;
        self.seq += 1;
        self.due
            .insert((at, self.seq), Ev::Bytes { pipe, to, bytes });
        if cut {
            // The stream broke both ways.
            self.seq += 1;
            self.due.insert((at, self.seq), Ev::Eof { pipe, to });
            self.seq += 1;
            self.due.insert((at, self.seq), Ev::Eof { pipe, to: from });
        }
    }

    /// The stream of `p`'s active session with its contact `q`.
    pub(super) fn session_pipe(&self, p: usize, q: usize) -> Option<(PipeId, Side)> {
        let peer = &self.peers[p];
        let (&contact, _) = peer.contacts.iter().find(|(_, x)| **x == q)?;
        let conn = peer.core.as_ref()?.links.get(&contact)?.active?;
        peer.conns.get(&conn).copied()
    }

    /// `q` sends `m` on its active session with `p`, whatever its core
    /// would say: a hostile or broken contact.
    pub(super) fn inject(&mut self, q: usize, p: usize, m: Message) -> Result<(), String> {
        let (pipe, side) = self
            .session_pipe(q, p)
            .ok_or_else(|| format!("peer {q} has no session with {p}"))?;
        let now = self.now().at;
        let end = self
            .end_mut(pipe, side)
            .ok_or_else(|| "the session's stream is gone".to_owned())?;
        end.send_raw(now, m)?;
        self.pump(pipe, side);
        Ok(())
    }

    /// The stream breaks, both ways, now.
    pub(super) fn cut_pipe(&mut self, pipe: PipeId) {
        if let Some(p) = self.pipes.get_mut(&pipe) {
            p.cut = true;
        }
        self.at(Duration::ZERO, Ev::Eof { pipe, to: 0 });
        self.at(Duration::ZERO, Ev::Eof { pipe, to: 1 });
    }

    /// `p` dials every contact it wants to reach, now.
    pub(super) fn redial_now(&mut self, p: usize) {
        let now = self.now();
        if let Some(core) = &mut self.peers[p].core {
            for link in core.links.values_mut() {
                link.dial.soon(now.at);
            }
        }
        self.handle(p, Input::Tick);
        self.settle_effects();
    }
}

pub(super) fn conn_input(conn: ConnId, event: ConnEvent) -> Input {
    Input::Conn(FromConn { conn, event })
}
