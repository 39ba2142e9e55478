//! Commands to the engine: what may be asked ([`Command`], each with the
//! answer of its own type it waits for) and the [`EngineHandle`] the window
//! and JSON-RPC use to ask it. It holds no state and must never decide
//! anything: the core answers (`core/commands.rs`).

use std::path::PathBuf;

use allium_protocol::TransferId;
use allium_vault::{ContactId, Settings};
use tokio::sync::{mpsc, oneshot};

use super::{BlockedView, ContactSummary, EngineError, MessageView, Status, TransferView};

/// Where a command's result goes: each command has its own result type, so
/// nothing has to check which kind of reply came back.
pub(crate) type Answer<T> = oneshot::Sender<Result<T, EngineError>>;

/// What the window or the JSON-RPC interface asks of the engine, each with
/// the answer it is waiting for.
pub(crate) enum Command {
    Status(Answer<Status>),
    AddContact {
        address: String,
        nickname: String,
        greeting: String,
        answer: Answer<ContactId>,
    },
    Contacts(Answer<Vec<ContactSummary>>),
    Accept {
        contact: ContactId,
        nickname: Option<String>,
        answer: Answer<()>,
    },
    Reject(ContactId, Answer<()>),
    Block(ContactId, Answer<()>),
    Remove(ContactId, Answer<()>),
    Rename(ContactId, String, Answer<()>),
    SetVerified(ContactId, bool, Answer<()>),
    Blocked(Answer<Vec<BlockedView>>),
    Unblock(String, Answer<()>),
    SendMessage(ContactId, String, Answer<u64>),
    Conversation(ContactId, Answer<Vec<MessageView>>),
    SetHistory(ContactId, bool, Answer<()>),
    SetIntake(bool, Answer<()>),
    SetDisplayName(String, Answer<()>),
    Settings(Answer<Settings>),
    SetCustomNetwork(Option<String>, Answer<()>),
    SetNotificationContent(bool, Answer<()>),
    SetAutoLock(u32, Answer<()>),
    SetDownloadFolder(Option<String>, Answer<()>),
    /// Answered once the file's size is known (`files/`).
    SendFile(ContactId, PathBuf, Answer<String>),
    /// Answered once the partial file exists (`files/`).
    AcceptFile(TransferId, PathBuf, Answer<()>),
    CancelFile(TransferId, Answer<()>),
    Transfers(Answer<Vec<TransferView>>),
    /// Answered once everything is saved and every session is closed.
    Shutdown(Answer<()>),
}

fn refuse<T>(answer: Answer<T>, e: EngineError) {
    let _ = answer.send(Err(e));
}

impl Command {
    /// Answers `e`, whatever was asked (the engine is shutting down).
    pub(crate) fn refuse(self, e: EngineError) {
        match self {
            Command::Status(a) => refuse(a, e),
            Command::AddContact { answer, .. } => refuse(answer, e),
            Command::Contacts(a) => refuse(a, e),
            Command::Accept { answer, .. } => refuse(answer, e),
            Command::Reject(_, a)
            | Command::Block(_, a)
            | Command::Remove(_, a)
            | Command::Rename(_, _, a)
            | Command::SetVerified(_, _, a)
            | Command::Unblock(_, a)
            | Command::SetHistory(_, _, a)
            | Command::SetIntake(_, a)
            | Command::SetDisplayName(_, a)
            | Command::SetCustomNetwork(_, a)
            | Command::SetNotificationContent(_, a)
            | Command::SetAutoLock(_, a)
            | Command::SetDownloadFolder(_, a)
            | Command::AcceptFile(_, _, a)
            | Command::CancelFile(_, a)
            | Command::Shutdown(a) => refuse(a, e),
            Command::Blocked(a) => refuse(a, e),
            Command::SendMessage(_, _, a) => refuse(a, e),
            Command::Conversation(_, a) => refuse(a, e),
            Command::Settings(a) => refuse(a, e),
            Command::SendFile(_, _, a) => refuse(a, e),
            Command::Transfers(a) => refuse(a, e),
        }
    }
}

