//! Amnesic sessions: a profile that exists only in memory, and a private
//! directory for Arti's state and cache that is removed when the session
//! ends.
//!
//! This module owns those directories: creating them (RAM-backed places
//! first), removing them on drop, on a panic that ends the process, on
//! SIGINT/SIGTERM/SIGHUP/SIGQUIT, and sweeping away the ones a killed
//! process left behind. It must never write anything but the directory
//! tree and its empty lock file; the profile itself never leaves memory.
//!
//! What cannot be promised: a process killed with SIGKILL (or by a power
//! cut) removes nothing; its directory stays until the next Allium start
//! sweeps it, and when it fell back to an on-disk temp directory its blocks
//! may stay readable on the disk after that. Memory may be written to swap
//! or a core dump by the operating system.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::time::{Duration, SystemTime};

use crate::error::VaultError;
use crate::format::random_hex;
use crate::store::{create_private_dir_all, make_private};

/// The prefix of every amnesic directory's name (how the sweep finds them).
pub const AMNESIC_DIR_PREFIX: &str = "allium-amnesic-";
const LOCK_FILE: &str = "lock";

/// Directories of live sessions in this process, for the panic hook and
/// the signal handler (which cannot reach the sessions' owners).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// An amnesic session's private directory. Removed when dropped.
#[derive(Debug)]
pub struct AmnesicSession {
    dir: PathBuf,
    tor_state: PathBuf,
    tor_cache: PathBuf,
    /// Held locked for the session's life: the sweep of another Allium
    /// process takes a lock it can get as proof that the owner is gone.
    _lock: File,
}

/// Where amnesic directories go, best first: `$XDG_RUNTIME_DIR` and
/// `/dev/shm` are in RAM on usual Linux systems; the temp directory is the
/// last resort (and may be on disk).
pub fn amnesic_parent_candidates() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(runtime) = std::env::var_os("XDG_RUNTIME_DIR") {
        let runtime = PathBuf::from(runtime);
        if runtime.is_absolute() && runtime.is_dir() {
            out.push(runtime);
        }
    }
    let shm = PathBuf::from("/dev/shm");
    if shm.is_dir() {
        out.push(shm);
    }
    out.push(std::env::temp_dir());
    out
}

impl AmnesicSession {
    /// Starts a session in the best place (see
    /// [`amnesic_parent_candidates`]) after sweeping stale directories
    /// there.
    pub fn start() -> Result<AmnesicSession, VaultError> {
        let mut last_err = VaultError::NotWritable;
        for parent in amnesic_parent_candidates() {
            match Self::start_in(&parent) {
                Ok(session) => return Ok(session),
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }

    /// Starts a session with its directory under `parent`, after sweeping
    /// stale directories there.
    pub fn start_in(parent: &Path) -> Result<AmnesicSession, VaultError> {
        sweep_stale_in(parent)?;
        let dir = parent.join(format!("{AMNESIC_DIR_PREFIX}{}", random_hex(12)?));
        // Not recursive: the directory must be new, ours, and private.
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| VaultError::write("creating the session's private folder", e))?;
        // Registered before anything is inside, so no path can leave a
        // directory that no cleanup knows about.
        live().push(dir.clone());
        let made = (|| {
            make_private(&dir)?;
            let lock = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join(LOCK_FILE))
                .map_err(|e| VaultError::write("creating the session's lock file", e))?;
            lock.try_lock().map_err(|_| {
                VaultError::write("locking the session", std::io::Error::other("lock refused"))
            })?;
            let tor_state = dir.join("tor").join("state");
            let tor_cache = dir.join("tor").join("cache");
            create_private_dir_all(&tor_state)?;
            create_private_dir_all(&tor_cache)?;
            Ok(AmnesicSession {
                dir: dir.clone(),
                tor_state,
                tor_cache,
                _lock: lock,
            })
        })();
        if made.is_err() {
            remove_registered(&dir);
        }
        made
    }

    /// The session's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Arti's state directory for this session.
    pub fn tor_state_dir(&self) -> &Path {
        &self.tor_state
    }

    /// Arti's cache directory for this session.
    pub fn tor_cache_dir(&self) -> &Path {
        &self.tor_cache
    }

    /// Ends the session now, reporting whether its directory is gone.
    pub fn end(self) -> Result<(), VaultError> {
        let result = remove_dir(&self.dir);
        // Drop would try again; it finds nothing and does nothing.
        drop(self);
        result
    }
}

