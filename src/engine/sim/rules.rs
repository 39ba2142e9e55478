//! The core's rules, each attacked on a few simulated cores: the two
//! durability rules, the ack clamp, the tie-break between two sessions,
//! and the intake's token bucket. Each test makes the situation the rule
//! is for happen on purpose, rather than waiting for a fault to find it.

use std::time::Duration;

use allium_protocol::message::MAX_CHUNK;
use allium_protocol::{FileChunk, FileOffer, Message, TransferId};

use super::{Faults, Plan, World};

const SECOND: Duration = Duration::from_secs(1);

fn world(peers: usize, contacts_each: usize, folder: &std::path::Path) -> World {
    world_with(peers, contacts_each, Faults::none(), folder)
}

fn world_with(
    peers: usize,
    contacts_each: usize,
    faults: Faults,
    folder: &std::path::Path,
) -> World {
    let plan = Plan {
        peers,
        contacts_each,
        messages: 0,
        message_every: Duration::from_millis(1),
        files: 0,
        faults,
    };
    let mut w = World::new(1, plan, folder.to_path_buf());
    w.befriend().expect("contacts made");
    w
}

fn outbox(w: &World, p: usize) -> usize {
    w.peers[p]
        .core
        .as_ref()
        .map(|c| c.profile.contacts.iter().map(|c| c.outbox.len()).sum())
        .unwrap_or(0)
}

#[test]
fn a_message_goes_out_only_once_its_outbox_is_saved() {
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(2, 1, dir.path());
    // First the boundary of the first SYNC on disk (its own rule holds
    // CHAT back until then, which would hide this one).
    w.run_until(Duration::from_secs(60), |w| {
        w.peers[0]
            .core
            .as_ref()
            .is_some_and(|c| c.links.values().all(|l| l.flow.sync_settled()))
    })
    .expect("the first SYNC saved");
    w.hold_saves(0, true);
    for _ in 0..3 {
        w.send_one(0, 1).expect("sent");
    }
    w.run_for(SECOND).expect("run");
    // A new session flushes the outbox as soon as the contact's SYNC
    // comes: what is not saved must still wait.
    let (pipe, _) = w.session_pipe(0, 1).expect("a session");
    w.cut_pipe(pipe);
    w.run_for(SECOND).expect("run");
    w.redial_now(0);
    w.run_for(10 * SECOND).expect("run");
    assert!(
        w.session_pipe(0, 1).is_some(),
        "no new session: nothing was tried"
    );
    assert_eq!(w.ledger.delivered, 0, "a message left before it was saved");
    w.hold_saves(0, false);
    w.quiet().expect("everything arrives once saved");
    assert_eq!(w.ledger.delivered, 3);
}

#[test]
fn an_ack_goes_back_only_once_the_receipt_is_saved() {
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(2, 1, dir.path());
    w.hold_saves(1, true);
    for _ in 0..3 {
        w.send_one(0, 1).expect("sent");
    }
    w.run_for(10 * SECOND).expect("run");
    assert_eq!(w.ledger.delivered, 3, "the receiver shows what arrived");
    assert_eq!(outbox(&w, 0), 3, "acknowledged before the receiver saved");
    w.hold_saves(1, false);
    w.quiet().expect("acknowledged once saved");
    assert_eq!(outbox(&w, 0), 0);
}

#[test]
fn an_ack_for_what_was_never_written_drops_nothing() {
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(2, 1, dir.path());
    w.hold_saves(0, true);
    for _ in 0..3 {
        w.send_one(0, 1).expect("sent");
    }
    w.run_for(SECOND).expect("run");
    // Nothing was written (the outbox is not saved): the contact claims
    // it has everything anyway.
    w.inject(1, 0, Message::Ack { id: 1_000 })
        .expect("the lie is sent");
    w.run_for(5 * SECOND).expect("run");
    assert_eq!(
        outbox(&w, 0),
        3,
        "an ack beyond what was written dropped mail"
    );
    w.hold_saves(0, false);
    w.quiet().expect("everything still arrives");
    assert_eq!(w.ledger.delivered, 3);
}

