//! Attacks on a real engine by peers that speak the real protocol and do
//! whatever the wire allows (`tests/hostile/mod.rs`). Each test is named
//! after the review finding it closes (docs/threat-model.md, PROTOCOL.md
//! §7) and fails on the code before the fix.

mod hostile;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use allium::engine::{EngineConfig, Event};
use allium_onion::{MemoryNetwork, Transport};
use allium_protocol::message::MAX_FILE_SIZE;
use allium_protocol::{
    Chat, CloseCause, CloseReason, ContactAccept, DiscoveryKey, FileOffer, Message, TransferId,
};
use hostile::{Hostile, answer_shape, rss_bytes};
use support::{PATIENCE, Peer, befriend};

fn config() -> EngineConfig {
    support::config()
}

/// H2: with the token bucket empty, a hello claiming a contact, a pending
/// requester, a rejected or a blocked id, and one claiming a random id, get
/// the same answer: a handshake message of the same size, then the same
/// silent close when the proof never comes. Before the fix, a known id
/// skipped the bucket (handshake) while a stranger got REFUSE 4 (busy):
/// an oracle for "is X in this profile?".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_a_claimed_id_changes_nothing_before_the_proof() {
    let net = MemoryNetwork::new();
    let config = EngineConfig {
        requests_per_minute: 4,
        step_timeout: Duration::from_secs(1),
        ..config()
    };
    let mut e = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let mut friend = Peer::start(&net);
    befriend(&mut friend, &mut e).await;
    // Three more tokens: a pending, a rejected and a blocked requester.
    let mut ids = vec![friend.id()];
    for what in ["pending", "rejected", "blocked"] {
        let h = Hostile::new(&net);
        let mut raw = h.intake(e.id()).await;
        raw.queue(h.request(what));
        raw.handshake().await.expect("handshake");
        raw.closed(PATIENCE).await;
        let request = support::next_request(&mut e).await;
        match what {
            "rejected" => e.h().reject(request.id).await.expect("reject"),
            "blocked" => e.h().block(request.id).await.expect("block"),
            _ => {}
        }
        ids.push(h.id());
    }
    // The bucket is empty now: a fresh stranger's request is turned away
    // (after the proof; the code before the fix did it at the hello).
    let late = Hostile::new(&net);
    let mut raw = late.intake(e.id()).await;
    raw.queue(late.request("one too many"));
    let turned_away = match raw.handshake().await {
        Ok(_) => raw.closed(PATIENCE).await == Some(CloseCause::Peer(CloseReason::Shutdown)),
        Err(cause) => matches!(cause, Some(CloseCause::Refused(_))),
    };
    assert!(turned_away, "the bucket should be empty");
    ids.push(Hostile::new(&net).id());

    // Every probe's hello goes out before any answer is read, so that all
    // are judged with the same (empty) bucket.
    let probe = Hostile::new(&net);
    let mut probes = Vec::new();
    for claimed in &ids {
        let mut raw = probe.intake_claiming(e.id(), *claimed).await;
        raw.flush().await;
        probes.push(raw);
    }
    let mut shapes = Vec::new();
    for raw in &mut probes {
        shapes.push(answer_shape(&mut raw.stream, Duration::from_secs(10)).await);
    }
    let (first, ended) = &shapes[0];
    assert!(*ended, "the engine closed the connection");
    assert_eq!(first.len(), 1, "one frame: {first:?}");
    assert_eq!(first[0].0, 2, "a handshake frame, not a refusal: {first:?}");
    for (i, s) in shapes.iter().enumerate() {
        assert_eq!(
            s, &shapes[0],
            "claimed id #{i} (friend, pending, rejected, blocked, random) was answered differently"
        );
    }
}