impl Drop for AmnesicSession {
    fn drop(&mut self) {
        remove_registered(&self.dir);
    }
}

fn remove_dir(dir: &Path) -> Result<(), VaultError> {
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VaultError::write(
            "removing the session's private folder",
            e,
        )),
    }
}

fn remove_registered(dir: &Path) {
    let _ = remove_dir(dir);
    live().retain(|d| d != dir);
}

/// Removes the directories of every amnesic session of this process. For
/// the app's own exit paths (a signal it handles itself, `process::exit`),
/// where the sessions' destructors will not run. The sessions stay
/// registered, so that whatever is written into their directories
/// afterwards is removed again when they are dropped.
pub fn remove_amnesic_dirs() {
    let dirs: Vec<PathBuf> = live().clone();
    for dir in dirs {
        let _ = remove_dir(&dir);
    }
}

/// Installs, once per process, what removes amnesic directories when the
/// process ends abnormally:
///
/// * a panic hook (run before the previous hook, which it keeps) that
///   removes them on any panic, in any thread: a panic is a bug, and
///   leaving nothing behind matters more than an amnesic session carrying
///   on after one (the app should end the session then). Destructors do
///   not run for a session owned by another thread, a static, or when
///   built with `panic = "abort"`, hence the hook.
/// * a thread that, on SIGINT, SIGTERM, SIGHUP or SIGQUIT, removes them and
///   then ends the process as the signal would have.
///
/// An app that handles those signals itself for a graceful shutdown should
/// call only [`install_panic_cleanup`] and drop its session (or call
/// [`remove_amnesic_dirs`]) on its own exit path.
pub fn install_exit_cleanup() -> Result<(), VaultError> {
    install_panic_cleanup();
    install_signal_cleanup()
}

/// Installs the panic hook part of [`install_exit_cleanup`].
pub fn install_panic_cleanup() {
    static PANIC_HOOK: Once = Once::new();
    PANIC_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            remove_amnesic_dirs();
            previous(info);
        }));
    });
}

fn install_signal_cleanup() -> Result<(), VaultError> {
    use signal_hook::consts::signal::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    static SIGNALS: Mutex<bool> = Mutex::new(false);
    let mut installed = SIGNALS.lock().unwrap_or_else(|p| p.into_inner());
    if *installed {
        return Ok(());
    }
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP, SIGQUIT])
        .map_err(|e| VaultError::Io {
            doing: "installing the exit handler",
            source: std::sync::Arc::new(e),
        })?;
    std::thread::Builder::new()
        .name("allium-amnesic-exit".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                remove_amnesic_dirs();
                // Unregister ourselves and die the way the signal meant.
                signals.handle().close();
                let _ = signal_hook::low_level::emulate_default_handler(signal);
                std::process::exit(128 + signal);
            }
        })
        .map_err(|e| VaultError::Io {
            doing: "installing the exit handler",
            source: std::sync::Arc::new(e),
        })?;
    *installed = true;
    Ok(())
}

/// Removes amnesic directories that processes killed without cleanup left
/// in every candidate parent (see [`amnesic_parent_candidates`]). Call once
/// at startup, in every mode. Returns how many were removed.
pub fn sweep_stale_amnesic_dirs() -> Result<usize, VaultError> {
    let mut removed = 0;
    for parent in amnesic_parent_candidates() {
        removed += sweep_stale_in(&parent)?;
    }
    Ok(removed)
}

/// Our own uid, read from `/proc/self` (no `unsafe` `getuid` call).
fn own_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Sweeps `parent`: a directory with our prefix, owned by us, whose lock
/// file we can lock (its owner is gone), is removed. One without a lock
/// file is removed only when older than a minute (it may be being
/// created right now).
pub fn sweep_stale_in(parent: &Path) -> Result<usize, VaultError> {
    let entries = match fs::read_dir(parent) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(VaultError::read("looking for leftover session folders", e)),
    };
    let uid = own_uid();
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|n| n.starts_with(AMNESIC_DIR_PREFIX))
        {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() || uid.is_some_and(|u| u != meta.uid()) {
            continue;
        }
        if live().contains(&path) {
            continue;
        }
        let stale = match OpenOptions::new()
            .read(true)
            .write(true)
            .open(path.join(LOCK_FILE))
        {
            // Locked by a live owner: WouldBlock. Ours now: the owner is gone.
            Ok(lock) => lock.try_lock().is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .is_some_and(|age| age > Duration::from_secs(60)),
            Err(_) => false,
        };
        if stale && remove_dir(&path).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}
