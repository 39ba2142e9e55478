//! The whole app on a local Tor network, beside raw Arti streams on the
//! same network, printed as one JSON object: profile start to reachable,
//! contact request to delivered / accepted / online, message round trip on
//! an open session (median and p95) beside a raw onion-stream round trip,
//! file throughput beside raw one-way stream throughput, and the resident
//! memory of an `allium headless` process, idle and with 200 contacts.
//!
//! Everything goes through the real app path: [`RealBackend`] with two
//! profiles in real vaults (Argon2id defaults) on real Arti, driven through
//! their engines as the window and JSON-RPC drive them. The raw figures use
//! `allium-onion`'s `TorTransport` directly, exactly as
//! `onion/benches/network.rs` does, so `ratio` (engine / raw) is what the
//! engine, its sessions (Noise, framing, acknowledgements) and its vault
//! saves add on top of Tor.
//!
//! Run it with `scripts/bench-engine.sh`, which builds it in release and
//! runs it inside a loopback-only network namespace. It starts its own
//! local network unless `ALLIUM_TEST_NETWORK` names one.
//!
//! Options (after `--`): `--messages N` (default 50), `--mib N` (default
//! 16), `--settle S` (seconds the 200-contact process dials before its RSS
//! is read; default 60).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use allium::app::{Backend, Options, Passphrase, RealBackend, Running, TorState};
use allium::engine::{ContactSummary, DeliveryState, Event, ServiceState, TransferDirection};
use allium_onion::{MAX_AUTHORIZED_CLIENTS, Network, TorConfig, TorTransport, Transport};
use allium_protocol::{IdentityKey, StaticKeypair};
use allium_vault::{
    Contact, ContactId, ContactState, Profile, ProfileKeys, ProfileName, ProfileStore, Public32,
    Secret32,
};
use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use tokio::sync::mpsc::Receiver;

// The frame and the raw-stream workload, shared with the Arti-vs-C-tor bench.
#[path = "../onion/benches/shared/harness.rs"]
mod harness;
#[path = "../onion/benches/shared/raw_stream.rs"]
mod raw_stream;

use harness::{BenchNetwork, mib_per_s, num_arg, ratio, secs};

use raw_stream::{
    PING_BYTES, dial_retrying, kib_to_mib, percentiles, ping_pong, serve, throughput,
};

/// Round trips before the measured ones, on both paths: the first ones on
/// a fresh circuit pay for its warm-up, which is not what is compared.
const WARMUP: usize = 3;
/// The most accepted contacts one profile can hold: its endpoint's
/// restricted discovery can authorize `MAX_AUTHORIZED_CLIENTS` clients (an
/// Arti limit) and the engine keeps one slot free.
const MAX_ACCEPTED: usize = MAX_AUTHORIZED_CLIENTS - 1;
/// Contacts of the large profile, accepted plus pending.
const CONTACTS: usize = 200;
/// Anything slower than this on a local network is a failure, not a figure.
const LIMIT: Duration = Duration::from_secs(240);
const PASSPHRASE: &str = "bench engine tor local network only";

struct Args {
    messages: usize,
    mib: usize,
    settle: u64,
}

fn args() -> Args {
    Args {
        messages: num_arg("--messages", 50).max(20),
        mib: num_arg("--mib", 16).max(16),
        settle: num_arg("--settle", 60) as u64,
    }
}

fn main() {
    let args = args();
    harness::bench_main("engine_tor", "scripts/bench-engine.sh", || run(args));
}

