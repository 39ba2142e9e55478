//! Opening a profile: what the window and the headless interface share.
//!
//! A [`Backend`] lists, creates and unlocks profiles and starts amnesic
//! sessions; each gives a [`Running`] profile (its engine and the state of
//! its Tor connection). The real backend keeps profiles in vaults and runs
//! Arti; [`MemoryBackend`] keeps them in memory on an in-process network,
//! for tests of the window and the JSON-RPC interface. Neither the window
//! nor the JSON-RPC code knows which one it drives.

mod memory;
mod real;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::watch;
use zeroize::Zeroizing;

use crate::engine::Engine;

pub use memory::MemoryBackend;
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
    /// The passphrase is not acceptable (empty, or the confirmation differs).
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
}

/// Refuses passphrases nobody should use. Strength beyond that is shown
/// as a hint (see [`passphrase_hint`]), not enforced: the person decides.
pub fn check_new_passphrase(p: &str, confirmation: &str) -> Result<(), AppError> {
    if p.is_empty() {
        return Err(AppError::WeakPassphrase("choose a passphrase".into()));
    }
    if p != confirmation {
        return Err(AppError::WeakPassphrase(
            "the two passphrases differ; type them again".into(),
        ));
    }
    Ok(())
}

/// A rough strength hint for a new passphrase, in words, and a level from
/// 1 (weak) to 4 (strong).
///
/// People pick predictable passphrases, so the estimate is deliberately
/// low: several words count as words from a diceware list (12.9 bits
/// each), anything else as characters at half the entropy their classes
/// would allow. It nudges towards long passphrases; it guarantees nothing.
pub fn passphrase_hint(p: &str) -> (&'static str, u8) {
    let words: Vec<&str> = p.split_whitespace().collect();
    let bits = if words.len() >= 2 {
        words.len() as f64 * 12.9
    } else {
        let classes = [
            p.chars().any(|c| c.is_lowercase()),
            p.chars().any(|c| c.is_uppercase()),
            p.chars().any(|c| c.is_ascii_digit()),
            p.chars().any(|c| !c.is_alphanumeric()),
        ];
        let pool: f64 = [26.0, 26.0, 10.0, 33.0]
            .iter()
            .zip(classes)
            .filter(|(_, used)| *used)
            .map(|(n, _)| n)
            .sum();
        p.chars().count() as f64 * pool.max(1.0).log2() / 2.0
    };
    match bits {
        b if b < 35.0 => ("weak: use more words", 1),
        b if b < 50.0 => ("fair: a few more words would help", 2),
        b if b < 65.0 => ("good", 3),
        _ => ("strong", 4),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_grow_with_length() {
        assert_eq!(passphrase_hint("abc").1, 1);
        assert!(passphrase_hint("Tr0ub4dor&3").1 <= 2);
        assert_eq!(passphrase_hint("correct horse battery").1, 2);
        assert_eq!(passphrase_hint("correct horse battery staple").1, 3);
        assert_eq!(
            passphrase_hint("correct horse battery staple lamp river").1,
            4
        );
        assert!(check_new_passphrase("", "").is_err());
        assert_eq!(
            check_new_passphrase("a b c", "a b d"),
            Err(AppError::WeakPassphrase(
                "the two passphrases differ; type them again".into()
            ))
        );
    }
}
