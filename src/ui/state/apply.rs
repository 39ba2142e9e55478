//! How background results and engine events change what the window
//! shows: [`MainState::apply`] folds one [`SessionMsg`] in, synchronously,
//! and says what deserves a desktop notification. It must never wait on
//! anything.

use super::*;

impl MainState {
    /// Folds one result or event into the state. Returns what deserves a
    /// desktop notification (the caller decides how much of it to show).
    pub(crate) fn apply(&mut self, msg: SessionMsg, focused: bool) -> Option<Alert> {
        match msg {
            SessionMsg::Event(e) => return self.apply_event(*e, focused),
            SessionMsg::Tor(t) => self.tor = t,
            SessionMsg::Stopped => self.stopped = true,
            SessionMsg::Sent {
                contact,
                id,
                text,
                at,
            } => self.add_message(
                contact,
                MessageView {
                    direction: Direction::Outgoing,
                    id,
                    text,
                    at,
                    state: Some(DeliveryState::Queued),
                },
            ),
            SessionMsg::SendFailed {
                contact,
                text,
                error,
            } => {
                let draft = self.drafts.entry(contact).or_default();
                if draft.is_empty() {
                    *draft = text;
                }
                self.error = Some(format!("The message was not sent: {error}."));
            }
            SessionMsg::ContactAdded(id) => {
                self.add = None;
                self.open_contact(id);
            }
            SessionMsg::AddFailed(error) => {
                if let Some(f) = &mut self.add {
                    f.busy = false;
                    f.error = Some(capitalize(&error));
                }
            }
            SessionMsg::Transfers(list) => {
                for t in list {
                    self.upsert_transfer(t, None);
                }
            }
            SessionMsg::TransferFailed { transfer, error } => {
                if let Some(t) = self.transfers.iter_mut().find(|t| t.view.id == transfer) {
                    t.error = Some(capitalize(&error));
                } else {
                    self.error = Some(capitalize(&error));
                }
            }
            SessionMsg::Settings(s) => self.settings = s,
            SessionMsg::PassphraseChanged(r) => {
                let f = &mut self.settings_form;
                f.passphrase_busy = false;
                f.passphrase_outcome = Some(match r {
                    Ok(()) => Ok("Your passphrase is changed. Use the new one from now on.".into()),
                    Err(e) => Err(capitalize(&e.to_string())),
                });
            }
            SessionMsg::NetworkSaved(r) => {
                self.settings_form.network_outcome = Some(r.map(|file| {
                    self.settings.custom_network = file.clone();
                    match file {
                        None => "Saved: Allium will use the public Tor network the next time you \
                                 unlock this profile."
                            .to_owned(),
                        Some(_) => "Saved: Allium will use this network the next time you \
                                    unlock this profile."
                            .to_owned(),
                    }
                }));
            }
            SessionMsg::DownloadFolderSaved(r) => {
                self.settings_form.download_folder_outcome = Some(r.map(|folder| {
                    let said = match &folder {
                        Some(f) => format!("Kept: received files go to {f}."),
                        None => "Kept: Allium asks where to save each file.".to_owned(),
                    };
                    self.settings.download_folder = folder;
                    said
                }));
            }
            SessionMsg::DisplayNameSaved(r) => {
                self.settings_form.display_name_outcome = Some(r.map(|name| {
                    self.settings.display_name = name;
                    "Saved.".to_owned()
                }));
            }
            SessionMsg::Blocked(list) => self.blocked = list,
            SessionMsg::FilePickerClosed(contact) => {
                self.send_file.entry(contact).or_default().message = Some(Err(
                    "No file was chosen. If no file chooser opened, type the file's path \
                     above, or drag the file onto this window."
                        .into(),
                ));
            }
            SessionMsg::FileOffered(contact) => {
                let f = self.send_file.entry(contact).or_default();
                f.path.clear();
                f.message = None;
            }
            SessionMsg::FileNotSent { contact, error } => {
                self.send_file.entry(contact).or_default().message = Some(Err(capitalize(&error)));
            }
            SessionMsg::Failed(error) => self.error = Some(capitalize(&error)),
        }
        None
    }