/// Runs `n` strangers that open the intake and never send a byte, and `n`
/// that finish the handshake and never send a request; each dials again a
/// second after it is closed (faster than Tor's introduction points let a
/// stranger build circuits at the intake).
fn flood(net: &MemoryNetwork, target: allium_protocol::OnionId, n: usize) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    for i in 0..2 * n {
        let (net, stop) = (net.clone(), stop.clone());
        tokio::spawn(async move {
            let h = Hostile::new(&net);
            while !stop.load(Ordering::Relaxed) {
                if i % 2 == 0 {
                    let mut s = h.stream(target, None).await;
                    let _ = answer_shape(&mut s, PATIENCE).await;
                } else {
                    let mut raw = h.intake(target).await;
                    if raw.handshake().await.is_ok() {
                        raw.closed(PATIENCE).await;
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    stop
}

/// H3: 200 silent and 200 handshake-then-idle strangers, all dialling
/// again as soon as they are closed, do not keep a real request out.
/// Before the fix, 16 silent connections held the intake for the 60 s
/// handshake timeout, and newcomers were turned away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_silent_and_idle_strangers_cannot_shut_the_intake() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let asker = Peer::start(&net);
    let stop = flood(&net, e.id(), 200);
    // Let the flood fill every slot first.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = tokio::time::Instant::now();
    asker
        .h()
        .add_contact(&e.address(), "", "a real request")
        .await
        .expect("add");
    let bound = Duration::from_secs(10);
    let got = tokio::time::timeout(bound, support::next_request(&mut e)).await;
    stop.store(true, Ordering::Relaxed);
    let request = got.expect("the real request arrived within the bound");
    assert_eq!(request.greeting, "a real request");
    println!(
        "request received {:.2} s into the flood",
        started.elapsed().as_secs_f64()
    );
}

/// H3 at the speed of the network: silent strangers that open the intake
/// again the moment they are closed (on Tor, new streams on circuits they
/// already hold need no introduction) push out only each other, never a
/// requester that has said its hello or finished its handshake. Before the
/// fix, the room for each newcomer was made at random among all unfinished
/// connections (the stalest one after 2 s): with 8 slots and 400 arrivals
/// the two requesters were pushed out (a requester on the local Tor network
/// waited more than 90 s behind 40 such strangers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_silent_strangers_redialling_at_once_push_out_only_each_other() {
    const SLOTS: usize = 8;
    const ARRIVALS: usize = 400;
    let net = MemoryNetwork::new();
    let config = EngineConfig {
        max_unauthenticated: SLOTS,
        ..config()
    };
    let mut e = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let (first, second) = (Hostile::new(&net), Hostile::new(&net));
    let mut shaken = first.intake(e.id()).await;
    shaken.handshake().await.expect("handshake");
    let mut hello = second.intake(e.id()).await;
    assert!(
        hello.hello_answered(PATIENCE).await,
        "the hello was answered"
    );

    let arrivals = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (node, arrivals, target) = (net.node(), arrivals.clone(), e.id());
        tasks.push(tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let over = || arrivals.load(Ordering::Relaxed) >= ARRIVALS;
            while arrivals.fetch_add(1, Ordering::Relaxed) < ARRIVALS {
                let mut s = node.dial(target, None).await.expect("the intake is up");
                let mut b = [0u8; 64];
                // Until the engine closes it, or the flood is over.
                loop {
                    match tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await {
                        Ok(Ok(0) | Err(_)) => break,
                        Ok(Ok(_)) => panic!("a silent stranger was told something"),
                        Err(_) if over() => break,
                        Err(_) => continue,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a stranger");
    }

    // Both requesters are still there: each delivers its request now.
    shaken.queue(first.request("through the handshake"));
    assert!(
        shaken.flush().await,
        "the requester past its handshake was pushed out"
    );
    let got = tokio::time::timeout(Duration::from_secs(10), support::next_request(&mut e)).await;
    assert_eq!(
        got.expect("the request after the handshake arrived")
            .greeting,
        "through the handshake"
    );
    hello.queue(second.request("past the hello"));
    hello.handshake().await.expect("the handshake goes on");
    let got = tokio::time::timeout(Duration::from_secs(10), support::next_request(&mut e)).await;
    assert_eq!(
        got.expect("the request after the hello arrived").greeting,
        "past the hello"
    );
}

/// M1: a contact we offer a file to repeats FILE_ACCEPT 100,000 times and
/// never reads. Each repeat used to open the file again and queue another
/// mebibyte, into a queue with no bound. Now one accept counts per offer
/// and the send queue stops at its high-water mark: memory stays bounded,
/// and another contact's messages still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m1_repeated_file_accepts_do_not_grow_memory() {
    let repeats: usize = std::env::var("ALLIUM_TEST_M1_ACCEPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut friend = Peer::start(&net);
    let (e_at_friend, friend_at_e) = befriend(&mut friend, &mut e).await;
    let mut h = Hostile::new(&net);
    let (h_at_e, mut session) = h.become_contact(&mut e).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.bin");
    std::fs::write(&path, vec![7u8; 8 << 20]).expect("write");
    e.h().send_file(h_at_e, &path).await.expect("send file");
    let offer = loop {
        match session.next_message(PATIENCE).await {
            Some(Message::FileOffer(o)) => break o,
            Some(_) => continue,
            None => panic!("no offer came"),
        }
    };
    let before = rss_bytes();
    // From here on we only write.
    let accept = Message::FileAccept {
        transfer: offer.transfer,
        offset: 0,
    };
    for chunk in 0..repeats.div_ceil(1000) {
        for _ in 0..1000.min(repeats - chunk * 1000) {
            session.queue(accept.clone());
        }
        assert!(session.flush().await, "the engine stopped reading us");
        if chunk % 10 == 0 {
            friend
                .h()
                .send_message(e_at_friend, &format!("still here {chunk}"))
                .await
                .expect("send");
        }
    }
    // The other contact's last message still gets through.
    friend
        .h()
        .send_message(e_at_friend, "the last one")
        .await
        .expect("send");
    e.wait("the friend's last message", |ev| {
        matches!(ev, Event::MessageReceived { contact, message }
            if *contact == friend_at_e && message.text == "the last one")
    })
    .await;
    let grown = rss_bytes().saturating_sub(before);
    let bound = 96 << 20;
    println!(
        "{repeats} FILE_ACCEPTs: RSS grew by {:.1} MiB (bound {} MiB)",
        grown as f64 / (1 << 20) as f64,
        bound >> 20
    );
    assert!(
        grown < bound,
        "RSS grew by {grown} bytes under {repeats} repeated FILE_ACCEPTs"
    );
}

/// M2: one CHAT repeated a thousand times earns one ACK, not a thousand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_a_repeated_chat_earns_one_ack() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (_, mut session) = h.become_contact(&mut e).await;
    let chat = Message::Chat(Chat {
        id: 1,
        text: "once".into(),
    });
    session.send(chat.clone()).await;
    e.wait("the message", |ev| {
        matches!(ev, Event::MessageReceived { .. })
    })
    .await;
    for _ in 0..1000 {
        session.queue(chat.clone());
    }
    session.flush().await;
    let mut acks = 0;
    while let Some(m) = session.next_message(Duration::from_secs(2)).await {
        if matches!(m, Message::Ack { id: 1 }) {
            acks += 1;
        }
    }
    assert!(
        (1..=2).contains(&acks),
        "{acks} acknowledgements for one message sent 1,001 times"
    );
}

/// M2: a contact offering file after file that we refuse does not fill the
/// window with notices: at most ten a minute are reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_refused_offers_are_reported_at_a_bounded_rate() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (_, mut session) = h.become_contact(&mut e).await;
    e.drain();
    e.seen.clear();
    for i in 0..200u32 {
        let mut t = [0u8; 16];
        t[..4].copy_from_slice(&i.to_be_bytes());
        session.queue(Message::FileOffer(FileOffer {
            transfer: TransferId(t),
            size: MAX_FILE_SIZE,
            sha256: [1; 32],
            name: "huge.iso".into(),
        }));
    }
    session.flush().await;
    // Every one is refused on the wire.
    let mut cancels = 0;
    while let Some(m) = session.next_message(Duration::from_secs(2)).await {
        if matches!(m, Message::FileCancel { .. }) {
            cancels += 1;
        }
    }
    assert_eq!(cancels, 200, "every offer gets its refusal");
    e.drain();
    let shown = e
        .seen
        .iter()
        .filter(|ev| matches!(ev, Event::FileCancelled { .. }))
        .count();
    assert_eq!(shown, 10, "refusals shown to the person");
}

/// M2: when nobody reads the engine's events (a window that hangs, a
/// JSON-RPC client that stops reading), they do not pile up without bound:
/// the engine stops taking input, its peers wait, and once the reader is
/// back every message arrives, in order, none lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m2_unread_events_hold_the_engine_back_and_lose_nothing() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut friend = Peer::start(&net);
    let (e_at_friend, friend_at_e) = befriend(&mut friend, &mut e).await;
    e.drain();
    // Nobody reads e's events from now on.
    e.pause_reading(true);
    let n = 6000u64;
    for i in 1..=n {
        friend
            .h()
            .send_message(e_at_friend, &format!("m{i}"))
            .await
            .expect("send");
    }
    // e stops taking input once its event queue (4,096) is full: the
    // friend's messages wait with the friend, unacknowledged, instead of
    // piling up as events nobody reads.
    let mut queued = 0;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        queued = friend.h().contacts().await.expect("contacts")[0].queued;
    }
    assert!(
        queued as u64 > n - 4096,
        "only {queued} of {n} messages wait with the sender: events piled up unread"
    );
    e.pause_reading(false);
    // Back: everything arrives, in order.
    let mut next = 1;
    while next <= n {
        let ev = e
            .wait("messages", |ev| {
                matches!(ev, Event::MessageReceived { contact, .. } if *contact == friend_at_e)
            })
            .await;
        if let Event::MessageReceived { message, .. } = ev {
            assert_eq!(message.text, format!("m{next}"));
            next += 1;
        }
    }
}

/// M4: a pending requester repeating its request, and a contact repeating
/// CONTACT_ACCEPT, make us write nothing: repeats change nothing. Before
/// the fix every repeat rewrote the whole profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_repeats_write_nothing() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let h = Hostile::new(&net);
    let mut raw = h.intake(e.id()).await;
    raw.queue(h.request("same words"));
    raw.handshake().await.expect("handshake");
    raw.closed(PATIENCE).await;
    support::next_request(&mut e).await;
    settle(&e).await;
    let before = e.store.saves();
    for _ in 0..20 {
        let mut raw = h.intake(e.id()).await;
        raw.queue(h.request("same words"));
        raw.handshake().await.expect("handshake");
        // Taken as received (Normal) while its own small bucket lasts,
        // then told to come back later (Shutdown); never written.
        let closed = raw.closed(PATIENCE).await;
        assert!(
            matches!(
                closed,
                Some(CloseCause::Peer(
                    CloseReason::Normal | CloseReason::Shutdown
                ))
            ),
            "{closed:?}"
        );
    }
    settle(&e).await;
    assert_eq!(e.store.saves(), before, "identical repeats were written");

    // A contact repeating its CONTACT_ACCEPT.
    let mut c = Hostile::new(&net);
    let (_, mut session) = c.become_contact(&mut e).await;
    settle(&e).await;
    let before = e.store.saves();
    let accept = Message::ContactAccept(ContactAccept {
        endpoint: c.local.endpoint,
        discovery_key: DiscoveryKey([9; 32]),
    });
    session.send(accept.clone()).await;
    settle(&e).await;
    let after_first = e.store.saves();
    for _ in 0..50 {
        session.queue(accept.clone());
    }
    session.flush().await;
    settle(&e).await;
    assert!(
        after_first <= before + 1,
        "the first one may change the key"
    );
    assert_eq!(e.store.saves(), after_first, "repeats were written");
}

/// Waits until the engine has nothing left to save.
async fn settle(e: &Peer) {
    let mut last = e.store.saves();
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = e.store.saves();
        if now == last {
            return;
        }
        last = now;
    }
}

