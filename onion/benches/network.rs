//! Arti (through `allium-onion`) beside C tor on the same local Tor network,
//! printed as one JSON object: bootstrap (cold and warm), service start to
//! reachable, dial, 64-byte round trip (median and p95), one-way throughput,
//! and peak RSS. Each Arti figure sits beside the same job done by C tor
//! (a C tor client dialling a service hosted by C tor), so the two read as a
//! ratio (`arti / c_tor`; below 1 is Arti faster or smaller).
//!
//! Run it with `scripts/bench-network.sh`, which builds it in release and
//! runs it inside a loopback-only network namespace. It starts its own
//! local network unless `ALLIUM_TEST_NETWORK` names one.
//!
//! Options (after `--`): `--pings N` (default 200), `--mib N` (default 16).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allium_onion::{Network, SERVICE_PORT, TorConfig, TorTransport, Transport};
use allium_protocol::IdentityKey;
use allium_testnet::{CTorClient, CTorClientOptions, NetworkFile, OnionServiceOptions};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[path = "shared/harness.rs"]
mod harness;
#[path = "shared/raw_stream.rs"]
mod raw_stream;

use harness::{BenchNetwork, mib_per_s, num_arg, ratio, secs};

use raw_stream::{dial_retrying, kib_to_mib, percentiles, ping_pong, serve, throughput};

struct Args {
    pings: usize,
    mib: usize,
}

fn args() -> Args {
    Args {
        pings: num_arg("--pings", 200).max(100),
        mib: num_arg("--mib", 16).max(16),
    }
}

fn main() {
    let args = args();
    harness::bench_main("network", "scripts/bench-network.sh", || run(args));
}

async fn run(args: Args) -> Value {
    let mut net = BenchNetwork::get().await;
    let network = net.network.clone();

    // ---- Arti ----
    let dirs = tempfile::tempdir().expect("tmp");
    let svc_dir = dirs.path().join("svc");
    let (svc_tor, arti_boot_cold) = arti_node(&network, &svc_dir).await;
    let id = IdentityKey::generate(&mut ChaCha20Rng::from_seed([1; 32]));
    let t = Instant::now();
    let mut svc = svc_tor.publish_intake(&id).await.expect("publish");
    svc.wait_reachable(Duration::from_secs(180))
        .await
        .expect("reachable");
    let arti_launch_to_reachable = t.elapsed();
    let arti_start_to_reachable = arti_boot_cold + arti_launch_to_reachable;
    let addr = svc.address();
    tokio::spawn(async move {
        while let Some(conn) = svc.accept().await {
            tokio::spawn(serve(conn));
        }
        drop(svc);
    });
    // A first client waits until the descriptor is out everywhere.
    let (warmup, _) = arti_node(&network, &dirs.path().join("warmup")).await;
    drop(dial_retrying(&warmup, addr).await);
    drop(warmup);

    let client_dir = dirs.path().join("client");
    let (client, _) = arti_node(&network, &client_dir).await;
    let t = Instant::now();
    let mut conn = client.dial(addr, None).await.expect("dial");
    let arti_dial = t.elapsed();
    let arti_rtt = ping_pong(&mut conn, args.pings).await;
    drop(conn);
    let mut conn = client.dial(addr, None).await.expect("dial");
    let arti_tput = throughput(&mut conn, args.mib).await;
    drop(conn);
    drop(client);
    let arti_rss = peak_rss_kib(std::process::id());
    // Warm bootstrap: the same state and cache directories, a new client.
    let (warm, arti_boot_warm) = arti_node(&network, &client_dir).await;
    drop(warm);

    // ---- C tor ----
    let echo = local_server().await;
    let t = Instant::now();
    let c_service = c_tor(
        &net.info,
        CTorClientOptions {
            name: Some("benchservice".into()),
            onion_service: Some(OnionServiceOptions {
                virtual_port: SERVICE_PORT,
                target_port: echo.port(),
            }),
            ..CTorClientOptions::default()
        },
    )
    .await;
    let c_start_to_published = t.elapsed();
    let host = c_service.onion_hostname().expect("published").to_owned();
    let c_warm_dir = tempfile::tempdir().expect("tmp");
    let t = Instant::now();
    let warmup = c_tor(
        &net.info,
        CTorClientOptions {
            name: Some("benchwarmup".into()),
            dir: Some(c_warm_dir.path().join("n")),
            ..CTorClientOptions::default()
        },
    )
    .await;
    let c_boot_cold = t.elapsed();
    drop(socks_retrying(warmup.socks_addr(), &host).await);
    let c_client = c_tor(
        &net.info,
        CTorClientOptions {
            name: Some("benchclient".into()),
            ..CTorClientOptions::default()
        },
    )
    .await;
    let t = Instant::now();
    let mut s = socks_connect(c_client.socks_addr(), &host)
        .await
        .expect("C tor dial");
    let c_dial = t.elapsed();
    let c_rtt = ping_pong(&mut s, args.pings).await;
    drop(s);
    let mut s = socks_connect(c_client.socks_addr(), &host)
        .await
        .expect("C tor dial");
    let c_tput = throughput(&mut s, args.mib).await;
    drop(s);
    let c_client_rss = peak_rss_kib(c_client.pid());
    let c_service_rss = peak_rss_kib(c_service.pid());
    // Warm bootstrap: restart a client on its previous data directory.
    let warm_dir = warmup.dir().to_owned();
    warmup.stop();
    let t = Instant::now();
    let warm = c_tor(
        &net.info,
        CTorClientOptions {
            name: Some("benchwarmup".into()),
            dir: Some(warm_dir),
            ..CTorClientOptions::default()
        },
    )
    .await;
    let c_boot_warm = t.elapsed();
    drop(warm);
    drop(c_client);
    drop(c_service);
    net.stop();

    let pair = |a: Duration, c: Duration| json!({ "arti": secs(a), "c_tor": secs(c), "ratio": ratio(a.as_secs_f64(), c.as_secs_f64()) });
    let bytes = args.mib << 20;
    let (a_med, a_p95) = percentiles(&arti_rtt);
    let (c_med, c_p95) = percentiles(&c_rtt);
    let c_rss_sum = c_client_rss + c_service_rss;
    json!({
        "network": net.json(),
        "bootstrap_cold_s": pair(arti_boot_cold, c_boot_cold),
        "bootstrap_warm_s": pair(arti_boot_warm, c_boot_warm),
        "service_start_to_reachable_s": {
            "arti": secs(arti_start_to_reachable),
            "arti_launch_to_reachable": secs(arti_launch_to_reachable),
            "c_tor_start_to_descriptor_uploaded": secs(c_start_to_published),
            "ratio": ratio(arti_start_to_reachable.as_secs_f64(), c_start_to_published.as_secs_f64()),
        },
        "dial_s": pair(arti_dial, c_dial),
        "rtt_64_bytes_ms": {
            "pings": args.pings,
            "arti": { "median": a_med, "p95": a_p95 },
            "c_tor": { "median": c_med, "p95": c_p95 },
            "ratio_median": ratio(a_med, c_med),
            "ratio_p95": ratio(a_p95, c_p95),
        },
        "throughput_one_way_mib_s": {
            "bytes": bytes,
            "arti": mib_per_s(bytes, arti_tput),
            "c_tor": mib_per_s(bytes, c_tput),
            "ratio": ratio(mib_per_s(bytes, arti_tput), mib_per_s(bytes, c_tput)),
        },
        "peak_rss_mib": {
            "arti_process_client_and_service": kib_to_mib(arti_rss),
            "c_tor_client": kib_to_mib(c_client_rss),
            "c_tor_service": kib_to_mib(c_service_rss),
            "c_tor_client_plus_service": kib_to_mib(c_rss_sum),
            "ratio": ratio(arti_rss as f64, c_rss_sum as f64),
            "note": "Arti's figure is this whole benchmark process (four Arti clients over its life, one onion service, buffers); C tor's is its two processes",
        },
    })
}