/// Commands to a running engine. Cheap to clone; every method returns once
/// the engine has applied the command (never after network I/O; after
/// file work for sending and accepting files, and after the last save
/// for `shutdown`).
#[derive(Clone)]
pub struct EngineHandle {
    pub(super) tx: mpsc::UnboundedSender<Command>,
}

impl EngineHandle {
    /// Sends the command `ask` makes with its answer, and waits for it.
    async fn ask<T>(&self, ask: impl FnOnce(Answer<T>) -> Command) -> Result<T, EngineError> {
        let (answer, rx) = oneshot::channel();
        self.tx
            .send(ask(answer))
            .map_err(|_| EngineError::Stopped)?;
        rx.await.map_err(|_| EngineError::Stopped)?
    }

    /// Our address and the state of our services.
    pub async fn status(&self) -> Result<Status, EngineError> {
        self.ask(Command::Status).await
    }

    /// Asks the owner of `address` to become a contact.
    pub async fn add_contact(
        &self,
        address: &str,
        nickname: &str,
        greeting: &str,
    ) -> Result<ContactId, EngineError> {
        self.ask(|answer| Command::AddContact {
            address: address.to_owned(),
            nickname: nickname.to_owned(),
            greeting: greeting.to_owned(),
            answer,
        })
        .await
    }

    /// Every contact and request.
    pub async fn contacts(&self) -> Result<Vec<ContactSummary>, EngineError> {
        self.ask(Command::Contacts).await
    }

    /// Accepts an incoming request, optionally naming the contact.
    pub async fn accept(
        &self,
        contact: ContactId,
        nickname: Option<&str>,
    ) -> Result<(), EngineError> {
        self.ask(|answer| Command::Accept {
            contact,
            nickname: nickname.map(str::to_owned),
            answer,
        })
        .await
    }

    /// Declines an incoming request; a repeat is dropped silently.
    pub async fn reject(&self, contact: ContactId) -> Result<(), EngineError> {
        self.ask(|a| Command::Reject(contact, a)).await
    }

    /// Removes a contact or request and blocks its address.
    pub async fn block(&self, contact: ContactId) -> Result<(), EngineError> {
        self.ask(|a| Command::Block(contact, a)).await
    }

    /// Removes a contact or request; it can no longer find our endpoint.
    pub async fn remove(&self, contact: ContactId) -> Result<(), EngineError> {
        self.ask(|a| Command::Remove(contact, a)).await
    }

    /// Changes our name for a contact.
    pub async fn rename(&self, contact: ContactId, nickname: &str) -> Result<(), EngineError> {
        self.ask(|a| Command::Rename(contact, nickname.to_owned(), a))
            .await
    }

    /// Marks a contact verified (safety words compared) or not.
    pub async fn set_verified(&self, contact: ContactId, on: bool) -> Result<(), EngineError> {
        self.ask(|a| Command::SetVerified(contact, on, a)).await
    }

    /// Every blocked address, oldest first.
    pub async fn blocked(&self) -> Result<Vec<BlockedView>, EngineError> {
        self.ask(Command::Blocked).await
    }

    /// Takes an address off the block list: it may send a request again
    /// (it is not made a contact).
    pub async fn unblock(&self, address: &str) -> Result<(), EngineError> {
        self.ask(|a| Command::Unblock(address.to_owned(), a)).await
    }

    /// Queues a message; returns its id. It is sent when the contact is
    /// online, and kept (in the vault) until acknowledged.
    pub async fn send_message(&self, contact: ContactId, text: &str) -> Result<u64, EngineError> {
        self.ask(|a| Command::SendMessage(contact, text.to_owned(), a))
            .await
    }