async fn run(args: Args) -> Value {
    let mut net = BenchNetwork::get().await;
    let (file_path, network) = (net.file.clone(), net.network.clone());
    let dirs = tempfile::tempdir().expect("tmp");

    // ---- The app: two profiles on RealBackend ----
    let backend = Arc::new(
        RealBackend::new(Options {
            data_dir: Some(dirs.path().join("profiles")),
            network: Some(file_path.clone()),
        })
        .expect("backend"),
    );
    // One after the other, so that neither start shares the two cores
    // with the other's bootstrap and Argon2.
    let (mut a, a_start) = start_profile(&backend, "alice").await;
    let (mut b, b_start) = start_profile(&backend, "bob").await;

    let contact = make_contact(&mut a, &mut b).await;
    let (ca, cb) = (contact.a_id, contact.b_id);
    let round_trips = message_round_trips(&mut a, &mut b, ca, cb, args.messages).await;
    let file = send_file(&mut a, &mut b, ca, args.mib, dirs.path()).await;
    for r in [&a, &b] {
        r.engine.handle.shutdown().await.expect("shutdown");
    }
    drop((a, b));

    // ---- Raw Arti streams on the same network ----
    let raw = raw_streams(&network, &dirs.path().join("raw"), args.messages, args.mib).await;

    // ---- RSS of `allium headless` ----
    let data_dir = dirs.path().join("headless");
    let store = ProfileStore::new(&data_dir);
    let pass_file = dirs.path().join("passphrase");
    std::fs::write(&pass_file, PASSPHRASE).expect("passphrase file");
    let small = Profile::new(fresh_keys());
    let large = large_profile();
    let (accepted, pending) = (
        count(&large, ContactState::Accepted),
        count(&large, ContactState::IncomingPending),
    );
    let s = store.clone();
    tokio::task::spawn_blocking(move || {
        for (n, p) in [("idle", small), ("crowded", large)] {
            // Dropped at once: that releases the profile's lock for the
            // child process.
            s.create(&ProfileName::new(n).expect("name"), PASSPHRASE, &p)
                .expect("create profile");
        }
    })
    .await
    .expect("join");
    let headless = |name: &'static str, settle: Duration| {
        let (data_dir, file_path, pass_file) =
            (data_dir.clone(), file_path.clone(), pass_file.clone());
        tokio::task::spawn_blocking(move || {
            headless_rss(&data_dir, &file_path, &pass_file, name, settle)
        })
    };
    let idle = headless("idle", Duration::from_secs(10))
        .await
        .expect("join");
    let crowded = headless("crowded", Duration::from_secs(args.settle))
        .await
        .expect("join");
    net.stop();

    let bytes = args.mib << 20;
    let mib_s = |d: Duration| mib_per_s(bytes, d);
    let (m_med, m_p95) = percentiles(&round_trips.rtt);
    let (d_med, d_p95) = percentiles(&round_trips.delivered);
    let (r_med, r_p95) = percentiles(&raw.rtt);
    let start = |s: &Start| {
        json!({
            "create_s": secs(s.create),
            "tor_ready_s": secs(s.tor_ready),
            "reachable_s": secs(s.reachable),
        })
    };
    let process = |h: &Headless| {
        json!({
            "spawn_to_unlocked_s": secs(h.unlocked),
            "spawn_to_reachable_s": secs(h.reachable),
            "unlocked_to_reachable_s": secs(h.reachable - h.unlocked),
            "settle_s": h.settle.as_secs(),
            "current": kib_to_mib(h.rss_kib),
            "peak": kib_to_mib(h.hwm_kib),
        })
    };
    json!({
        "network": net.json(),
        "start_to_reachable_s": {
            "alice": start(&a_start),
            "bob": start(&b_start),
            "headless_process_idle": {
                "spawn_to_unlocked": secs(idle.unlocked),
                "spawn_to_reachable": secs(idle.reachable),
            },
            "note": "create_s: Backend::create (Argon2id with the vault's defaults, then the engine starts); tor_ready_s and reachable_s count from create returning until Tor is ready, and until both the intake and the endpoint are reachable (EngineHandle::status)",
        },
        "request_to_delivered_s": secs(contact.delivered),
        "request_to_received_s": secs(contact.received),
        "request_to_accepted_s": secs(contact.accepted),
        "accepted_to_online_s": secs(contact.online.saturating_sub(contact.accepted)),
        "request_to_online_s": secs(contact.online),
        "round_trip": {
            "messages": args.messages,
            "bytes": PING_BYTES,
            "warmup": WARMUP,
            "message_rtt_ms": { "median": m_med, "p95": m_p95 },
            "message_delivered_ms": { "median": d_med, "p95": d_p95 },
            "raw_stream_rtt_ms": { "median": r_med, "p95": r_p95 },
            "ratio_median": ratio(m_med, r_med),
            "ratio_p95": ratio(m_p95, r_p95),
            "note": "message_rtt_ms: alice sends a 64-character message, bob's bench loop replies when its MessageReceived arrives, until alice's MessageReceived; message_delivered_ms: send_message until alice's Delivered; raw: a 64-byte echo over one Arti onion stream; ratio = message / raw",
        },
        "file": {
            "bytes": bytes,
            "file_mib_per_s": mib_s(file.transfer),
            "offer_to_completed_s": secs(file.total),
            "raw_stream_mib_per_s": mib_s(raw.throughput),
            "ratio": ratio(mib_s(file.transfer), mib_s(raw.throughput)),
            "note": "file_mib_per_s: bob's accept_file until bob's FileCompleted (hash checked); offer_to_completed_s: alice's send_file until then; raw: the same bytes one way over one Arti onion stream until the receiver confirms; ratio = file / raw",
        },
        "rss_mib": {
            "idle": process(&idle),
            "contacts_200": {
                "contacts": accepted + pending,
                "accepted": accepted,
                "incoming_pending": pending,
                "process": process(&crowded),
            },
            "note": format!(
                "VmRSS (current) and VmHWM (peak) of an `allium headless` process that unlocked its profile and is reachable; peak includes Argon2id's 64 MiB during unlock. One profile can hold at most {MAX_ACCEPTED} accepted contacts (Arti authorizes at most {MAX_AUTHORIZED_CLIENTS} restricted-discovery clients per service and the engine keeps one slot free; more are refused with TooManyContacts), so the 200 are {accepted} accepted contacts with random keys whose endpoints do not exist, dialled with backoff during the settle time, plus {pending} incoming requests",
            ),
        },
    })
}

