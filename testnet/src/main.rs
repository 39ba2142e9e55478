//! The `allium-testnet` command: `up` runs a local Tor network until told
//! to stop; `down` tells it to stop.

use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use allium_testnet::{StartOptions, TestNetwork, stop_owner};
use clap::{Parser, Subcommand};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// A local Tor network (C tor authorities and relays on 127.0.0.1) for
/// Allium's tests and benchmarks.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Starts a network in DIR, writes DIR/network.json, prints
    /// `pid: PID` and then `ready: DIR/network.json`, and runs until
    /// SIGTERM, SIGINT, SIGHUP or end of stdin; then stops every node.
    Up {
        /// The network's directory: new, empty, or left by an earlier `up`.
        #[arg(long)]
        dir: PathBuf,
        /// Number of directory authorities.
        #[arg(long, default_value_t = 3)]
        authorities: usize,
        /// Number of relays besides the authorities.
        #[arg(long, default_value_t = 5)]
        relays: usize,
        /// Seconds to wait for every node to hold a complete consensus.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
        /// Keep running at end of stdin (for `allium-testnet up … &` in a
        /// shell, whose stdin is /dev/null).
        #[arg(long)]
        ignore_stdin: bool,
    },
    /// Stops the network that `up` runs in DIR, and waits until it has.
    Down {
        /// The directory given to `up`.
        #[arg(long)]
        dir: PathBuf,
        /// Seconds to wait before killing `up` and its nodes outright.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Up {
            dir,
            authorities,
            relays,
            timeout,
            ignore_stdin,
        } => up(
            StartOptions {
                dir: Some(dir),
                authorities,
                relays,
                ready_timeout: Duration::from_secs(timeout),
                ..StartOptions::default()
            },
            ignore_stdin,
        ),
        Command::Down { dir, timeout } => down(&dir, Duration::from_secs(timeout)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("allium-testnet: {message}");
            ExitCode::FAILURE
        }
    }
}

fn up(mut options: StartOptions, ignore_stdin: bool) -> Result<(), String> {
    // One flag for every reason to stop: a signal, or the end of stdin (our
    // parent went away). Startup watches it too.
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [SIGTERM, SIGINT, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|e| format!("installing a signal handler: {e}"))?;
    }
    if !ignore_stdin {
        let stop = Arc::clone(&stop);
        thread::spawn(move || {
            let mut sink = [0u8; 256];
            let mut stdin = std::io::stdin().lock();
            while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
            stop.store(true, Ordering::Relaxed);
        });
    }
    options.cancel = Some(Arc::clone(&stop));
    say(&format!("pid: {}", std::process::id()));

    let mut network = TestNetwork::start(options).map_err(|e| e.to_string())?;
    let times = network.startup_times();
    eprintln!(
        "allium-testnet: {} nodes ready in {:.1} s (setup {:.1} s, consensus {:.1} s)",
        network.nodes().len(),
        times.total.as_secs_f64(),
        times.setup.as_secs_f64(),
        times.consensus.as_secs_f64(),
    );
    say(&format!("ready: {}", network.network_file().display()));

    while !stop.load(Ordering::Relaxed) {
        thread::sleep(Duration::from_millis(100));
        // A node that dies is worth stopping for: tests would fail oddly.
        if let Err(e) = network.check_running() {
            network.stop();
            return Err(e.to_string());
        }
    }
    eprintln!("allium-testnet: stopping");
    network.stop();
    Ok(())
}

/// One line on stdout, at once, for a script waiting for it. If nobody
/// reads any more, that is no reason to stop the network.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn down(dir: &std::path::Path, timeout: Duration) -> Result<(), String> {
    match stop_owner(dir, timeout).map_err(|e| e.to_string())? {
        Some(pid) => eprintln!("allium-testnet: stopped the network of pid {pid}"),
        None => eprintln!("allium-testnet: no network running in {}", dir.display()),
    }
    Ok(())
}