async fn arti_node(network: &Network, dir: &std::path::Path) -> (TorTransport, Duration) {
    let config = TorConfig {
        network: network.clone(),
        state_dir: dir.join("state"),
        cache_dir: dir.join("cache"),
        dial_timeout: Duration::from_secs(60),
    };
    let t = Instant::now();
    let tor = TorTransport::create(&config).expect("create");
    tor.bootstrap().await.expect("bootstrap");
    (tor, t.elapsed())
}

/// Peak resident set (VmHWM) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn local_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(serve(s));
        }
    });
    addr
}

async fn c_tor(net: &NetworkFile, options: CTorClientOptions) -> CTorClient {
    let net = net.clone();
    tokio::task::spawn_blocking(move || CTorClient::start(&net, options))
        .await
        .expect("join")
        .expect("C tor node starts")
}

async fn socks_retrying(proxy: SocketAddr, host: &str) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match socks_connect(proxy, host).await {
            Ok(s) => return s,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_secs(2)).await,
            Err(code) => panic!("C tor could not reach the C tor service: SOCKS {code:#04x}"),
        }
    }
}

/// SOCKS5 CONNECT by host name, no authentication (RFC 1928).
async fn socks_connect(proxy: SocketAddr, host: &str) -> Result<TcpStream, u8> {
    let mut s = TcpStream::connect(proxy).await.map_err(|_| 0xff)?;
    s.set_nodelay(true).map_err(|_| 0xff)?;
    s.write_all(&[5, 1, 0]).await.map_err(|_| 0xff)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(|_| 0xff)?;
    let mut req = vec![5, 1, 0, 3, u8::try_from(host.len()).map_err(|_| 0xff)?];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&SERVICE_PORT.to_be_bytes());
    s.write_all(&req).await.map_err(|_| 0xff)?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.map_err(|_| 0xff)?;
    if reply[1] == 0 { Ok(s) } else { Err(reply[1]) }
}