/// L5: an acknowledgement of a message we have not yet written to the
/// session (its save is slow) is not taken as delivery: the message still
/// goes out. Before the fix the ack was clamped only to the ids handed out,
/// and the message was dropped as delivered without ever being sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l5_an_ack_for_what_was_never_sent_is_ignored() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (h_at_e, mut session) = h.become_contact(&mut e).await;
    e.set_save_delay(Duration::from_millis(800));
    let id = e
        .h()
        .send_message(h_at_e, "for your eyes")
        .await
        .expect("send");
    // Before the save is done (and so before it is sent), claim it.
    session.send(Message::Ack { id }).await;
    let got = session.next_chat(PATIENCE).await.expect("the message came");
    assert_eq!((got.id, got.text.as_str()), (id, "for your eyes"));
}

/// L5: a CONTACT_ACCEPT must name the sender's own endpoint: one naming
/// ours (or the sender's intake) is a protocol violation, and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l5_a_contact_accept_naming_our_own_endpoint_is_refused() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (_, mut session) = h.become_contact(&mut e).await;
    settle(&e).await;
    let before = e.store.saved().expect("saved").contacts[0].their_endpoint;
    session
        .send(Message::ContactAccept(ContactAccept {
            endpoint: e.endpoint(),
            discovery_key: DiscoveryKey([3; 32]),
        }))
        .await;
    assert_eq!(
        session.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::ProtocolViolation))
    );
    settle(&e).await;
    let after = e.store.saved().expect("saved").contacts[0].their_endpoint;
    assert_eq!(before, after, "the contact's endpoint was replaced");
}

