//! File transfer between engines, and hostile file traffic from a peer
//! that speaks the protocol by hand.

mod support;

use std::time::{Duration, Instant};

use allium::engine::{Event, TransferDirection};
use allium_onion::{Connection, Fault, MemoryNetwork, Transport};
use allium_protocol::{
    CancelReason, Event as SessionEvent, FileChunk, FileOffer, IdentityKey, LocalIdentity, Message,
    Session, SessionConfig, StaticKeypair, TransferId,
};
use allium_vault::{Contact, ContactId, ContactState, Profile, Public32, Secret32};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use support::{Peer, befriend};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn random_bytes(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    OsRng.fill_bytes(&mut v);
    v
}

async fn completed(p: &mut Peer) -> (allium::engine::TransferView, Option<std::path::PathBuf>) {
    let ev = p
        .wait("completion", |e| {
            matches!(e, Event::FileCompleted { .. } | Event::FileCancelled { .. })
        })
        .await;
    match ev {
        Event::FileCompleted { transfer, path } => (transfer, path),
        other => panic!("cancelled instead: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_mebibyte_file_arrives_intact_and_resumes_after_drops() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, _) = befriend(&mut a, &mut b).await;
    let src = tempfile::tempdir().expect("tmp");
    let dst = tempfile::tempdir().expect("tmp");
    let data = random_bytes(5 << 20);
    let path = src.path().join("report.pdf");
    std::fs::write(&path, &data).expect("write");

    // Every session A opens breaks after 2 MiB, and B cannot dial A: the
    // file only arrives if each new session resumes where the last stopped.
    net.set_fault(b.endpoint(), Some(Fault::DropAfter(2 << 20)));
    net.set_fault(a.endpoint(), Some(Fault::Refuse));
    let (sa, sb) = tokio::join!(a.go_offline(), b.go_offline());
    tokio::join!(a.come_back(sa), b.come_back(sb));
    support::wait_online(&mut a, b_at_a).await;

    let t = a.h().send_file(b_at_a, &path).await.expect("offer");
    let ev = b
        .wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    let Event::FileOffered { transfer } = ev else {
        unreachable!()
    };
    assert_eq!(
        (transfer.id.as_str(), transfer.name.as_str(), transfer.size),
        (t.as_str(), "report.pdf", 5 << 20)
    );
    assert_eq!(transfer.direction, TransferDirection::Incoming);
    b.h().accept_file(&t, dst.path()).await.expect("accept");

    let mut last_done = 0;
    let (view, placed) = loop {
        let ev = b
            .wait("progress", |e| {
                matches!(
                    e,
                    Event::FileProgress { .. }
                        | Event::FileCompleted { .. }
                        | Event::FileCancelled { .. }
                )
            })
            .await;
        match ev {
            Event::FileProgress { transfer, .. } => {
                assert!(
                    transfer.done >= last_done,
                    "progress went backwards: a restart, not a resume"
                );
                last_done = transfer.done;
            }
            Event::FileCompleted { transfer, path } => break (transfer, path),
            other => panic!("{other:?}"),
        }
    };
    assert!(net.dial_count() >= 3, "the drops happened");
    let placed = placed.expect("a path");
    assert_eq!(placed, dst.path().join("report.pdf"));
    assert_eq!(view.done, 5 << 20);
    let got = std::fs::read(&placed).expect("read");
    assert!(
        Sha256::digest(&got) == Sha256::digest(&data),
        "content differs"
    );
    // Nothing else in the folder (the partial file is gone).
    assert_eq!(std::fs::read_dir(dst.path()).expect("dir").count(), 1);
    let (sent, _) = completed(&mut a).await;
    assert_eq!(sent.direction, TransferDirection::Outgoing);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn either_side_can_cancel() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, _) = befriend(&mut a, &mut b).await;
    let src = tempfile::tempdir().expect("tmp");
    let dst = tempfile::tempdir().expect("tmp");
    let path = src.path().join("x.bin");
    std::fs::write(&path, random_bytes(3 << 20)).expect("write");

    // The receiver declines.
    let t = a.h().send_file(b_at_a, &path).await.expect("offer");
    b.wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    b.h().cancel_file(&t).await.expect("decline");
    let ev = a
        .wait("cancel", |e| matches!(e, Event::FileCancelled { .. }))
        .await;
    let Event::FileCancelled { cancelled, .. } = ev else {
        unreachable!()
    };
    assert!(cancelled.by_peer);
    assert_eq!(cancelled.reason, "declined or cancelled");

    // The sender cancels while the data flows (its cancel is applied before
    // the receiver's acceptance even reaches it: nothing is sent after).
    let t = a.h().send_file(b_at_a, &path).await.expect("offer");
    b.wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    b.h().accept_file(&t, dst.path()).await.expect("accept");
    a.h().cancel_file(&t).await.expect("cancel");
    let ev = b
        .wait("cancel", |e| {
            matches!(e, Event::FileCancelled { .. } | Event::FileCompleted { .. })
        })
        .await;
    let Event::FileCancelled { cancelled, .. } = ev else {
        panic!("{ev:?}")
    };
    assert!(cancelled.by_peer);
    // The partial file is gone.
    assert_eq!(std::fs::read_dir(dst.path()).expect("dir").count(), 0);
    assert_eq!(
        a.h().cancel_file(&t).await,
        Err(allium::engine::EngineError::NoSuchTransfer)
    );
}

/// A contact that speaks the protocol by hand, to send what an honest
/// engine never would.
struct Raw {
    session: Session,
    stream: Connection,
    buf: Vec<u8>,
}

impl Raw {
    async fn flush(&mut self) {
        while let Some(b) = self.session.poll_transmit() {
            self.stream.write_all(&b).await.expect("write");
        }
        self.stream.flush().await.expect("flush");
    }

    async fn send(&mut self, m: Message) {
        self.session.send(Instant::now(), m).expect("send");
        self.flush().await;
    }

    /// The next application message from the engine (keepalives and its
    /// SYNC skipped).
    async fn next(&mut self) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + support::PATIENCE;
        loop {
            self.flush().await;
            while let Some(ev) = self.session.poll_event() {
                match ev {
                    SessionEvent::Message(
                        Message::Keepalive | Message::Sync { .. } | Message::History { .. },
                    ) => {}
                    SessionEvent::Message(m) => return Some(m),
                    SessionEvent::Closed(_) => return None,
                    _ => {}
                }
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut self.buf))
                .await
                .expect("engine said nothing")
                .expect("read");
            if n == 0 {
                self.session.handle_eof();
            } else {
                let _ = self.session.handle_bytes(Instant::now(), &self.buf[..n]);
            }
        }
    }

    async fn expect_cancel(&mut self, t: TransferId) -> CancelReason {
        loop {
            match self.next().await {
                Some(Message::FileCancel { transfer, reason }) if transfer == t => return reason,
                Some(_) => continue,
                None => panic!("closed before the cancel"),
            }
        }
    }
}

