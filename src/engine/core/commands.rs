//! Commands from the window and the JSON-RPC interface: each checks
//! what it is given, changes the profile, and answers. Commands whose
//! answer needs file work (sending and accepting files) are answered from
//! `files/` once it is done; `Shutdown` once everything is saved.
//! Like all of the core, it must never wait: a command that needs I/O
//! keeps its answer until the result comes back as an input.

use super::*;

/// The longest download folder path kept (Linux's PATH_MAX).
const MAX_FOLDER_PATH: usize = 4096;

fn answer<T>(to: Answer<T>, result: Result<T, EngineError>) {
    // Whoever asked may have gone: nothing to do then.
    let _ = to.send(result);
}

impl Core {
    /// Applies a command and answers it (or, for the few that wait for
    /// I/O, hands its answer on).
    pub(in crate::engine) fn on_command(&mut self, command: Command) {
        if self.shutting_down.is_some() {
            command.refuse(EngineError::Stopped);
            return;
        }
        match command {
            Command::Status(a) => answer(a, Ok(self.status())),
            Command::AddContact {
                address,
                nickname,
                greeting,
                answer: a,
            } => answer(a, self.add_contact(&address, nickname, greeting)),
            Command::Contacts(a) => answer(a, Ok(self.contact_list())),
            Command::Accept {
                contact,
                nickname,
                answer: a,
            } => answer(a, self.accept(contact, nickname)),
            Command::Reject(id, a) => answer(a, self.drop_contact(id, Removal::Reject)),
            Command::Block(id, a) => answer(a, self.drop_contact(id, Removal::Block)),
            Command::Remove(id, a) => answer(a, self.drop_contact(id, Removal::Remove)),
            Command::Rename(id, nickname, a) => answer(a, self.rename(id, nickname)),
            Command::SetVerified(id, on, a) => answer(a, self.set_verified(id, on)),
            Command::Blocked(a) => answer(a, Ok(self.blocked_list())),
            Command::Unblock(address, a) => answer(a, self.unblock(&address)),
            Command::SendMessage(id, text, a) => answer(a, self.queue_message(id, text)),
            Command::Conversation(id, a) => answer(a, self.conversation(id)),
            Command::SetHistory(id, on, a) => answer(a, self.set_history(id, on)),
            Command::SetIntake(on, a) => {
                self.set_intake(on);
                answer(a, Ok(()));
            }
            Command::SetDisplayName(name, a) => answer(a, self.set_display_name(name)),
            Command::Settings(a) => answer(a, Ok(self.profile.settings.clone())),
            Command::SetCustomNetwork(file, a) => {
                self.set_setting(file, |s| &mut s.custom_network);
                answer(a, Ok(()));
            }
            Command::SetNotificationContent(on, a) => {
                self.set_setting(on, |s| &mut s.notification_content);
                answer(a, Ok(()));
            }
            Command::SetAutoLock(minutes, a) => answer(a, self.set_auto_lock(minutes)),
            Command::SetDownloadFolder(folder, a) => answer(a, self.set_download_folder(folder)),
            Command::SendFile(id, path, a) => self.offer_file(id, path, a),
            Command::AcceptFile(t, folder, a) => self.accept_file(t, folder, a),
            Command::CancelFile(t, a) => answer(a, self.cancel_file_by_user(t)),
            Command::Transfers(a) => answer(a, Ok(self.transfer_views())),
            Command::Shutdown(a) => self.begin_shutdown(Some(a)),
        }
    }

    /// Sets one of the person's choices, saving only a change.
    fn set_setting<T: PartialEq>(&mut self, value: T, field: impl FnOnce(&mut Settings) -> &mut T) {
        let f = field(&mut self.profile.settings);
        if *f != value {
            *f = value;
            self.changed();
        }
    }

    fn contact_list(&self) -> Vec<ContactSummary> {
        self.profile
            .contacts
            .iter()
            .map(|c| self.summary(c))
            .collect()
    }

    fn rename(&mut self, id: ContactId, nickname: String) -> Result<(), EngineError> {
        TextField::Nickname
            .validate(&nickname)
            .map_err(text_error)?;
        let c = self
            .profile
            .contact_mut(id)
            .ok_or(EngineError::NoSuchContact)?;
        c.nickname = nickname;
        self.changed();
        self.emit_contact(id);
        Ok(())
    }