/// L3: a `.part` file left by a crash in an earlier run (whose transfer
/// state went with it) does not block accepting the same transfer again;
/// the file that is placed is what reached the disk, checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l3_a_partial_file_left_by_a_crash_does_not_block_the_transfer() {
    use allium_protocol::FileChunk;
    use sha2::{Digest, Sha256};
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (_, mut session) = h.become_contact(&mut e).await;
    let data = b"the real contents\n".repeat(2000);
    let transfer = TransferId([5; 16]);
    session
        .send(Message::FileOffer(FileOffer {
            transfer,
            size: data.len() as u64,
            sha256: Sha256::digest(&data).into(),
            name: "report.txt".into(),
        }))
        .await;
    e.wait("the offer", |ev| matches!(ev, Event::FileOffered { .. }))
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let stale = dir.path().join(format!(".allium-{}.part", "05".repeat(16)));
    std::fs::write(&stale, b"half a file from before the crash").expect("write");
    e.h()
        .accept_file(&"05".repeat(16), dir.path())
        .await
        .expect("accepted despite the stale partial file");
    loop {
        match session.next_message(PATIENCE).await {
            Some(Message::FileAccept { offset: 0, .. }) => break,
            Some(_) => continue,
            None => panic!("no FILE_ACCEPT"),
        }
    }
    session
        .send(Message::FileChunk(FileChunk {
            transfer,
            offset: 0,
            data: data.clone(),
        }))
        .await;
    let done = e
        .wait("completed", |ev| matches!(ev, Event::FileCompleted { .. }))
        .await;
    let Event::FileCompleted {
        path: Some(path), ..
    } = done
    else {
        panic!("no path: {done:?}")
    };
    assert_eq!(path, dir.path().join("report.txt"));
    assert_eq!(std::fs::read(&path).expect("read"), data);
    assert!(!stale.exists(), "the partial file is gone");
}

