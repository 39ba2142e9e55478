//! Connections: opening a session on a stream, the slots unfinished
//! strangers may hold (and who is evicted when they are full), the
//! admission answer to a hello, what a connection task reports, and what
//! its end means for the contact.
//! It must never trust a claimed identity before the handshake proves
//! it, and never let unfinished connections grow past their slots.

use super::*;
use crate::engine::admission::{Stage, make_room};

impl Core {
    /// Starts `session` on `stream` as a new connection.
    pub(in crate::engine) fn open_conn(
        &mut self,
        session: Session,
        stream: StreamId,
        kind: ConnKind,
    ) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let queue = SendQueue::default();
        self.conns.insert(
            conn,
            ConnInfo {
                kind,
                identified: None,
                established: false,
                peer_static: None,
                peer: None,
                hello: false,
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

    pub(in crate::engine) fn on_incoming(
        &mut self,
        service: Service,
        generation: u64,
        stream: StreamId,
    ) {
        let slot = match service {
            Service::Intake => &self.intake,
            Service::Endpoint => &self.endpoint,
        };
        if !slot.is_current(generation) || self.shutting_down.is_some() {
            self.effects.push_back(Effect::Discard(stream));
            return;
        }
        let kind = match service {
            Service::Intake => ConnKind::IntakeIn,
            Service::Endpoint => ConnKind::EndpointIn,
        };
        // Full: one connection makes room for the newcomer (review finding
        // H3; `admission::make_room` says who).
        let unfinished: Vec<(Stage, Instant, ConnId)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.kind == kind && c.unfinished())
            .map(|(id, c)| (c.stage(), c.progress_at, *id))
            .collect();
        let slots = self.config.max_unauthenticated;
        if let Some(victim) = make_room(&unfinished, slots, self.now, &mut self.rng) {
            tracing::debug!(
                stage = ?self.conns.get(&victim).map(ConnInfo::stage),
                "{service:?} full: closing an unfinished connection for a newcomer"
            );
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
        self.open_conn(session, stream, kind);
    }

    pub(in crate::engine) fn close_conn(&mut self, conn: ConnId, reason: CloseReason) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            self.effects
                .push_back(Effect::Conn(conn, ToConn::Close(reason)));
        }
    }

    /// Closes connections that took longer than a step's time to move on
    /// (hello after opening, handshake after the hello, request after the
    /// handshake): a stranger cannot hold a slot by going quiet.
    pub(in crate::engine) fn expire_unfinished(&mut self) {
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
    pub(in crate::engine) fn resume_drained(&mut self) {
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

    pub(in crate::engine) fn step_forward(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(&conn) {
            c.progress_at = self.now;
        }
    }

    pub(in crate::engine) fn send_on(&mut self, conn: ConnId, m: Message) {
        if let Some(c) = self.conns.get(&conn) {
            queue_send(&mut self.effects, conn, &c.queue, m);
        }
    }

    /// Sends on the contact's established session, if there is one.
    pub(in crate::engine) fn send_to_contact(&mut self, id: ContactId, m: Message) -> bool {
        match self.links.get(&id).and_then(|r| r.active) {
            Some(conn) => {
                self.send_on(conn, m);
                true
            }
            None => false,
        }
    }

    pub(in crate::engine) fn on_conn_event(&mut self, ev: FromConn) {
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
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.hello = true;
                }
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
    pub(in crate::engine) fn admission(&mut self, conn: ConnId, claimed: OnionId) -> Admission {
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

    pub(in crate::engine) fn on_established(
        &mut self,
        conn: ConnId,
        peer: OnionId,
        peer_static: StaticPublicKey,
    ) {
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
                    info.identified = id;
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
                    info.identified = Some(id);
                }
                self.activate(conn, id, false);
            }
            ConnKind::EndpointOut(id) => self.activate(conn, id, true),
        }
    }

    /// The peer's id as the handshake proved it (`Established`).
    pub(in crate::engine) fn proven_peer(&self, conn: ConnId) -> Option<OnionId> {
        self.conns.get(&conn)?.peer
    }

    /// The peer read enough of what we queued: send more of what was held
    /// back (the outbox, file chunks).
    pub(in crate::engine) fn on_drained(&mut self, conn: ConnId) {
        let Some(info) = self.conns.get(&conn) else {
            return;
        };
        let Some(id) = info.contact() else { return };
        if self.links.get(&id).and_then(|r| r.active) == Some(conn) {
            self.flush_outbox(id);
            self.pump_transfers_of(id);
        }
    }

