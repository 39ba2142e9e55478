//! Saving in the background: a thread that owns the vault and writes the
//! latest profile snapshot it was given.
//!
//! This module owns the coalescing: callers hand over snapshots as often as
//! they like with [`Saver::request`], which never touches the disk; the
//! thread writes only the newest snapshot pending when it gets to it. It
//! must never write an older snapshot after a newer one, and never drop a
//! requested snapshot silently: a failed save is kept and retried by the
//! next request, `flush` or shutdown, and its error stays visible.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use zeroize::Zeroizing;

use crate::error::VaultError;
use crate::profile::Profile;
use crate::vault::Vault;

/// What the saver thread writes to. [`Vault`] in the app; a controllable
/// fake in the tests of the coalescing.
pub(crate) trait SaveTarget: Send + 'static {
    fn save(&mut self, profile: &Profile) -> Result<(), VaultError>;
    fn change_passphrase(
        &mut self,
        current: &str,
        new: &str,
        profile: &Profile,
    ) -> Result<(), VaultError>;
}

impl SaveTarget for Vault {
    fn save(&mut self, profile: &Profile) -> Result<(), VaultError> {
        Vault::save(self, profile)
    }
    fn change_passphrase(
        &mut self,
        current: &str,
        new: &str,
        profile: &Profile,
    ) -> Result<(), VaultError> {
        Vault::change_passphrase(self, current, new, profile)
    }
}

/// The saver's state, as the app sees it.
#[derive(Clone, Debug, Default)]
pub struct SaveStatus {
    /// Snapshots written to disk so far.
    pub saves_written: u64,
    /// Whether a requested snapshot is not on disk yet (pending, being
    /// written, or failed).
    pub unsaved_changes: bool,
    /// The error of the most recent write, if it failed. Cleared by the
    /// next successful write.
    pub last_error: Option<VaultError>,
}

/// Called on the saver thread after every write attempt, with the new
/// status: the app uses it to show a save error and request a repaint.
pub type StatusCallback = Box<dyn Fn(&SaveStatus) + Send>;

struct PassphraseChange {
    current: Zeroizing<String>,
    new: Zeroizing<String>,
    profile: Profile,
    generation: u64,
    reply: mpsc::Sender<Result<(), VaultError>>,
}

#[derive(Default)]
struct State {
    /// The newest snapshot not yet handed to the thread, and its generation.
    pending: Option<(u64, Profile)>,
    /// A snapshot whose write failed, kept for a retry (only while nothing
    /// newer is pending).
    failed: Option<(u64, Profile)>,
    passphrase_change: Option<PassphraseChange>,
    /// Generation of the newest request (snapshot or passphrase change).
    requested: u64,
    /// Generation of the newest snapshot known to be on disk.
    written: u64,
    /// A `flush` asked for the failed snapshot to be tried again.
    retry: bool,
    /// Whether the thread is writing right now.
    busy: bool,
    shutdown: bool,
    /// The failed snapshot was retried once at shutdown.
    final_retry_done: bool,
    status: SaveStatus,
}