    fn set_verified(&mut self, id: ContactId, on: bool) -> Result<(), EngineError> {
        let c = self.accepted_mut(id, "only an accepted contact can be verified")?;
        if c.verified != on {
            c.verified = on;
            self.changed();
        }
        self.emit_contact(id);
        Ok(())
    }

    fn blocked_list(&self) -> Vec<BlockedView> {
        self.profile
            .blocked
            .iter()
            .map(|b| BlockedView {
                address: onion(b).map(|o| o.to_address()).unwrap_or_default(),
                nickname: self
                    .profile
                    .blocked_names
                    .iter()
                    .find(|n| n.intake == *b)
                    .map(|n| n.nickname.clone())
                    .unwrap_or_default(),
            })
            .collect()
    }

    fn unblock(&mut self, address: &str) -> Result<(), EngineError> {
        let target =
            OnionId::parse(&normalize_address(address)).map_err(EngineError::BadAddress)?;
        let intake = Public32(*target.as_bytes());
        if !self.profile.blocked.contains(&intake) {
            return Err(EngineError::NotBlocked);
        }
        self.profile.blocked.retain(|b| *b != intake);
        self.profile.blocked_names.retain(|n| n.intake != intake);
        self.changed();
        Ok(())
    }

    fn set_history(&mut self, id: ContactId, on: bool) -> Result<(), EngineError> {
        let c = self
            .profile
            .contact_mut(id)
            .ok_or(EngineError::NoSuchContact)?;
        let changed = c.history_enabled != on;
        c.history_enabled = on;
        if !on {
            c.history.clear();
        }
        self.changed();
        self.emit_contact(id);
        if changed {
            self.tell_history(id);
        }
        Ok(())
    }