/// Starts an engine (returned) that has `Raw` as an accepted contact, and
/// connects the raw contact to it.
async fn engine_with_raw_contact(net: &MemoryNetwork, max_file: u64) -> (Peer, ContactId, Raw) {
    engine_with_raw_contact_config(net, max_file, support::config()).await
}

async fn engine_with_raw_contact_config(
    net: &MemoryNetwork,
    max_file: u64,
    config: allium::engine::EngineConfig,
) -> (Peer, ContactId, Raw) {
    let raw_keys = support::keys();
    let raw_identity = IdentityKey::from_seed(&raw_keys.intake_seed.0);
    let raw_endpoint = IdentityKey::from_seed(&raw_keys.endpoint_seed.0);
    let raw_static = StaticKeypair::from_secret(&raw_keys.static_secret.0);
    let engine_keys = support::keys();
    let engine_static = StaticKeypair::from_secret(&engine_keys.static_secret.0).public();
    let engine_endpoint = IdentityKey::from_seed(&engine_keys.endpoint_seed.0).onion_id();
    let mut profile = Profile::new(engine_keys);
    profile.settings.max_incoming_file = max_file;
    let discovery = [7u8; 32];
    let id = profile.allocate_contact_id();
    profile.contacts.push(Contact {
        id,
        intake: Public32(*raw_identity.onion_id().as_bytes()),
        nickname: "raw".into(),
        state: ContactState::Accepted,
        greeting: String::new(),
        suggested_nickname: String::new(),
        request_delivered: true,
        accept_pending: false,
        their_static: Some(Public32(raw_static.public().0)),
        // Not published: the engine's own dials find nothing.
        their_endpoint: Some(Public32(*raw_endpoint.onion_id().as_bytes())),
        their_discovery_key: Some(Secret32([9u8; 32])),
        our_discovery_key: Secret32(discovery),
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
    let mut peer = Peer::start_with(net, profile, config);
    let local = LocalIdentity {
        identity: raw_identity,
        endpoint: raw_endpoint.onion_id(),
        static_key: raw_static,
    };
    let t = net.node();
    let key = allium_protocol::DiscoveryKey(discovery);
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    let stream = loop {
        match t.dial(engine_endpoint, Some(&key)).await {
            Ok(s) => break s,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await
            }
            Err(e) => panic!("dial: {e}"),
        }
    };
    let session = Session::connect_endpoint(
        SessionConfig::default(),
        &local,
        engine_endpoint,
        engine_static,
        Instant::now(),
        &mut OsRng,
    )
    .expect("session");
    let mut raw = Raw {
        session,
        stream,
        buf: vec![0u8; 70_000],
    };
    // Where we stand (PROTOCOL.md §6.3), as the hello's early message.
    raw.session
        .send(
            Instant::now(),
            Message::Sync {
                resend_from: 1,
                last: 0,
            },
        )
        .expect("sync");
    raw.flush().await;
    support::wait_online(&mut peer, id).await;
    (peer, id, raw)
}

fn offer(size: u64, name: &str, data_for_digest: &[u8]) -> FileOffer {
    let mut t = [0u8; 16];
    OsRng.fill_bytes(&mut t);
    FileOffer {
        transfer: TransferId(t),
        size,
        sha256: Sha256::digest(data_for_digest).into(),
        name: name.into(),
    }
}

/// The raw contact offers `o`, and the engine's person accepts it into `dir`.
async fn offer_accepted(raw: &mut Raw, peer: &mut Peer, dir: &std::path::Path, o: &FileOffer) {
    raw.send(Message::FileOffer(o.clone())).await;
    peer.wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    peer.h()
        .accept_file(&hex::encode(o.transfer.0), dir)
        .await
        .expect("accept");
}

/// Sends one chunk of `o` and returns why the engine cancelled.
async fn cancel_after_chunk(
    raw: &mut Raw,
    o: &FileOffer,
    offset: u64,
    data: &[u8],
) -> CancelReason {
    raw.send(Message::FileChunk(FileChunk {
        transfer: o.transfer,
        offset,
        data: data.to_vec(),
    }))
    .await;
    raw.expect_cancel(o.transfer).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_file_offers_are_refused_with_the_right_reason() {
    let net = MemoryNetwork::new();
    let (mut peer, raw_id, mut raw) = engine_with_raw_contact(&net, 1 << 20).await;
    let dir = tempfile::tempdir().expect("tmp");

    // Larger than the receiver's cap.
    let big = offer(2 << 20, "big.iso", b"");
    raw.send(Message::FileOffer(big.clone())).await;
    assert_eq!(
        raw.expect_cancel(big.transfer).await,
        CancelReason::TooLarge
    );
    let ev = peer
        .wait("refusal", |e| matches!(e, Event::FileCancelled { .. }))
        .await;
    let Event::FileCancelled { cancelled, .. } = ev else {
        unreachable!()
    };
    assert!(
        cancelled.reason.contains("larger than your limit"),
        "{}",
        cancelled.reason
    );

    // Data before anyone accepted.
    let data = b"hello world".to_vec();
    let early = offer(data.len() as u64, "a.txt", &data);
    raw.send(Message::FileOffer(early.clone())).await;
    peer.wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    raw.send(Message::FileChunk(FileChunk {
        transfer: early.transfer,
        offset: 0,
        data: data.clone(),
    }))
    .await;
    assert_eq!(
        raw.expect_cancel(early.transfer).await,
        CancelReason::Protocol
    );

    // A chunk at the wrong offset, after an accept.
    let skip = offer(data.len() as u64, "b.txt", &data);
    offer_accepted(&mut raw, &mut peer, dir.path(), &skip).await;
    assert_eq!(
        cancel_after_chunk(&mut raw, &skip, 3, &data).await,
        CancelReason::Protocol
    );

    // More data than offered.
    let over = offer(4, "c.txt", b"abcd");
    offer_accepted(&mut raw, &mut peer, dir.path(), &over).await;
    assert_eq!(
        cancel_after_chunk(&mut raw, &over, 0, &data).await,
        CancelReason::Protocol
    );

    // The digest does not match what arrived.
    let lie = offer(data.len() as u64, "d.txt", b"something else");
    offer_accepted(&mut raw, &mut peer, dir.path(), &lie).await;
    assert_eq!(
        cancel_after_chunk(&mut raw, &lie, 0, &data).await,
        CancelReason::DigestMismatch
    );

    // None of these left a file behind.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);

    // A hidden-file name is made visible and an existing file is kept.
    std::fs::write(dir.path().join("bashrc"), b"mine").expect("write");
    let sneaky = offer(data.len() as u64, "..bashrc", &data);
    raw.send(Message::FileOffer(sneaky.clone())).await;
    let ev = peer
        .wait("offer", |e| matches!(e, Event::FileOffered { .. }))
        .await;
    let Event::FileOffered { transfer } = ev else {
        unreachable!()
    };
    assert_eq!(transfer.name, "bashrc");
    peer.h()
        .accept_file(&transfer.id, dir.path())
        .await
        .expect("accept");
    raw.send(Message::FileChunk(FileChunk {
        transfer: sneaky.transfer,
        offset: 0,
        data: data.clone(),
    }))
    .await;
    let (_, placed) = completed(&mut peer).await;
    assert_eq!(placed, Some(dir.path().join("bashrc (1)")));
    assert_eq!(
        std::fs::read(dir.path().join("bashrc")).expect("read"),
        b"mine"
    );
    assert_eq!(
        std::fs::read(dir.path().join("bashrc (1)")).expect("read"),
        data
    );

    // Too many offers waiting at once.
    let cap = support::config().max_pending_offers;
    let mut offers = Vec::new();
    for i in 0..=cap {
        let o = offer(data.len() as u64, &format!("f{i}"), &data);
        raw.send(Message::FileOffer(o.clone())).await;
        offers.push(o);
    }
    let last = offers.last().expect("offers").transfer;
    assert_eq!(raw.expect_cancel(last).await, CancelReason::Protocol);
    let _ = raw_id;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_lies_about_progress_is_cut_off() {
    let net = MemoryNetwork::new();
    let (peer, raw_id, mut raw) = engine_with_raw_contact(&net, 1 << 20).await;
    let src = tempfile::tempdir().expect("tmp");
    let path = src.path().join("p.bin");
    std::fs::write(&path, random_bytes(3 << 20)).expect("write");

    // Accepting from beyond the end.
    let t = peer.h().send_file(raw_id, &path).await.expect("offer");
    let Some(Message::FileOffer(o)) = raw.next().await else {
        panic!("no offer")
    };
    assert_eq!(hex::encode(o.transfer.0), t);
    raw.send(Message::FileAccept {
        transfer: o.transfer,
        offset: o.size + 1,
    })
    .await;
    assert_eq!(raw.expect_cancel(o.transfer).await, CancelReason::Protocol);

    // Acknowledging more than was sent.
    let t = peer.h().send_file(raw_id, &path).await.expect("offer");
    let Some(Message::FileOffer(o)) = raw.next().await else {
        panic!("no offer")
    };
    assert_eq!(hex::encode(o.transfer.0), t);
    raw.send(Message::FileAccept {
        transfer: o.transfer,
        offset: 0,
    })
    .await;
    // The window: 1 MiB in flight, then the sender waits.
    let mut got = 0u64;
    while got < 1 << 20 {
        match raw.next().await {
            Some(Message::FileChunk(c)) => {
                assert_eq!(c.offset, got);
                got += c.data.len() as u64;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(
        got <= (1 << 20) + 64 * 1024,
        "more than a window in flight: {got}"
    );
    raw.send(Message::FileAck {
        transfer: o.transfer,
        received: o.size,
    })
    .await;
    assert_eq!(raw.expect_cancel(o.transfer).await, CancelReason::Protocol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_goes_offline_when_a_contact_falls_silent() {
    let net = MemoryNetwork::new();
    let config = allium::engine::EngineConfig {
        session: SessionConfig {
            handshake_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_millis(800),
            keepalive_interval: Duration::from_millis(200),
            ..SessionConfig::default()
        },
        ..support::config()
    };
    let (mut peer, raw_id, raw) = engine_with_raw_contact_config(&net, 1 << 20, config).await;
    // The raw contact keeps its stream open but never says another word
    // (a laptop lid closed, a Tor circuit gone dark).
    let started = tokio::time::Instant::now();
    peer.wait(
        "offline",
        |e| matches!(e, Event::Presence { contact, online: false } if *contact == raw_id),
    )
    .await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "offline too early"
    );
    assert!(!peer.h().contacts().await.expect("c")[0].online);
    drop(raw);
}
