//! Every file and directory Allium and Arti write, checked against the
//! list in `docs/threat-model.md` ("Every file written") on a real run on
//! the local Tor network: two profiles befriend each other and chat (one
//! of them keeping history), then shut down; two amnesic sessions do the
//! same and end. The test fails naming any path the list does not name,
//! any file that holds an onion address, a key, a nickname or a message
//! in readable form, and anything an amnesic session leaves behind.
//!
//! The list is read from the document itself (the tables between the
//! `files:` markers), so the document and the test cannot drift apart.
//!
//! Like the tests in `onion/tests`, it needs `ALLIUM_TEST_NETWORK` (set by
//! `scripts/test.sh`) and fails with instructions without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use allium::app::{Backend, Options, RealBackend, Running, TorState};
use allium::engine::{ContactSummary, DeliveryState, Event, ServiceState};
use allium_onion::ClientKey;
use allium_protocol::{DiscoveryKey, IdentityKey, OnionId, StaticKeypair};
use allium_vault::{ContactId, ContactState, ProfileName, ProfileStore};
use zeroize::Zeroizing;

/// Upper bound for anything to happen on the local network.
const PATIENCE: Duration = Duration::from_secs(240);

/// Distinctive strings, so that a match can only be a leak.
const PASSPHRASES: [&str; 2] = ["plum kettle orbit 4417", "slate harbour vine 9083"];
const PROFILES: [&str; 2] = ["fwAlba", "fwBruno"];
const DISPLAY: [&str; 2] = ["DisplayAlba3817", "DisplayBruno5529"];
const NICK_FOR_OTHER: [&str; 2] = ["NickForBruno2204", "NickForAlba6630"];
const GREETING: &str = "GreetingText from Alba 7731";
const MESSAGES: [&str; 2] = [
    "MessageText Alba to Bruno 5150",
    "MessageText Bruno to Alba 6062",
];

/// The child process of `amnesic_sessions_leave_nothing_behind` sets this
/// (to the directory standing for the RAM-backed places).
const CHILD_ENV: &str = "ALLIUM_FILES_WRITTEN_AMNESIC_PARENT";

fn network_file() -> PathBuf {
    std::env::var_os("ALLIUM_TEST_NETWORK")
        .map(PathBuf::from)
        .expect(
            "ALLIUM_TEST_NETWORK is not set: run the suite with ./scripts/test.sh, which starts a \
             local Tor network, or start one with `allium-testnet up --dir DIR` and set \
             ALLIUM_TEST_NETWORK=DIR/network.json",
        )
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

// ----- the normative list ------------------------------------------------

/// The path patterns of one table of `docs/threat-model.md`: the first
/// backticked text of each row between `<!-- files:NAME -->` and
/// `<!-- /files -->`.
fn listed(table: &str) -> Vec<String> {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/threat-model.md"))
            .expect("docs/threat-model.md");
    let begin = format!("<!-- files:{table} -->");
    let start = doc.find(&begin).expect("the table's begin marker") + begin.len();
    let end = start + doc[start..].find("<!-- /files -->").expect("end marker");
    let patterns: Vec<String> = doc[start..end]
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1).map(str::to_owned))
        .collect();
    assert!(!patterns.is_empty(), "no patterns in table {table}");
    patterns
}

/// `*` matches within one path component, `**` any number of components.
/// With `prefix`, a path that could still become a match (a directory on
/// the way to a listed file) matches too.
fn glob(pattern: &[&str], path: &[&str], prefix: bool) -> bool {
    match (pattern.split_first(), path.split_first()) {
        (Some((&"**", rest)), _) => {
            glob(rest, path, prefix) || (!path.is_empty() && glob(pattern, &path[1..], prefix))
        }
        (Some((p, prest)), Some((s, srest))) => component(p, s) && glob(prest, srest, prefix),
        (None, Some(_)) => false,
        (_, None) => prefix || pattern.iter().all(|p| *p == "**"),
    }
}