    pub(in crate::engine) fn on_closed(&mut self, conn: ConnId, cause: CloseCause) {
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
                r.dial.offer_versions(common);
            }
        }
        match info.kind {
            ConnKind::IntakeOut(id) => self.request_session_closed(id, &info, &cause),
            ConnKind::EndpointIn | ConnKind::EndpointOut(_) => {
                self.endpoint_session_closed(conn, &info, &cause)
            }
            ConnKind::IntakeIn => {}
        }
    }

    /// Our request's session ended: delivered (its receipt came), or to
    /// be tried again.
    fn request_session_closed(&mut self, id: ContactId, info: &ConnInfo, cause: &CloseCause) {
        tracing::debug!(
            established = info.established,
            "our request's session closed: {cause:?}"
        );
        // Our request went out as the session opened
        // (`dialed_session`), so it was sent on every one.
        let delivered = info.established && flow::receipt(true, cause) == flow::Receipt::Received;
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

    /// An endpoint session ended: if it was the contact's, what it carried
    /// waits for the next one, and the contact is redialled.
    fn endpoint_session_closed(&mut self, conn: ConnId, info: &ConnInfo, cause: &CloseCause) {
        let Some(id) = info.contact() else { return };
        let was_active = self.links.get(&id).and_then(|r| r.active) == Some(conn);
        if was_active {
            let mut sent_upto = 0;
            if let Some(r) = self.links.get_mut(&id) {
                r.active = None;
                sent_upto = r.flow.session_ended();
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
            let failed = flow::redial_after(cause) == flow::Redial::Backoff;
            self.retry_later(id, failed);
        } else if matches!(info.kind, ConnKind::EndpointOut(_))
            && self.links.get(&id).is_some_and(|r| r.active.is_none())
        {
            // Our dial never became the session (refused, failed).
            self.retry_later(id, true);
        }
    }
}

/// Which service a connection belongs to, and which way it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::engine) enum ConnKind {
    IntakeIn,
    IntakeOut(ContactId),
    EndpointIn,
    EndpointOut(ContactId),
}

pub(in crate::engine) struct ConnInfo {
    kind: ConnKind,
    /// Which contact an incoming connection turned out to be, once its
    /// handshake proved who it is (an outgoing one says in its kind).
    identified: Option<ContactId>,
    established: bool,
    peer_static: Option<StaticPublicKey>,
    /// The peer's proven contact identity (intake id), once established.
    peer: Option<OnionId>,
    /// Incoming: its hello came (the first step a silent stranger never
    /// takes).
    hello: bool,
    /// Incoming request: received on this connection.
    request_received: bool,
    /// Bytes waiting to be written.
    queue: SendQueue,
    /// When the connection last moved a step (opened, hello, handshake):
    /// who is evicted first when the unauthenticated slots are full.
    progress_at: Instant,
    /// We asked it to close; it no longer counts against any cap.
    closing: bool,
    /// The protocol version, once established (§4.2).
    version: u8,
}

impl ConnInfo {
    pub(in crate::engine) fn kind(&self) -> ConnKind {
        self.kind
    }

    /// What waits to be written on it (shared with its task).
    pub(in crate::engine) fn queue(&self) -> &SendQueue {
        &self.queue
    }

    /// The protocol version, once established (§4.2).
    pub(in crate::engine) fn version(&self) -> u8 {
        self.version
    }

    /// The peer's static key, once the handshake proved it.
    pub(in crate::engine) fn peer_static(&self) -> Option<StaticPublicKey> {
        self.peer_static
    }

    /// Incoming at the intake: the request came on it.
    pub(in crate::engine) fn request_received(&self) -> bool {
        self.request_received
    }

    /// Incoming at the intake: its request came (it no longer counts as
    /// unfinished).
    pub(in crate::engine) fn got_request(&mut self) {
        self.request_received = true;
    }

    /// The contact at the other end, if known.
    pub(in crate::engine) fn contact(&self) -> Option<ContactId> {
        match self.kind {
            ConnKind::IntakeOut(id) | ConnKind::EndpointOut(id) => Some(id),
            ConnKind::IntakeIn | ConnKind::EndpointIn => self.identified,
        }
    }

    /// How far an unfinished incoming connection got.
    fn stage(&self) -> Stage {
        if self.established {
            Stage::Handshake
        } else if self.hello {
            Stage::Hello
        } else {
            Stage::Opened
        }
    }

    /// Still costing us a slot before it has proven anything useful: an
    /// incoming connection before its handshake, or at the intake before
    /// its request.
    pub(super) fn unfinished(&self) -> bool {
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

/// Queues `m` on connection `conn`, counting its bytes at once so that
/// what is not yet encrypted holds back bulk data too.
pub(super) fn queue_send(
    effects: &mut VecDeque<Effect>,
    conn: ConnId,
    queue: &SendQueue,
    m: Message,
) {
    let n = conn::estimate(&m);
    queue.add(n);
    effects.push_back(Effect::Conn(conn, ToConn::Send(m, n)));
}