    fn set_intake(&mut self, on: bool) {
        self.set_setting(on, |s| &mut s.intake_enabled);
        if on && self.intake.state() == ServiceState::Off {
            self.publish(Service::Intake);
        } else if !on {
            self.unpublish(Service::Intake);
            self.intake.switched_off();
            // Connections already open at the intake end too.
            let open: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| c.kind() == ConnKind::IntakeIn)
                .map(|(id, _)| *id)
                .collect();
            for id in open {
                self.close_conn(id, CloseReason::Shutdown);
            }
            self.emit(Event::Service {
                intake: true,
                state: ServiceState::Off,
            });
        }
    }

    fn set_display_name(&mut self, name: String) -> Result<(), EngineError> {
        TextField::Nickname.validate(&name).map_err(text_error)?;
        self.profile.settings.display_name = name;
        self.changed();
        Ok(())
    }

    fn set_download_folder(&mut self, folder: Option<String>) -> Result<(), EngineError> {
        if folder.as_ref().is_some_and(|f| f.len() > MAX_FOLDER_PATH) {
            return Err(EngineError::InvalidSetting(
                "a folder's path of at most 4,096 bytes",
            ));
        }
        self.set_setting(folder, |s| &mut s.download_folder);
        Ok(())
    }

    fn set_auto_lock(&mut self, minutes: u32) -> Result<(), EngineError> {
        if minutes > 24 * 60 {
            return Err(EngineError::InvalidSetting(
                "lock after at most a day (1,440 minutes)",
            ));
        }
        self.set_setting(minutes, |s| &mut s.auto_lock_minutes);
        Ok(())
    }

    pub(in crate::engine) fn status(&self) -> Status {
        Status {
            address: self.local.identity.onion_id().to_address(),
            intake: self
                .profile
                .settings
                .intake_enabled
                .then_some(self.intake.state()),
            endpoint: self.endpoint.state(),
            save_error: self.disk.error().cloned(),
        }
    }

    pub(in crate::engine) fn add_contact(
        &mut self,
        address: &str,
        nickname: String,
        greeting: String,
    ) -> Result<ContactId, EngineError> {
        let target =
            OnionId::parse(&normalize_address(address)).map_err(EngineError::BadAddress)?;
        if target == self.local.identity.onion_id() || target == self.local.endpoint {
            return Err(EngineError::OwnAddress);
        }
        TextField::Nickname
            .validate(&nickname)
            .map_err(text_error)?;
        TextField::Greeting
            .validate(&greeting)
            .map_err(text_error)?;
        let intake = Public32(*target.as_bytes());
        if self.profile.blocked.contains(&intake) {
            return Err(EngineError::Blocked);
        }
        if self.profile.contact_by_intake(&intake).is_some() {
            return Err(EngineError::AlreadyContact);
        }
        self.check_capacity()?;
        let key = self.take_discovery_key();
        let id = self.profile.allocate_contact_id();
        // A rejected requester we now ask ourselves is forgiven.
        self.profile.rejected.retain(|r| r != &intake);
        let history = self.profile.settings.history_by_default;
        self.profile.contacts.push(Contact {
            nickname,
            greeting,
            history_enabled: history,
            ..self.new_contact(id, intake, ContactState::OutgoingPending, key)
        });
        self.top_up_spares();
        self.links.insert(
            id,
            Link {
                flow: Flow::new_contact(),
                dial: Dial::new(self.config.backoff_initial, Some(self.now)),
                ..Link::default()
            },
        );
        // Authorize before the request leaves, so that their answer can
        // find our endpoint (PROTOCOL.md §8 step 1): the shell applies this
        // before it dials.
        self.sync_authorized();
        self.changed();
        self.emit_contact(id);
        Ok(id)
    }

    pub(in crate::engine) fn check_capacity(&self) -> Result<(), EngineError> {
        // Spare keys make room: only contacts count.
        if self.authorized_contacts() >= MAX_CONTACTS {
            return Err(EngineError::TooManyContacts(MAX_CONTACTS));
        }
        Ok(())
    }

    pub(in crate::engine) fn accept(
        &mut self,
        id: ContactId,
        nickname: Option<String>,
    ) -> Result<(), EngineError> {
        if let Some(n) = &nickname {
            TextField::Nickname.validate(n).map_err(text_error)?;
        }
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        if c.state != ContactState::IncomingPending {
            return Err(EngineError::WrongState(
                "only a pending request can be accepted",
            ));
        }
        self.check_capacity()?;
        let key = self.take_discovery_key();
        let history = self.profile.settings.history_by_default;
        if let Some(c) = self.profile.contact_mut(id) {
            c.state = ContactState::Accepted;
            c.our_discovery_key = key;
            c.accept_pending = true;
            c.history_enabled = history;
            if let Some(n) = nickname {
                c.nickname = n;
            } else if c.nickname.is_empty() {
                c.nickname = c.suggested_nickname.clone();
            }
        }
        self.top_up_spares();
        self.sync_authorized();
        let change = self.changed();
        if let Some(r) = self.links.get_mut(&id) {
            r.dial.restart(self.config.backoff_initial, self.now);
            r.flow.recorded(change);
        }
        self.emit_contact(id);
        Ok(())
    }

    pub(in crate::engine) fn drop_contact(
        &mut self,
        id: ContactId,
        how: Removal,
    ) -> Result<(), EngineError> {
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        if how == Removal::Reject && c.state != ContactState::IncomingPending {
            return Err(EngineError::WrongState(
                "only a pending request can be rejected",
            ));
        }
        let intake = c.intake;
        let name = if c.nickname.is_empty() {
            c.suggested_nickname.clone()
        } else {
            c.nickname.clone()
        };
        self.profile.contacts.retain(|c| c.id != id);
        match how {
            Removal::Reject => {
                if !self.profile.rejected.contains(&intake) {
                    self.profile.rejected.push(intake);
                }
            }
            Removal::Block => {
                if !self.profile.blocked.contains(&intake) {
                    self.profile.blocked.push(intake);
                    self.profile.blocked_names.push(BlockedName {
                        intake,
                        nickname: name,
                    });
                }
            }
            Removal::Remove => {}
        }
        // Revoke at once: from now on it cannot even find the endpoint.
        self.top_up_spares();
        self.sync_authorized();
        let conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.contact() == Some(id))
            .map(|(k, _)| *k)
            .collect();
        for conn in conns {
            self.close_conn(conn, CloseReason::NotAContact);
        }
        self.links.remove(&id);
        self.cancel_transfers_of(id);
        self.changed();
        self.emit(Event::ContactRemoved { contact: id });
        Ok(())
    }

    /// An accepted contact, or why not: `WrongState(why)` for a request.
    pub(in crate::engine) fn accepted_mut(
        &mut self,
        id: ContactId,
        why: &'static str,
    ) -> Result<&mut Contact, EngineError> {
        let c = self
            .profile
            .contact_mut(id)
            .ok_or(EngineError::NoSuchContact)?;
        if c.state != ContactState::Accepted {
            return Err(EngineError::WrongState(why));
        }
        Ok(c)
    }

    pub(in crate::engine) fn queue_message(
        &mut self,
        id: ContactId,
        text: String,
    ) -> Result<u64, EngineError> {
        TextField::ChatText.validate(&text).map_err(text_error)?;
        let now = self.unix;
        let c = self.accepted_mut(id, "messages can be sent once the contact has accepted")?;
        let msg_id = c.next_message_id;
        c.next_message_id += 1;
        if c.history_enabled {
            c.history.push(HistoryEntry {
                direction: Direction::Outgoing,
                id: msg_id,
                text: text.clone(),
                at: now,
                delivered: false,
            });
            trim_history(&mut c.history);
        }
        c.outbox.push(QueuedMessage {
            id: msg_id,
            text,
            queued_at: now,
        });
        let change = self.changed();
        if let Some(r) = self.links.get_mut(&id) {
            r.flow.queued(msg_id, change);
            // Something to say: try now rather than at the next backoff.
            if r.active.is_none() && !r.dial.in_flight() {
                r.dial.soon(self.now);
            }
        }
        self.emit(Event::MessageState {
            contact: id,
            id: msg_id,
            state: DeliveryState::Queued,
        });
        Ok(msg_id)
    }

    pub(in crate::engine) fn conversation(
        &self,
        id: ContactId,
    ) -> Result<Vec<MessageView>, EngineError> {
        let c = self.profile.contact(id).ok_or(EngineError::NoSuchContact)?;
        let sent_upto = self.links.get(&id).map(|r| r.flow.sent_upto()).unwrap_or(0);
        let state_of = |msg_id: u64, delivered: bool| {
            Some(if delivered {
                DeliveryState::Delivered
            } else if msg_id <= sent_upto {
                DeliveryState::Sent
            } else {
                DeliveryState::Queued
            })
        };
        let mut out: Vec<MessageView> = c
            .history
            .iter()
            .map(|h| MessageView {
                direction: h.direction,
                id: h.id,
                text: h.text.clone(),
                at: h.at,
                state: match h.direction {
                    Direction::Outgoing => state_of(h.id, h.delivered),
                    Direction::Incoming => None,
                },
            })
            .collect();
        if !c.history_enabled {
            out.extend(c.outbox.iter().map(|q| MessageView {
                direction: Direction::Outgoing,
                id: q.id,
                text: q.text.clone(),
                at: q.queued_at,
                state: state_of(q.id, false),
            }));
        }
        Ok(out)
    }

    pub(in crate::engine) fn begin_shutdown(&mut self, reply: Option<Answer<()>>) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close_conn(id, CloseReason::Shutdown);
        }
        self.unpublish(Service::Intake);
        self.unpublish(Service::Endpoint);
        let (tx, _rx) = oneshot::channel();
        self.shutting_down = Some(reply.unwrap_or(tx));
    }

    pub(in crate::engine) fn finished_shutdown(&mut self) -> bool {
        if self.shutting_down.is_none() {
            return false;
        }
        // Done once every change is saved (or saving keeps failing: then
        // the person was told, and waiting longer will not help) and every
        // connection reported its end.
        let saved = self.disk.settled();
        if !saved || !self.conns.is_empty() {
            return false;
        }
        if let Some(reply) = self.shutting_down.take() {
            let _ = reply.send(match self.disk.error() {
                None => Ok(()),
                Some(e) => Err(EngineError::NotSaved(e.clone())),
            });
        }
        true
    }
}

/// How a contact or request ends (named so as not to shadow `Drop`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(in crate::engine) enum Removal {
    Reject,
    Block,
    Remove,
}

pub(super) fn trim_history(h: &mut Vec<HistoryEntry>) {
    if h.len() > MAX_HISTORY {
        let extra = h.len() - MAX_HISTORY;
        h.drain(..extra);
    }
}
