//! What the window shows, as plain data, and how background results and
//! engine events change it.
//!
//! Everything here is synchronous and cheap: [`UiState::apply`] folds one
//! [`SessionMsg`] into the state and never waits on anything. The engine is
//! the source of truth; this is the window's copy of what it has been told.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use allium_vault::{ContactId, ContactState, Direction, Settings};
use zeroize::Zeroizing;

use crate::app::{AppError, NetworkInUse, TorState};
use crate::engine::{
    BlockedView, Cancelled, ContactSummary, DeliveryState, Event, MessageView, ServiceState,
    Status, TransferDirection, TransferView,
};

/// Which screen the window shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Screen {
    /// Reading the list of profiles.
    Loading,
    /// Choosing a profile and typing its passphrase.
    Unlock,
    /// Making a new profile (or choosing an amnesic session).
    Create,
    /// Waiting for the backend to open a profile: what it is doing, in words.
    Opening(&'static str),
    /// A profile (or amnesic session) is open.
    Main,
}

/// The new-profile form.
#[derive(Default)]
pub(crate) struct CreateForm {
    pub name: String,
    pub passphrase: Zeroizing<String>,
    pub confirm: Zeroizing<String>,
    /// The passphrase "Suggest a passphrase" drew, shown in clear while
    /// the field still holds it.
    pub suggested: Option<Zeroizing<String>>,
    pub error: Option<String>,
}

/// The unlock form.
#[derive(Default)]
pub(crate) struct UnlockForm {
    pub profile: Option<String>,
    pub passphrase: Zeroizing<String>,
    pub error: Option<String>,
    /// Why the profile was locked, when it was not the person's doing.
    pub notice: Option<String>,
}

/// Everything shown before a profile is open.
pub(crate) struct UiState {
    pub screen: Screen,
    pub profiles: Vec<String>,
    /// The profile list could not be read.
    pub start_error: Option<String>,
    /// What became of a profile deletion, for the first screens.
    pub notice: Outcome,
    /// The unlock screen lists no profile names.
    pub names_hidden: bool,
    pub create: CreateForm,
    pub unlock: UnlockForm,
    /// Set while a profile is open.
    pub main: Option<MainState>,
}

impl Default for UiState {
    fn default() -> Self {
        UiState {
            screen: Screen::Loading,
            profiles: Vec::new(),
            start_error: None,
            notice: None,
            names_hidden: false,
            create: CreateForm::default(),
            unlock: UnlockForm::default(),
            main: None,
        }
    }
}

/// What the central area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum View {
    /// Nothing chosen: a short explanation.
    Home,
    /// One contact: its chat, or its request card.
    Contact(ContactId),
    /// The settings page.
    Settings,
}

/// One contact and what the window adds to it.
pub(crate) struct ContactEntry {
    pub summary: ContactSummary,
    /// Messages received while its chat was not open.
    pub unread: usize,
    /// Incoming request: the name we will give them if we accept.
    pub accept_name: String,
}

/// Where a file transfer stands, as far as the window knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TransferOutcome {
    /// Offered, or moving.
    Active,
    /// Done; incoming files name where they are.
    Completed(Option<PathBuf>),
    /// Abandoned, by whom and why.
    Cancelled(Cancelled),
}

/// One transfer and its latest speed.
pub(crate) struct TransferEntry {
    pub view: TransferView,
    pub bytes_per_second: u64,
    pub outcome: TransferOutcome,
    /// A problem with the last thing the person asked of it.
    pub error: Option<String>,
}

/// The add-contact dialog.
#[derive(Default)]
pub(crate) struct AddForm {
    pub address: String,
    pub nickname: String,
    pub greeting: String,
    pub error: Option<String>,
    /// The request is with the engine.
    pub busy: bool,
}

