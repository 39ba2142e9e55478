//! What the simulated people do: send messages and files, accept
//! requests and files, and what is checked when something arrives.

use std::time::Duration;

use allium_protocol::OnionId;
use rand_core::RngCore;

use super::super::core::Service;
use tokio::sync::oneshot;

use super::super::{Command, Event};
use super::{Ev, World, between, check};

impl World {
    /// The next message of the workload, from a random pair whose sender
    /// is up.
    pub(super) fn send_next(&mut self) {
        let more = self.ledger.allocated_total() < self.plan.messages;
        if !more && !self.ledger.any_waiting() {
            self.workload_on = false;
            return;
        }
        let every = self.plan.message_every;
        self.at(every, Ev::Workload);
        // Re-sends after a crash come first, then new messages (up to the
        // plan) from a random pair whose sender is up.
        let resend = self
            .ledger
            .waiting_pairs()
            .into_iter()
            .find(|&(p, _)| self.peers[p].core.is_some());
        let (p, q) = match resend {
            Some(pair) => pair,
            None if more => {
                let p = (self.rng.next_u32() as usize) % self.peers.len();
                let peer = &self.peers[p];
                if peer.core.is_none() || peer.contacts.is_empty() {
                    return;
                }
                let k = (self.rng.next_u32() as usize) % peer.contacts.len();
                match peer.contacts.values().nth(k) {
                    Some(&q) => (p, q),
                    None => return,
                }
            }
            None => return,
        };
        if let Err(e) = self.send_one(p, q) {
            self.fail(e);
        }
    }

    /// `p` sends its next message to its contact `q`.
    pub(super) fn send_one(&mut self, p: usize, q: usize) -> Result<(), String> {
        let Some((&contact, _)) = self.peers[p].contacts.iter().find(|(_, x)| **x == q) else {
            return Err(format!("peer {q} is not a contact of peer {p}"));
        };
        let seq = self.ledger.next_for(p, q);
        let text = check::text(p, q, seq);
        match self.command(p, |a| Command::SendMessage(contact, text, a)) {
            Ok(id) => {
                self.ledger.taken(p, q, seq, id);
                Ok(())
            }
            Err(e) => {
                self.ledger.put_back(p, q, seq);
                Err(format!("peer {p} could not send to {q}: {e}"))
            }
        }
    }

    pub(super) fn offer_next_file(&mut self) {
        if self.files_left == 0 {
            return;
        }
        let d = between(
            &mut self.rng,
            Duration::from_millis(200),
            Duration::from_secs(2),
        );
        self.at(d, Ev::OfferFile);
        let p = (self.rng.next_u32() as usize) % self.peers.len();
        if self.peers[p].core.is_none() || self.peers[p].contacts.is_empty() {
            return;
        }
        let k = (self.rng.next_u32() as usize) % self.peers[p].contacts.len();
        let Some((&contact, _)) = self.peers[p].contacts.iter().nth(k) else {
            return;
        };
        let size = 20 * 1024 + (self.rng.next_u32() as usize) % (180 * 1024);
        let mut data = vec![0u8; size];
        self.rng.fill_bytes(&mut data);
        let path = self.folder.join(format!("out-{}.bin", self.files_left));
        if let Err(e) = std::fs::write(&path, &data) {
            self.fail(format!("could not write a file to send: {e}"));
            return;
        }
        // Answered once the file's size is known: collected after the
        // step (`collect_offers`).
        let sent = path.clone();
        let rx = self.later(p, |a| Command::SendFile(contact, sent, a));
        self.files_left -= 1;
        self.offers.push((p, rx, path));
    }

    /// The answers to offers made: each becomes a transfer to watch.
    pub(super) fn collect_offers(&mut self) {
        let mut waiting = Vec::new();
        for (p, mut rx, path) in std::mem::take(&mut self.offers) {
            match rx.try_recv() {
                Ok(Ok(id)) => {
                    self.files_open.insert((p, id.clone()));
                    self.file_sources.insert(id, path);
                }
                Err(oneshot::error::TryRecvError::Empty) => waiting.push((p, rx, path)),
                // The sender crashed before it answered.
                Err(oneshot::error::TryRecvError::Closed) => {}
                Ok(other) => self.fail(format!("peer {p} could not offer a file: {other:?}")),
            }
        }
        self.offers = waiting;
    }

    /// What the simulated person does on an event, and what is checked.
    pub(super) fn observe(&mut self, p: usize, e: Event) {
        match e {
            Event::RequestReceived { contact } => {
                let from = self
                    .by_id
                    .iter()
                    .find(|(id, (_, s))| {
                        *s == Service::Intake
                            && OnionId::from_bytes(**id)
                                .is_ok_and(|o| o.to_address() == contact.address)
                    })
                    .map(|(_, (q, _))| *q);
                let Some(q) = from else {
                    self.fail(format!("peer {p} got a request from nobody we know"));
                    return;
                };
                self.peers[p].contacts.insert(contact.id, q);
                let accepted = self.command(p, |answer| Command::Accept {
                    contact: contact.id,
                    nickname: None,
                    answer,
                });
                if let Err(e) = accepted {
                    self.fail(format!("peer {p} could not accept peer {q}: {e}"));
                }
            }
            Event::MessageReceived { contact, message } => {
                let Some(&from) = self.peers[p].contacts.get(&contact) else {
                    self.fail(format!("peer {p} got a message from an unknown contact"));
                    return;
                };
                if let Err(e) = self.ledger.received(p, from, message.id, &message.text) {
                    self.fail(e);
                }
            }
            Event::MessagesMissing { contact, from, to } => {
                self.fail(format!(
                    "peer {p} lost messages {from} to {to} of contact {}",
                    contact.0
                ));
            }
            Event::MessagesRenumbered { contact, .. } => {
                self.fail(format!(
                    "peer {p} renumbered its messages to contact {} (its state went back)",
                    contact.0
                ));
            }
            Event::FileOffered { transfer } => {
                let Ok(t) = super::super::handle::parse_transfer(&transfer.id) else {
                    self.fail(format!("peer {p} was offered a file with a bad id"));
                    return;
                };
                let folder = self.folder.join(format!("in-{p}"));
                let _ = std::fs::create_dir_all(&folder);
                // Answered once the partial file exists; nothing to check.
                drop(self.later(p, |a| Command::AcceptFile(t, folder, a)));
            }
            Event::FileCompleted { transfer, path } => {
                if let Some(path) = path {
                    let same = self
                        .file_sources
                        .get(&transfer.id)
                        .is_some_and(|src| std::fs::read(src).ok() == std::fs::read(&path).ok());
                    if !same {
                        self.fail(format!(
                            "peer {p} received a file that differs from the one sent"
                        ));
                    }
                    let life = self.peers[p].life;
                    match self.files_received.insert(transfer.id, life) {
                        None => self.report.files_completed += 1,
                        // Placed, then the receiver crashed before the
                        // sender heard FILE_DONE: the sender offers it
                        // again, and it is received again (transfers are
                        // not saved).
                        Some(before) if before != life => self.report.files_received_twice += 1,
                        Some(_) => {
                            self.fail(format!("peer {p} received a file twice without a crash"))
                        }
                    }
                } else {
                    self.files_open.remove(&(p, transfer.id));
                }
            }
            Event::FileCancelled {
                transfer,
                cancelled,
            } => {
                if transfer.direction == super::super::TransferDirection::Outgoing {
                    self.files_open.remove(&(p, transfer.id));
                } else {
                    self.incoming_cancels.push((p, cancelled.reason));
                }
            }
            _ => {}
        }
    }
}
