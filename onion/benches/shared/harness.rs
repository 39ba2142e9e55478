//! The frame both network benchmarks run in (included, like
//! `raw_stream.rs`, by `onion/benches/network.rs` and the app's
//! `benches/engine_tor.rs`): the entry point, the local Tor network they
//! measure on, and the rounding of the figures they print.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use allium_onion::{CustomNetwork, Network};
use allium_testnet::{NetworkFile, StartOptions, TestNetwork};
use serde_json::{Value, json};

/// Runs `run` on a two-thread runtime and prints its JSON, when started
/// with `--bench`. `cargo test --benches` runs bench targets without it:
/// there is no network to measure then, so say where to run it and succeed.
pub fn bench_main<F: Future<Output = Value>>(name: &str, script: &str, run: impl FnOnce() -> F) {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("{name} bench: run it with {script}");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let out = rt.block_on(run());
    println!("{}", serde_json::to_string_pretty(&out).expect("json"));
}

/// The local Tor network of a run: the one `ALLIUM_TEST_NETWORK` names, or
/// one the bench starts (and stops with [`BenchNetwork::stop`]).
pub struct BenchNetwork {
    /// For the app, which takes the file (`--network`); the Arti bench
    /// uses `network` alone.
    #[allow(dead_code)]
    pub file: PathBuf,
    pub info: NetworkFile,
    pub network: Network,
    startup: Duration,
    started_by_bench: bool,
    own: Option<TestNetwork>,
}

impl BenchNetwork {
    pub async fn get() -> Self {
        let started = Instant::now();
        let (own, file) = match std::env::var_os("ALLIUM_TEST_NETWORK") {
            Some(p) => (None, PathBuf::from(p)),
            None => {
                let net =
                    tokio::task::spawn_blocking(|| TestNetwork::start(StartOptions::default()))
                        .await
                        .expect("join")
                        .expect("local Tor network starts");
                let file = net.network_file();
                (Some(net), file)
            }
        };
        let startup = started.elapsed();
        BenchNetwork {
            info: NetworkFile::load(&file).expect("network file"),
            network: Network::Custom(CustomNetwork::load(&file).expect("network file")),
            file,
            startup,
            started_by_bench: own.is_some(),
            own,
        }
    }

    /// Stops the network if the bench started it, before the figures are
    /// put together.
    pub fn stop(&mut self) {
        drop(self.own.take());
    }

    /// The `network` part of the output.
    pub fn json(&self) -> Value {
        json!({
            "authorities": self.info.authorities.len(),
            "nodes": self.info.fallbacks.len(),
            "startup_s": secs(self.startup),
            "started_by_bench": self.started_by_bench,
        })
    }
}

/// The number after `flag` on the command line, or `default`.
pub fn num_arg(flag: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Seconds, to the millisecond.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// `a / b` to three places; NaN when `b` is 0.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        ((a / b) * 1000.0).round() / 1000.0
    } else {
        f64::NAN
    }
}

/// MiB/s for `bytes` in `d`, to two places.
pub fn mib_per_s(bytes: usize, d: Duration) -> f64 {
    ((bytes as f64 / 1048576.0) / d.as_secs_f64() * 100.0).round() / 100.0
}
