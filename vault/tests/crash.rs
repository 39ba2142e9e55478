//! Saves interrupted by SIGKILL, a full disk and a read-only disk, each in
//! a child process (this test binary run again) so the parent can kill it
//! or give it a file system of its own.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use allium_vault::{
    KdfParams, Profile, ProfileName, ProfileStore, QueuedMessage, Vault, VaultError,
};
use common::{child_args, child_command, child_role, files_under, full_profile, wait_for_marker};

const PASS: &str = "kill me softly";
const READY: &str = "CHILD-READY";
const DONE: &str = "CHILD-CHECKS-PASSED";

fn name() -> ProfileName {
    ProfileName::new("crash").expect("test fixture")
}

/// The snapshot numbered `n`: its contents depend on `n` throughout, and
/// its size crosses padding buckets, so a mix of two snapshots, or a
/// truncated one, cannot pass for a whole one.
fn snapshot(n: u64) -> Profile {
    let mut p = full_profile();
    p.settings.display_name = n.to_string();
    p.next_contact_id = n;
    let big = "x".repeat((n % 4) as usize * 9_000);
    for c in &mut p.contacts {
        c.nickname = format!("{}-{n}", c.nickname);
        c.outbox.push(QueuedMessage {
            id: n,
            text: format!("{n}:{big}"),
            queued_at: n,
        });
    }
    p
}

fn snapshot_number(p: &Profile) -> u64 {
    let n: u64 = p
        .settings
        .display_name
        .parse()
        .expect("a snapshot's number");
    assert_eq!(*p, snapshot(n), "snapshot {n} is not whole");
    n
}

/// A small xorshift, seeded from the clock and printed, so a failing run
/// can be repeated by setting ALLIUM_VAULT_TEST_SEED.
fn rng() -> impl FnMut() -> u64 {
    let seed = std::env::var("ALLIUM_VAULT_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("test fixture")
                .as_nanos() as u64
                | 1
        });
    eprintln!("ALLIUM_VAULT_TEST_SEED={seed}");
    let mut x: u64 = seed;
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

