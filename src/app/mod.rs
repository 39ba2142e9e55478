//! Opening a profile: what the window and the headless interface share.
//!
//! A [`Backend`] lists, creates and unlocks profiles and starts amnesic
//! sessions; each gives a [`Running`] profile (its engine and the state of
//! its Tor connection). The real backend keeps profiles in vaults and runs
//! Arti; [`MemoryBackend`] keeps them in memory on an in-process network,
//! for tests of the window and the JSON-RPC interface. Neither the window
//! nor the JSON-RPC code knows which one it drives.

mod memory;
pub mod passphrase;
mod real;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::engine::Engine;

pub use memory::MemoryBackend;
pub use passphrase::check_new_passphrase;
pub use real::{Options, RealBackend};

/// A boxed future, as the backend's methods return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// A passphrase, wiped from memory when dropped.
pub type Passphrase = Zeroizing<String>;

/// The Tor connection, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub enum TorState {
    /// Connecting: how far, and what Tor is doing, in words.
    Connecting {
        /// 0.0 to 1.0.
        fraction: f32,
        /// What Tor is doing.
        phase: String,
    },
    /// Connecting has stopped moving and Arti says why: what to try, in
    /// words. It goes on trying; [`Running::retry_tor`] starts over.
    Stuck {
        /// 0.0 to 1.0: how far it got.
        fraction: f32,
        /// What seems wrong and what to try.
        advice: String,
    },
    /// Connected: contacts can be reached.
    Ready,
    /// Could not connect; `message` says what to check. Retry with
    /// [`Running::retry_tor`].
    Failed {
        /// What went wrong, in words.
        message: String,
    },
}

/// Why a profile could not be opened or changed, in words a person can
/// act on. `code` is stable (JSON-RPC error data).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The passphrase does not open this profile.
    #[error("wrong passphrase; check it and try again (Caps Lock?)")]
    WrongPassphrase,
    /// The passphrase is not acceptable (empty, too easy to guess, or the
    /// confirmation differs).
    #[error("{0}")]
    WeakPassphrase(String),
    /// No profile by that name.
    #[error("there is no profile called \"{0}\"")]
    NoSuchProfile(String),
    /// A profile by that name exists.
    #[error("a profile called \"{0}\" already exists; choose another name")]
    ProfileExists(String),
    /// The name is not allowed.
    #[error("{0}")]
    InvalidName(String),
    /// Anything else about the profile's storage (corrupted, newer
    /// version, disk full, already open elsewhere), in the vault's words.
    #[error("{0}")]
    Storage(String),
    /// Tor could not be started.
    #[error("{0}")]
    Tor(String),
}

impl AppError {
    /// A stable, machine-readable name.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::WrongPassphrase => "wrong_passphrase",
            AppError::WeakPassphrase(_) => "weak_passphrase",
            AppError::NoSuchProfile(_) => "no_such_profile",
            AppError::ProfileExists(_) => "profile_exists",
            AppError::InvalidName(_) => "invalid_name",
            AppError::Storage(_) => "storage",
            AppError::Tor(_) => "tor",
        }
    }
}

/// What a running profile can do besides its engine's commands.
pub trait ProfileControl: Send + Sync {
    /// Re-encrypts the profile under a new passphrase (slow: runs the
    /// key derivation twice).
    fn change_passphrase(
        &self,
        old: Passphrase,
        new: Passphrase,
    ) -> BoxFuture<Result<(), AppError>>;
    /// Tries to connect to Tor again after a failure.
    fn retry_tor(&self);
}

/// An unlocked profile (or an amnesic session).
pub struct Running {
    /// The messenger.
    pub engine: Engine,
    /// The Tor connection.
    pub tor: watch::Receiver<TorState>,
    /// The profile's name; `None` for an amnesic session.
    pub name: Option<String>,
    /// Passphrase change, Tor retry.
    pub control: Box<dyn ProfileControl>,
    /// Which Tor network this run uses, and why.
    pub network: NetworkInUse,
}

/// The Tor network a running profile uses, so the window can say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkInUse {
    /// In words: "the public Tor network", "the network in FILE".
    pub description: String,
    /// Chosen by the command line (`--network`), over the profile's own
    /// setting: changing the setting does nothing until Allium is started
    /// without it.
    pub from_command_line: bool,
}

impl NetworkInUse {
    /// The public Tor network, by default.
    pub fn public() -> Self {
        NetworkInUse {
            description: "the public Tor network".into(),
            from_command_line: false,
        }
    }
}

impl Running {
    /// Tries to connect to Tor again.
    pub fn retry_tor(&self) {
        self.control.retry_tor();
    }

    /// Whether nothing of this session is saved.
    pub fn is_amnesic(&self) -> bool {
        self.name.is_none()
    }
}

/// Where profiles live and how they are opened.
pub trait Backend: Send + Sync + 'static {
    /// Profile names, readable without unlocking (nothing else is).
    fn profiles(&self) -> Result<Vec<String>, AppError>;
    /// Creates a profile with fresh keys and opens it.
    fn create(&self, name: String, passphrase: Passphrase) -> BoxFuture<Result<Running, AppError>>;
    /// Opens an existing profile.
    fn unlock(&self, name: String, passphrase: Passphrase) -> BoxFuture<Result<Running, AppError>>;
    /// Starts a session that writes nothing anywhere.
    fn amnesic(&self) -> BoxFuture<Result<Running, AppError>>;
    /// Deletes a closed profile for good, erasing its files first.
    fn delete(&self, name: String) -> BoxFuture<Result<(), AppError>>;
    /// Whether the unlock screen hides profile names (readable without
    /// unlocking, like the names).
    fn names_hidden(&self) -> bool;
    /// Sets [`Backend::names_hidden`].
    fn hide_names(&self, hidden: bool) -> Result<(), AppError>;
}