/// M4: a contact with history on, sending as fast as it can, makes us save
/// the profile at most once per `min_save_interval`; what arrives in
/// between shares the next save. Before the fix every message was a save.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m4_a_fast_contact_cannot_make_us_save_faster_than_the_bound() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let interval = e.config.min_save_interval;
    let mut h = Hostile::new(&net);
    let (h_at_e, mut session) = h.become_contact(&mut e).await;
    e.h().set_history(h_at_e, true).await.expect("history on");
    settle(&e).await;
    let before = e.store.saves();
    let started = tokio::time::Instant::now();
    // One message every 5 ms: each could be a save of its own.
    const N: u64 = 300;
    for id in 1..=N {
        session
            .send(Message::Chat(Chat {
                id,
                text: format!("line {id}"),
            }))
            .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    e.wait(
        "the last message",
        |ev| matches!(ev, Event::MessageReceived { message, .. } if message.id == N),
    )
    .await;
    settle(&e).await;
    let elapsed = started.elapsed();
    let saves = e.store.saves() - before;
    let bound = (elapsed.as_secs_f64() / interval.as_secs_f64()).ceil() as u64 + 1;
    println!(
        "{N} messages with history on: {saves} saves in {:.2} s (bound {bound})",
        elapsed.as_secs_f64()
    );
    assert!(
        saves <= bound,
        "{saves} saves for {N} messages in {elapsed:?}: more than one per {interval:?}"
    );
    let kept = e.h().conversation(h_at_e).await.expect("conversation");
    assert_eq!(kept.len() as u64, N, "every line is in the history");
}

/// Review of the fix, H3/M4: one proven requester (here a blocked one)
/// asking again and again cannot keep the shared token bucket empty for
/// everyone else: each identity takes at most one token a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h3_one_requester_asking_again_and_again_cannot_drain_the_bucket() {
    let net = MemoryNetwork::new();
    // Six tokens: the pest's own bucket holds three of them at most.
    let config = EngineConfig {
        requests_per_minute: 6,
        ..config()
    };
    let mut e = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let pest = Hostile::new(&net);
    let mut raw = pest.intake(e.id()).await;
    raw.queue(pest.request("let me in"));
    raw.handshake().await.expect("handshake");
    raw.closed(PATIENCE).await;
    let request = support::next_request(&mut e).await;
    e.h().block(request.id).await.expect("block");
    for _ in 0..20 {
        let mut raw = pest.intake(e.id()).await;
        raw.queue(pest.request("let me in"));
        if raw.handshake().await.is_ok() {
            raw.closed(PATIENCE).await;
        }
    }
    // Three of the six tokens are still there for real requesters.
    for i in 0..3 {
        let asker = Peer::start(&net);
        asker
            .h()
            .add_contact(&e.address(), "", &format!("real {i}"))
            .await
            .expect("add");
        let got = support::next_request(&mut e).await;
        assert_eq!(got.greeting, format!("real {i}"));
    }
}

