//! The owner file: which process owns the network in a directory, so that
//! `allium-testnet down --dir DIR` can stop it and a second start in the
//! same directory can tell a live network from a dead one.
//!
//! A process is identified by its pid *and* its start time (from
//! `/proc/PID/stat`), so a recycled pid is never mistaken for the owner.
//! Only the recorded owner, and tor processes whose command line names a
//! torrc inside the directory, are ever signalled.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::Error;

/// The owner file's name inside the network directory: one line,
/// `PID START_TIME`.
pub const OWNER_FILE: &str = "testnet.pid";

/// The start time of a live (not zombie) process, in clock ticks since
/// boot, or `None` if there is no such process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: the
    // fields we want follow its last ')'. Then: state, ppid, … starttime is
    // the 20th of those.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if fields
        .first()
        .is_some_and(|state| *state == "Z" || *state == "X")
    {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Records this process as the owner of the network in `dir`.
pub(crate) fn write_owner_file(dir: &Path) -> Result<(), Error> {
    let pid = std::process::id();
    let path = dir.join(OWNER_FILE);
    let started = start_time(pid).ok_or_else(|| Error::Parse {
        path: format!("/proc/{pid}/stat").into(),
        what: "our own start time".into(),
    })?;
    fs::write(&path, format!("{pid} {started}\n"))
        .map_err(Error::io(format!("writing {}", path.display())))
}

/// Removes the owner file if it names this process.
pub(crate) fn remove_owner_file(dir: &Path) {
    if read_owner(dir).is_some_and(|(pid, _)| pid == std::process::id()) {
        let _ = fs::remove_file(dir.join(OWNER_FILE));
    }
}

fn read_owner(dir: &Path) -> Option<(u32, u64)> {
    let text = fs::read_to_string(dir.join(OWNER_FILE)).ok()?;
    let mut words = text.split_whitespace();
    Some((words.next()?.parse().ok()?, words.next()?.parse().ok()?))
}

/// The pid of the process that owns the network in `dir`, if it is alive.
pub(crate) fn live_owner(dir: &Path) -> Option<u32> {
    let (pid, started) = read_owner(dir)?;
    (start_time(pid) == Some(started)).then_some(pid)
}

/// Stops the network in `dir` by sending SIGTERM to its owner (for
/// `allium-testnet up`: it then stops its tor nodes and exits) and waiting
/// up to `timeout` for it to exit. If it does not, it is killed, and so are
/// the tor nodes that it left (found through their `PidFile`s in `dir`).
///
/// Returns the owner's pid, or `None` if no live owner was recorded.
pub fn stop_owner(dir: &Path, timeout: Duration) -> Result<Option<u32>, Error> {
    // The nodes' command lines name canonical paths.
    let dir = &fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let Some(pid) = live_owner(dir) else {
        // Stale or missing: nothing to stop; clear a stale record.
        let _ = fs::remove_file(dir.join(OWNER_FILE));
        return Ok(None);
    };
    signal(pid, Signal::TERM)?;
    if wait_gone(pid, timeout) {
        return Ok(Some(pid));
    }
    signal(pid, Signal::KILL)?;
    wait_gone(pid, Duration::from_secs(5));
    kill_leftover_tors(dir);
    let _ = fs::remove_file(dir.join(OWNER_FILE));
    Ok(Some(pid))
}

fn signal(pid: u32, signal: Signal) -> Result<(), Error> {
    let raw = i32::try_from(pid).ok().and_then(Pid::from_raw);
    let Some(target) = raw else {
        return Ok(());
    };
    match kill_process(target, signal) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(Error::Io {
            context: format!("signalling pid {pid}"),
            source: e.into(),
        }),
    }
}

fn wait_gone(pid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while start_time(pid).is_some() {
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(50));
    }
    true
}

/// SIGKILLs each tor whose pid is in `dir/*/tor.pid` and whose command
/// line names that node's torrc.
fn kill_leftover_tors(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for node in entries.flatten().map(|e| e.path()) {
        let Some(pid) = fs::read_to_string(node.join("tor.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let torrc = node.join("torrc");
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let names_torrc = cmdline
            .split(|&b| b == 0)
            .any(|arg| Path::new(OsStr::from_bytes(arg)) == torrc);
        if names_torrc {
            let _ = signal(pid, Signal::KILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn own_record_is_live_and_removed() -> TestResult {
        let dir = tempfile::tempdir()?;
        assert_eq!(live_owner(dir.path()), None);
        write_owner_file(dir.path())?;
        assert_eq!(live_owner(dir.path()), Some(std::process::id()));
        remove_owner_file(dir.path());
        assert!(!dir.path().join(OWNER_FILE).exists());
        Ok(())
    }

    #[test]
    fn record_with_another_start_time_is_stale() -> TestResult {
        let dir = tempfile::tempdir()?;
        let pid = std::process::id();
        let started = start_time(pid).ok_or("no start time")?;
        fs::write(
            dir.path().join(OWNER_FILE),
            format!("{pid} {}\n", started + 1),
        )?;
        assert_eq!(live_owner(dir.path()), None);
        // `down` on a stale record stops nothing (and does not signal us).
        assert_eq!(stop_owner(dir.path(), Duration::from_secs(1))?, None);
        assert!(!dir.path().join(OWNER_FILE).exists());
        Ok(())
    }
}