/// A dialog about one accepted contact (or a request, for blocking).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ContactDialog {
    /// "Remove …?" with what removing does.
    Remove(ContactId),
    /// "Block …?" with what blocking does.
    Block(ContactId),
    /// A new name, being typed.
    Rename(ContactId, String),
    /// The safety words, and marking the contact verified.
    Verify(ContactId),
}

/// Sending a file by its path, and what became of the last try.
#[derive(Default)]
pub(crate) struct SendFileForm {
    pub open: bool,
    pub path: String,
    pub message: Outcome,
}

/// A result shown under a settings section: good news or an error.
pub(crate) type Outcome = Option<Result<String, String>>;

/// The settings page's fields.
#[derive(Default)]
pub(crate) struct SettingsForm {
    pub old: Zeroizing<String>,
    pub new: Zeroizing<String>,
    pub confirm: Zeroizing<String>,
    pub suggested: Option<Zeroizing<String>>,
    pub passphrase_busy: bool,
    pub passphrase_outcome: Outcome,
    /// Where accepted files go without asking; empty: ask each time.
    pub download_folder: String,
    pub custom_network: bool,
    pub network_file: String,
    pub network_outcome: Outcome,
    /// "Delete this profile": the name typed to confirm.
    pub delete_confirm: String,
    pub display_name: String,
    pub display_name_outcome: Outcome,
    pub download_folder_outcome: Outcome,
}

/// Lines of one conversation the window holds (the vault keeps up to
/// 10,000 when history is on; the window shows the newest).
pub(crate) const MAX_SHOWN_MESSAGES: usize = 2_000;
/// Conversation notes kept per contact (a peer switching history on and
/// off cannot grow the window without bound).
pub(crate) const MAX_NOTES: usize = 50;
/// Finished or refused transfers kept in view.
pub(crate) const MAX_SHOWN_FINISHED_TRANSFERS: usize = 50;

/// An open profile as the window shows it.
pub(crate) struct MainState {
    /// The profile's name; `None` for an amnesic session.
    pub name: Option<String>,
    pub address: String,
    pub tor: TorState,
    pub status: Status,
    pub settings: Settings,
    pub contacts: BTreeMap<ContactId, ContactEntry>,
    /// What was said this session (and kept history), per contact.
    pub conversations: HashMap<ContactId, Vec<MessageView>>,
    /// Delivery states that arrived before the message's own id did.
    pub early_states: HashMap<(ContactId, u64), DeliveryState>,
    /// In the order they appeared.
    pub transfers: Vec<TransferEntry>,
    pub view: View,
    pub add: Option<AddForm>,
    pub dialog: Option<ContactDialog>,
    /// Where the "New messages" divider goes: the contact whose chat is
    /// open and the index of its first unread line.
    pub new_from: Option<(ContactId, usize)>,
    /// Lines about the conversation itself (history switched on or off by
    /// either side), each before the message at its index. This session
    /// only; at most [`MAX_NOTES`] per contact.
    pub notes: HashMap<ContactId, Vec<(usize, String)>>,
    /// The "send a file" fields, per contact.
    pub send_file: HashMap<ContactId, SendFileForm>,
    /// "Save in" of each offer, by transfer id.
    pub save_in: HashMap<String, String>,
    /// Blocked addresses, for the list in the settings.
    pub blocked: Vec<BlockedView>,
    /// The Tor network this run uses.
    pub network: NetworkInUse,
    /// The unlock screen lists no profile names.
    pub names_hidden: bool,
    pub drafts: HashMap<ContactId, String>,
    /// Something to tell the person that is not an error.
    pub notice: Option<String>,
    /// Something that went wrong, with what to do.
    pub error: Option<String>,
    /// The latest changes are not saved.
    pub save_problem: Option<crate::engine::SaveError>,
    pub show_qr: bool,
    pub copied: bool,
    pub settings_form: SettingsForm,
    /// The engine stopped by itself.
    pub stopped: bool,
}