fn component(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| component(tail, &rest[i..]))
        }
    }
}

// ----- what is on disk ---------------------------------------------------

struct Entry {
    /// Relative to the walked root, `/`-separated.
    path: String,
    dir: bool,
    mode: u32,
    bytes: Vec<u8>,
}

fn walk(root: &Path) -> Vec<Entry> {
    fn go(root: &Path, dir: &Path, out: &mut Vec<Entry>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return; // removed while walking (a temporary file, a session)
        };
        for e in entries.flatten() {
            let path = e.path();
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let rel = path
                .strip_prefix(root)
                .expect("under the root")
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_dir() {
                out.push(Entry {
                    path: rel,
                    dir: true,
                    mode,
                    bytes: Vec::new(),
                });
                go(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                out.push(Entry {
                    path: rel,
                    dir: false,
                    mode,
                    bytes,
                });
            }
        }
    }
    let mut out = Vec::new();
    go(root, root, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

/// Fails naming every path that no pattern of `table` names.
fn check_listed(what: &str, entries: &[Entry], table: &str) {
    let patterns = listed(table);
    let split = |s: &str| s.split('/').map(str::to_owned).collect::<Vec<_>>();
    let patterns: Vec<Vec<String>> = patterns.iter().map(|p| split(p)).collect();
    let mut unlisted = Vec::new();
    for e in entries {
        let path = split(&e.path);
        let path: Vec<&str> = path.iter().map(String::as_str).collect();
        let ok = patterns.iter().any(|p| {
            let p: Vec<&str> = p.iter().map(String::as_str).collect();
            glob(&p, &path, e.dir)
        });
        if !ok {
            unlisted.push(format!("{}{}", e.path, if e.dir { "/" } else { "" }));
        }
    }
    assert!(
        unlisted.is_empty(),
        "{what}: written but not listed in docs/threat-model.md (table {table}):\n  {}",
        unlisted.join("\n  ")
    );
}

/// Fails naming every folder that others than the owner could enter, and
/// every file of Allium's own (the vault and its temporary files, the lock
/// files) that others could read.
fn check_private(what: &str, entries: &[Entry]) {
    let open: Vec<String> = entries
        .iter()
        .filter(|e| {
            let ours = !e.path.contains("/tor/");
            (e.dir || ours) && e.mode & 0o077 != 0
        })
        .map(|e| format!("{:o} {}", e.mode, e.path))
        .collect();
    assert!(
        open.is_empty(),
        "{what}: readable by others:\n  {}",
        open.join("\n  ")
    );
}

/// Fails naming every file that holds one of `secrets` (name, bytes).
fn check_absent(what: &str, entries: &[Entry], secrets: &[(String, Vec<u8>)]) {
    let mut found = Vec::new();
    for e in entries.iter().filter(|e| !e.dir) {
        for (name, s) in secrets {
            if !s.is_empty() && e.bytes.windows(s.len()).any(|w| w == &s[..]) {
                found.push(format!("{} holds {name}", e.path));
            }
        }
    }
    assert!(found.is_empty(), "{what}:\n  {}", found.join("\n  "));
}

/// Prints what was written (the test's log is the evidence the document's
/// table was checked against).
fn report(what: &str, entries: &[Entry]) {
    println!("--- {what}: {} entries", entries.len());
    for e in entries {
        if e.dir {
            println!("  {:o} {}/", e.mode, e.path);
        } else {
            println!("  {:o} {} ({} bytes)", e.mode, e.path, e.bytes.len());
        }
    }
}

fn text_forms(label: &str, s: &str) -> Vec<(String, Vec<u8>)> {
    vec![(label.to_owned(), s.as_bytes().to_vec())]
}

fn onion_forms(label: &str, id: &OnionId) -> Vec<(String, Vec<u8>)> {
    let text = id.to_onion_id_string();
    vec![
        (format!("{label} (text)"), text.as_bytes().to_vec()),
        (
            format!("{label} (upper-case text)"),
            text.to_ascii_uppercase().into_bytes(),
        ),
        (format!("{label} (raw)"), id.as_bytes().to_vec()),
        (
            format!("{label} (hex)"),
            hex::encode(id.as_bytes()).into_bytes(),
        ),
        (
            format!("{label} (base64)"),
            base64(id.as_bytes()).into_bytes(),
        ),
    ]
}

fn key_forms(label: &str, bytes: &[u8; 32]) -> Vec<(String, Vec<u8>)> {
    vec![
        (format!("{label} (raw)"), bytes.to_vec()),
        (format!("{label} (hex)"), hex::encode(bytes).into_bytes()),
        (format!("{label} (base64)"), base64(bytes).into_bytes()),
    ]
}

/// An identity's seed, the two halves of the expanded key Tor uses
/// (SHA-512 of the seed, the first half clamped) and its onion id.
fn identity_forms(label: &str, seed: &[u8; 32]) -> Vec<(String, Vec<u8>)> {
    use sha2::Digest;
    let h = sha2::Sha512::digest(seed);
    let mut scalar = [0u8; 32];
    scalar.copy_from_slice(&h[..32]);
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    let mut prefix = [0u8; 32];
    prefix.copy_from_slice(&h[32..]);
    let mut out = key_forms(&format!("{label} seed"), seed);
    out.extend(key_forms(&format!("{label} expanded scalar"), &scalar));
    out.extend(key_forms(&format!("{label} expanded prefix"), &prefix));
    out.extend(onion_forms(
        &format!("{label} onion id"),
        &IdentityKey::from_seed(seed).onion_id(),
    ));
    out
}

/// Standard base64 without padding (the 43 characters that encode 32
/// bytes; a padded form starts with them).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// Everything a profile or session must never leave readable on disk
/// that is knowable without its keys: the people's words and names.
fn words() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (i, s) in DISPLAY.iter().enumerate() {
        out.extend(text_forms(&format!("display name {i}"), s));
    }
    for (i, s) in NICK_FOR_OTHER.iter().enumerate() {
        out.extend(text_forms(&format!("nickname {i}"), s));
    }
    out.extend(text_forms("greeting", GREETING));
    for (i, s) in MESSAGES.iter().enumerate() {
        out.extend(text_forms(&format!("message {i}"), s));
    }
    for (i, s) in PASSPHRASES.iter().enumerate() {
        out.extend(text_forms(&format!("passphrase {i}"), s));
    }
    out
}

// ----- driving two peers -------------------------------------------------

async fn wait_event(r: &mut Running, what: &str, mut pred: impl FnMut(&Event) -> bool) -> Event {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        match tokio::time::timeout_at(deadline, r.engine.events.recv()).await {
            Ok(Some(e)) if pred(&e) => return e,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the engine stopped while waiting for {what}"),
            Err(_) => panic!("timed out waiting for {what}"),
        }
    }
}

