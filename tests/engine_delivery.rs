//! Delivery that loses nothing: drops mid-frame, restarts, crashes, both
//! sides dialling at once, and a disk that refuses to save.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use allium::engine::{DeliveryState, Event, SaveError};
use allium_onion::{Fault, MemoryNetwork};
use allium_vault::ContactId;
use rand_core::{OsRng, RngCore};
use support::{Peer, befriend, wait_online};

/// Collects every MessageReceived from `contact` into `got` (id → text).
fn record(p: &mut Peer, contact: ContactId, got: &mut Vec<(u64, String)>) {
    p.drain();
    for e in p.seen.drain(..) {
        if let Event::MessageReceived {
            contact: c,
            message,
        } = e
            && c == contact
        {
            got.push((message.id, message.text));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_dialling_at_once_converge_on_one_session() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    for round in 0..10u64 {
        // Both restart together, so both dial the other at once.
        let (sa, sb) = tokio::join!(a.go_offline(), b.go_offline());
        tokio::join!(a.come_back(sa), b.come_back(sb));
        wait_online(&mut a, b_at_a).await;
        wait_online(&mut b, a_at_b).await;
        let text = format!("round {round}");
        let id = a.h().send_message(b_at_a, &text).await.expect("send");
        b.wait(
            "message",
            |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
        )
        .await;
        a.wait("delivered", |e| matches!(e, Event::MessageState { id: i, state: DeliveryState::Delivered, .. } if *i == id)).await;
        // Settled: one session each side, online, and it stays so.
        tokio::time::sleep(Duration::from_millis(300)).await;
        a.drain();
        b.drain();
        let last_a = a.seen.iter().rev().find_map(|e| match e {
            Event::Presence { online, .. } => Some(*online),
            _ => None,
        });
        assert_ne!(last_a, Some(false), "round {round}: A ended offline");
        assert!(a.h().contacts().await.expect("c")[0].online);
        assert!(b.h().contacts().await.expect("c")[0].online);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_dropped_mid_frame_loses_nothing() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    // Sessions A opens to B break after a few hundred bytes: in the middle
    // of a frame. B's own dials to A are refused, so A must redial.
    net.set_fault(b.endpoint(), Some(Fault::DropAfter(700)));
    net.set_fault(a.endpoint(), Some(Fault::Refuse));
    let (sa, sb) = tokio::join!(a.go_offline(), b.go_offline());
    tokio::join!(a.come_back(sa), b.come_back(sb));
    for i in 1..=50 {
        a.h()
            .send_message(b_at_a, &format!("m{i}"))
            .await
            .expect("send");
    }
    // Let a number of sessions break.
    let dials = net.dial_count();
    while net.dial_count() < dials + 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    net.set_fault(b.endpoint(), None);
    net.set_fault(a.endpoint(), None);
    let mut got = Vec::new();
    while got.len() < 50 {
        b.wait("a message", |e| matches!(e, Event::MessageReceived { .. }))
            .await;
        record(&mut b, a_at_b, &mut got);
        // `record` drained; re-add what wait consumed is handled by seen.
    }
    let want: Vec<(u64, String)> = (1..=50).map(|i| (i, format!("m{i}"))).collect();
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_a_restart_and_arrive_in_order() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    let saved_b = b.go_offline().await;
    for i in 1..=20 {
        a.h()
            .send_message(b_at_a, &format!("while away {i}"))
            .await
            .expect("send");
    }
    // A quits and comes back: its outbox comes back from the store.
    a.restart().await;
    assert_eq!(a.h().contacts().await.expect("c")[0].queued, 20);
    b.come_back(saved_b).await;
    let mut got = Vec::new();
    while got.len() < 20 {
        b.wait("a message", |e| matches!(e, Event::MessageReceived { .. }))
            .await;
        record(&mut b, a_at_b, &mut got);
    }
    let want: Vec<(u64, String)> = (1..=20).map(|i| (i, format!("while away {i}"))).collect();
    assert_eq!(got, want);
    a.wait("all delivered", |e| {
        matches!(
            e,
            Event::MessageState {
                id: 20,
                state: DeliveryState::Delivered,
                ..
            }
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_goes_out_until_it_is_saved() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, _) = befriend(&mut a, &mut b).await;
    a.store.set_failing(Some(SaveError::DiskFull));
    a.h().send_message(b_at_a, "not yet").await.expect("queued");
    let ev = a
        .wait("save problem", |e| matches!(e, Event::SaveProblem { .. }))
        .await;
    assert_eq!(
        ev,
        Event::SaveProblem {
            error: Some(SaveError::DiskFull)
        }
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    b.drain();
    assert!(
        !b.seen
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { .. })),
        "sent before it was saved"
    );
    a.store.set_failing(None);
    b.wait("message", |e| matches!(e, Event::MessageReceived { .. }))
        .await;
    a.wait("saved again", |e| {
        matches!(e, Event::SaveProblem { error: None })
    })
    .await;
}

/// The acceptance test of delivery: 10,000 messages while sessions break
/// mid-frame and both sides crash and restart at random. Every message
/// arrives exactly once, in order. The receiver keeps history, so what it
/// holds after each crash is exactly what it had saved.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_under_drops_and_crashes() {
    const N: u64 = 10_000;
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    b.h().set_history(a_at_b, true).await.expect("history");
    // Start from both sides' acceptance and B's choice being on disk.
    while !b
        .store
        .saved()
        .is_some_and(|p| p.contacts.first().is_some_and(|c| c.history_enabled))
        || !a.store.saved().is_some_and(|p| {
            p.contacts
                .first()
                .is_some_and(|c| c.state == allium_vault::ContactState::Accepted)
        })
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Slow disks: a crash often lands between a change and its save.
    a.set_save_delay(Duration::from_millis(3));
    b.set_save_delay(Duration::from_millis(3));
    let seed = OsRng.next_u64();
    println!("seed {seed}");
    let mut rng = rand_chacha_like(seed);
    // expected[i] is the text of message id i+1. A crash of the sender
    // loses what it had not saved yet (the person sees it gone and would
    // type it again); those ids are then reused for new texts.
    let mut expected: Vec<String> = Vec::new();
    let mut counter = 0u64;
    let mut events: Vec<(u64, String)> = Vec::new();
    while (expected.len() as u64) < N {
        let batch = (rng() % 400 + 1).min(N - expected.len() as u64);
        for _ in 0..batch {
            counter += 1;
            let text = format!("message {counter}");
            let id = a.h().send_message(b_at_a, &text).await.expect("send");
            assert_eq!(id, expected.len() as u64 + 1);
            expected.push(text);
        }
        match rng() % 6 {
            0 => {
                let saved = a.crash().await;
                let kept = saved.contacts[0].next_message_id - 1;
                expected.truncate(kept as usize);
                // A crash right after befriending can predate saving the
                // acceptance; B repeats it until A confirms (PROTOCOL.md §8).
                let deadline = tokio::time::Instant::now() + support::PATIENCE;
                while a.h().contacts().await.expect("c")[0].state
                    != allium_vault::ContactState::Accepted
                {
                    assert!(
                        tokio::time::Instant::now() < deadline,
                        "A never saw the acceptance again"
                    );
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            1 => {
                b.crash().await;
                events.clear();
            }
            2 => net.set_fault(
                b.endpoint(),
                Some(Fault::DropAfter((rng() % 5000) as usize + 100)),
            ),
            3 => net.set_fault(
                a.endpoint(),
                Some(Fault::DropAfter((rng() % 5000) as usize + 100)),
            ),
            4 => {
                net.set_fault(b.endpoint(), None);
                net.set_fault(a.endpoint(), None);
            }
            _ => tokio::time::sleep(Duration::from_millis(rng() % 50)).await,
        }
        record(&mut b, a_at_b, &mut events);
    }
    net.set_fault(b.endpoint(), None);
    net.set_fault(a.endpoint(), None);
    // Wait until the sender's outbox is empty.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let q = a.h().contacts().await.expect("c")[0].queued;
        if q == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{q} still queued (seed {seed})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    record(&mut b, a_at_b, &mut events);
    let history = b.h().conversation(a_at_b).await.expect("history");
    let got: Vec<(u64, String)> = history.iter().map(|m| (m.id, m.text.clone())).collect();
    let want: Vec<(u64, String)> = expected
        .iter()
        .enumerate()
        .map(|(i, t)| (i as u64 + 1, t.clone()))
        .collect();
    assert_eq!(got.len(), want.len(), "seed {seed}");
    assert!(got == want, "lost, duplicated or reordered (seed {seed})");
    // Within the last incarnation, events were never duplicated either.
    let mut seen = BTreeMap::new();
    for (id, _) in &events {
        assert!(
            seen.insert(*id, ()).is_none(),
            "event for {id} twice (seed {seed})"
        );
    }
}

/// A small deterministic generator (xorshift), seeded and printed, so a
/// failing run can be repeated.
fn rand_chacha_like(seed: u64) -> impl FnMut() -> u64 {
    let mut s = seed | 1;
    move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    }
}

/// Sends `text` from `a` to `b` and waits until `b` has it and `a` knows.
async fn deliver(a: &mut Peer, b: &mut Peer, b_at_a: ContactId, text: &str) {
    let id = a.h().send_message(b_at_a, text).await.expect("send");
    b.wait(
        "message",
        |e| matches!(e, Event::MessageReceived { message, .. } if message.text == text),
    )
    .await;
    a.wait("delivered", |e| {
        matches!(e, Event::MessageState { id: i, state: DeliveryState::Delivered, .. } if *i == id)
    })
    .await;
}

/// Waits until `p` has saved everything it will save for now.
async fn saved_now(p: &Peer) -> allium_vault::Profile {
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.store.saved().expect("saved")
}

/// Review finding M3, the sender's side: A's profile goes back to an older
/// copy (a backup restored), so A hands out ids B already has. Before the
/// fix B dropped them as duplicates and acknowledged them: lost while shown
/// "delivered". Now B's SYNC tells A how far B got, and A gives what it
/// queued since new ids after that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_restored_from_an_older_copy_loses_nothing() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    deliver(&mut a, &mut b, b_at_a, "one").await;
    let backup = saved_now(&a).await;
    deliver(&mut a, &mut b, b_at_a, "two").await;
    deliver(&mut a, &mut b, b_at_a, "three").await;
    // A is restored from the backup while B is away: it thinks its next
    // id is 2 again, and queues a message under it.
    let b_saved = b.go_offline().await;
    a.kill_and_restart_from(backup).await;
    let id = a.h().send_message(b_at_a, "four").await.expect("send");
    assert_eq!(id, 2, "the restored copy hands out an id B already has");
    // And A restarts once more before B is back (a reboot): where this
    // run's ids began must survive it.
    let a_saved = a.go_offline().await;
    assert_eq!(a_saved.contacts[0].outbox.len(), 1);
    a.come_back(a_saved).await;
    b.come_back(b_saved).await;
    let got = b
        .wait(
            "the message sent after the restore",
            |e| matches!(e, Event::MessageReceived { contact, message } if *contact == a_at_b && message.text == "four"),
        )
        .await;
    let Event::MessageReceived { message, .. } = got else {
        unreachable!()
    };
    assert_eq!(message.id, 4, "it came after the three B had");
    a.wait(
        "renumbered",
        |e| matches!(e, Event::MessagesRenumbered { renumbered, .. } if renumbered == &[(2, 4)]),
    )
    .await;
    a.wait("delivered", |e| {
        matches!(
            e,
            Event::MessageState {
                id: 4,
                state: DeliveryState::Delivered,
                ..
            }
        )
    })
    .await;
    // And the next one follows in order.
    deliver(&mut a, &mut b, b_at_a, "five").await;
}

/// Review finding M3, the receiver's side: B's profile goes back to an
/// older copy, so B's `last` is behind what A already dropped as
/// acknowledged. Before the fix every new message looked like a gap:
/// nothing was delivered again and A's outbox grew forever. Now A's SYNC
/// tells B where A resumes; B says which messages it no longer has and
/// takes what comes next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_restored_from_an_older_copy_is_told_and_delivery_goes_on() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    deliver(&mut a, &mut b, b_at_a, "one").await;
    let backup = saved_now(&b).await;
    deliver(&mut a, &mut b, b_at_a, "two").await;
    deliver(&mut a, &mut b, b_at_a, "three").await;
    b.kill_and_restart_from(backup).await;
    a.h().send_message(b_at_a, "four").await.expect("send");
    b.wait(
        "told what is missing",
        |e| matches!(e, Event::MessagesMissing { contact, from: 2, to: 3 } if *contact == a_at_b),
    )
    .await;
    b.wait(
        "the next message",
        |e| matches!(e, Event::MessageReceived { message, .. } if message.text == "four" && message.id == 4),
    )
    .await;
    // Nothing waits with the sender any more.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while a.h().contacts().await.expect("contacts")[0].queued > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A's outbox never emptied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// PROTOCOL.md §4.3 and §6.3: a version-3 build and an older one (version
/// 2, which knows no HISTORY) still become contacts and chat both ways:
/// the newer one's dials are refused once and come back at version 2, and
/// its window is told nothing about history, rather than something wrong.
/// Between two version-3 builds, each hears the other's setting and every
/// change of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_is_told_at_version_3_and_an_older_peer_still_chats() {
    let net = MemoryNetwork::new();
    let old_build = allium::engine::EngineConfig {
        session: allium_protocol::SessionConfig {
            versions: vec![2],
            ..allium_protocol::SessionConfig::default()
        },
        ..support::config()
    };
    let mut new = Peer::start(&net);
    let mut old = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), old_build);
    // The new one dials (intake, then endpoint) and is refused each time.
    let (old_at_new, new_at_old) = befriend(&mut new, &mut old).await;
    let contact = |p: &Peer, id: ContactId| {
        let h = p.h().clone();
        async move {
            h.contacts()
                .await
                .expect("contacts")
                .into_iter()
                .find(|c| c.id == id)
                .expect("contact")
        }
    };
    new.h()
        .send_message(old_at_new, "from the new one")
        .await
        .expect("send");
    old.wait("the new one's message", |e| {
        matches!(e, Event::MessageReceived { message, .. } if message.text == "from the new one")
    })
    .await;
    old.h()
        .send_message(new_at_old, "from the old one")
        .await
        .expect("send");
    new.wait("the old one's message", |e| {
        matches!(e, Event::MessageReceived { message, .. } if message.text == "from the old one")
    })
    .await;
    assert_eq!(contact(&new, old_at_new).await.peer_keeps_history, None);
    assert_eq!(contact(&old, new_at_old).await.peer_keeps_history, None);

    // Two version-3 builds.
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    let told = |p: &mut Peer, id: ContactId, kept: bool| {
        let h = p.h().clone();
        async move {
            let deadline = tokio::time::Instant::now() + support::PATIENCE;
            loop {
                let c = h.contacts().await.expect("contacts");
                if c.iter()
                    .any(|c| c.id == id && c.peer_keeps_history == Some(kept))
                {
                    return;
                }
                assert!(tokio::time::Instant::now() < deadline, "never told {kept}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    told(&mut a, b_at_a, false).await;
    told(&mut b, a_at_b, false).await;
    a.h().set_history(b_at_a, true).await.expect("history on");
    b.wait(
        "the change",
        |e| matches!(e, Event::PeerHistoryChanged { contact, kept: true } if *contact == a_at_b),
    )
    .await;
    told(&mut b, a_at_b, true).await;
    a.h().set_history(b_at_a, false).await.expect("history off");
    b.wait(
        "the second change",
        |e| matches!(e, Event::PeerHistoryChanged { contact, kept: false } if *contact == a_at_b),
    )
    .await;

    // An amnesic session keeps nothing on a disk, and says so even with
    // history switched on (its lines live in memory for the session).
    let mut amnesic = Peer::start_amnesic(&net);
    let (amnesic_at_a, a_at_amnesic) = befriend(&mut a, &mut amnesic).await;
    told(&mut a, amnesic_at_a, false).await;
    amnesic
        .h()
        .set_history(a_at_amnesic, true)
        .await
        .expect("history on");
    // A marker after it on the same session: once it arrives, the
    // HISTORY before it was handled.
    amnesic
        .h()
        .send_message(a_at_amnesic, "after the switch")
        .await
        .expect("send");
    a.wait("the marker", |e| {
        matches!(e, Event::MessageReceived { message, .. } if message.text == "after the switch")
    })
    .await;
    let said_kept = a.seen.iter().any(
        |e| matches!(e, Event::PeerHistoryChanged { contact, .. } if *contact == amnesic_at_a),
    );
    assert!(!said_kept, "an amnesic session never says it keeps history");
    told(&mut a, amnesic_at_a, false).await;
}