/// Review of the fix, M3: a SYNC whose values no conversation can reach
/// (here `last = u64::MAX`, which would overflow our ids when we renumber)
/// is a protocol violation, not a panic; the engine goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn m3_an_impossible_sync_closes_the_session_and_nothing_else() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (h_at_e, session) = h.become_contact(&mut e).await;
    drop(session);
    // A new run: the next SYNC from h is the first, which is the one that
    // can renumber.
    e.restart().await;
    e.h().send_message(h_at_e, "queued").await.expect("send");
    let peer_static = h.target_static.expect("proved at the intake");
    let mut session = h.accept_endpoint(peer_static).await;
    // Its CONTACT_ACCEPT again (we never confirmed it), then its SYNC.
    loop {
        match session.next_message(PATIENCE).await {
            Some(Message::Sync { .. }) => break,
            Some(Message::ContactAccept(_)) => continue,
            other => panic!("expected SYNC, got {other:?}"),
        }
    }
    session
        .send(Message::Sync {
            resend_from: 1,
            last: u64::MAX,
        })
        .await;
    assert_eq!(
        session.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::ProtocolViolation))
    );
    let c = e.h().contacts().await.expect("the engine still answers");
    assert_eq!(c[0].queued, 1, "the queued message is still there");
}

/// L4: strangers at the intake cannot push a contact's hello out of the
/// endpoint's replay memory: the two services remember separately. A
/// recorded endpoint hello, replayed after strangers filled the intake's
/// memory five times over, is still refused without a word. (Both
/// memories are made small here; the default is 65,536 keys each.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn l4_strangers_cannot_flush_the_endpoints_replay_memory() {
    let net = MemoryNetwork::new();
    let config = EngineConfig {
        replay_keys: 8,
        ..config()
    };
    let mut e = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let mut h = Hostile::new(&net);
    let (_, session) = h.become_contact(&mut e).await;
    drop(session);
    let (mut first, hello) = h.endpoint_hello().await;
    let (answer, _) = answer_shape(&mut first, Duration::from_secs(2)).await;
    assert_eq!(
        answer.first().map(|f| f.0),
        Some(2),
        "the genuine hello is answered"
    );
    drop(first);
    for _ in 0..40 {
        let s = Hostile::new(&net);
        let mut raw = s.intake(e.id()).await;
        raw.handshake().await.expect("a stranger's handshake");
    }
    let (endpoint, key) = h.target_endpoint.clone().expect("accepted");
    let mut again = h.stream(endpoint, Some(&key)).await;
    use tokio::io::AsyncWriteExt;
    again.write_all(&hello).await.expect("write");
    let (answer, ended) = answer_shape(&mut again, Duration::from_secs(10)).await;
    assert!(ended, "the replay is closed");
    assert!(answer.is_empty(), "the replay got an answer: {answer:?}");
}

// ----- the contact flow of PROTOCOL.md §8 (issue 13) -------------------

/// §8 step 2: "received" (CLOSE 0 on the intake) is a promise the request
/// will be there after a crash, so it goes out only once the request is on
/// disk. Before the fix it went out in the same step the request arrived,
/// while the save was still to come.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_request_is_received_only_once_it_is_on_disk() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    settle(&e).await;
    e.set_save_delay(Duration::from_millis(800));
    let h = Hostile::new(&net);
    let mut intake = h.intake(e.id()).await;
    intake.queue(h.request("are you there?"));
    intake.handshake().await.expect("handshake");
    assert_eq!(
        intake.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::Normal))
    );
    let saved = e.store.saved().expect("saved");
    assert!(
        saved
            .contacts
            .iter()
            .any(|c| c.intake.0 == *h.id().as_bytes()),
        "CLOSE 0 came before the request was saved"
    );
}

/// §8 step 2: a disk that cannot take the request within a step gets the
/// requester "try again" (CLOSE 3), never "received".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_disk_too_slow_for_the_request_says_try_again() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start_with(
        &net,
        allium_vault::Profile::new(support::keys()),
        EngineConfig {
            step_timeout: Duration::from_millis(700),
            ..config()
        },
    );
    settle(&e).await;
    e.set_save_delay(Duration::from_secs(4));
    let h = Hostile::new(&net);
    let mut intake = h.intake(e.id()).await;
    intake.queue(h.request("are you there?"));
    intake.handshake().await.expect("handshake");
    assert_eq!(
        intake.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::Shutdown))
    );
}

/// The engine as requester, with the hostile peer at the far intake: the
/// request it receives (our endpoint and the discovery key for it) and the
/// requester's static key.
async fn requested_by(
    e: &mut Peer,
    h: &mut Hostile,
) -> (
    allium_vault::ContactId,
    hostile::Raw,
    allium_protocol::ContactRequest,
    allium_protocol::StaticPublicKey,
) {
    h.publish_intake().await;
    let id = e
        .h()
        .add_contact(&h.id().to_address(), "h", "hello")
        .await
        .expect("add");
    let (mut intake, their_static) = h.accept_intake().await;
    let req = match intake.next_message(PATIENCE).await {
        Some(Message::ContactRequest(r)) => r,
        other => panic!("expected the request, got {other:?}"),
    };
    (id, intake, req, their_static)
}