/// Waits for Tor, then for both services to be reachable.
async fn wait_ready(r: &mut Running) {
    let state = tokio::time::timeout(
        PATIENCE,
        r.tor
            .wait_for(|s| matches!(s, TorState::Ready | TorState::Failed { .. })),
    )
    .await
    .expect("Tor in time")
    .expect("Tor state")
    .clone();
    assert_eq!(state, TorState::Ready, "Tor did not start");
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let s = r.engine.handle.status().await.expect("status");
        if s.intake == Some(ServiceState::Reachable) && s.endpoint == ServiceState::Reachable {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "services not reachable: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn contact(r: &Running, id: ContactId) -> ContactSummary {
    r.engine
        .handle
        .contacts()
        .await
        .expect("contacts")
        .into_iter()
        .find(|c| c.id == id)
        .expect("the contact")
}

async fn wait_online(r: &Running, id: ContactId) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let c = contact(r, id).await;
        if c.state == ContactState::Accepted && c.online {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "contact never online: {c:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn send_and_deliver(from: &mut Running, to: &mut Running, id: ContactId, text: &str) {
    let msg = from
        .engine
        .handle
        .send_message(id, text)
        .await
        .expect("send");
    wait_event(
        to,
        "the message",
        |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
    )
    .await;
    wait_event(from, "its delivery", |e| {
        matches!(e, Event::MessageState { id: m, state: DeliveryState::Delivered, .. } if *m == msg)
    })
    .await;
}

/// `a` adds `b`, `b` accepts, and each writes one message. `a` keeps
/// history for `b` if `history`. Returns the two contact ids.
async fn befriend_and_chat(a: &mut Running, b: &mut Running, history: bool) -> [ContactId; 2] {
    for (r, name) in [(&*a, DISPLAY[0]), (&*b, DISPLAY[1])] {
        r.engine
            .handle
            .set_display_name(name)
            .await
            .expect("display name");
    }
    let b_address = b.engine.handle.status().await.expect("status").address;
    let a_to_b = a
        .engine
        .handle
        .add_contact(&b_address, NICK_FOR_OTHER[0], GREETING)
        .await
        .expect("add");
    let request = wait_event(b, "the request", |e| {
        matches!(e, Event::RequestReceived { .. })
    })
    .await;
    let Event::RequestReceived { contact: c } = request else {
        unreachable!()
    };
    let b_to_a = c.id;
    b.engine
        .handle
        .accept(b_to_a, Some(NICK_FOR_OTHER[1]))
        .await
        .expect("accept");
    wait_online(a, a_to_b).await;
    wait_online(b, b_to_a).await;
    if history {
        a.engine
            .handle
            .set_history(a_to_b, true)
            .await
            .expect("history on");
    }
    send_and_deliver(a, b, a_to_b, MESSAGES[0]).await;
    send_and_deliver(b, a, b_to_a, MESSAGES[1]).await;
    [a_to_b, b_to_a]
}

/// Shuts the engine down cleanly (saving) and drops everything the
/// profile or session holds.
/// Both sessions reach Tor, become contacts and chat (history on); returns
/// what is under `root` while they still run, and their addresses. Closes
/// both.
async fn chat_and_look(mut a: Running, mut b: Running, root: &Path) -> (Vec<Entry>, [String; 2]) {
    // Amnesic sessions start with their intake off; these publish it, as
    // the profiles do, so both kinds are looked at doing the same.
    for r in [&a, &b] {
        r.engine.handle.set_intake(true).await.expect("intake on");
    }
    wait_ready(&mut a).await;
    wait_ready(&mut b).await;
    befriend_and_chat(&mut a, &mut b, true).await;
    let addresses = [
        a.engine.handle.status().await.expect("status").address,
        b.engine.handle.status().await.expect("status").address,
    ];
    // Give Arti a moment to write what it writes while running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = walk(root);
    close(a).await;
    close(b).await;
    (during, addresses)
}

async fn close(r: Running) {
    let Running {
        engine, control, ..
    } = r;
    engine.handle.shutdown().await.expect("clean shutdown");
    tokio::time::timeout(PATIENCE, engine.task)
        .await
        .expect("engine stops in time")
        .expect("engine task");
    drop(control);
}

fn passphrase(i: usize) -> Zeroizing<String> {
    Zeroizing::new(PASSPHRASES[i].to_owned())
}

// ----- the tests ---------------------------------------------------------

#[test]
fn profiles_write_only_the_listed_files_and_nothing_in_the_clear() {
    let network = network_file();
    let tmp = tempfile::tempdir().expect("tmp");
    let data = tmp.path().join("data");
    let backend = Arc::new(
        RealBackend::new(Options {
            data_dir: Some(data.clone()),
            network: Some(network),
        })
        .expect("backend"),
    );

    let rt = runtime();
    let (during, addresses) = rt.block_on(async {
        let a = backend
            .create(PROFILES[0].into(), passphrase(0))
            .await
            .expect("create a");
        let b = backend
            .create(PROFILES[1].into(), passphrase(1))
            .await
            .expect("create b");
        chat_and_look(a, b, &data).await
    });
    rt.shutdown_timeout(Duration::from_secs(10));
    let after = walk(&data);
    report("data directory while running", &during);
    report("data directory after a clean shutdown", &after);

    check_listed("while running", &during, "data-dir");
    check_listed("after shutdown", &after, "data-dir");
    check_private("after shutdown", &after);

    // Now the secrets: from the vaults themselves.
    let store = ProfileStore::new(&data);
    let mut secrets = words();
    for (i, name) in PROFILES.iter().enumerate() {
        let (_unlocked, profile) = store
            .unlock(&ProfileName::new(name).expect("name"), PASSPHRASES[i])
            .expect("the vault opens after shutdown");
        let k = &profile.keys;
        let intake = IdentityKey::from_seed(&k.intake_seed.0);
        assert_eq!(intake.onion_id().to_address(), addresses[i]);
        secrets.extend(identity_forms(
            &format!("profile {i} intake"),
            &k.intake_seed.0,
        ));
        secrets.extend(identity_forms(
            &format!("profile {i} endpoint"),
            &k.endpoint_seed.0,
        ));
        secrets.extend(key_forms(
            &format!("profile {i} Noise static secret"),
            &k.static_secret.0,
        ));
        secrets.extend(key_forms(
            &format!("profile {i} Noise static public"),
            &StaticKeypair::from_secret(&k.static_secret.0).public().0,
        ));
        assert_eq!(profile.contacts.len(), 1, "one contact each");
        for c in &profile.contacts {
            let ours = ClientKey::from_secret(&DiscoveryKey(c.our_discovery_key.0));
            secrets.extend(key_forms(
                &format!("profile {i} issued discovery key"),
                &c.our_discovery_key.0,
            ));
            secrets.extend(key_forms(
                &format!("profile {i} issued discovery key (public)"),
                &ours.0,
            ));
            if let Some(k) = &c.their_discovery_key {
                secrets.extend(key_forms(
                    &format!("profile {i} received discovery key"),
                    &k.0,
                ));
            }
        }
        // Proof that the run kept what it should: history for one contact.
        let kept = profile
            .contacts
            .iter()
            .map(|c| c.history.len())
            .sum::<usize>();
        assert_eq!(kept, if i == 0 { 2 } else { 0 }, "history of profile {i}");
    }
    check_absent("while running, in the clear", &during, &secrets);
    check_absent("after shutdown, in the clear", &after, &secrets);
    // Unlocking removed nothing and added nothing but may touch the lock.
    check_listed("after unlocking again", &walk(&data), "data-dir");
}

/// Runs `amnesic_sessions_child` in a child process whose
/// `XDG_RUNTIME_DIR` and `TMPDIR` point into a temporary directory (the
/// environment is process-wide, and changing it in a running test process
/// is not allowed here), then checks that nothing is left there.
#[test]
fn amnesic_sessions_leave_nothing_behind() {
    network_file();
    let tmp = tempfile::tempdir().expect("tmp");
    let run = tmp.path().join("run");
    let temp = tmp.path().join("tmp");
    std::fs::create_dir(&run).expect("run dir");
    std::fs::create_dir(&temp).expect("tmp dir");
    let shm_before = shm_sessions();
    let out = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "amnesic_sessions_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("XDG_RUNTIME_DIR", &run)
        .env("TMPDIR", &temp)
        .env(CHILD_ENV, &run)
        .output()
        .expect("run the child");
    println!("{}", String::from_utf8_lossy(&out.stdout));
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "the amnesic run failed: {}",
        out.status
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the child test did not run"
    );
    for dir in [&run, &temp] {
        let left = walk(dir);
        report(&format!("{} after the process ended", dir.display()), &left);
        assert!(left.is_empty(), "an amnesic session left files behind");
    }
    assert_eq!(shm_before, shm_sessions(), "a session used /dev/shm");
}

