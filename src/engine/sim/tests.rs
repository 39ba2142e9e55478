//! The simulator's runs. Each prints its report; a failure names its seed,
//! which then belongs in `regressions.txt`.
//!
//! `more_seeds_when_asked` (ignored; `-- --ignored`, `ALLIUM_SIM_SEEDS=N`)
//! runs more seeds of the faulty plan, drawn from the clock and printed, to
//! look for new failures.

use std::time::Duration;

use super::{Faults, Plan, run};

/// `messages` sent `every` apart (of simulated time).
fn plan(peers: usize, messages: u64, every: Duration, files: u64, faults: Faults) -> Plan {
    Plan {
        peers,
        contacts_each: 3,
        messages,
        message_every: every,
        files,
        faults,
    }
}

const MS: Duration = Duration::from_millis(1);

/// Six peers, 2,000 messages over 10 s of simulated time, three files and
/// every fault (a crash every 2 s or so).
fn small() -> Plan {
    plan(6, 2_000, 5 * MS, 3, Faults::all())
}

fn run_or_panic(seed: u64, plan: &Plan) -> super::Report {
    let folder = tempfile::tempdir().expect("temporary folder");
    let started = std::time::Instant::now();
    match run(seed, plan, folder.path()) {
        Ok(report) => {
            eprintln!("seed {seed}: {report:?} in {:?}", started.elapsed());
            report
        }
        Err(e) => panic!(
            "the simulator failed: {e}\n\
             Keep this seed as a regression: add `{seed}` to src/engine/sim/regressions.txt"
        ),
    }
}

#[test]
fn a_quiet_network_delivers_every_message_once_in_order() {
    let report = run_or_panic(1, &plan(4, 500, MS, 2, Faults::none()));
    assert_eq!(report.delivered, 500);
    assert_eq!(report.files_completed, 2);
    assert_eq!(report.crashes, 0);
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let p = small();
    let a = run_or_panic(7, &p);
    let b = run_or_panic(7, &p);
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
    let c = run_or_panic(8, &p);
    assert_ne!(
        (a.steps, a.simulated),
        (c.steps, c.simulated),
        "another seed should give another run"
    );
}

/// The run: 20 peers, 10⁵ messages and files, every fault.
#[test]
fn twenty_peers_a_hundred_thousand_messages_and_every_fault() {
    let report = run_or_panic(2026, &plan(20, 100_000, MS, 20, Faults::all()));
    assert_eq!(report.delivered, 100_000);
    assert!(report.crashes > 0 && report.cuts > 0 && report.refused_dials > 0);
    assert!(report.failed_saves > 0);
}

#[test]
fn many_seeds_with_every_fault() {
    for seed in 100..110 {
        let report = run_or_panic(seed, &small());
        assert_eq!(report.delivered, 2_000);
        assert!(report.crashes > 0, "a run without crashes tests less");
    }
}

#[test]
fn seeds_that_once_failed() {
    let kept = include_str!("regressions.txt");
    for line in kept.lines() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let seed: u64 = line.parse().expect("a seed is a number");
        run_or_panic(seed, &small());
    }
}

/// New seeds, to look for failures not found yet (not in CI: its seeds
/// change every run): `ALLIUM_SIM_SEEDS=N cargo test -p allium --lib
/// more_seeds -- --ignored` (20 by default).
#[test]
#[ignore = "explores seeds drawn from the clock; run with --ignored"]
fn more_seeds_when_asked() {
    let n = std::env::var("ALLIUM_SIM_SEEDS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(20);
    let first = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    for seed in first..first + n {
        run_or_panic(seed, &small());
    }
}