/// What the opening task collected before events start to flow.
pub(crate) struct Snapshot {
    pub name: Option<String>,
    pub address: String,
    pub tor: TorState,
    pub status: Status,
    pub settings: Settings,
    pub contacts: Vec<ContactSummary>,
    pub transfers: Vec<TransferView>,
    pub conversations: Vec<(ContactId, Vec<MessageView>)>,
    pub blocked: Vec<BlockedView>,
    pub network: NetworkInUse,
}

/// Results of background work on an open profile, and its events.
pub(crate) enum SessionMsg {
    /// From the engine.
    Event(Box<Event>),
    /// The Tor connection changed.
    Tor(TorState),
    /// The engine's event stream ended without the person locking.
    Stopped,
    /// A message was queued with this id.
    Sent {
        contact: ContactId,
        id: u64,
        text: String,
        at: u64,
    },
    /// A message could not be queued; its text goes back into the box.
    SendFailed {
        contact: ContactId,
        text: String,
        error: String,
    },
    ContactAdded(ContactId),
    AddFailed(String),
    /// The current transfers, after we started one.
    Transfers(Vec<TransferView>),
    /// A transfer command failed.
    TransferFailed {
        transfer: String,
        error: String,
    },
    Settings(Settings),
    PassphraseChanged(Result<(), AppError>),
    NetworkSaved(Result<Option<String>, String>),
    DisplayNameSaved(Result<String, String>),
    /// The folder for received files was kept (`None`: ask each time).
    DownloadFolderSaved(Result<Option<String>, String>),
    /// The file dialog closed without a file.
    FilePickerClosed(ContactId),
    /// A file was offered.
    FileOffered(ContactId),
    /// A file could not be offered.
    FileNotSent {
        contact: ContactId,
        error: String,
    },
    /// The block list, after it changed.
    Blocked(Vec<BlockedView>),
    /// Anything else that failed, in words.
    Failed(String),
}

/// Whether a message event should produce a desktop notification, and
/// about what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Alert {
    Message { contact: ContactId, text: String },
    Request { suggested: String, greeting: String },
}

impl MainState {
    pub(crate) fn new(s: Snapshot) -> Self {
        let mut contacts = BTreeMap::new();
        for c in s.contacts {
            contacts.insert(c.id, ContactEntry::new(c));
        }
        let mut main = MainState {
            name: s.name,
            address: s.address,
            tor: s.tor,
            status: s.status,
            settings_form: SettingsForm {
                display_name: s.settings.display_name.clone(),
                download_folder: s.settings.download_folder.clone().unwrap_or_default(),
                custom_network: s.settings.custom_network.is_some(),
                network_file: s.settings.custom_network.clone().unwrap_or_default(),
                ..SettingsForm::default()
            },
            settings: s.settings,
            contacts,
            conversations: HashMap::new(),
            early_states: HashMap::new(),
            transfers: Vec::new(),
            view: View::Home,
            add: None,
            dialog: None,
            new_from: None,
            notes: HashMap::new(),
            send_file: HashMap::new(),
            save_in: HashMap::new(),
            blocked: s.blocked,
            network: s.network,
            names_hidden: false,
            drafts: HashMap::new(),
            notice: None,
            error: None,
            save_problem: None,
            show_qr: false,
            copied: false,
            stopped: false,
        };
        for (id, messages) in s.conversations {
            for m in messages {
                main.add_message(id, m);
            }
        }
        for t in s.transfers {
            main.upsert_transfer(t, None);
        }
        main
    }

    /// Whether nothing of this session is saved.
    pub(crate) fn is_amnesic(&self) -> bool {
        self.name.is_none()
    }

    /// Adds a line about the conversation at its current end.
    pub(crate) fn note(&mut self, contact: ContactId, text: String) {
        let at = self.conversations.get(&contact).map_or(0, Vec::len);
        let notes = self.notes.entry(contact).or_default();
        notes.push((at, text));
        if notes.len() > MAX_NOTES {
            notes.remove(0);
        }
    }