/// §6.6: an unknown close code is a normal close, so after the request it
/// means "received" like CLOSE 0. Before the fix the engine took it for a
/// failure and sent the request again and again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_an_unknown_close_code_after_the_request_is_a_receipt() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (id, mut intake, _, _) = requested_by(&mut e, &mut h).await;
    intake
        .session
        .close(std::time::Instant::now(), CloseReason::Other(77));
    intake.flush().await;
    e.wait(
        "the request delivered",
        |ev| matches!(ev, Event::RequestDelivered { contact } if *contact == id),
    )
    .await;
}

/// §8 step 2: a responder that keeps the intake session open without
/// answering holds our request only a while: the engine gives up on that
/// session and asks again on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_silent_responder_does_not_hold_the_request() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start_with(
        &net,
        allium_vault::Profile::new(support::keys()),
        EngineConfig {
            step_timeout: Duration::from_millis(500),
            ..config()
        },
    );
    let mut h = Hostile::new(&net);
    let (_, mut first, _, _) = requested_by(&mut e, &mut h).await;
    // Keep the session alive, never answer.
    let keep = tokio::spawn(async move {
        loop {
            if !first.send(Message::Keepalive).await {
                return first;
            }
            if first.closed(Duration::from_millis(200)).await.is_some() {
                return first;
            }
        }
    });
    let (mut again, _) = h.accept_intake().await;
    assert!(matches!(
        again.next_message(PATIENCE).await,
        Some(Message::ContactRequest(_))
    ));
    let first = keep.await.expect("keepalive task");
    drop(first);
}

/// §8 step 3: until the answer comes, the contact's first message on an
/// endpoint session is that answer. A peer that skips it (here: opens with
/// SYNC, as if already a contact) breaks the protocol and changes nothing.
/// Before the fix the engine took the session as a contact's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_pending_contact_must_answer_first() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (id, mut intake, req, their_static) = requested_by(&mut e, &mut h).await;
    intake
        .session
        .close(std::time::Instant::now(), CloseReason::Normal);
    intake.flush().await;
    e.wait(
        "the request delivered",
        |ev| matches!(ev, Event::RequestDelivered { contact } if *contact == id),
    )
    .await;
    // Admitted: the request is pending.
    let mut raw = h
        .dial_endpoint(req.endpoint, their_static, &req.discovery_key)
        .await;
    assert_eq!(
        raw.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::ProtocolViolation))
    );
    let c = e.h().contacts().await.expect("contacts");
    let c = c.iter().find(|c| c.id == id).expect("still there");
    assert!(!c.online, "not taken for a contact's session");
    settle(&e).await;
    let saved = e.store.saved().expect("saved");
    let on_disk = saved
        .contacts
        .iter()
        .find(|c| c.intake.0 == *h.id().as_bytes())
        .expect("the request is saved");
    assert_eq!(on_disk.state, allium_vault::ContactState::OutgoingPending);
}

/// §8 step 4: once a contact's endpoint is known, a CONTACT_ACCEPT naming
/// another is refused and changes nothing (a thief of the contact's static
/// key would otherwise redirect our messages to itself); one that names
/// the same endpoint with a new discovery key is a re-issue and is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_an_accepted_contact_cannot_move_its_endpoint() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (_, mut session) = h.become_contact(&mut e).await;
    settle(&e).await;
    let before = e.store.saved().expect("saved").contacts[0].their_endpoint;
    // A re-issued key for the same endpoint: taken, the session stays.
    let reissued = DiscoveryKey::generate(&mut rand_core::OsRng);
    session
        .send(Message::ContactAccept(ContactAccept {
            endpoint: h.local.endpoint,
            discovery_key: DiscoveryKey(reissued.0),
        }))
        .await;
    settle(&e).await;
    let saved = e.store.saved().expect("saved");
    assert_eq!(
        saved.contacts[0].their_discovery_key.as_ref().map(|k| k.0),
        Some(reissued.0)
    );
    // Another endpoint: refused.
    let elsewhere = allium_protocol::IdentityKey::generate(&mut rand_core::OsRng).onion_id();
    session
        .send(Message::ContactAccept(ContactAccept {
            endpoint: elsewhere,
            discovery_key: DiscoveryKey([4; 32]),
        }))
        .await;
    assert_eq!(
        session.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::ProtocolViolation))
    );
    settle(&e).await;
    let after = e.store.saved().expect("saved").contacts[0].clone();
    assert_eq!(after.their_endpoint, before, "the endpoint moved");
    assert_eq!(
        after.their_discovery_key.as_ref().map(|k| k.0),
        Some(reissued.0)
    );
}