#[test]
fn sigkill_during_saves_never_leaves_a_torn_vault() {
    let dir = tempfile::tempdir().unwrap();
    let store = ProfileStore::new(dir.path());
    store
        .create_with_params(&name(), PASS, KdfParams::insecure_for_tests(), &snapshot(0))
        .unwrap();
    let mut next = rng();
    let mut last = 0;
    let mut advanced = 0;
    const KILLS: usize = 60;
    for round in 0..KILLS {
        let mut child = child_command("child_saves_until_killed", "saver", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        if wait_for_marker(&mut child, READY).is_none() {
            let _ = child.kill();
            panic!("round {round}: the child did not start saving");
        }
        std::thread::sleep(Duration::from_micros(next() % 30_000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        // The kernel released the dead child's lock; the vault opens whole.
        let (unlocked, profile) = store
            .unlock(&name(), PASS)
            .unwrap_or_else(|e| panic!("round {round}: the vault did not open: {e:?}"));
        let n = snapshot_number(&profile);
        assert!(
            n >= last,
            "round {round}: went back from snapshot {last} to {n}"
        );
        if n > last {
            advanced += 1;
        }
        last = n;
        // Unlocking removed any unfinished temp file the kill left.
        let files = files_under(&unlocked.paths().dir);
        assert!(
            files
                .iter()
                .all(|f| !f.file_name().unwrap().to_str().unwrap().contains(".tmp-")),
            "{files:?}"
        );
    }
    eprintln!("{KILLS} kills, reached snapshot {last}, progress in {advanced} rounds");
    // Kills that land before the child's first save make no progress (about
    // a third here); a fifth with progress still proves saves were cut.
    assert!(
        advanced >= KILLS / 5,
        "too few rounds saved anything ({advanced}): the test proves little"
    );
}

#[test]
#[ignore = "run as a child process by sigkill_during_saves_never_leaves_a_torn_vault"]
fn child_saves_until_killed() {
    let Some((_, dir)) = child_role() else { return };
    let store = ProfileStore::new(&dir);
    let (mut unlocked, profile) = store.unlock(&name(), PASS).unwrap();
    let mut n = snapshot_number(&profile);
    let mut out = std::io::stdout();
    writeln!(out, "{READY}").unwrap();
    out.flush().unwrap();
    loop {
        n += 1;
        unlocked.vault_mut().save(&snapshot(n)).unwrap();
    }
}

/// Runs `test_name` as a child in its own mount namespace, with a 512 KiB
/// tmpfs mounted on a fresh directory, and checks that it ran its checks.
fn run_in_small_tmpfs(test_name: &str) {
    let dir = tempfile::tempdir().expect("test fixture");
    let mut cmd = Command::new("unshare");
    // As root (also root mapped inside `unshare -r -n`), a mount namespace
    // needs nothing more; otherwise a user namespace makes us root in it.
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m));
    if uid.ok() != Some(0) {
        cmd.arg("-r");
    }
    cmd.args(["-m", "--propagation", "private", "--", "sh", "-c"]);
    cmd.arg(r#"mount -t tmpfs -o size=512k,mode=0700 allium-test "$1" && shift && exec "$@""#);
    cmd.arg("sh")
        .arg(dir.path())
        .arg(std::env::current_exe().expect("test fixture"));
    child_args(&mut cmd, test_name);
    cmd.env(common::CHILD_ROLE, "tmpfs")
        .env(common::CHILD_DIR, dir.path());
    let out = cmd
        .output()
        .expect("running unshare (util-linux) for a private tmpfs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains(DONE),
        "child {test_name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    // The tmpfs was private to the child: nothing landed here.
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("test fixture").count(),
        0
    );
}

/// In the child: checks that `dir` is the small tmpfs, not the real disk.
fn assert_small_tmpfs(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/self/mounts").expect("test fixture");
    let dir = dir.to_str().expect("test fixture");
    assert!(
        mounts
            .lines()
            .any(|l| l.starts_with("allium-test ") && l.split(' ').nth(1) == Some(dir)),
        "{dir} is not the test tmpfs"
    );
}

fn big_profile() -> Profile {
    let mut p = full_profile();
    p.contacts[0].outbox.push(QueuedMessage {
        id: 99,
        text: "y".repeat(100_000),
        queued_at: 1,
    });
    p
}

fn no_temp_files(dir: &Path) {
    let files = files_under(dir);
    assert!(
        files
            .iter()
            .all(|f| !f.to_str().expect("test fixture").contains(".tmp-")),
        "{files:?}"
    );
}

#[test]
fn disk_full_keeps_the_previous_save() {
    run_in_small_tmpfs("child_disk_full");
}

#[test]
#[ignore = "run as a child process by disk_full_keeps_the_previous_save"]
fn child_disk_full() {
    let Some((_, dir)) = child_role() else { return };
    assert_small_tmpfs(&dir);
    let store = ProfileStore::new(&dir);
    let mut unlocked = store
        .create_with_params(
            &name(),
            PASS,
            KdfParams::insecure_for_tests(),
            &full_profile(),
        )
        .unwrap();
    let vault_path = unlocked.paths().vault.clone();
    // Fill the file system.
    let filler_path = dir.join("filler");
    let mut filler = std::fs::File::create(&filler_path).unwrap();
    let chunk = [0u8; 4096];
    let err = loop {
        if let Err(e) = filler.write_all(&chunk).and_then(|()| filler.sync_all()) {
            break e;
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull);

    // The save fails with DiskFull, visibly, and leaves the old vault.
    let err = unlocked.vault_mut().save(&big_profile()).unwrap_err();
    assert!(matches!(err, VaultError::DiskFull), "{err:?}");
    assert!(err.to_string().contains("previous save is intact"));
    no_temp_files(&dir.join("profiles"));
    assert_eq!(Vault::open(&vault_path, PASS).unwrap().1, full_profile());

    // Space freed: the next save writes it.
    drop(filler);
    std::fs::remove_file(&filler_path).unwrap();
    unlocked.vault_mut().save(&big_profile()).unwrap();
    drop(unlocked);
    assert_eq!(store.unlock(&name(), PASS).unwrap().1, big_profile());
    println!("{DONE}");
}

#[test]
fn read_only_disk_keeps_the_previous_save() {
    run_in_small_tmpfs("child_read_only");
}

#[test]
#[ignore = "run as a child process by read_only_disk_keeps_the_previous_save"]
fn child_read_only() {
    let Some((_, dir)) = child_role() else { return };
    assert_small_tmpfs(&dir);
    let store = ProfileStore::new(&dir);
    let vault_path = store
        .create_with_params(
            &name(),
            PASS,
            KdfParams::insecure_for_tests(),
            &full_profile(),
        )
        .unwrap()
        .paths()
        .vault
        .clone();
    // (A remount to read-only is refused while any file is open for
    // writing, so the profile's lock is released first. `bind` makes it
    // a change of this mount's flags, which a user namespace may make.)
    let status = Command::new("mount")
        .args(["-o", "remount,ro,bind"])
        .arg(&dir)
        .status()
        .unwrap();
    assert!(status.success(), "remounting read-only");
    let (mut vault, _) = Vault::open(&vault_path, PASS).unwrap();
    let err = vault.save(&big_profile()).unwrap_err();
    assert!(matches!(err, VaultError::NotWritable), "{err:?}");
    assert!(err.to_string().contains("previous save is intact"));
    let err = vault
        .change_passphrase(PASS, "new", &big_profile())
        .unwrap_err();
    assert!(matches!(err, VaultError::NotWritable), "{err:?}");
    // Still opens (read-only media can be read), with the old contents and
    // the old passphrase.
    let (_, profile) = store.unlock(&name(), PASS).unwrap();
    assert_eq!(profile, full_profile());
    let err = store
        .create_with_params(
            &ProfileName::new("second").unwrap(),
            PASS,
            KdfParams::insecure_for_tests(),
            &full_profile(),
        )
        .unwrap_err();
    assert!(matches!(err, VaultError::NotWritable), "{err:?}");
    println!("{DONE}");
}
