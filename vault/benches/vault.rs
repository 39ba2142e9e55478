//! Unlock and save times for a large profile: 1,000 contacts and 10,000
//! queued messages, with the default KDF parameters. Prints one JSON
//! object. Run in release: `cargo bench -p allium-vault --bench vault`.

use std::time::{Duration, Instant};

use allium_vault::{
    Contact, ContactId, ContactState, KdfParams, Profile, ProfileKeys, Public32, QueuedMessage,
    Secret32, Vault,
};

const CONTACTS: u64 = 1_000;
const MESSAGES_PER_CONTACT: u64 = 10;
const UNLOCKS: usize = 5;
const SAVES: usize = 20;
const PASS: &str = "a reasonably long passphrase for the benchmark";

fn key(n: u64, tag: u8) -> [u8; 32] {
    let mut k = [tag; 32];
    k[..8].copy_from_slice(&n.to_le_bytes());
    k
}

fn big_profile() -> Profile {
    let mut p = Profile::new(ProfileKeys {
        intake_seed: Secret32(key(0, 1)),
        endpoint_seed: Secret32(key(0, 2)),
        static_secret: Secret32(key(0, 3)),
    });
    for c in 0..CONTACTS {
        let outbox = (0..MESSAGES_PER_CONTACT)
            .map(|m| QueuedMessage {
                id: m + 1,
                // A typical chat line: about 100 characters.
                text: format!(
                    "message {m} to contact {c}: are we still meeting tomorrow at the usual place? bring the notes."
                ),
                queued_at: 1_700_000_000 + m,
            })
            .collect();
        p.contacts.push(Contact {
            id: ContactId(c + 1),
            intake: Public32(key(c, 4)),
            nickname: format!("Contact number {c}"),
            state: ContactState::Accepted,
            greeting: "hello, it's me".into(),
            suggested_nickname: String::new(),
            request_delivered: true,
            accept_pending: false,
            their_static: Some(Public32(key(c, 5))),
            their_endpoint: Some(Public32(key(c, 6))),
            their_discovery_key: Some(Secret32(key(c, 7))),
            our_discovery_key: Secret32(key(c, 8)),
            history_enabled: false,
            next_message_id: MESSAGES_PER_CONTACT + 1,
            last_received_id: 0,
            outbox,
            history: Vec::new(),
            created_at: 1_690_000_000,
            unsynced_from: None,
            verified: false,
            peer_keeps_history: None,
        });
    }
    p.next_contact_id = CONTACTS + 1;
    p
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// {"min":…, "median":…, "max":…} in milliseconds.
fn summary(mut times: Vec<Duration>) -> String {
    times.sort();
    format!(
        r#"{{"min_ms": {}, "median_ms": {}, "max_ms": {}, "runs": {}}}"#,
        ms(times[0]),
        ms(times[times.len() / 2]),
        ms(times[times.len() - 1]),
        times.len()
    )
}

fn unlock_times(path: &std::path::Path, expected: &Profile) -> Vec<Duration> {
    (0..UNLOCKS)
        .map(|_| {
            let start = Instant::now();
            let (_, opened) = Vault::open(path, PASS).expect("the vault opens");
            let t = start.elapsed();
            assert_eq!(opened.contacts.len(), expected.contacts.len());
            t
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let profile = big_profile();
    let json_len = serde_json::to_vec(&profile).expect("serializes").len();
    let params = KdfParams::default();
    let path = dir.path().join("vault");

    let start = Instant::now();
    let mut vault = Vault::create(&path, PASS, params, &profile).expect("create");
    let create = start.elapsed();
    let file_len = std::fs::metadata(&path).expect("metadata").len();

    let unlock = unlock_times(&path, &profile);
    let saves: Vec<Duration> = (0..SAVES)
        .map(|_| {
            let start = Instant::now();
            vault.save(&profile).expect("save");
            start.elapsed()
        })
        .collect();

    // The same memory and passes in 4 lanes, for the choice of 1 lane.
    let four = KdfParams::new(params.memory_kib, params.passes, 4).expect("params");
    let path4 = dir.path().join("vault-4-lanes");
    Vault::create(&path4, PASS, four, &profile).expect("create");
    let unlock4 = unlock_times(&path4, &profile);

    println!(
        concat!(
            "{{\"contacts\": {}, \"queued_messages\": {}, \"plaintext_json_bytes\": {}, \"file_bytes\": {},\n",
            " \"kdf\": {{\"memory_kib\": {}, \"passes\": {}, \"lanes\": {}}},\n",
            " \"create_ms\": {},\n",
            " \"unlock\": {},\n",
            " \"save\": {},\n",
            " \"unlock_4_lanes\": {},\n",
            " \"dir\": \"{}\"}}"
        ),
        CONTACTS,
        CONTACTS * MESSAGES_PER_CONTACT,
        json_len,
        file_len,
        params.memory_kib,
        params.passes,
        params.lanes,
        ms(create),
        summary(unlock),
        summary(saves),
        summary(unlock4),
        dir.path().display()
    );
}