    /// Opens a contact's page, which marks its messages read.
    pub(crate) fn open_contact(&mut self, id: ContactId) {
        if self.view == View::Contact(id) {
            return;
        }
        self.view = View::Contact(id);
        self.new_from = None;
        // The notice ("… accepted your request") has been seen by now.
        self.notice = None;
        if let Some(c) = self.contacts.get_mut(&id) {
            let len = self.conversations.get(&id).map_or(0, Vec::len);
            if c.unread > 0 && c.unread <= len {
                self.new_from = Some((id, len - c.unread));
            }
            c.unread = 0;
        }
    }

    fn chat_open(&self, id: ContactId) -> bool {
        self.view == View::Contact(id)
    }

    /// Adds a message unless it is there already (history and live events
    /// can both carry it), keeping a state that arrived early.
    fn add_message(&mut self, contact: ContactId, mut m: MessageView) {
        if m.direction == Direction::Outgoing
            && let Some(s) = self.early_states.remove(&(contact, m.id))
        {
            m.state = Some(s);
        }
        let list = self.conversations.entry(contact).or_default();
        if let Some(old) = list
            .iter_mut()
            .rev()
            .find(|o| o.direction == m.direction && o.id == m.id)
        {
            if m.state.is_some() {
                old.state = m.state;
            }
            return;
        }
        list.push(m);
        // What a contact sends while history is off lives only here: the
        // newest lines are kept, so a flood cannot grow the window without
        // bound (review finding M2).
        if list.len() > MAX_SHOWN_MESSAGES {
            let extra = list.len() - MAX_SHOWN_MESSAGES;
            list.drain(..extra);
            if let Some((c, i)) = &mut self.new_from
                && *c == contact
            {
                *i = i.saturating_sub(extra);
            }
            if let Some(notes) = self.notes.get_mut(&contact) {
                for (i, _) in notes.iter_mut() {
                    *i = i.saturating_sub(extra);
                }
            }
        }
    }

    fn upsert_transfer(&mut self, view: TransferView, bytes_per_second: Option<u64>) {
        if let Some(t) = self.transfers.iter_mut().find(|t| t.view.id == view.id) {
            // A snapshot can be older than an event already applied.
            if view.done >= t.view.done {
                // It moved on: an error about an earlier try no longer
                // applies.
                if view.done > t.view.done || view.accepted != t.view.accepted {
                    t.error = None;
                }
                t.view = view;
            }
            if let Some(s) = bytes_per_second {
                t.bytes_per_second = s;
            }
        } else {
            self.transfers.push(TransferEntry {
                view,
                bytes_per_second: bytes_per_second.unwrap_or(0),
                outcome: TransferOutcome::Active,
                error: None,
            });
            // Finished ones (refused offers among them) go first when the
            // list is long; active transfers are never dropped.
            let finished = self
                .transfers
                .iter()
                .filter(|t| t.outcome != TransferOutcome::Active)
                .count();
            if finished > MAX_SHOWN_FINISHED_TRANSFERS
                && let Some(oldest) = self
                    .transfers
                    .iter()
                    .position(|t| t.outcome != TransferOutcome::Active)
            {
                self.transfers.remove(oldest);
            }
        }
    }

    fn finish_transfer(&mut self, view: TransferView, outcome: TransferOutcome) {
        self.upsert_transfer(view.clone(), None);
        if let Some(t) = self.transfers.iter_mut().find(|t| t.view.id == view.id) {
            if let TransferOutcome::Completed(_) = outcome {
                t.view.done = t.view.size;
            }
            t.outcome = outcome;
            t.error = None;
        }
    }

    /// The name to show for a contact.
    pub(crate) fn contact_name(&self, id: ContactId) -> String {
        match self.contacts.get(&id) {
            Some(c) => c.display_name(),
            None => "a removed contact".to_owned(),
        }
    }

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

