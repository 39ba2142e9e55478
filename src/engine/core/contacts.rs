//! Contact requests and their answers (PROTOCOL.md §8): a request at our
//! intake, the token bucket and the receipt it waits for, and the accept
//! that makes a requester a contact.
//! It must never answer a stranger differently for what we hold about
//! them (blocked, rejected, pending): the same gate, the same receipt,
//! the same wait (PROTOCOL.md §7.7).

use super::*;

/// What a requester says of itself: its static key, endpoint and
/// discovery key.
type Theirs = (Option<Public32>, Option<Public32>, Option<Secret32>);

impl Core {
    pub(in crate::engine) fn contact_accept(&self, id: ContactId) -> Option<Message> {
        let c = self.profile.contact(id)?;
        Some(Message::ContactAccept(ContactAccept {
            endpoint: self.local.endpoint,
            discovery_key: DiscoveryKey(c.our_discovery_key.0),
        }))
    }

    pub(in crate::engine) fn on_contact_request(&mut self, conn: ConnId, req: ContactRequest) {
        let Some(info) = self.conns.get_mut(&conn) else {
            return;
        };
        info.got_request();
        let Some(peer_static) = info.peer_static() else {
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
        match existing.map(|(id, state, _)| (id, state)) {
            Some((id, ContactState::IncomingPending)) => self.request_repeated(id, their, req),
            Some((id, state)) => self.request_mutual(conn, id, state, their),
            None => self.request_stored(intake, their, req),
        }
        // "Received": the requester takes a normal close as delivery, so it
        // goes out only once the request is on disk.
        let change = self.disk.change();
        self.receipt(conn, change);
    }

    /// A pending requester asked again: keep the latest details (an
    /// identical repeat changes nothing and writes nothing).
    fn request_repeated(&mut self, id: ContactId, their: Theirs, req: ContactRequest) {
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

    /// We asked them too, or they lost their profile and ask again:
    /// either way both want it, so it is accepted.
    fn request_mutual(&mut self, conn: ConnId, id: ContactId, state: ContactState, their: Theirs) {
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
                r.dial.soon(self.now);
            }
            if state == ContactState::OutgoingPending {
                self.emit(Event::RequestAccepted { contact: id });
            }
            self.emit_contact(id);
        }
    }

    /// A new request, pending the person's decision.
    fn request_stored(&mut self, intake: Public32, their: Theirs, req: ContactRequest) {
        let id = self.profile.allocate_contact_id();
        // Replaced by a fresh key on accept; never authorized
        // while pending.
        let placeholder = self.random_secret();
        self.profile.contacts.push(Contact {
            greeting: req.greeting,
            suggested_nickname: req.nickname,
            their_static: their.0,
            their_endpoint: their.1,
            their_discovery_key: their.2,
            ..self.new_contact(id, intake, ContactState::IncomingPending, placeholder)
        });
        self.links.insert(
            id,
            Link {
                flow: Flow::new_contact(),
                dial: Dial::new(self.config.backoff_initial, None),
                ..Link::default()
            },
        );
        self.changed();
        if let Some(c) = self.profile.contact(id) {
            let contact = self.summary(c);
            self.emit(Event::RequestReceived { contact });
        }
    }

    /// CLOSE 0 for a request on `conn` once `change` is on disk, and never
    /// sooner than `receipt_delay`: every outcome waits the same, so the
    /// wait does not tell a requester that it is blocked (§7.7).
    pub(in crate::engine) fn receipt(&mut self, conn: ConnId, change: u64) {
        self.disk.receipt(conn, change, self.now);
        self.release_receipts();
    }

    pub(in crate::engine) fn release_receipts(&mut self) {
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
    pub(in crate::engine) fn take_request_token(&mut self, requester: Public32) -> bool {
        let room = self.pending_requests() < self.config.max_pending_requests;
        self.request_gate.take(self.now, requester, room)
    }

    pub(in crate::engine) fn pending_requests(&self) -> usize {
        self.profile
            .contacts
            .iter()
            .filter(|c| c.state == ContactState::IncomingPending)
            .count()
    }

    pub(in crate::engine) fn on_contact_accept(
        &mut self,
        conn: ConnId,
        id: ContactId,
        acc: ContactAccept,
    ) {
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
            self.links
                .get(&id)
                .map(|r| r.flow.last_change())
                .unwrap_or(0)
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
                r.dial.soon(self.now);
            }
            // Confirm (PROTOCOL.md §8), once what it confirms is saved.
            r.flow.ack_when_saved(last, change);
        }
        let kind = self.conns.get(&conn).map(|c| c.kind());
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
}
