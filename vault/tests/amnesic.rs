//! Amnesic sessions leave nothing behind: on drop, on a panic, on SIGTERM
//! and SIGINT; and what SIGKILL leaves, the next start sweeps away.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use allium_vault::amnesic::{AMNESIC_DIR_PREFIX, sweep_stale_in};
use allium_vault::{AmnesicSession, install_exit_cleanup, install_panic_cleanup};
use common::{child_command, child_role, wait_for_marker};

fn entries(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .expect("test fixture")
        .map(|e| e.expect("test fixture").path())
        .collect()
}

/// What Arti would do: write state and cache files.
fn use_like_arti(session: &AmnesicSession) {
    fs::write(session.tor_state_dir().join("state"), b"guards etc").expect("test fixture");
    fs::create_dir_all(session.tor_cache_dir().join("dir")).expect("test fixture");
    fs::write(
        session.tor_cache_dir().join("dir").join("consensus"),
        b"...",
    )
    .expect("test fixture");
}

#[test]
fn a_session_leaves_no_file_behind() {
    let parent = tempfile::tempdir().unwrap();
    let session = AmnesicSession::start_in(parent.path()).unwrap();
    let dir = session.dir().to_path_buf();
    assert!(dir.starts_with(parent.path()));
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(AMNESIC_DIR_PREFIX)
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert!(session.tor_state_dir().starts_with(&dir) && session.tor_state_dir().is_dir());
    assert!(session.tor_cache_dir().starts_with(&dir) && session.tor_cache_dir().is_dir());
    use_like_arti(&session);
    drop(session);
    assert!(
        entries(parent.path()).is_empty(),
        "left: {:?}",
        entries(parent.path())
    );

    let session = AmnesicSession::start_in(parent.path()).unwrap();
    use_like_arti(&session);
    session.end().unwrap();
    assert!(entries(parent.path()).is_empty());
}

#[test]
fn the_default_place_is_in_memory_when_there_is_one() {
    let session = AmnesicSession::start().unwrap();
    let dir = session.dir().to_path_buf();
    let runtime = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_dir());
    let expected = runtime.unwrap_or_else(|| {
        if Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        }
    });
    assert_eq!(dir.parent().unwrap(), expected);
    drop(session);
    assert!(!dir.exists());
}

#[test]
fn a_live_session_is_never_swept() {
    let parent = tempfile::tempdir().unwrap();
    let session = AmnesicSession::start_in(parent.path()).unwrap();
    // Not even by another session starting beside it.
    let other = AmnesicSession::start_in(parent.path()).unwrap();
    assert_eq!(sweep_stale_in(parent.path()).unwrap(), 0);
    assert!(session.dir().is_dir() && other.dir().is_dir());
}

/// Starts `test_name` as a child that opens a session under `parent` and
/// prints the session's directory once ready.
fn spawn_session_child(test_name: &str, parent: &Path) -> (std::process::Child, PathBuf) {
    let mut child = child_command(test_name, "amnesic", parent)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("test fixture");
    let Some(dir) = wait_for_marker(&mut child, "SESSION-DIR ") else {
        let _ = child.kill();
        panic!("the child did not report its session");
    };
    let dir = PathBuf::from(dir);
    assert!(dir.is_dir());
    (child, dir)
}

fn announce(session: &AmnesicSession) {
    let mut out = std::io::stdout();
    writeln!(out, "SESSION-DIR {}", session.dir().display()).expect("test fixture");
    out.flush().expect("test fixture");
}

fn kill(pid: u32, signal: &str) {
    let ok = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("test fixture");
    assert!(ok.success());
}

#[test]
fn sigterm_and_sigint_remove_the_session() {
    for (signal, number) in [("-TERM", 15), ("-INT", 2)] {
        let parent = tempfile::tempdir().unwrap();
        let (mut child, dir) = spawn_session_child("child_waits_for_a_signal", parent.path());
        kill(child.id(), signal);
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(number),
            "{signal}: the child ended as the signal meant"
        );
        assert!(!dir.exists(), "{signal} left {dir:?}");
        assert!(entries(parent.path()).is_empty());
    }
}

#[test]
#[ignore = "run as a child process by sigterm_and_sigint_remove_the_session"]
fn child_waits_for_a_signal() {
    let Some((_, parent)) = child_role() else {
        return;
    };
    install_exit_cleanup().unwrap();
    let session = AmnesicSession::start_in(&parent).unwrap();
    use_like_arti(&session);
    announce(&session);
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn a_panic_removes_the_session_even_without_its_destructor() {
    let parent = tempfile::tempdir().unwrap();
    let (child, dir) = spawn_session_child("child_panics", parent.path());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("deliberate panic"));
    assert!(!dir.exists(), "the panic left {dir:?}");
    assert!(entries(parent.path()).is_empty());
}

#[test]
#[ignore = "run as a child process by a_panic_removes_the_session_even_without_its_destructor"]
fn child_panics() {
    let Some((_, parent)) = child_role() else {
        return;
    };
    install_panic_cleanup();
    let session = AmnesicSession::start_in(&parent).unwrap();
    use_like_arti(&session);
    announce(&session);
    // As if owned somewhere no unwinding reaches (a static, another thread).
    std::mem::forget(session);
    panic!("deliberate panic");
}

#[test]
fn what_sigkill_leaves_the_next_start_sweeps() {
    let parent = tempfile::tempdir().unwrap();
    let (mut child, dir) = spawn_session_child("child_waits_for_a_signal", parent.path());
    child.kill().unwrap(); // SIGKILL: nothing can run in the child
    child.wait().unwrap();
    assert!(
        dir.is_dir(),
        "SIGKILL cannot be cleaned up after, as documented"
    );
    // The next session's start sweeps the dead one's directory.
    let session = AmnesicSession::start_in(parent.path()).unwrap();
    assert!(!dir.exists());
    assert_eq!(entries(parent.path()), vec![session.dir().to_path_buf()]);
}

#[test]
fn the_sweep_leaves_other_things_alone() {
    let parent = tempfile::tempdir().unwrap();
    let unrelated = parent.path().join("not-ours");
    fs::create_dir(&unrelated).unwrap();
    let file_named_like_ours = parent.path().join(format!("{AMNESIC_DIR_PREFIX}file"));
    fs::write(&file_named_like_ours, b"").unwrap();
    // Being created right now by someone (no lock file yet, fresh).
    let fresh = parent.path().join(format!("{AMNESIC_DIR_PREFIX}fresh"));
    fs::create_dir(&fresh).unwrap();
    assert_eq!(sweep_stale_in(parent.path()).unwrap(), 0);
    assert!(unrelated.is_dir() && file_named_like_ours.is_file() && fresh.is_dir());
}