struct Shared {
    state: Mutex<State>,
    /// Signals the thread (work or shutdown) and waiters (progress).
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` inconsistent
        // in a way that matters more than losing the saver: carry on.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Saves profile snapshots on a background thread, coalescing bursts.
///
/// Dropping it writes whatever is pending and waits for the thread; call
/// [`Saver::shutdown`] instead to learn whether that final write worked.
pub struct Saver {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Kept alive as long as the thread may write (the profile lock).
    _keep_alive: Option<Box<dyn Send + Sync>>,
}

impl std::fmt::Debug for Saver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Saver").finish_non_exhaustive()
    }
}

impl Saver {
    /// Starts a saver thread that owns `vault`.
    pub fn spawn(vault: Vault) -> Result<Saver, VaultError> {
        Self::spawn_target(Box::new(vault), None, None)
    }

    /// Like [`Saver::spawn`], calling `on_status` on the saver thread after
    /// every write attempt.
    pub fn spawn_with_callback(
        vault: Vault,
        on_status: StatusCallback,
    ) -> Result<Saver, VaultError> {
        Self::spawn_target(Box::new(vault), Some(on_status), None)
    }

    pub(crate) fn spawn_target(
        target: Box<dyn SaveTarget>,
        on_status: Option<StatusCallback>,
        keep_alive: Option<Box<dyn Send + Sync>>,
    ) -> Result<Saver, VaultError> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("allium-vault-saver".into())
            .spawn(move || run(&thread_shared, target, on_status))
            .map_err(|e| VaultError::Io {
                doing: "starting the saving thread",
                source: Arc::new(e),
            })?;
        Ok(Saver {
            shared,
            thread: Some(thread),
            _keep_alive: keep_alive,
        })
    }

    /// Hands over a snapshot to be saved. Never waits for the disk: if a
    /// write is in progress, this snapshot replaces any other one still
    /// waiting, and only the newest is written.
    pub fn request(&self, profile: Profile) {
        let mut state = self.shared.lock();
        state.requested += 1;
        let generation = state.requested;
        state.pending = Some((generation, profile));
        state.failed = None;
        state.status.unsaved_changes = true;
        drop(state);
        self.shared.changed.notify_all();
    }

    /// Waits until every snapshot requested so far is on disk (retrying a
    /// failed one once) and returns the outcome of the last write.
    pub fn flush(&self) -> Result<(), VaultError> {
        let mut state = self.shared.lock();
        let target = state.requested;
        if state.written >= target {
            return Ok(());
        }
        if state.failed.is_some() {
            state.retry = true;
            self.shared.changed.notify_all();
        }
        loop {
            if state.written >= target {
                return Ok(());
            }
            let idle = !state.busy
                && state.pending.is_none()
                && state.passphrase_change.is_none()
                && !state.retry;
            if idle {
                return Err(state
                    .status
                    .last_error
                    .clone()
                    .unwrap_or(VaultError::SaverStopped));
            }
            if self.thread.as_ref().is_none_or(|t| t.is_finished()) {
                return Err(VaultError::SaverStopped);
            }
            state = self
                .shared
                .changed
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Re-encrypts the vault under a new passphrase, writing `profile` (the
    /// current state, which supersedes every earlier request). Blocks until
    /// done: it runs Argon2 twice, so call it off the UI thread.
    pub fn change_passphrase(
        &self,
        current_passphrase: &str,
        new_passphrase: &str,
        profile: Profile,
    ) -> Result<(), VaultError> {
        let (reply, answer) = mpsc::channel();
        let mut state = self.shared.lock();
        state.requested += 1;
        let generation = state.requested;
        state.passphrase_change = Some(PassphraseChange {
            current: Zeroizing::new(current_passphrase.to_owned()),
            new: Zeroizing::new(new_passphrase.to_owned()),
            profile,
            generation,
            reply,
        });
        state.status.unsaved_changes = true;
        drop(state);
        self.shared.changed.notify_all();
        answer.recv().unwrap_or(Err(VaultError::SaverStopped))
    }

    /// The saver's current state (for a status line or an error banner).
    pub fn status(&self) -> SaveStatus {
        self.shared.lock().status.clone()
    }

    /// Writes what is pending, stops the thread and returns the outcome of
    /// the last write.
    pub fn shutdown(mut self) -> Result<(), VaultError> {
        let flushed = self.flush();
        self.stop();
        flushed
    }

    fn stop(&mut self) {
        self.shared.lock().shutdown = true;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Saver {
    fn drop(&mut self) {
        // The thread writes what is still pending before it exits.
        self.stop();
    }
}

enum Job {
    Save(u64, Profile),
    ChangePassphrase(PassphraseChange),
}

fn run(shared: &Shared, mut target: Box<dyn SaveTarget>, on_status: Option<StatusCallback>) {
    loop {
        let job = {
            let mut state = shared.lock();
            let job = loop {
                if let Some(change) = state.passphrase_change.take() {
                    // Its profile is newer than any snapshot requested before it.
                    if state
                        .pending
                        .as_ref()
                        .is_some_and(|(g, _)| *g < change.generation)
                    {
                        state.pending = None;
                    }
                    state.failed = None;
                    break Some(Job::ChangePassphrase(change));
                }
                if let Some((g, p)) = state.pending.take() {
                    break Some(Job::Save(g, p));
                }
                // A failed snapshot is retried when a flush asks, and once
                // more at shutdown.
                let final_retry = state.shutdown && !state.final_retry_done;
                if state.retry || final_retry {
                    state.retry = false;
                    if state.shutdown {
                        state.final_retry_done = true;
                    }
                    if let Some((g, p)) = state.failed.take() {
                        break Some(Job::Save(g, p));
                    }
                }
                if state.shutdown {
                    break None;
                }
                state = shared
                    .changed
                    .wait(state)
                    .unwrap_or_else(|p| p.into_inner());
            };
            state.busy = job.is_some();
            job
        };
        let Some(job) = job else { return };

        let (generation, result, snapshot, reply) = match job {
            Job::Save(g, profile) => {
                let result = target.save(&profile);
                (g, result, profile, None)
            }
            Job::ChangePassphrase(change) => {
                let result =
                    target.change_passphrase(&change.current, &change.new, &change.profile);
                (
                    change.generation,
                    result,
                    change.profile,
                    Some(change.reply),
                )
            }
        };

        let status = {
            let mut state = shared.lock();
            state.busy = false;
            match &result {
                Ok(()) => {
                    state.written = state.written.max(generation);
                    state.status.saves_written += 1;
                    state.status.last_error = None;
                }
                Err(e) => {
                    state.status.last_error = Some(e.clone());
                    let newer_waiting =
                        state.pending.is_some() || state.passphrase_change.is_some();
                    if reply.is_some() && !newer_waiting {
                        // A failed passphrase change is not retried (the
                        // vault keeps the old passphrase), but its snapshot
                        // is still the newest state: save it under the old
                        // passphrase right away.
                        state.pending = Some((generation, snapshot));
                    } else if !newer_waiting {
                        // Kept for a retry by the next flush or shutdown.
                        state.failed = Some((generation, snapshot));
                    }
                }
            }
            state.status.unsaved_changes = state.written < state.requested;
            state.status.clone()
        };
        shared.changed.notify_all();
        if let Some(reply) = reply {
            let _ = reply.send(result);
        }
        if let Some(callback) = &on_status {
            callback(&status);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{ProfileKeys, Secret32};
    use std::sync::mpsc::{Receiver, SyncSender};
    use std::time::Duration;

    fn profile(n: u64) -> Profile {
        let mut p = Profile::new(ProfileKeys {
            intake_seed: Secret32([1; 32]),
            endpoint_seed: Secret32([2; 32]),
            static_secret: Secret32([3; 32]),
        });
        p.next_contact_id = n;
        p
    }

    /// A target that reports each write as it starts and waits for
    /// permission to finish it, with a chosen outcome.
    struct Gated {
        started: SyncSender<u64>,
        finish: Receiver<Result<(), VaultError>>,
        written: Arc<Mutex<Vec<u64>>>,
    }

    impl SaveTarget for Gated {
        fn save(&mut self, profile: &Profile) -> Result<(), VaultError> {
            self.started.send(profile.next_contact_id).unwrap();
            let outcome = self.finish.recv().unwrap();
            if outcome.is_ok() {
                self.written.lock().unwrap().push(profile.next_contact_id);
            }
            outcome
        }
        fn change_passphrase(&mut self, _: &str, _: &str, p: &Profile) -> Result<(), VaultError> {
            self.save(p)
        }
    }

    struct Harness {
        saver: Saver,
        started: Receiver<u64>,
        finish: SyncSender<Result<(), VaultError>>,
        written: Arc<Mutex<Vec<u64>>>,
    }

    fn harness() -> Harness {
        let (started_tx, started) = mpsc::sync_channel(16);
        let (finish, finish_rx) = mpsc::sync_channel(16);
        let written = Arc::new(Mutex::new(Vec::new()));
        let target = Gated {
            started: started_tx,
            finish: finish_rx,
            written: Arc::clone(&written),
        };
        let saver = Saver::spawn_target(Box::new(target), None, None).unwrap();
        Harness {
            saver,
            started,
            finish,
            written,
        }
    }

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn a_burst_is_coalesced_into_the_newest_snapshot() {
        let h = harness();
        h.saver.request(profile(1));
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 1);
        // While snapshot 1 is being written, 99 more arrive; none blocks.
        for n in 2..=100 {
            h.saver.request(profile(n));
        }
        h.finish.send(Ok(())).unwrap();
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 100);
        h.finish.send(Ok(())).unwrap();
        h.saver.flush().unwrap();
        assert_eq!(*h.written.lock().unwrap(), vec![1, 100]);
        let status = h.saver.status();
        assert_eq!(status.saves_written, 2);
        assert!(!status.unsaved_changes);
        assert!(status.last_error.is_none());
    }

    /// Waits until the saver thread has recorded a failed write.
    fn wait_for_failure(saver: &Saver) -> VaultError {
        for _ in 0..1000 {
            if let Some(e) = saver.status().last_error {
                return e;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("no failure recorded");
    }

    #[test]
    fn a_failed_save_is_visible_and_retried_by_flush() {
        let h = harness();
        h.saver.request(profile(7));
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 7);
        h.finish.send(Err(VaultError::DiskFull)).unwrap();
        assert!(matches!(wait_for_failure(&h.saver), VaultError::DiskFull));
        assert!(h.saver.status().unsaved_changes);
        // Each flush tries the same snapshot again and reports the outcome.
        for outcome in [Err(VaultError::DiskFull), Ok(())] {
            let flushed = std::thread::scope(|s| {
                let f = s.spawn(|| h.saver.flush());
                assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 7);
                h.finish.send(outcome.clone()).unwrap();
                f.join().unwrap()
            });
            assert_eq!(flushed.is_ok(), outcome.is_ok());
        }
        assert_eq!(*h.written.lock().unwrap(), vec![7]);
        let status = h.saver.status();
        assert!(status.last_error.is_none() && !status.unsaved_changes);
    }

    #[test]
    fn a_newer_request_replaces_a_failed_one() {
        let h = harness();
        h.saver.request(profile(1));
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 1);
        h.finish.send(Err(VaultError::NotWritable)).unwrap();
        assert!(matches!(
            wait_for_failure(&h.saver),
            VaultError::NotWritable
        ));
        h.saver.request(profile(2));
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 2);
        h.finish.send(Ok(())).unwrap();
        h.saver.flush().unwrap();
        assert_eq!(*h.written.lock().unwrap(), vec![2]);
        assert!(h.started.try_recv().is_err(), "snapshot 1 is never retried");
    }

    #[test]
    fn dropping_the_saver_writes_what_is_pending() {
        let h = harness();
        h.saver.request(profile(1));
        assert_eq!(h.started.recv_timeout(WAIT).unwrap(), 1);
        h.saver.request(profile(2));
        let Harness {
            saver,
            started,
            finish,
            written,
        } = h;
        finish.send(Ok(())).unwrap();
        finish.send(Ok(())).unwrap();
        drop(saver); // joins the thread
        assert_eq!(started.try_iter().collect::<Vec<_>>(), vec![2]);
        assert_eq!(*written.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn flush_with_nothing_requested_returns_at_once() {
        let h = harness();
        h.saver.flush().unwrap();
        assert!(h.started.try_recv().is_err());
    }
}
