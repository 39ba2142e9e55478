//! Delivery on an endpoint session (PROTOCOL.md §6.3): the session that
//! wins when both sides dialled, SYNC, CHAT, ACK and the outbox, history,
//! and putting the sending state right when either side went back in
//! time. The durability rules are enforced here with `durability.rs`:
//! nothing goes out before it is saved, no ack before what it confirms is
//! saved.
//! It must never drop a message the contact has not acknowledged, nor
//! take an acknowledgement for more than was written.

use super::*;

impl Core {
    /// Tells the contact, on its session if one is up and speaks version 3,
    /// whether we keep a history of this conversation (PROTOCOL.md §6.3).
    /// A session that comes up later is told after its SYNC.
    pub(in crate::engine) fn tell_history(&mut self, id: ContactId) {
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
            .is_some_and(|c| c.version() >= allium_protocol::HISTORY_VERSION)
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

    /// Writes every saved, unsent outbox message to the active session.
    pub(in crate::engine) fn flush_outbox(&mut self, id: ContactId) {
        let Some(r) = self.links.get(&id) else { return };
        let Some(conn) = r.active else { return };
        let Some((from, upto)) = r.flow.writable() else {
            return;
        };
        let Some(c) = self.profile.contact(id) else {
            return;
        };
        let Some(queue) = self.conns.get(&conn).map(|c| c.queue().clone()) else {
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
            claimed_beyond = r.flow.wrote(from, last);
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

    /// An endpoint session with contact `id` is up: make it the one.
    pub(in crate::engine) fn activate(&mut self, conn: ConnId, id: ContactId, we_initiated: bool) {
        let Some(c) = self.profile.contact(id) else {
            self.close_conn(conn, CloseReason::NotAContact);
            return;
        };
        let their_intake = c.intake;
        // The outbox starts over on this session from its oldest message
        // (the peer drops duplicates), once the peer's SYNC has said where
        // it stands.
        let first = c.outbox.first().map(|q| q.id).unwrap_or(u64::MAX);
        let accept_pending = c.accept_pending && c.state == ContactState::Accepted;
        let previous = self.links.get(&id).and_then(|r| r.active);
        if let Some(prev) = previous.filter(|p| *p != conn) {
            // Both sides dialled. Keep the session opened by the side with
            // the smaller intake id, as the other side computes too; if one
            // side opened both, the newer one wins (the older is likely
            // dead).
            let dialler = |us: bool| if us { Dialler::Us } else { Dialler::Them };
            let prev_we_initiated = matches!(
                self.conns.get(&prev).map(|c| c.kind()),
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
            r.flow.session_started(first);
            r.dial.connected(initial);
        }
        if accept_pending
            && !we_initiated
            && let Some(a) = self.contact_accept(id)
        {
            self.send_on(conn, a);
        }
        if let Some(c) = self.profile.contact(id) {
            let sync = Message::Sync {
                resend_from: c.outbox.first().map(|q| q.id).unwrap_or(c.next_message_id),
                last: c.last_received_id,
            };
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

    pub(in crate::engine) fn on_message(&mut self, conn: ConnId, m: Message) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        let kind = info.kind();
        let contact = info.contact();
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
        if !flow::allowed(role, info.request_received(), awaiting_answer, &m) {
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
        self.dispatch(conn, contact, m);
    }

    /// One message, to its handler: a flat match.
    fn dispatch(&mut self, conn: ConnId, contact: Option<ContactId>, m: Message) {
        match m {
            Message::Keepalive | Message::Close(_) => {}
            Message::ContactRequest(req) => self.on_contact_request(conn, req),
            Message::ContactAccept(acc) => {
                if let Some(id) = contact {
                    self.on_contact_accept(conn, id, acc);
                }
            }
            Message::ContactReject => {
                if let Some(id) = contact
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
                if let Some(id) = contact {
                    self.on_history(id, kept);
                }
            }
            other => {
                if let Some(id) = contact {
                    self.on_file_message(conn, id, other);
                }
            }
        }
    }

    /// The contact says whether it keeps a history of the conversation.
    fn on_history(&mut self, id: ContactId, kept: bool) {
        let Some(c) = self.profile.contact_mut(id) else {
            return;
        };
        if c.peer_keeps_history == Some(kept) {
            return;
        }
        let before = c.peer_keeps_history.replace(kept);
        self.changed();
        self.emit_contact(id);
        // The first word from a contact is no change to tell.
        if before.is_some() {
            self.emit(Event::PeerHistoryChanged { contact: id, kept });
        }
    }

    pub(in crate::engine) fn on_chat(&mut self, conn: ConnId, id: ContactId, chat: Chat) {
        let Some(r) = self.links.get(&id) else { return };
        if r.active != Some(conn) {
            // Not the session we keep: it is being replaced.
            return;
        }
        if !r.flow.may_receive() {
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
                r.flow.received(chat.id, change);
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
            // once per session (`Flow::ack_again`).
            let durable = self.disk.durable();
            let send = self
                .links
                .get_mut(&id)
                .is_some_and(|r| r.flow.ack_again(last, durable));
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
    pub(in crate::engine) fn on_sync(
        &mut self,
        conn: ConnId,
        id: ContactId,
        resend_from: u64,
        peer_last: u64,
    ) {
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
        let (first, first_new) = r.flow.peer_synced();
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
                r.flow.recorded(change);
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
                r.flow.boundary_cleared(change);
            }
        }
        self.flush_outbox(id);
    }

    /// Our sending state went back in time and the contact already has ids
    /// up to `peer_last`. What was in the restored outbox (ids below
    /// `first_new`) is what they received under those ids; what this run
    /// queued gets fresh ids after theirs, so nothing is taken for a
    /// duplicate and dropped.
    pub(in crate::engine) fn renumber(&mut self, id: ContactId, peer_last: u64) {
        let Some(first_new) = self.links.get(&id).map(|r| r.flow.first_new()) else {
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
            let fresh: Vec<u64> = renumbered.iter().map(|&(_, new)| new).collect();
            r.flow.renumbered(peer_last, next, &fresh, change);
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

    pub(in crate::engine) fn on_ack(&mut self, conn: ConnId, id: ContactId, n: u64) {
        let Some(c) = self.profile.contact_mut(id) else {
            return;
        };
        // The acceptor's confirmation (PROTOCOL.md §8).
        let mut changed = false;
        if c.accept_pending {
            c.accept_pending = false;
            changed = true;
        }
        // Never more than we wrote (`Flow::acknowledged`, review finding
        // L5).
        let n = self
            .links
            .get_mut(&id)
            .map_or(0, |r| r.flow.acknowledged(n));
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
}