#[test]
fn two_sessions_dialled_at_once_leave_the_same_one_on_both_sides() {
    let dir = tempfile::tempdir().expect("folder");
    // Every delivery takes the same 5 ms, so that both dials arrive
    // together and both sessions are mid-handshake at once.
    let faults = Faults {
        max_latency: Duration::from_millis(5),
        ..Faults::none()
    };
    let mut w = world_with(2, 1, faults, dir.path());
    let (pipe, _) = w.session_pipe(0, 1).expect("a session after befriending");
    w.cut_pipe(pipe);
    w.run_for(SECOND).expect("run");
    assert!(w.session_pipe(0, 1).is_none() && w.session_pipe(1, 0).is_none());
    let before = w.next_pipe;
    // Both redial at the same moment: each side ends up with two sessions.
    w.redial_now(0);
    w.redial_now(1);
    w.run_for(10 * SECOND).expect("run");
    assert_eq!(
        w.next_pipe - before,
        2,
        "the tie-break made someone dial again"
    );
    let (a, _) = w.session_pipe(0, 1).expect("0 has a session");
    let (b, _) = w.session_pipe(1, 0).expect("1 has a session");
    assert_eq!(a, b, "the two sides kept different sessions");
    assert!(
        w.report.replaced >= 1,
        "no session was replaced: no tie-break was tested"
    );
    // And it carries messages.
    w.send_one(0, 1).expect("sent");
    w.send_one(1, 0).expect("sent");
    w.quiet().expect("delivered");
}

#[test]
fn a_flood_of_strangers_is_let_in_at_the_buckets_rate_and_all_get_in() {
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(26, 0, dir.path());
    for q in 1..26 {
        w.ask(q, 0).expect("asked");
    }
    let stored = |w: &World| {
        w.peers[0]
            .core
            .as_ref()
            .map_or(0, |c| c.profile.contacts.len())
    };
    w.run_for(20 * SECOND).expect("run");
    // A burst of 10, then 10 a minute (EngineConfig::requests_per_minute).
    let first = stored(&w);
    assert!(
        (10..=14).contains(&first),
        "{first} requests stored in the first 20 s"
    );
    w.run_until(Duration::from_secs(3600), |w| stored(w) == 25)
        .expect("every requester gets in, in time");
}

#[test]
fn a_sender_that_ignores_the_window_is_cut_off_not_buffered() {
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(2, 1, dir.path());
    let transfer = TransferId([7; 16]);
    let size = 4u64 << 20;
    let offer = FileOffer {
        transfer,
        size,
        sha256: [0; 32],
        name: "flood.bin".into(),
    };
    // Peer 1 accepts whatever it is offered (`people.rs`).
    w.inject(0, 1, Message::FileOffer(offer)).expect("offered");
    w.run_for(SECOND).expect("run");
    // Then 4 MiB at once, with no acknowledgement waited for: more than
    // the 1 MiB window, faster than the disk takes it.
    let mut offset = 0;
    while offset < size {
        let len = (size - offset).min(MAX_CHUNK as u64) as usize;
        let chunk = FileChunk {
            transfer,
            offset,
            data: vec![0x55; len],
        };
        w.inject(0, 1, Message::FileChunk(chunk)).expect("chunk");
        offset += len as u64;
    }
    w.run_for(SECOND).expect("run");
    assert_eq!(
        w.incoming_cancels,
        vec![(1, "the other side broke the transfer rules".to_owned())]
    );
    let left: Vec<_> = std::fs::read_dir(dir.path().join("in-1"))
        .expect("the folder")
        .collect();
    assert!(left.is_empty(), "the partial file was left behind");
}

#[test]
fn an_offer_cancelled_and_made_again_while_its_file_is_created_is_received_once() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().expect("folder");
    let mut w = world(2, 1, dir.path());
    let data: Vec<u8> = (0..150_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let source = dir.path().join("source.bin");
    std::fs::write(&source, &data).expect("write");
    let transfer = TransferId([9; 16]);
    w.file_sources.insert(hex::encode(transfer.0), source);
    let offer = FileOffer {
        transfer,
        size: data.len() as u64,
        sha256: Sha256::digest(&data).into(),
        name: "twice.bin".into(),
    };
    // Peer 1 accepts each offer as it comes; the first accept's file is
    // still being created when the offer is cancelled and made again.
    w.inject(0, 1, Message::FileOffer(offer.clone()))
        .expect("offered");
    let cancel = Message::FileCancel {
        transfer,
        reason: allium_protocol::CancelReason::ByUser,
    };
    w.inject(0, 1, cancel).expect("cancelled");
    w.inject(0, 1, Message::FileOffer(offer))
        .expect("offered again");
    w.run_for(SECOND).expect("run");
    let mut offset = 0;
    for piece in data.chunks(MAX_CHUNK) {
        let chunk = FileChunk {
            transfer,
            offset,
            data: piece.to_vec(),
        };
        w.inject(0, 1, Message::FileChunk(chunk)).expect("chunk");
        offset += piece.len() as u64;
    }
    w.run_for(SECOND).expect("run");
    assert_eq!(w.report.files_completed, 1, "{:?}", w.incoming_cancels);
    let names: Vec<String> = std::fs::read_dir(dir.path().join("in-1"))
        .expect("the folder")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        vec!["twice.bin".to_owned()],
        "a partial file was left"
    );
}