/// A second session to the engine's endpoint, dialled by `h` (IK, with a
/// SYNC as its early message), established.
async fn second_session(h: &Hostile) -> hostile::Raw {
    let (endpoint, key) = h.target_endpoint.as_ref().expect("accepted");
    h.dial_endpoint(
        *endpoint,
        h.target_static.expect("proved at the intake"),
        key,
    )
    .await
}

/// A stranger whose intake id is below (or above) the engine's.
fn hostile_ordered(net: &MemoryNetwork, e: &Peer, below: bool) -> Hostile {
    loop {
        let h = Hostile::new(net);
        if (h.id().as_bytes() < e.id().as_bytes()) == below {
            return h;
        }
    }
}

/// §6.8: of two sessions dialled by different sides, the one dialled by the
/// side with the lower intake id survives, however old the other is; the
/// loser gets CLOSE 4 and the engine's messages go on the survivor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_8_the_session_dialled_by_the_lower_intake_id_survives() {
    for h_lower in [false, true] {
        let net = MemoryNetwork::new();
        let mut e = Peer::start(&net);
        let mut h = hostile_ordered(&net, &e, h_lower);
        // The engine dialled this one (become_contact).
        let (h_at_e, mut dialled_by_e) = h.become_contact(&mut e).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut dialled_by_h = second_session(&h).await;
        let (survivor, loser) = if h_lower {
            (&mut dialled_by_h, &mut dialled_by_e)
        } else {
            (&mut dialled_by_e, &mut dialled_by_h)
        };
        assert_eq!(
            loser.closed(PATIENCE).await,
            Some(CloseCause::Peer(CloseReason::Replaced)),
            "h lower: {h_lower}"
        );
        let id = e
            .h()
            .send_message(h_at_e, "on the survivor")
            .await
            .expect("send");
        let got = survivor
            .next_chat(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("h lower: {h_lower}: the survivor carried nothing"));
        assert_eq!((got.id, got.text.as_str()), (id, "on the survivor"));
    }
}

/// §8 step 5: removing a contact revokes its discovery key first and then
/// closes its live session with CLOSE 5; its next dial finds nothing it is
/// allowed to reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_removal_closes_with_5_and_revokes_the_key() {
    let net = MemoryNetwork::new();
    let mut e = Peer::start(&net);
    let mut h = Hostile::new(&net);
    let (h_at_e, mut session) = h.become_contact(&mut e).await;
    e.h().remove(h_at_e).await.expect("remove");
    assert_eq!(
        session.closed(PATIENCE).await,
        Some(CloseCause::Peer(CloseReason::NotAContact))
    );
    let (endpoint, key) = h.target_endpoint.as_ref().expect("accepted");
    assert_eq!(
        net.node().dial(*endpoint, Some(key)).await.err(),
        Some(allium_onion::DialError::NotAuthorized)
    );
}

/// §7.7 with §8 step 2: a blocked requester gets its receipt no sooner than
/// a stranger whose request had to be stored, so the wait does not tell it
/// that it is blocked. (A lower bound only: nothing here depends on how
/// fast the machine is.) Before the fix a blocked requester's CLOSE 0 came
/// at once, while a stored one waited for the disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s8_a_blocked_requester_waits_as_long_as_a_stored_one() {
    let delay = Duration::from_millis(1500);
    let net = MemoryNetwork::new();
    let mut e = Peer::start_with(
        &net,
        allium_vault::Profile::new(support::keys()),
        EngineConfig {
            receipt_delay: delay,
            ..config()
        },
    );
    let h = Hostile::new(&net);
    let (closed, waited) = timed_request(&h, e.id(), "first").await;
    assert_eq!(closed, Some(CloseCause::Peer(CloseReason::Normal)));
    assert!(waited >= delay, "a stored request: {waited:?}");
    let request = support::next_request(&mut e).await;
    e.h().block(request.id).await.expect("block");
    let (closed, waited) = timed_request(&h, e.id(), "let me in after all").await;
    assert_eq!(closed, Some(CloseCause::Peer(CloseReason::Normal)));
    assert!(waited >= delay, "a blocked requester: {waited:?}");
}

/// Sends a request to `target`'s intake: how the session ended, and how
/// long after the handshake.
async fn timed_request(
    h: &Hostile,
    target: allium_protocol::OnionId,
    greeting: &str,
) -> (Option<CloseCause>, Duration) {
    let mut intake = h.intake(target).await;
    intake.queue(h.request(greeting));
    intake.handshake().await.expect("handshake");
    let started = tokio::time::Instant::now();
    let closed = intake.closed(PATIENCE).await;
    (closed, started.elapsed())
}
