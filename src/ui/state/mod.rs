//! What the window shows, as plain data, and how background results and
//! engine events change it.
//!
//! Everything here is synchronous and cheap: [`UiState::apply`] folds one
//! [`SessionMsg`] into the state and never waits on anything. The engine is
//! the source of truth; this is the window's copy of what it has been told.

mod apply;

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
mod tests;
