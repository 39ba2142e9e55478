//! End to end through the real binary on the local Tor network: two
//! `allium headless` processes with their own data directories add each
//! other, chat both ways, move a 5 MiB file whose digest is checked, and
//! one is restarted while the other queues messages for it. Both log at
//! debug level (`ALLIUM_LOG`), and no address, nickname, greeting, message
//! or file name may show in those logs.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use rand_core::{OsRng, RngCore};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Tor on a busy two-core machine: only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(300);

fn network_file() -> PathBuf {
    std::env::var_os("ALLIUM_TEST_NETWORK")
        .map(PathBuf::from)
        .expect(
            "ALLIUM_TEST_NETWORK is not set: run the suite with ./scripts/test.sh, which starts a \
         local Tor network, or start one with `allium-testnet up --dir DIR` and set \
         ALLIUM_TEST_NETWORK=DIR/network.json",
        )
}

struct Headless {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    notes: VecDeque<Value>,
    next_id: u64,
    who: &'static str,
}

/// Where the peers' logs go: the directory that `scripts/with-testnet.sh`
/// keeps when a test fails, else `fallback`.
fn log_dir(fallback: &Path) -> PathBuf {
    let dir = std::env::var_os("ALLIUM_TEST_LOG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| fallback.to_owned());
    std::fs::create_dir_all(&dir).expect("log dir");
    dir
}

impl Headless {
    /// Starts `allium headless`, logging at debug level to `log`.
    fn start(who: &'static str, data_dir: &Path, log: &Path) -> Headless {
        let log = std::fs::File::create(log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_allium"))
            .arg("headless")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--network")
            .arg(network_file())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .env("ALLIUM_LOG", "debug")
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("allium starts");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        Headless {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            notes: VecDeque::new(),
            next_id: 1,
            who,
        }
    }

    async fn line(&mut self) -> Value {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{}: nothing said for {PATIENCE:?}", self.who))
            .expect("read")
            .unwrap_or_else(|| panic!("{}: allium exited", self.who));
        serde_json::from_str(&line).expect("a JSON line")
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin
            .write_all(format!("{req}\n").as_bytes())
            .await
            .expect("write");
        stdin.flush().await.expect("flush");
        loop {
            let v = self.line().await;
            if v.get("id") == Some(&json!(id)) {
                if let Some(e) = v.get("error") {
                    panic!("{}: {method} failed: {e}", self.who);
                }
                return v["result"].clone();
            }
            self.notes.push_back(v);
        }
    }

    /// The first event (kept or new) for which `f` holds.
    async fn event<F: Fn(&Value) -> bool>(&mut self, what: &str, f: F) -> Value {
        if let Some(i) = self
            .notes
            .iter()
            .position(|n| n["method"] == "event" && f(&n["params"]))
        {
            return self
                .notes
                .remove(i)
                .map(|n| n["params"].clone())
                .unwrap_or_default();
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: no {what} within {PATIENCE:?}",
                self.who
            );
            let v = self.line().await;
            if v["method"] == "event" && f(&v["params"]) {
                return v["params"].clone();
            }
            self.notes.push_back(v);
        }
    }

    /// Waits until Tor is ready and both services are reachable.
    async fn until_reachable(&mut self) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let s = self.call("status", json!({})).await;
            if s["tor"]["state"] == "ready"
                && s["endpoint"] == "reachable"
                && (s["intake"] == "reachable" || s["intake"].is_null())
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{}: not reachable: {s}",
                self.who
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Closes stdin (saving and stopping) and waits for the exit.
    async fn quit(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(PATIENCE, self.child.wait())
            .await
            .expect("exits")
            .expect("wait");
        assert!(status.success(), "{}: exit {status}", self.who);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_headless_peers_on_tor_chat_send_a_file_and_survive_a_restart() {
    let root = tempfile::tempdir().expect("tmp");
    let pass = root.path().join("passphrase.txt");
    std::fs::write(&pass, "a passphrase for the test\n").expect("write");
    let (dir_a, dir_b) = (root.path().join("a"), root.path().join("b"));
    let logs = log_dir(root.path());
    let log = |name: &str| logs.join(format!("headless-{name}.log"));

    let mut a = Headless::start("A", &dir_a, &log("a"));
    let mut b = Headless::start("B", &dir_b, &log("b"));
    let made_a = a
        .call(
            "profile.create",
            json!({"name": "alice", "passphrase_file": pass}),
        )
        .await;
    let made_b = b
        .call(
            "profile.create",
            json!({"name": "bob", "passphrase_file": pass}),
        )
        .await;
    let addr_b = made_b["address"].as_str().expect("address").to_owned();
    assert_ne!(made_a["address"], made_b["address"]);
    a.until_reachable().await;
    b.until_reachable().await;

    // A asks, B accepts.
    let added = a
        .call(
            "contacts.add",
            json!({"address": addr_b, "nickname": "Bob", "greeting": "Hello from Alice"}),
        )
        .await;
    let b_at_a = added["contact"].clone();
    let req = b
        .event("request", |e| e["event"] == "request_received")
        .await;
    assert_eq!(req["contact"]["greeting"], "Hello from Alice");
    let a_at_b = req["contact"]["id"].clone();
    b.call(
        "contacts.accept",
        json!({"contact": a_at_b, "nickname": "Alice"}),
    )
    .await;
    a.event("acceptance", |e| {
        e["event"] == "request_accepted" && e["contact"] == b_at_a
    })
    .await;

    // Chat both ways.
    a.call(
        "messages.send",
        json!({"contact": b_at_a, "text": "hi Bob"}),
    )
    .await;
    let m = b
        .event("message", |e| e["event"] == "message_received")
        .await;
    assert_eq!(m["message"]["text"], "hi Bob");
    a.event("delivery", |e| {
        e["event"] == "message_state" && e["state"] == "delivered"
    })
    .await;
    b.call(
        "messages.send",
        json!({"contact": a_at_b, "text": "hi Alice"}),
    )
    .await;
    let m = a.event("reply", |e| e["event"] == "message_received").await;
    assert_eq!(m["message"]["text"], "hi Alice");

    // A 5 MiB file, digest checked.
    let mut data = vec![0u8; 5 << 20];
    OsRng.fill_bytes(&mut data);
    let src = root.path().join("evidence.bin");
    std::fs::write(&src, &data).expect("write");
    let inbox = root.path().join("inbox");
    std::fs::create_dir(&inbox).expect("mkdir");
    let sent = a
        .call("files.send", json!({"contact": b_at_a, "path": src}))
        .await;
    let offer = b.event("offer", |e| e["event"] == "file_offered").await;
    assert_eq!(offer["transfer"]["id"], sent["transfer"]);
    assert_eq!(offer["transfer"]["size"], 5 << 20);
    b.call(
        "files.accept",
        json!({"transfer": sent["transfer"], "folder": inbox}),
    )
    .await;
    let done = b
        .event("completion", |e| {
            e["event"] == "file_completed" || e["event"] == "file_cancelled"
        })
        .await;
    assert_eq!(done["event"], "file_completed", "{done}");
    let got = std::fs::read(inbox.join("evidence.bin")).expect("received file");
    assert!(
        Sha256::digest(&got) == Sha256::digest(&data),
        "the file differs"
    );

    // B quits; A queues three messages; B comes back and gets them in order.
    b.quit().await;
    for i in 1..=3 {
        a.call(
            "messages.send",
            json!({"contact": b_at_a, "text": format!("while you were away {i}")}),
        )
        .await;
    }
    let mut b = Headless::start("B again", &dir_b, &log("b-again"));
    b.call(
        "profile.unlock",
        json!({"name": "bob", "passphrase_file": pass}),
    )
    .await;
    for i in 1..=3 {
        let m = b
            .event("a queued message", |e| e["event"] == "message_received")
            .await;
        assert_eq!(m["message"]["text"], format!("while you were away {i}"));
        assert_eq!(m["message"]["id"], i + 1);
    }
    a.quit().await;
    b.quit().await;

    // The logs say what happened, not with whom or what: Arti's safe
    // logging redacts addresses, and Allium logs no names or text.
    let addr_a = made_a["address"].as_str().expect("address").to_owned();
    let secrets = [
        addr_a.trim_start_matches("allium:"),
        addr_b.trim_start_matches("allium:"),
        "Hello from Alice",
        "hi Bob",
        "hi Alice",
        "while you were away",
        "evidence.bin",
    ];
    for name in ["a", "b", "b-again"] {
        let text = std::fs::read_to_string(log(name)).expect("log");
        assert!(
            text.lines().count() > 10,
            "{name}'s log is nearly empty: is ALLIUM_LOG read?"
        );
        for secret in secrets {
            assert!(!text.contains(secret), "{name}'s log shows {secret:?}");
        }
    }
}
