//! What the simulator holds the engine to: every message a sender's disk
//! accepted arrives once, in order; nothing else arrives; the bounds on
//! what a peer can make an engine hold are kept after every step.
//!
//! A message counts as sent once its sender's core took it. If the sender
//! crashes before the message was saved, the message was never on the wire
//! (durability rule 1) and the simulated person sends it again after the
//! restart, in the same place in the order. If the receiver crashes, what
//! it had not saved as received comes again and is expected again
//! (durability rule 2 says the sender still holds it).

use std::collections::{BTreeMap, VecDeque};

use allium_vault::Profile;

use super::super::conn::SEND_HARD_CAP;
use super::super::core::Core;

/// The messages of one sender to one receiver.
#[derive(Default)]
pub(super) struct PairLog {
    /// Sequence numbers waiting to be given to the sender's core, in order.
    pub(super) to_send: VecDeque<u64>,
    /// The highest sequence number handed out so far.
    pub(super) allocated: u64,
    /// At the sender: message id → sequence number, for what its core took.
    pub(super) sent: BTreeMap<u64, u64>,
    /// At the receiver: the last sequence number received.
    pub(super) received: u64,
    /// At the receiver: message id → sequence number received.
    pub(super) received_ids: BTreeMap<u64, u64>,
}

/// Every pair's log, by (sender, receiver).
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) pairs: BTreeMap<(usize, usize), PairLog>,
    pub(super) delivered: u64,
}

/// The text of message `seq` from `from` to `to`: it says who sent it to
/// whom and where it is in their order, so misrouting shows too.
pub(super) fn text(from: usize, to: usize, seq: u64) -> String {
    format!("{from}>{to} {seq}")
}

fn parse(text: &str) -> Option<(usize, usize, u64)> {
    let (route, seq) = text.split_once(' ')?;
    let (from, to) = route.split_once('>')?;
    Some((from.parse().ok()?, to.parse().ok()?, seq.parse().ok()?))
}

impl Ledger {
    /// The next message to give `from`'s core for `to`.
    pub(super) fn next_for(&mut self, from: usize, to: usize) -> u64 {
        let pair = self.pairs.entry((from, to)).or_default();
        match pair.to_send.pop_front() {
            Some(seq) => seq,
            None => {
                pair.allocated += 1;
                pair.allocated
            }
        }
    }

    /// The sender's core took message `seq` under `id`.
    pub(super) fn taken(&mut self, from: usize, to: usize, seq: u64, id: u64) {
        let pair = self.pairs.entry((from, to)).or_default();
        pair.sent.insert(id, seq);
    }

    /// The core refused it (not accepted yet): it waits in front.
    pub(super) fn put_back(&mut self, from: usize, to: usize, seq: u64) {
        let pair = self.pairs.entry((from, to)).or_default();
        pair.to_send.push_front(seq);
    }

    /// `at` (whose contact `from` is) received message `id` with `text`.
    pub(super) fn received(
        &mut self,
        at: usize,
        from: usize,
        id: u64,
        text: &str,
    ) -> Result<(), String> {
        let Some((f, t, seq)) = parse(text) else {
            return Err(format!(
                "peer {at} received a text it was never sent: {text:?}"
            ));
        };
        if (f, t) != (from, at) {
            return Err(format!(
                "peer {at} received {text:?} from peer {from}: misrouted"
            ));
        }
        let pair = self.pairs.entry((from, at)).or_default();
        if seq != pair.received + 1 {
            let what = if seq <= pair.received {
                "a duplicate"
            } else {
                "a gap (messages lost)"
            };
            return Err(format!(
                "peer {at} received message {seq} from peer {from} after {}: {what}",
                pair.received
            ));
        }
        pair.received = seq;
        pair.received_ids.insert(id, seq);
        self.delivered += 1;
        Ok(())
    }

    /// `peer` crashed and comes back as `durable` says; `contact_peer`
    /// names the peer behind each of its contacts' intake ids.
    pub(super) fn crashed(
        &mut self,
        peer: usize,
        durable: &Profile,
        contact_peer: &[(u64, usize)],
    ) {
        for c in &durable.contacts {
            let Some(&(_, other)) = contact_peer.iter().find(|(id, _)| *id == c.id.0) else {
                continue;
            };
            // As sender: what was not saved was never sent; it is sent
            // again, in its place.
            if let Some(pair) = self.pairs.get_mut(&(peer, other)) {
                let lost = pair.sent.split_off(&c.next_message_id);
                for seq in lost.into_values().rev() {
                    pair.to_send.push_front(seq);
                }
            }
            // As receiver: what was not saved as received comes again.
            if let Some(pair) = self.pairs.get_mut(&(other, peer)) {
                let last = c.last_received_id;
                pair.received = if last == 0 {
                    0
                } else {
                    pair.received_ids
                        .get(&last)
                        .copied()
                        .unwrap_or(pair.received)
                };
                let dropped = pair.received_ids.split_off(&(last + 1));
                self.delivered -= dropped.len() as u64;
            }
        }
    }

    /// Every message handed out arrived.
    pub(super) fn behind(&self) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(_, p)| p.received < p.allocated || !p.to_send.is_empty())
            .map(|((f, t), p)| {
                format!(
                    "{f}>{t}: {} of {} received, {} waiting to be sent",
                    p.received,
                    p.allocated,
                    p.to_send.len()
                )
            })
            .collect()
    }
}

/// The bounds one core must keep whatever its peers do.
pub(super) fn bounds(peer: usize, core: &Core) -> Result<(), String> {
    let contacts = core.profile.contacts.len();
    if core.links.len() != contacts {
        return Err(format!(
            "peer {peer}: {} links for {contacts} contacts",
            core.links.len()
        ));
    }
    let max_conns = 2 * core.config.max_unauthenticated + 4 * contacts + 8;
    if core.conns.len() > max_conns {
        return Err(format!(
            "peer {peer}: {} connections, more than {max_conns}",
            core.conns.len()
        ));
    }
    // A file window (1 MiB) and one chunk may be started past the high
    // water mark; the hard cap closes the connection beyond.
    let max_queued = SEND_HARD_CAP + (1 << 20) + (64 << 10);
    for (id, c) in &core.conns {
        if c.queue().queued() > max_queued {
            return Err(format!(
                "peer {peer}: connection {id} holds {} bytes to send",
                c.queue().queued()
            ));
        }
    }
    Ok(())
}

/// At the end: nothing left waiting in any outbox.
pub(super) fn drained(peer: usize, core: &Core) -> Result<(), String> {
    for c in &core.profile.contacts {
        if !c.outbox.is_empty() {
            return Err(format!(
                "peer {peer}: {} messages still in the outbox of contact {}",
                c.outbox.len(),
                c.id.0
            ));
        }
    }
    Ok(())
}

impl Ledger {
    pub(super) fn allocated_total(&self) -> u64 {
        self.pairs.values().map(|p| p.allocated).sum()
    }

    pub(super) fn any_waiting(&self) -> bool {
        self.pairs.values().any(|p| !p.to_send.is_empty())
    }

    pub(super) fn waiting_pairs(&self) -> Vec<(usize, usize)> {
        self.pairs
            .iter()
            .filter(|(_, p)| !p.to_send.is_empty())
            .map(|(k, _)| *k)
            .collect()
    }
}
