//! The profile's onion services as the core sees them: launching each
//! under a new generation, retrying a failed launch later, the endpoint's
//! authorized set (one discovery key per contact, and spares), and taking
//! a service down. The launches themselves are effects the shell carries
//! out.
//! It must never authorize a pending requester's key: only accepted
//! contacts and spares can find the endpoint.

use super::*;

impl Core {
    pub(in crate::engine) fn desired_authorized(&self) -> BTreeSet<ClientKey> {
        self.profile
            .contacts
            .iter()
            .filter(|c| c.state != ContactState::IncomingPending)
            .map(|c| client_key(&c.our_discovery_key))
            .chain(self.profile.spare_discovery_keys.iter().map(client_key))
            .collect()
    }

    /// Contacts whose discovery key the endpoint authorizes: every one but
    /// a pending request.
    pub(in crate::engine) fn authorized_contacts(&self) -> usize {
        self.profile
            .contacts
            .iter()
            .filter(|c| c.state != ContactState::IncomingPending)
            .count()
    }

    /// Keeps [`SPARE_KEYS`] spare discovery keys (fewer when the endpoint
    /// is nearly full: contacts come first).
    pub(in crate::engine) fn top_up_spares(&mut self) {
        let used = self.authorized_contacts();
        let want = SPARE_KEYS.min(MAX_CONTACTS.saturating_sub(used));
        let mut added = false;
        while self.profile.spare_discovery_keys.len() < want {
            let key = self.new_discovery_key();
            self.profile.spare_discovery_keys.push(key);
            added = true;
        }
        if self.profile.spare_discovery_keys.len() > want {
            self.profile.spare_discovery_keys.truncate(want);
            added = true;
        }
        if added {
            self.changed();
        }
    }

    /// A discovery key for a new contact: a spare one (already in the
    /// published descriptor) if there is one, else a fresh one.
    pub(in crate::engine) fn take_discovery_key(&mut self) -> Secret32 {
        match self.profile.spare_discovery_keys.pop() {
            Some(key) => key,
            None => self.new_discovery_key(),
        }
    }

    /// Launches `service` (again): a new generation, so that whatever the
    /// shell still reports about an earlier launch is ignored.
    pub(in crate::engine) fn publish(&mut self, service: Service) {
        let key = match service {
            Service::Intake => self.local.identity.clone(),
            Service::Endpoint => self.endpoint_key.clone(),
        };
        let authorized = match service {
            Service::Intake => BTreeSet::new(),
            Service::Endpoint => self.desired_authorized(),
        };
        let slot = self.slot_mut(service);
        slot.generation += 1;
        slot.up = false;
        slot.retry_at = None;
        slot.state = ServiceState::Starting;
        let generation = slot.generation;
        self.emit(Event::Service {
            intake: service == Service::Intake,
            state: ServiceState::Starting,
        });
        self.effects.push_back(Effect::Publish {
            service,
            generation,
            key,
            authorized,
        });
    }

    /// Takes `service` down; what it still reports is ignored.
    pub(in crate::engine) fn unpublish(&mut self, service: Service) {
        let slot = self.slot_mut(service);
        slot.generation += 1;
        slot.up = false;
        slot.retry_at = None;
        self.effects.push_back(Effect::Stop(service));
    }

    pub(in crate::engine) fn on_published(
        &mut self,
        service: Service,
        generation: u64,
        result: Result<(), ServiceError>,
    ) {
        let slot = self.slot_mut(service);
        if slot.generation != generation {
            // Switched off (or republished) meanwhile; the shell dropped it.
            return;
        }
        match result {
            Ok(()) => {
                slot.up = true;
                slot.attempts = 0;
                if service == Service::Endpoint {
                    self.sync_authorized();
                }
            }
            Err(e) => {
                slot.state = ServiceState::Broken;
                // A launch can fail for passing reasons (Tor still
                // bootstrapping, a busy network): try again, slower each
                // time, until it works or the service is switched off.
                let attempt = slot.attempts;
                slot.attempts = slot.attempts.saturating_add(1);
                let wait = self
                    .config
                    .backoff_initial
                    .saturating_mul(1 << attempt.min(6))
                    .min(self.config.backoff_max);
                let at = self.now + self.jitter(wait);
                self.slot_mut(service).retry_at = Some(at);
                self.emit(Event::Service {
                    intake: service == Service::Intake,
                    state: ServiceState::Broken,
                });
                tracing::warn!("publishing a service failed: {e}");
            }
        }
    }

    /// Makes the running endpoint's authorized set match the contacts.
    /// (Capacity is checked before a contact is added, so the set always
    /// fits: [`Core::check_capacity`].)
    pub(in crate::engine) fn sync_authorized(&mut self) {
        if self.endpoint.up {
            let desired = self.desired_authorized();
            self.effects.push_back(Effect::Authorize(desired));
        }
    }
}

/// One service's launch state: its generation (results for an older
/// launch are stale), what it reports, and when a failed launch is tried
/// again. Its fields are this module's; the rest of the core asks.
pub(super) struct Slot {
    /// Launched and not taken down since.
    up: bool,
    generation: u64,
    state: ServiceState,
    /// Failed launches in a row (for the retry delay).
    attempts: u32,
    /// When to launch again after a failure.
    retry_at: Option<Instant>,
}

impl Slot {
    pub(super) fn off() -> Self {
        Slot {
            up: false,
            generation: 0,
            state: ServiceState::Off,
            attempts: 0,
            retry_at: None,
        }
    }

    pub(super) fn state(&self) -> ServiceState {
        self.state
    }

    /// Whether `generation` is the current launch's.
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation == generation
    }

    /// The current launch reports `state`; true if that is news.
    pub(super) fn observe(&mut self, generation: u64, state: ServiceState) -> bool {
        let news = self.generation == generation && self.state != state;
        if news {
            self.state = state;
        }
        news
    }

    /// Taken down by the person (the intake switched off).
    pub(super) fn switched_off(&mut self) {
        self.state = ServiceState::Off;
    }

    pub(super) fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Whether a failed launch is to be tried again at `now`: its time has
    /// come and nothing launched it meanwhile.
    pub(super) fn relaunch_due(&mut self, now: Instant) -> bool {
        if self.retry_at.is_none_or(|t| t > now) {
            return false;
        }
        self.retry_at = None;
        !self.up
    }
}