    /// Transfers with one contact, oldest first.
    pub(crate) fn transfers_with(&self, id: ContactId) -> impl Iterator<Item = &TransferEntry> {
        self.transfers.iter().filter(move |t| t.view.contact == id)
    }

    /// Removes a finished transfer from view.
    pub(crate) fn dismiss_transfer(&mut self, transfer: &str) {
        self.transfers
            .retain(|t| t.view.id != transfer || t.outcome == TransferOutcome::Active);
    }
}

impl ContactEntry {
    fn new(summary: ContactSummary) -> Self {
        ContactEntry {
            accept_name: summary.suggested_nickname.clone(),
            summary,
            unread: 0,
        }
    }

    /// Our name for them, or something to call them by.
    pub(crate) fn display_name(&self) -> String {
        let chosen = if !self.summary.nickname.is_empty() {
            &self.summary.nickname
        } else {
            &self.summary.suggested_nickname
        };
        if super::peer_text::is_reserved_name(chosen) {
            // "You" beside our own lines would pass for us (review L1).
            format!("{} (a contact)", super::peer_text::isolated(chosen))
        } else if !chosen.is_empty() {
            super::peer_text::isolated(chosen)
        } else {
            // The start of their address, so that two unnamed contacts
            // can be told apart.
            let id = self.summary.address.trim_start_matches("allium:");
            format!("Unnamed ({}…)", id.get(..8).unwrap_or(id))
        }
    }
}

/// Whether the transfer is one we receive.
pub(crate) fn incoming(t: &TransferView) -> bool {
    t.direction == TransferDirection::Incoming
}