fn shm_sessions() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(allium_vault::amnesic::AMNESIC_DIR_PREFIX))
                .collect()
        })
        .unwrap_or_default()
}

/// The amnesic run itself; only meaningful as the child of
/// `amnesic_sessions_leave_nothing_behind`.
#[test]
#[ignore = "run by amnesic_sessions_leave_nothing_behind in a child process"]
fn amnesic_sessions_child() {
    let parent = std::env::var_os(CHILD_ENV).map(PathBuf::from).expect(
        "run by amnesic_sessions_leave_nothing_behind, which sets XDG_RUNTIME_DIR to a \
         temporary directory",
    );
    let temp = std::env::temp_dir();
    let network = network_file();
    let tmp = tempfile::tempdir_in(parent.parent().expect("parent")).expect("data tmp");
    let data = tmp.path().join("data");
    let backend = Arc::new(
        RealBackend::new(Options {
            data_dir: Some(data.clone()),
            network: Some(network),
        })
        .expect("backend"),
    );
    let rt = runtime();
    let (during, addresses) = rt.block_on(async {
        let a = backend.amnesic().await.expect("amnesic a");
        let b = backend.amnesic().await.expect("amnesic b");
        assert!(a.is_amnesic() && b.is_amnesic());
        let (during, addresses) = chat_and_look(a, b, &parent).await;
        // The runtime (and Arti's tasks on it) keeps running, as it does
        // in the app after a session ends.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let left = walk(&parent);
        report("amnesic parent after the sessions ended", &left);
        assert!(left.is_empty(), "left behind while the process runs on");
        (during, addresses)
    });
    rt.shutdown_timeout(Duration::from_secs(10));
    report("amnesic parent while running", &during);
    check_listed("amnesic sessions while running", &during, "amnesic");
    check_private("amnesic sessions while running", &during);
    let mut secrets = words();
    for (i, a) in addresses.iter().enumerate() {
        let id = OnionId::parse(a).expect("address");
        secrets.extend(onion_forms(&format!("session {i} address"), &id));
    }
    check_absent("amnesic sessions, in the clear", &during, &secrets);
    for dir in [&parent, &temp] {
        let left = walk(dir);
        assert!(left.is_empty(), "left in {}", dir.display());
    }
    assert!(!data.exists(), "an amnesic session wrote into the data dir");
}

#[test]
fn the_pattern_matcher() {
    let m = |p: &str, s: &str, prefix: bool| {
        let p: Vec<&str> = p.split('/').collect();
        let s: Vec<&str> = s.split('/').collect();
        glob(&p, &s, prefix)
    };
    assert!(m("profiles/*/vault", "profiles/a b/vault", false));
    assert!(!m("profiles/*/vault", "profiles/a/b/vault", false));
    assert!(m(
        "profiles/*/.vault.tmp-*",
        "profiles/a/.vault.tmp-00ff",
        false
    ));
    assert!(!m("profiles/*/.vault.tmp-*", "profiles/a/vault", false));
    assert!(m("a/**", "a/b/c/d", false));
    assert!(m("a/**", "a", false));
    assert!(m("a/**/x.json", "a/b/c/x.json", false));
    assert!(!m("a/**/x.json", "a/b/c/y.json", false));
    assert!(m("profiles/*/tor/state/x", "profiles/a/tor", true));
    assert!(!m("profiles/*/tor/state/x", "profiles/a/other", true));
    assert!(!m("profiles/*/vault", "profiles/a/vault/extra", true));
    assert_eq!(base64(&[0xff; 3]), "////");
    assert_eq!(base64(b"hi"), "aGk");
}
