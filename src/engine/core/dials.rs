//! Dialling contacts: who is due (their backoff has passed, nothing is
//! open to them), within the limit of dials in flight, and what a new
//! outgoing session says first (the request at an intake, the accept as
//! early data at an endpoint).
//! It must never dial more than `max_concurrent_dials` at once, nor dial
//! a contact it has a session with.

use super::*;

impl Core {
    pub(in crate::engine) fn wants_dial(&self, c: &Contact) -> Option<Purpose> {
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

    pub(in crate::engine) fn schedule_dials(&mut self) {
        let now = self.now;
        let mut due: Vec<(Instant, ContactId, Purpose)> = Vec::new();
        for c in &self.profile.contacts {
            let Some(purpose) = self.wants_dial(c) else {
                continue;
            };
            let Some(r) = self.links.get(&c.id) else {
                continue;
            };
            if r.active.is_some() {
                continue;
            }
            if purpose == Purpose::Intake
                && self
                    .conns
                    .values()
                    .any(|k| k.kind() == ConnKind::IntakeOut(c.id))
            {
                continue;
            }
            if let Some(at) = r.dial.due(now) {
                due.push((at, c.id, purpose));
            }
        }
        // Longest-waiting first, within the dial budget. Dials in flight
        // are counted one way only: the links that are dialling.
        if due.is_empty() {
            return;
        }
        due.sort_by_key(|(at, id, _)| (*at, *id));
        let mut in_flight = self.links.values().filter(|l| l.dial.in_flight()).count();
        for (_, id, purpose) in due {
            if in_flight >= self.config.max_concurrent_dials.max(1) {
                break;
            }
            if self.dial(id, purpose) {
                in_flight += 1;
            }
        }
    }

    /// Starts a dial to `id`; false if there is nothing to dial.
    pub(in crate::engine) fn dial(&mut self, id: ContactId, purpose: Purpose) -> bool {
        let Some(c) = self.profile.contact(id) else {
            return false;
        };
        let (target, key) = match purpose {
            Purpose::Intake => (onion(&c.intake), None),
            Purpose::Endpoint => (
                c.their_endpoint.as_ref().and_then(onion),
                c.their_discovery_key.as_ref().map(|k| DiscoveryKey(k.0)),
            ),
        };
        let Some(target) = target else {
            return false;
        };
        let Some(r) = self.links.get_mut(&id) else {
            return false;
        };
        r.dial.started();
        self.effects.push_back(Effect::Dial {
            contact: id,
            purpose,
            target,
            key,
        });
        true
    }

    pub(in crate::engine) fn retry_later(&mut self, id: ContactId, failed: bool) {
        let (initial, max) = (self.config.backoff_initial, self.config.backoff_max);
        let Some(r) = self.links.get_mut(&id) else {
            return;
        };
        let wait = r.dial.wait_after(failed, initial, max);
        let at = self.now + self.jitter(wait);
        if let Some(r) = self.links.get_mut(&id) {
            r.dial.at(at);
        }
    }

    pub(in crate::engine) fn on_dialed(
        &mut self,
        id: ContactId,
        purpose: Purpose,
        result: Result<StreamId, DialError>,
    ) {
        if let Some(r) = self.links.get_mut(&id) {
            r.dial.ended();
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
            Some((session, kind)) => self.open_conn(session, stream, kind),
            None => self.effects.push_back(Effect::Discard(stream)),
        }
    }

    /// The session to run on a stream just dialled to `id`, with what it
    /// sends first; `None` if it is no longer wanted.
    pub(in crate::engine) fn dialed_session(
        &mut self,
        id: ContactId,
        purpose: Purpose,
    ) -> Option<(Session, ConnKind)> {
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
        if let Some(v) = self
            .links
            .get(&id)
            .and_then(|r| r.dial.versions().map(<[u8]>::to_vec))
        {
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
        let kind = self.first_words(id, purpose, &mut session)?;
        Some((session, kind))
    }

    /// What a session we dialled says first: our request at an intake, our
    /// accept (if not yet confirmed) at an endpoint.
    fn first_words(
        &mut self,
        id: ContactId,
        purpose: Purpose,
        session: &mut Session,
    ) -> Option<ConnKind> {
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
        Some(kind)
    }
}