// ---- profiles through the backend ----

struct Start {
    create: Duration,
    tor_ready: Duration,
    reachable: Duration,
}

async fn start_profile(backend: &Arc<RealBackend>, name: &str) -> (Running, Start) {
    let t = Instant::now();
    let running = backend
        .create(name.into(), Passphrase::new(PASSPHRASE.into()))
        .await
        .expect("create profile");
    let create = t.elapsed();
    let t = Instant::now();
    let mut tor_ready = None;
    loop {
        match &*running.tor.borrow() {
            TorState::Ready if tor_ready.is_none() => tor_ready = Some(t.elapsed()),
            TorState::Failed { message } => panic!("Tor failed: {message}"),
            _ => {}
        }
        let s = running.engine.handle.status().await.expect("status");
        if s.endpoint == ServiceState::Reachable && s.intake == Some(ServiceState::Reachable) {
            let reachable = t.elapsed();
            let start = Start {
                create,
                tor_ready: tor_ready.unwrap_or(reachable),
                reachable,
            };
            return (running, start);
        }
        assert!(t.elapsed() < LIMIT, "{name} not reachable: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Side {
    A,
    B,
}

/// The next event of either profile (the others are dropped by callers
/// that do not care).
async fn next_event(
    a: &mut Receiver<Event>,
    b: &mut Receiver<Event>,
    deadline: tokio::time::Instant,
    waiting_for: &str,
) -> (Side, Event) {
    tokio::select! {
        Some(e) = a.recv() => (Side::A, e),
        Some(e) = b.recv() => (Side::B, e),
        () = tokio::time::sleep_until(deadline) => panic!("timed out waiting for {waiting_for}"),
    }
}

struct Contacted {
    a_id: ContactId,
    b_id: ContactId,
    received: Duration,
    delivered: Duration,
    accepted: Duration,
    online: Duration,
}

async fn make_contact(a: &mut Running, b: &mut Running) -> Contacted {
    let address = b.engine.address.to_address();
    let t = Instant::now();
    let deadline = tokio::time::Instant::now() + LIMIT;
    let a_id = a
        .engine
        .handle
        .add_contact(&address, "bob", "hello from the bench")
        .await
        .expect("add contact");
    let (mut b_id, mut received, mut delivered, mut accepted) = (None, None, None, None);
    let (mut a_online, mut b_online) = (None, None);
    while delivered.is_none() || accepted.is_none() || a_online.is_none() || b_online.is_none() {
        match next_event(
            &mut a.engine.events,
            &mut b.engine.events,
            deadline,
            "the contact",
        )
        .await
        {
            (Side::B, Event::RequestReceived { contact }) => {
                let ContactSummary { id, .. } = contact;
                received = Some(t.elapsed());
                b_id = Some(id);
                b.engine.handle.accept(id, None).await.expect("accept");
            }
            (Side::A, Event::RequestDelivered { contact }) if contact == a_id => {
                delivered = Some(t.elapsed())
            }
            (Side::A, Event::RequestAccepted { contact }) if contact == a_id => {
                accepted = Some(t.elapsed())
            }
            (Side::A, Event::Presence { contact, online }) if contact == a_id => {
                a_online = online.then(|| t.elapsed())
            }
            (Side::B, Event::Presence { contact, online }) if Some(contact) == b_id => {
                b_online = online.then(|| t.elapsed())
            }
            (_, Event::RequestRejected { .. }) => panic!("request rejected"),
            _ => {}
        }
    }
    Contacted {
        a_id,
        b_id: b_id.expect("received"),
        received: received.expect("received"),
        delivered: delivered.expect("delivered"),
        accepted: accepted.expect("accepted"),
        // Online for the bench means both sides see the session.
        online: a_online.max(b_online).expect("online"),
    }
}

struct RoundTrips {
    rtt: Vec<f64>,
    delivered: Vec<f64>,
}

async fn message_round_trips(
    a: &mut Running,
    b: &mut Running,
    ca: ContactId,
    cb: ContactId,
    n: usize,
) -> RoundTrips {
    let mut out = RoundTrips {
        rtt: Vec::with_capacity(n),
        delivered: Vec::with_capacity(n),
    };
    for i in 0..WARMUP + n {
        let text = format!("ping {i:>width$}", width = PING_BYTES - 5);
        let t = Instant::now();
        let deadline = tokio::time::Instant::now() + LIMIT;
        let id = a.engine.handle.send_message(ca, &text).await.expect("send");
        let (mut rtt, mut delivered) = (None, None);
        while rtt.is_none() || delivered.is_none() {
            match next_event(
                &mut a.engine.events,
                &mut b.engine.events,
                deadline,
                "a reply",
            )
            .await
            {
                (
                    Side::A,
                    Event::MessageState {
                        contact,
                        id: m,
                        state: DeliveryState::Delivered,
                    },
                ) if contact == ca && m == id => delivered = Some(t.elapsed()),
                (Side::B, Event::MessageReceived { contact, message }) if contact == cb => {
                    let reply = message.text.replacen("ping", "pong", 1);
                    b.engine
                        .handle
                        .send_message(cb, &reply)
                        .await
                        .expect("reply");
                }
                (Side::A, Event::MessageReceived { contact, .. }) if contact == ca => {
                    rtt = Some(t.elapsed())
                }
                (_, Event::Presence { online: false, .. }) => {
                    eprintln!("engine_tor: the session dropped during message {i}")
                }
                _ => {}
            }
        }
        if i >= WARMUP {
            let ms = |d: Option<Duration>| d.expect("measured").as_secs_f64() * 1000.0;
            out.rtt.push(ms(rtt));
            out.delivered.push(ms(delivered));
        }
    }
    out
}

struct FileRun {
    /// accept_file until FileCompleted at the receiver.
    transfer: Duration,
    /// send_file until FileCompleted at the receiver.
    total: Duration,
}

async fn send_file(
    a: &mut Running,
    b: &mut Running,
    ca: ContactId,
    mib: usize,
    dir: &Path,
) -> FileRun {
    let path = dir.join("bench-file.bin");
    let mut data = vec![0u8; mib << 20];
    // Random, so that nothing on the way can make it smaller.
    OsRng.fill_bytes(&mut data);
    std::fs::write(&path, &data).expect("write the file");
    drop(data);
    let folder = dir.join("received");
    std::fs::create_dir(&folder).expect("folder");
    let deadline = tokio::time::Instant::now() + LIMIT;
    let t = Instant::now();
    a.engine
        .handle
        .send_file(ca, &path)
        .await
        .expect("send file");
    let mut accepted_at = None;
    loop {
        match next_event(
            &mut a.engine.events,
            &mut b.engine.events,
            deadline,
            "the file",
        )
        .await
        {
            (Side::B, Event::FileOffered { transfer }) => {
                b.engine
                    .handle
                    .accept_file(&transfer.id, &folder)
                    .await
                    .expect("accept file");
                accepted_at = Some(Instant::now());
            }
            (Side::B, Event::FileCompleted { transfer, path })
                if transfer.direction == TransferDirection::Incoming =>
            {
                let total = t.elapsed();
                let accepted_at = accepted_at.expect("accepted before completed");
                let size = std::fs::metadata(path.expect("received file")).map(|m| m.len());
                assert_eq!(size.ok(), Some((mib as u64) << 20), "whole file received");
                return FileRun {
                    transfer: accepted_at.elapsed(),
                    total,
                };
            }
            (_, Event::FileCancelled { cancelled, .. }) => {
                panic!("transfer cancelled: {}", cancelled.reason)
            }
            _ => {}
        }
    }
}

// ---- raw Arti, as in onion/benches/network.rs ----

struct Raw {
    rtt: Vec<f64>,
    throughput: Duration,
}

async fn raw_streams(network: &Network, dir: &Path, pings: usize, mib: usize) -> Raw {
    let svc_tor = arti_node(network, &dir.join("svc")).await;
    let id = IdentityKey::generate(&mut OsRng);
    let mut svc = svc_tor.publish_intake(&id).await.expect("publish");
    svc.wait_reachable(LIMIT).await.expect("reachable");
    let addr = svc.address();
    tokio::spawn(async move {
        while let Some(conn) = svc.accept().await {
            tokio::spawn(serve(conn));
        }
        drop(svc);
    });
    let client = arti_node(network, &dir.join("client")).await;
    let mut conn = dial_retrying(&client, addr).await;
    let mut rtt = ping_pong(&mut conn, WARMUP + pings).await;
    rtt.drain(..WARMUP);
    drop(conn);
    let mut conn = client.dial(addr, None).await.expect("dial");
    let throughput = throughput(&mut conn, mib).await;
    drop(conn);
    drop(client);
    drop(svc_tor);
    Raw { rtt, throughput }
}

async fn arti_node(network: &Network, dir: &Path) -> TorTransport {
    let config = TorConfig {
        network: network.clone(),
        state_dir: dir.join("state"),
        cache_dir: dir.join("cache"),
        dial_timeout: Duration::from_secs(60),
    };
    let tor = TorTransport::create(&config).expect("create");
    tor.bootstrap().await.expect("bootstrap");
    tor
}

// ---- `allium headless` in a child process ----

struct Headless {
    unlocked: Duration,
    reachable: Duration,
    settle: Duration,
    rss_kib: u64,
    hwm_kib: u64,
}

/// The child's stdout, read on a thread of its own so that its
/// notifications never fill the pipe while we wait.
struct Rpc {
    child: Child,
    stdin: ChildStdin,
    lines: std_mpsc::Receiver<Value>,
    next_id: u64,
}

impl Rpc {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let req = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        writeln!(self.stdin, "{req}").expect("write to allium");
        self.stdin.flush().expect("flush");
        loop {
            let line = self
                .lines
                .recv_timeout(LIMIT)
                .unwrap_or_else(|_| panic!("no answer to {method}"));
            if line.get("id") == Some(&json!(id)) {
                if let Some(e) = line.get("error") {
                    panic!("{method}: {e}");
                }
                return line.get("result").cloned().unwrap_or(Value::Null);
            }
        }
    }
}

fn headless_rss(
    data_dir: &Path,
    network: &Path,
    passphrase: &Path,
    name: &str,
    settle: Duration,
) -> Headless {
    // Cargo builds the package's binaries for its benches and says where.
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_allium"))
        .arg("headless")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--network")
        .arg(network)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start allium headless");
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = std_mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            let Ok(v) = serde_json::from_str::<Value>(&line) else {
                return;
            };
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    let mut rpc = Rpc {
        child,
        stdin,
        lines,
        next_id: 0,
    };
    rpc.call(
        "profile.unlock",
        json!({ "name": name, "passphrase_file": passphrase }),
    );
    let unlocked = t.elapsed();
    loop {
        let s = rpc.call("status", Value::Null);
        if s["tor"]["state"] == "failed" {
            panic!("{name}: Tor failed: {}", s["tor"]["message"]);
        }
        if s["tor"]["state"] == "ready"
            && s["intake"] == "reachable"
            && s["endpoint"] == "reachable"
        {
            break;
        }
        assert!(t.elapsed() < LIMIT, "{name} not reachable: {s}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let reachable = t.elapsed();
    std::thread::sleep(settle);
    // Still serving (and dialling) while we read.
    rpc.call("status", Value::Null);
    let (rss_kib, hwm_kib) = rss_kib(rpc.child.id());
    rpc.call("shutdown", Value::Null);
    drop(rpc.stdin);
    let status = rpc.child.wait().expect("wait for allium");
    assert!(status.success(), "allium headless exited with {status}");
    Headless {
        unlocked,
        reachable,
        settle,
        rss_kib,
        hwm_kib,
    }
}

/// Current (VmRSS) and peak (VmHWM) resident set of a process, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

// ---- synthesized profiles ----

fn random32() -> [u8; 32] {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    b
}

fn fresh_keys() -> ProfileKeys {
    ProfileKeys {
        intake_seed: Secret32(random32()),
        endpoint_seed: Secret32(random32()),
        static_secret: Secret32(random32()),
    }
}

/// A profile with the most accepted contacts a profile can have and
/// enough incoming requests to make 200: every key is fresh and valid, and
/// no onion service behind them exists, so the engine keeps dialling them
/// with backoff (the worst case for a large contact list: nobody online).
fn large_profile() -> Profile {
    let mut p = Profile::new(fresh_keys());
    let onion = || Public32(*IdentityKey::generate(&mut OsRng).onion_id().as_bytes());
    for i in 0..CONTACTS {
        let id = p.allocate_contact_id();
        let accepted = i < MAX_ACCEPTED;
        p.contacts.push(Contact {
            id,
            intake: onion(),
            nickname: format!("contact {i}"),
            state: if accepted {
                ContactState::Accepted
            } else {
                ContactState::IncomingPending
            },
            greeting: if accepted {
                String::new()
            } else {
                "hello, may I write to you?".into()
            },
            suggested_nickname: format!("stranger {i}"),
            request_delivered: accepted,
            accept_pending: false,
            their_static: Some(Public32(StaticKeypair::generate(&mut OsRng).public().0)),
            their_endpoint: Some(onion()),
            their_discovery_key: Some(Secret32(random32())),
            our_discovery_key: Secret32(random32()),
            history_enabled: false,
            next_message_id: 1,
            last_received_id: 0,
            outbox: Vec::new(),
            history: Vec::new(),
            created_at: 0,
            unsynced_from: None,
            verified: false,
            peer_keeps_history: None,
        });
    }
    p
}

fn count(p: &Profile, state: ContactState) -> usize {
    p.contacts.iter().filter(|c| c.state == state).count()
}
