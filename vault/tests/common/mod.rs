//! Shared by the integration tests: profiles full of recognisable values,
//! and re-running this test binary as a child process.

#![allow(dead_code)] // each test file uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;

use allium_vault::{
    BlockedName, Contact, ContactId, ContactState, Direction, HistoryEntry, Profile, ProfileKeys,
    Public32, QueuedMessage, Secret32, Settings,
};

/// Set in a child process to the role it plays (and read by the `child_*`
/// tests, which do nothing without it).
pub const CHILD_ROLE: &str = "ALLIUM_VAULT_TEST_CHILD";
/// The directory a child works in.
pub const CHILD_DIR: &str = "ALLIUM_VAULT_TEST_DIR";

/// This test binary, set to run only the ignored test `test_name` as a
/// child playing `role` in `dir`.
pub fn child_command(test_name: &str, role: &str, dir: &Path) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("test fixture"));
    child_args(&mut cmd, test_name);
    cmd.env(CHILD_ROLE, role).env(CHILD_DIR, dir);
    cmd
}

/// Appends the arguments that make the test harness run exactly one
/// ignored test, with its output passed through.
pub fn child_args(cmd: &mut Command, test_name: &str) {
    cmd.args([
        test_name,
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
}

/// The role and directory if this process is a child, `None` in a normal
/// test run.
pub fn child_role() -> Option<(String, PathBuf)> {
    let role = std::env::var(CHILD_ROLE).ok()?;
    let dir = std::env::var_os(CHILD_DIR)?;
    Some((role, PathBuf::from(dir)))
}

/// Distinct bytes from a label (not random: failures reproduce).
pub fn bytes32(label: &str) -> [u8; 32] {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut out = [0u8; 32];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = DefaultHasher::new();
        (label, i).hash(&mut h);
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

pub fn keys(label: &str) -> ProfileKeys {
    ProfileKeys {
        intake_seed: Secret32(bytes32(&format!("{label}/intake"))),
        endpoint_seed: Secret32(bytes32(&format!("{label}/endpoint"))),
        static_secret: Secret32(bytes32(&format!("{label}/static"))),
    }
}

/// A valid Ed25519 public key (so it has an `allium:` address), derived
/// from a label.
pub fn onion_public(label: &str) -> Public32 {
    let key = allium_protocol::identity::IdentityKey::from_seed(&bytes32(label));
    Public32(*key.onion_id().as_bytes())
}

/// A profile in which every field has a non-default, recognisable value.
pub fn full_profile() -> Profile {
    let mut p = Profile::new(keys("full"));
    p.settings = Settings {
        intake_enabled: false,
        display_name: "Quetzalcoatl-Display-7731".into(),
        history_by_default: true,
        notification_content: true,
        max_incoming_file: 123_456_789,
        custom_network: Some("/srv/Nettle-Network-File-5521.json".into()),
        auto_lock_minutes: 17,
        download_folder: Some("/home/Okapi-Downloads-3390".into()),
    };
    p.blocked = vec![onion_public("blocked-1"), onion_public("blocked-2")];
    p.blocked_names = vec![BlockedName {
        intake: onion_public("blocked-1"),
        nickname: "Pangolin-Blocked-6620".into(),
    }];
    p.rejected = vec![onion_public("rejected-1")];
    p.contacts = vec![
        Contact {
            id: ContactId(3),
            intake: onion_public("contact-a"),
            nickname: "Marmoset-Nick-4410".into(),
            state: ContactState::Accepted,
            greeting: "Ocelot-Greeting-9902".into(),
            suggested_nickname: "Pangolin-Suggested-3318".into(),
            request_delivered: true,
            accept_pending: true,
            their_static: Some(Public32(bytes32("contact-a/static"))),
            their_endpoint: Some(onion_public("contact-a/endpoint")),
            their_discovery_key: Some(Secret32(bytes32("contact-a/their-dk"))),
            our_discovery_key: Secret32(bytes32("contact-a/our-dk")),
            history_enabled: true,
            next_message_id: 42,
            last_received_id: 17,
            outbox: vec![
                QueuedMessage {
                    id: 40,
                    text: "Axolotl-Queued-Message-0001 meet at the usual place".into(),
                    queued_at: 1_700_000_001,
                },
                QueuedMessage {
                    id: 41,
                    text: "Wombat-Queued-Message-0002 ünïcödé ✓ \"quotes\" \\ back".into(),
                    queued_at: 1_700_000_002,
                },
            ],
            history: vec![
                HistoryEntry {
                    direction: Direction::Incoming,
                    id: 16,
                    text: "Narwhal-History-Text-0003".into(),
                    at: 1_699_999_000,
                    delivered: false,
                },
                HistoryEntry {
                    direction: Direction::Outgoing,
                    id: 39,
                    text: "Capybara-History-Text-0004".into(),
                    at: 1_699_999_500,
                    delivered: true,
                },
            ],
            created_at: 1_690_000_000,
            unsynced_from: None,
            verified: true,
            peer_keeps_history: Some(true),
        },
        Contact {
            id: ContactId(4),
            intake: onion_public("contact-b"),
            nickname: "Tapir-Nick-5521".into(),
            state: ContactState::IncomingPending,
            greeting: "Quokka-Greeting-6610".into(),
            suggested_nickname: String::new(),
            request_delivered: false,
            accept_pending: false,
            their_static: None,
            their_endpoint: None,
            their_discovery_key: None,
            our_discovery_key: Secret32(bytes32("contact-b/our-dk")),
            history_enabled: false,
            next_message_id: 1,
            last_received_id: 0,
            outbox: Vec::new(),
            history: Vec::new(),
            created_at: 1_690_000_100,
            unsynced_from: None,
            verified: false,
            peer_keeps_history: None,
        },
        Contact {
            id: ContactId(5),
            intake: onion_public("contact-c"),
            nickname: "Okapi-Nick-7781".into(),
            state: ContactState::OutgoingPending,
            greeting: "Kinkajou-Greeting-1123".into(),
            suggested_nickname: String::new(),
            request_delivered: false,
            accept_pending: false,
            their_static: None,
            their_endpoint: None,
            their_discovery_key: None,
            our_discovery_key: Secret32(bytes32("contact-c/our-dk")),
            history_enabled: false,
            next_message_id: 1,
            last_received_id: 0,
            outbox: Vec::new(),
            history: Vec::new(),
            created_at: 1_690_000_200,
            unsynced_from: None,
            verified: false,
            peer_keeps_history: None,
        },
    ];
    p.next_contact_id = 6;
    p.spare_discovery_keys = vec![Secret32(bytes32("spare-1")), Secret32(bytes32("spare-2"))];
    p
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("test fixture") {
            let entry = entry.expect("test fixture");
            let ty = entry.file_type().expect("test fixture");
            if ty.is_dir() {
                stack.push(entry.path());
            } else {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    out
}

/// Reads the child's stdout until a line contains `marker` and returns what
/// follows the marker on that line; `None` if the child closed its output
/// or 60 s passed first. (With `--nocapture`, the harness's own
/// "test name ... " can precede the marker on its line.)
pub fn wait_for_marker(child: &mut std::process::Child, marker: &str) -> Option<String> {
    use std::io::BufRead;
    let stdout = child.stdout.take()?;
    let marker = marker.to_owned();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let found = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split_once(&marker).map(|(_, rest)| rest.to_owned()));
        let _ = tx.send(found);
        // Keep draining so that the child never blocks on a full pipe.
        for _ in lines {}
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .ok()
        .flatten()
}