    fn apply_event(&mut self, event: Event, focused: bool) -> Option<Alert> {
        match event {
            Event::ContactChanged { contact } => {
                self.contacts
                    .entry(contact.id)
                    .and_modify(|c| c.summary = contact.clone())
                    .or_insert_with(|| ContactEntry::new(contact));
            }
            Event::ContactRemoved { contact } => self.remove_contact(contact),
            Event::RequestReceived { contact } => {
                let alert = Alert::Request {
                    suggested: contact.suggested_nickname.clone(),
                    greeting: contact.greeting.clone(),
                };
                self.contacts.insert(contact.id, ContactEntry::new(contact));
                return Some(alert);
            }
            Event::RequestDelivered { contact } => {
                if let Some(c) = self.contacts.get_mut(&contact) {
                    c.summary.request_delivered = true;
                }
            }
            Event::RequestAccepted { contact } => {
                if let Some(c) = self.contacts.get_mut(&contact) {
                    c.summary.state = ContactState::Accepted;
                    self.notice = Some(format!("{} accepted your request.", c.display_name()));
                }
            }
            Event::PeerHistoryChanged { contact, kept } => {
                let name = self.contact_name(contact);
                let text = if kept {
                    format!(
                        "{name} turned history on: their Allium now keeps this conversation \
                         on their computer."
                    )
                } else {
                    format!("{name} turned history off: their Allium keeps nothing of it now.")
                };
                self.note(contact, text.clone());
                if !self.chat_open(contact) {
                    self.notice = Some(text);
                }
            }
            Event::RequestRejected { contact } => {
                let name = self.contact_name(contact);
                self.remove_contact(contact);
                self.notice = Some(format!("{name} declined your request."));
            }
            Event::Presence { contact, online } => {
                if let Some(c) = self.contacts.get_mut(&contact) {
                    c.summary.online = online;
                }
            }
            Event::MessageReceived { contact, message } => {
                let text = message.text.clone();
                self.add_message(contact, message);
                let open = self.chat_open(contact);
                if !open && let Some(c) = self.contacts.get_mut(&contact) {
                    c.unread += 1;
                }
                if !(open && focused) {
                    return Some(Alert::Message { contact, text });
                }
            }
            Event::MessageState { contact, id, state } => {
                let found = self.conversations.get_mut(&contact).and_then(|list| {
                    list.iter_mut()
                        .find(|m| m.direction == Direction::Outgoing && m.id == id)
                });
                match found {
                    Some(m) => m.state = Some(state),
                    // The reply with its id is still on its way.
                    None => {
                        self.early_states.insert((contact, id), state);
                    }
                }
            }
            Event::MessagesMissing { contact, from, to } => {
                let count = to.saturating_sub(from) + 1;
                self.notice = Some(format!(
                    "{count} earlier message{} from {} reached you before but are not in this \
                     profile: it was restored from an older copy, or the contact was removed \
                     and added again.",
                    if count == 1 { "" } else { "s" },
                    self.contact_name(contact)
                ));
            }
            Event::MessagesRenumbered {
                contact,
                renumbered,
            } => {
                if let Some(list) = self.conversations.get_mut(&contact) {
                    for m in list
                        .iter_mut()
                        .filter(|m| m.direction == Direction::Outgoing)
                    {
                        if let Some(&(_, new)) = renumbered.iter().find(|(old, _)| *old == m.id) {
                            m.id = new;
                        }
                    }
                }
            }
            Event::FileOffered { transfer } => self.upsert_transfer(transfer, None),
            Event::FileProgress {
                transfer,
                bytes_per_second,
            } => self.upsert_transfer(transfer, Some(bytes_per_second)),
            Event::FileCompleted { transfer, path } => {
                self.finish_transfer(transfer, TransferOutcome::Completed(path));
            }
            Event::FileCancelled {
                transfer,
                cancelled,
            } => self.finish_transfer(transfer, TransferOutcome::Cancelled(cancelled)),
            Event::Service { intake, state } => {
                if intake {
                    self.status.intake = (state != ServiceState::Off).then_some(state);
                } else {
                    self.status.endpoint = state;
                }
            }
            Event::SaveProblem { error } => self.save_problem = error,
        }
        None
    }

    fn remove_contact(&mut self, id: ContactId) {
        let about_it = match &self.dialog {
            Some(
                ContactDialog::Remove(d)
                | ContactDialog::Block(d)
                | ContactDialog::Rename(d, _)
                | ContactDialog::Verify(d),
            ) => *d == id,
            None => false,
        };
        if about_it {
            self.dialog = None;
        }
        self.contacts.remove(&id);
        self.conversations.remove(&id);
        self.drafts.remove(&id);
        self.send_file.remove(&id);
        self.notes.remove(&id);
        if self.view == View::Contact(id) {
            self.view = View::Home;
        }
    }
}
