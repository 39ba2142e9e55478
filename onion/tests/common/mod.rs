//! Shared by the tests that run on the local Tor network.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use allium_onion::{
    Connection, CustomNetwork, DialError, Network, ServiceHandle, TorConfig, TorTransport,
    Transport,
};
use allium_protocol::{DiscoveryKey, IdentityKey, OnionId};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The local network, or a clear failure saying how to get one.
pub fn local_network() -> Network {
    let path = std::env::var_os("ALLIUM_TEST_NETWORK")
        .map(PathBuf::from)
        .expect(
            "ALLIUM_TEST_NETWORK is not set: run the suite with ./scripts/test.sh, which starts a \
             local Tor network, or start one with `allium-testnet up --dir DIR` and set \
             ALLIUM_TEST_NETWORK=DIR/network.json",
        );
    Network::Custom(CustomNetwork::load(&path).expect("network file"))
}

pub struct Node {
    pub tor: TorTransport,
    _dir: tempfile::TempDir,
}

pub async fn node() -> Node {
    init_logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = TorConfig {
        network: local_network(),
        state_dir: dir.path().join("state"),
        cache_dir: dir.path().join("cache"),
        dial_timeout: Duration::from_secs(60),
    };
    let tor = TorTransport::create(&config).expect("create");
    tokio::time::timeout(Duration::from_secs(120), tor.bootstrap())
        .await
        .expect("bootstrap in time")
        .expect("bootstrap");
    Node { tor, _dir: dir }
}

/// With `ALLIUM_TEST_LOG_DIR` set (`scripts/with-testnet.sh` sets it, and
/// keeps the directory when a test fails), Arti's log goes to a file there,
/// one per test binary: the Tor relays' logs alone cannot say why a client
/// found a service unreachable.
fn init_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let Some(dir) = std::env::var_os("ALLIUM_TEST_LOG_DIR").map(PathBuf::from) else {
            return;
        };
        let binary = std::env::current_exe()
            .ok()
            .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "test".into());
        std::fs::create_dir_all(&dir).expect("log dir");
        let file = std::fs::File::create(dir.join(format!("{binary}.log"))).expect("log file");
        let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            "info,tor_hsclient=debug,tor_hsservice=debug,tor_circmgr=debug".into()
        });
        // Local test keys only: nothing here is anyone's secret.
        let _ = safelog::disable_safe_logging().map(std::mem::forget);
        let _ = tracing_subscriber::fmt()
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .with_thread_names(true)
            .with_env_filter(filter)
            .try_init();
    });
}

pub fn key(seed: u8) -> IdentityKey {
    IdentityKey::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
}

pub async fn reachable(svc: &ServiceHandle) {
    svc.wait_reachable(Duration::from_secs(120))
        .await
        .expect("service becomes reachable");
}

/// How long a dial may keep failing with `NotFound` or `Unreachable` before
/// a test gives up. Generous, because of time periods: services publish for
/// the next period ahead of time only when the consensus carries shared
/// random values. The local network seeds them for its first half hour
/// (testnet `shared_random.rs`); a network started in the last minutes of a
/// protocol run, or running for more than one, may lack them, and then when
/// a period ends (at :15 and :45) the HSDirs answer 404 until each service
/// has the new consensus (75 to 150 s) and its one-a-minute upload limit
/// lets it publish. Without seeding, a test saw that last over 90 s.
pub const DIAL_PATIENCE: Duration = Duration::from_secs(300);

/// Dials until it works, as the engine will: retrying while the descriptor
/// propagates or a time period turns over (`NotFound`) and while circuits
/// fail on this busy little network (`Unreachable`), for [`DIAL_PATIENCE`].
/// Any other error (`NotAuthorized` above all) is returned at once.
pub async fn dial_until_found(
    from: &TorTransport,
    svc: &ServiceHandle,
    key: Option<&DiscoveryKey>,
) -> Result<Connection, DialError> {
    dial_id_until_found(from, svc.address(), key).await
}

/// As [`dial_until_found`], by onion id.
pub async fn dial_id_until_found(
    from: &TorTransport,
    target: OnionId,
    key: Option<&DiscoveryKey>,
) -> Result<Connection, DialError> {
    let deadline = Instant::now() + DIAL_PATIENCE;
    loop {
        match from.dial(target, key).await {
            Err(DialError::NotFound | DialError::Unreachable) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(2)).await
            }
            other => return other,
        }
    }
}
