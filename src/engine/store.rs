//! Where the engine's profile goes when it changes: the seam between the
//! engine and the vault.

use std::sync::{Arc, Mutex};

use allium_vault::Profile;

/// Persists snapshots of the profile. `save` may block (Argon2 is not run
/// here, but fsync is): the engine calls it on a blocking thread, never on
/// its own task, and coalesces (only the latest snapshot is written).
pub trait ProfileStore: Send + 'static {
    /// Makes `profile` durable, or says in words why not.
    fn save(&mut self, profile: &Profile) -> Result<(), String>;

    /// Whether nothing saved reaches a disk (an amnesic session): such a
    /// session tells its contacts it keeps no history (PROTOCOL.md §6.3),
    /// whatever is switched on, because nothing of it outlives the session.
    fn keeps_nothing(&self) -> bool {
        false
    }
}

/// An amnesic session: nothing is kept anywhere.
pub struct NoStore;

impl ProfileStore for NoStore {
    fn save(&mut self, _profile: &Profile) -> Result<(), String> {
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
    failing: Arc<Mutex<Option<String>>>,
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
    pub fn set_failing(&self, message: Option<&str>) {
        if let Ok(mut f) = self.failing.lock() {
            *f = message.map(str::to_owned);
        }
    }
}

impl ProfileStore for MemoryStore {
    fn save(&mut self, profile: &Profile) -> Result<(), String> {
        let delay = self.delay.lock().map(|d| *d).unwrap_or_default();
        std::thread::sleep(delay);
        if let Some(m) = self.failing.lock().ok().and_then(|f| f.clone()) {
            return Err(m);
        }
        let mut s = self.saved.lock().map_err(|_| "store lock poisoned")?;
        *s = Some(profile.clone());
        self.saves
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }
}
