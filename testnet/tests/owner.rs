//! The claim that the whole crate's cleanup rests on when destructors do
//! not run: a tor started with `__OwningControllerProcess PID` exits by
//! itself once that process is gone, even if it was killed with SIGKILL.
//!
//! A `sleep` stands in for the owner, so no network is needed; tor checks
//! for its owner every 15 seconds, so this takes up to about 16 s.

use std::fs;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn tor_exits_when_its_owner_is_killed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let log = dir.path().join("notice.log");
    let mut owner = Command::new("sleep").arg("600").spawn()?;
    let torrc = dir.path().join("torrc");
    fs::write(
        &torrc,
        format!(
            "DataDirectory {}\nLog notice file {}\nSocksPort 0\nDisableNetwork 1\nRunAsDaemon 0\n\
             __OwningControllerProcess {}\n",
            data.display(),
            log.display(),
            owner.id()
        ),
    )?;
    let mut tor = Command::new(allium_testnet::tor_program())
        .args(["--defaults-torrc", "/dev/null", "-f"])
        .arg(&torrc)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    // Let tor start and begin watching its owner.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !fs::read_to_string(&log).is_ok_and(|l| l.contains("Bootstrapped 0%")) {
        if Instant::now() > deadline || tor.try_wait()?.is_some() {
            let _ = tor.kill();
            let _ = owner.kill();
            return Err(format!("tor did not start: {}", fs::read_to_string(&log)?).into());
        }
        thread::sleep(Duration::from_millis(100));
    }

    // SIGKILL the owner, and reap it (a zombie would still count as alive).
    owner.kill()?;
    owner.wait()?;
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = tor.try_wait()? {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(40) {
            tor.kill()?;
            tor.wait()?;
            return Err("tor outlived its owner by 40 s".into());
        }
        thread::sleep(Duration::from_millis(100));
    };
    eprintln!(
        "tor exited {:?} after its owner was killed: {status}",
        killed.elapsed()
    );
    let text = fs::read_to_string(&log)?;
    assert!(text.contains("Owning controller"), "{text}");
    Ok(())
}
