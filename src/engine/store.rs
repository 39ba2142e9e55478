//! Where the engine's profile goes when it changes: the seam between the
//! engine and the vault.
//!
//! It owns no state of the engine and must never decide what is saved or
//! when (that is `durability.rs`); it only writes what it is given.

use std::sync::{Arc, Mutex};

use allium_vault::{Profile, VaultError};

/// Persists snapshots of the profile: the vault in the app, memory in
/// tests, nothing in an amnesic session. (Not to be confused with
/// `allium_vault::ProfileStore`, the folder of profiles.) `save` may block
/// (Argon2 is not run here, but fsync is): the engine calls it on a
/// blocking thread, never on its own task, and coalesces (only the latest
/// snapshot is written).
pub trait ProfileSaver: Send + 'static {
    /// Makes `profile` durable, or says why not.
    fn save(&mut self, profile: &Profile) -> Result<(), SaveError>;

    /// Whether nothing saved reaches a disk (an amnesic session): such a
    /// session tells its contacts it keeps no history (PROTOCOL.md §6.3),
    /// whatever is switched on, because nothing of it outlives the session.
    fn keeps_nothing(&self) -> bool {
        false
    }
}

/// An amnesic session: nothing is kept anywhere.
pub struct NoStore;

impl ProfileSaver for NoStore {
    fn save(&mut self, _profile: &Profile) -> Result<(), SaveError> {
        Ok(())
    }

    fn keeps_nothing(&self) -> bool {
        true
    }
}

/// Keeps the last saved snapshot in memory, shared with whoever holds a
/// clone: lets tests "restart" a peer from exactly what it had saved.
#[derive(Clone, Default)]
pub struct MemoryStore {
    saved: Arc<Mutex<Option<Profile>>>,
    failing: Arc<Mutex<Option<SaveError>>>,
    delay: Arc<Mutex<std::time::Duration>>,
    saves: Arc<std::sync::atomic::AtomicU64>,
}

impl MemoryStore {
    /// A store holding `profile` as if it had been saved.
    pub fn with(profile: Profile) -> Self {
        let store = MemoryStore::default();
        if let Ok(mut s) = store.saved.lock() {
            *s = Some(profile);
        }
        store
    }

    /// The last snapshot saved.
    pub fn saved(&self) -> Option<Profile> {
        self.saved.lock().ok().and_then(|s| s.clone())
    }

    /// Makes every save take `delay` (a slow disk), widening the window in
    /// which a crash finds a change not yet saved.
    pub fn set_delay(&self, delay: std::time::Duration) {
        if let Ok(mut d) = self.delay.lock() {
            *d = delay;
        }
    }

    /// How many snapshots were written: what a peer can make us write.
    pub fn saves(&self) -> u64 {
        self.saves.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes every save fail with `message` (a full disk), or succeed again.
    pub fn set_failing(&self, error: Option<SaveError>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = error;
        }
    }
}

impl ProfileSaver for MemoryStore {
    fn save(&mut self, profile: &Profile) -> Result<(), SaveError> {
        let delay = self.delay.lock().map(|d| *d).unwrap_or_default();
        std::thread::sleep(delay);
        if let Some(m) = self.failing.lock().ok().and_then(|f| f.clone()) {
            return Err(m);
        }
        let mut s = self
            .saved
            .lock()
            .map_err(|_| SaveError::Other("the store's lock is poisoned".into()))?;
        *s = Some(profile.clone());
        self.saves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}

/// Why a save failed, as the window and JSON-RPC clients can tell apart:
/// a full disk and a read-only one have their own advice.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SaveError {
    /// The disk (or the user's quota) is full; the previous save is intact.
    #[error("{}", VaultError::DiskFull)]
    DiskFull,
    /// The profile's folder cannot be written; the previous save is intact.
    #[error("{}", VaultError::NotWritable)]
    NotWritable,
    /// Anything else, in the store's words.
    #[error("{0}")]
    Other(String),
}

impl SaveError {
    /// The stable name JSON-RPC gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            SaveError::DiskFull => "disk_full",
            SaveError::NotWritable => "not_writable",
            SaveError::Other(_) => "other",
        }
    }
}

impl From<VaultError> for SaveError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::DiskFull => SaveError::DiskFull,
            VaultError::NotWritable => SaveError::NotWritable,
            e => SaveError::Other(e.to_string()),
        }
    }
}

/// `{"kind": …, "message": …}`: the kind to branch on, the words to show.
impl serde::Serialize for SaveError {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("SaveError", 2)?;
        st.serialize_field("kind", self.kind())?;
        st.serialize_field("message", &self.to_string())?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vaults_disk_errors_keep_their_kind() {
        assert_eq!(SaveError::from(VaultError::DiskFull), SaveError::DiskFull);
        assert_eq!(
            SaveError::from(VaultError::NotWritable),
            SaveError::NotWritable
        );
        let other = SaveError::from(VaultError::WrongPassphrase);
        assert_eq!(other.kind(), "other");
        assert_eq!(other.to_string(), VaultError::WrongPassphrase.to_string());
    }

    #[test]
    fn json_gives_the_kind_to_branch_on_and_the_words_to_show() {
        assert_eq!(
            serde_json::to_value(SaveError::DiskFull).expect("json"),
            serde_json::json!({
                "kind": "disk_full",
                "message": VaultError::DiskFull.to_string(),
            })
        );
        assert_eq!(
            serde_json::to_value(SaveError::NotWritable).expect("json")["kind"],
            "not_writable"
        );
    }
}