    /// The conversation: kept history (if on) plus queued messages.
    pub async fn conversation(&self, contact: ContactId) -> Result<Vec<MessageView>, EngineError> {
        self.ask(|a| Command::Conversation(contact, a)).await
    }

    /// Keeps (or stops keeping and deletes) a contact's history.
    pub async fn set_history(&self, contact: ContactId, on: bool) -> Result<(), EngineError> {
        self.ask(|a| Command::SetHistory(contact, on, a)).await
    }

    /// Publishes or withdraws the intake (the public address).
    pub async fn set_intake(&self, on: bool) -> Result<(), EngineError> {
        self.ask(|a| Command::SetIntake(on, a)).await
    }

    /// The name suggested to people we send requests to.
    pub async fn set_display_name(&self, name: &str) -> Result<(), EngineError> {
        self.ask(|a| Command::SetDisplayName(name.to_owned(), a))
            .await
    }

    /// The person's choices, as saved with the profile.
    pub async fn settings(&self) -> Result<Settings, EngineError> {
        self.ask(Command::Settings).await
    }

    /// Chooses the Tor network for the next start of this profile: `None`
    /// for public Tor, or the path of a custom network file. The running
    /// connection is not changed; the backend reads the choice when it
    /// next opens the profile.
    pub async fn set_custom_network(&self, file: Option<String>) -> Result<(), EngineError> {
        self.ask(|a| Command::SetCustomNetwork(file, a)).await
    }

    /// Whether desktop notifications may show who wrote and what.
    pub async fn set_notification_content(&self, on: bool) -> Result<(), EngineError> {
        self.ask(|a| Command::SetNotificationContent(on, a)).await
    }

    /// Lock after this many minutes without use of the window (0: never;
    /// at most a day). The engine only keeps the choice; the window locks.
    pub async fn set_auto_lock(&self, minutes: u32) -> Result<(), EngineError> {
        self.ask(|a| Command::SetAutoLock(minutes, a)).await
    }

    /// Where accepted files go without asking (`None`, or only spaces:
    /// ask each time). Kept with the profile; the window uses it.
    pub async fn set_download_folder(&self, folder: Option<&str>) -> Result<(), EngineError> {
        let folder = folder
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .map(str::to_owned);
        self.ask(|a| Command::SetDownloadFolder(folder, a)).await
    }

    /// Offers a file to a contact; returns the transfer id (hex).
    pub async fn send_file(
        &self,
        contact: ContactId,
        path: impl Into<PathBuf>,
    ) -> Result<String, EngineError> {
        let path = path.into();
        self.ask(|a| Command::SendFile(contact, path, a)).await
    }

    /// Accepts an offered file into `folder`.
    pub async fn accept_file(
        &self,
        transfer: &str,
        folder: impl Into<PathBuf>,
    ) -> Result<(), EngineError> {
        let (transfer, folder) = (parse_transfer(transfer)?, folder.into());
        self.ask(|a| Command::AcceptFile(transfer, folder, a)).await
    }

    /// Declines an offer or cancels a transfer in either direction.
    pub async fn cancel_file(&self, transfer: &str) -> Result<(), EngineError> {
        let transfer = parse_transfer(transfer)?;
        self.ask(|a| Command::CancelFile(transfer, a)).await
    }

    /// Transfers in progress or waiting for a decision.
    pub async fn transfers(&self) -> Result<Vec<TransferView>, EngineError> {
        self.ask(Command::Transfers).await
    }

    /// Closes every session, saves, and stops the engine.
    pub async fn shutdown(&self) -> Result<(), EngineError> {
        self.ask(Command::Shutdown).await
    }
}

pub(crate) fn parse_transfer(s: &str) -> Result<TransferId, EngineError> {
    let mut id = [0u8; 16];
    hex::decode_to_slice(s, &mut id).map_err(|_| EngineError::NoSuchTransfer)?;
    Ok(TransferId(id))
}