/// Error texts from below start in lower case to read well after a colon;
/// shown on their own, they start with a capital.
pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::ServiceState;

    fn summary(id: u64, state: ContactState) -> ContactSummary {
        ContactSummary {
            id: ContactId(id),
            address: format!("allium:{}", "a".repeat(56)),
            nickname: format!("c{id}"),
            state,
            greeting: String::new(),
            suggested_nickname: String::new(),
            request_delivered: false,
            online: false,
            history_enabled: false,
            queued: 0,
            verified: false,
            peer_keeps_history: None,
        }
    }

    fn main_state() -> MainState {
        MainState::new(Snapshot {
            name: Some("p".into()),
            address: "allium:x".into(),
            tor: TorState::Ready,
            status: Status {
                address: "allium:x".into(),
                intake: Some(ServiceState::Starting),
                endpoint: ServiceState::Starting,
                save_error: None,
            },
            settings: Settings::default(),
            contacts: vec![summary(1, ContactState::Accepted)],
            transfers: Vec::new(),
            conversations: Vec::new(),
            blocked: Vec::new(),
            network: NetworkInUse::public(),
        })
    }

    fn received(id: u64, text: &str) -> SessionMsg {
        SessionMsg::Event(Box::new(Event::MessageReceived {
            contact: ContactId(1),
            message: MessageView {
                direction: Direction::Incoming,
                id,
                text: text.into(),
                at: 0,
                state: None,
            },
        }))
    }

    #[test]
    fn a_flood_of_messages_keeps_only_the_newest_in_the_window() {
        let mut m = main_state();
        for id in 1..=(MAX_SHOWN_MESSAGES as u64 + 500) {
            m.apply(received(id, "x"), false);
        }
        let list = &m.conversations[&ContactId(1)];
        assert_eq!(list.len(), MAX_SHOWN_MESSAGES);
        assert_eq!(list.first().map(|m| m.id), Some(501));
    }

    #[test]
    fn refused_offers_do_not_pile_up_in_the_window() {
        let mut m = main_state();
        for i in 0..500u32 {
            m.apply(
                SessionMsg::Event(Box::new(Event::FileCancelled {
                    transfer: TransferView {
                        id: format!("{i:032x}"),
                        contact: ContactId(1),
                        direction: TransferDirection::Incoming,
                        name: "huge.iso".into(),
                        size: 1 << 40,
                        done: 0,
                        accepted: false,
                    },
                    cancelled: Cancelled {
                        by_peer: false,
                        reason: "too large".into(),
                    },
                })),
                false,
            );
        }
        assert!(m.transfers.len() <= MAX_SHOWN_FINISHED_TRANSFERS + 1);
    }

    #[test]
    fn a_contact_named_you_is_shown_as_a_contact() {
        let mut m = main_state();
        let mut s = summary(2, ContactState::Accepted);
        s.nickname = "You".into();
        m.apply(
            SessionMsg::Event(Box::new(Event::ContactChanged { contact: s })),
            false,
        );
        assert_eq!(m.contact_name(ContactId(2)), "You (a contact)");
        assert_eq!(m.contact_name(ContactId(1)), "c1");
    }

    #[test]
    fn unread_counts_only_while_the_chat_is_closed() {
        let mut m = main_state();
        assert!(m.apply(received(1, "one"), true).is_some());
        assert!(m.apply(received(2, "two"), true).is_some());
        assert_eq!(m.contacts[&ContactId(1)].unread, 2);
        m.open_contact(ContactId(1));
        assert_eq!(m.contacts[&ContactId(1)].unread, 0);
        // Open and focused: no count, no notification.
        assert_eq!(m.apply(received(3, "three"), true), None);
        assert_eq!(m.contacts[&ContactId(1)].unread, 0);
        // Open but the window is in the background: notify, do not count.
        assert!(m.apply(received(4, "four"), false).is_some());
        assert_eq!(m.contacts[&ContactId(1)].unread, 0);
        assert_eq!(m.conversations[&ContactId(1)].len(), 4);
    }

    #[test]
    fn a_delivery_state_that_overtakes_the_send_reply_is_kept() {
        let mut m = main_state();
        let c = ContactId(1);
        m.apply(
            SessionMsg::Event(Box::new(Event::MessageState {
                contact: c,
                id: 7,
                state: DeliveryState::Delivered,
            })),
            true,
        );
        m.apply(
            SessionMsg::Sent {
                contact: c,
                id: 7,
                text: "hi".into(),
                at: 0,
            },
            true,
        );
        let list = &m.conversations[&c];
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].state, Some(DeliveryState::Delivered));
    }

    #[test]
    fn history_and_live_events_do_not_duplicate_messages() {
        let mut m = main_state();
        m.apply(received(1, "one"), true);
        m.apply(received(1, "one"), true);
        assert_eq!(m.conversations[&ContactId(1)].len(), 1);
    }

    #[test]
    fn a_rejected_request_leaves_a_notice_and_closes_its_page() {
        let mut m = main_state();
        m.open_contact(ContactId(1));
        m.apply(
            SessionMsg::Event(Box::new(Event::RequestRejected {
                contact: ContactId(1),
            })),
            true,
        );
        assert!(m.contacts.is_empty());
        assert_eq!(m.view, View::Home);
        assert_eq!(m.notice.as_deref(), Some("c1 declined your request."));
    }

    #[test]
    fn stale_transfer_snapshots_do_not_move_progress_back() {
        let mut m = main_state();
        let view = |done| TransferView {
            id: "00".into(),
            contact: ContactId(1),
            direction: TransferDirection::Incoming,
            name: "f".into(),
            size: 10,
            done,
            accepted: true,
        };
        m.apply(
            SessionMsg::Event(Box::new(Event::FileProgress {
                transfer: view(8),
                bytes_per_second: 5,
            })),
            true,
        );
        m.apply(SessionMsg::Transfers(vec![view(2)]), true);
        assert_eq!(m.transfers[0].view.done, 8);
        assert_eq!(m.transfers[0].bytes_per_second, 5);
    }
}
