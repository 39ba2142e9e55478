//! Contact flows on the in-memory network.

mod support;

use allium::engine::{DeliveryState, EngineError, Event};
use allium_onion::MemoryNetwork;
use allium_vault::ContactState;
use support::{Peer, ask, befriend, next_request};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_accept_and_chat_both_ways() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;

    let id = a.h().send_message(b_at_a, "hi b").await.expect("send");
    assert_eq!(id, 1);
    let ev = b
        .wait("message", |e| matches!(e, Event::MessageReceived { .. }))
        .await;
    let Event::MessageReceived { contact, message } = ev else {
        unreachable!()
    };
    assert_eq!(
        (contact, message.id, message.text.as_str()),
        (a_at_b, 1, "hi b")
    );
    a.wait("delivered", |e| {
        matches!(
            e,
            Event::MessageState {
                id: 1,
                state: DeliveryState::Delivered,
                ..
            }
        )
    })
    .await;

    b.h().send_message(a_at_b, "hi a").await.expect("send");
    let ev = a
        .wait("reply", |e| matches!(e, Event::MessageReceived { .. }))
        .await;
    let Event::MessageReceived { message, .. } = ev else {
        unreachable!()
    };
    assert_eq!(message.text, "hi a");

    let contacts = a.h().contacts().await.expect("contacts");
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].state, ContactState::Accepted);
    assert!(contacts[0].online);
    assert_eq!(contacts[0].queued, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_checks_the_address() {
    let net = MemoryNetwork::new();
    let a = Peer::start(&net);
    let err = a
        .h()
        .add_contact("allium:nonsense", "", "")
        .await
        .unwrap_err();
    // Typed: a caller can tell which check failed ("nonsense" is 8
    // characters, not 56).
    assert_eq!(
        err,
        EngineError::BadAddress(allium_protocol::AddressError::WrongLength(8))
    );
    let err = a.h().add_contact(&a.address(), "", "").await.unwrap_err();
    assert_eq!(err, EngineError::OwnAddress);
    let b = Peer::start(&net);
    a.h().add_contact(&b.address(), "b", "").await.expect("add");
    let err = a.h().add_contact(&b.address(), "b", "").await.unwrap_err();
    assert_eq!(err, EngineError::AlreadyContact);
    let err = a
        .h()
        .add_contact(&Peer::start(&net).address(), "bad\u{202e}name", "")
        .await
        .unwrap_err();
    assert_eq!(
        err,
        EngineError::InvalidText(allium_protocol::DecodeError::ForbiddenCharacter {
            field: "nickname",
            code: 0x202e
        })
    );
}

/// Waits until `p`'s contact list satisfies `f`, polling.
async fn until_contacts<F: Fn(&[allium::engine::ContactSummary]) -> bool>(
    p: &Peer,
    what: &str,
    f: F,
) {
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let c = p.h().contacts().await.expect("contacts");
        if f(&c) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out: {what}: {c:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_requester_is_dropped_silently_when_it_asks_again() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, contact) = ask(&mut a, &mut b, "first").await;
    a.wait("delivered", |e| matches!(e, Event::RequestDelivered { .. }))
        .await;
    b.h().reject(contact.id).await.expect("reject");
    assert!(b.h().contacts().await.expect("contacts").is_empty());
    // A never hears a "no" (nothing tells a requester it was rejected), and
    // stays pending.
    until_contacts(&a, "still pending", |c| {
        c.len() == 1 && c[0].state == ContactState::OutgoingPending && c[0].request_delivered
    })
    .await;

    // A removes and asks again: delivered (so it stops retrying) and
    // dropped at B without a trace.
    a.h().remove(b_at_a).await.expect("remove");
    a.h()
        .add_contact(&b.address(), "b", "second")
        .await
        .expect("add again");
    a.wait("delivered again", |e| {
        matches!(e, Event::RequestDelivered { .. })
    })
    .await;
    b.drain();
    assert!(
        !b.seen
            .iter()
            .any(|e| matches!(e, Event::RequestReceived { .. })
                && !matches!(e, Event::RequestReceived { contact } if contact.greeting == "first")),
        "the repeat must not surface: {:?}",
        b.seen
    );
    assert!(b.h().contacts().await.expect("contacts").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_drops_requests_and_refuses_to_add() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, contact) = ask(&mut a, &mut b, "hi").await;
    b.h().block(contact.id).await.expect("block");
    let err = b.h().add_contact(&a.address(), "a", "").await.unwrap_err();
    assert_eq!(err, EngineError::Blocked);
    a.h().remove(b_at_a).await.expect("remove");
    a.h()
        .add_contact(&b.address(), "b", "again")
        .await
        .expect("add again");
    a.wait("delivered", |e| matches!(e, Event::RequestDelivered { .. }))
        .await;
    assert!(b.h().contacts().await.expect("contacts").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_revokes_at_once() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    a.h().remove(b_at_a).await.expect("remove");
    b.wait("offline", |e| {
        matches!(e, Event::Presence { online: false, .. })
    })
    .await;
    // B can no longer even reach A's endpoint: its messages stay queued.
    let dials = net.dial_count();
    b.h()
        .send_message(a_at_b, "are you there?")
        .await
        .expect("queued");
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while net.dial_count() < dials + 3 {
        assert!(tokio::time::Instant::now() < deadline, "B stopped dialling");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let c = b.h().contacts().await.expect("contacts");
    assert_eq!(c[0].queued, 1);
    assert!(!c[0].online);
    a.drain();
    assert!(
        !a.seen
            .iter()
            .any(|e| matches!(e, Event::MessageReceived { .. }))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_adding_each_other_at_once_ends_as_contacts() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (addr_a, addr_b) = (a.address(), b.address());
    let (ra, rb) = tokio::join!(
        a.h().add_contact(&addr_b, "b", "hi b"),
        b.h().add_contact(&addr_a, "a", "hi a")
    );
    let (b_at_a, a_at_b) = (ra.expect("add"), rb.expect("add"));
    support::wait_online(&mut a, b_at_a).await;
    support::wait_online(&mut b, a_at_b).await;
    a.h()
        .send_message(b_at_a, "so we are friends")
        .await
        .expect("send");
    b.wait("message", |e| matches!(e, Event::MessageReceived { .. }))
        .await;
    until_contacts(&b, "accepted", |c| {
        c.len() == 1 && c[0].state == ContactState::Accepted
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_an_offline_peer_arrives_when_it_comes_online() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let saved = b.go_offline().await;
    let b_at_a = a
        .h()
        .add_contact(&b.address(), "b", "hello later")
        .await
        .expect("add");
    // Some dials fail while B is away; then B returns.
    let dials = net.dial_count();
    while net.dial_count() < dials + 2 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    b.come_back(saved).await;
    let contact = next_request(&mut b).await;
    // A goes away before B answers; the answer waits for it.
    let saved_a = a.go_offline().await;
    b.h().accept(contact.id, None).await.expect("accept");
    assert_eq!(
        b.h().contacts().await.expect("contacts")[0].nickname,
        "",
        "A suggested no name"
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    a.come_back(saved_a).await;
    a.wait(
        "accepted",
        |e| matches!(e, Event::RequestAccepted { contact } if *contact == b_at_a),
    )
    .await;
    support::wait_online(&mut a, b_at_a).await;
    a.h().send_message(b_at_a, "made it").await.expect("send");
    let ev = b
        .wait("message", |e| matches!(e, Event::MessageReceived { .. }))
        .await;
    let Event::MessageReceived { message, .. } = ev else {
        unreachable!()
    };
    assert_eq!(message.text, "made it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_contacts_talk_to_one_hub() {
    let net = MemoryNetwork::new();
    let mut hub = Peer::start(&net);
    let mut spokes: Vec<Peer> = (0..20).map(|_| Peer::start(&net)).collect();
    let mut ids = Vec::new();
    for s in spokes.iter_mut() {
        ids.push(befriend(s, &mut hub).await);
    }
    for (i, (s, (hub_at_s, _))) in spokes.iter_mut().zip(&ids).enumerate() {
        s.h()
            .send_message(*hub_at_s, &format!("from spoke {i}"))
            .await
            .expect("send");
    }
    let mut got = std::collections::BTreeSet::new();
    while got.len() < 20 {
        let ev = hub
            .wait("messages", |e| matches!(e, Event::MessageReceived { .. }))
            .await;
        let Event::MessageReceived { message, .. } = ev else {
            unreachable!()
        };
        assert!(got.insert(message.text), "duplicate");
    }
    for (_, s_at_hub) in &ids {
        hub.h()
            .send_message(*s_at_hub, "from the hub")
            .await
            .expect("send");
    }
    for s in spokes.iter_mut() {
        s.wait("reply", |e| matches!(e, Event::MessageReceived { .. }))
            .await;
    }
    let contacts = hub.h().contacts().await.expect("contacts");
    assert_eq!(contacts.len(), 20);
    assert!(
        contacts
            .iter()
            .all(|c| c.online && c.state == ContactState::Accepted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_flood_stays_bounded_and_contacts_keep_talking() {
    let net = MemoryNetwork::new();
    let config = allium::engine::EngineConfig {
        max_pending_requests: 10,
        requests_per_minute: 20,
        ..support::config()
    };
    let mut target = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let mut friend = Peer::start(&net);
    let (t_at_f, f_at_t) = befriend(&mut friend, &mut target).await;
    // 60 fresh identities ask at once.
    let flood: Vec<Peer> = (0..60).map(|_| Peer::start(&net)).collect();
    for f in &flood {
        f.h()
            .add_contact(&target.address(), "", "let me in")
            .await
            .expect("add");
    }
    // Meanwhile the real contact talks both ways.
    for i in 0..20 {
        friend
            .h()
            .send_message(t_at_f, &format!("f{i}"))
            .await
            .expect("send");
        target
            .h()
            .send_message(f_at_t, &format!("t{i}"))
            .await
            .expect("send");
    }
    let mut n = 0;
    while n < 20 {
        target
            .wait(
                "friend's messages",
                |e| matches!(e, Event::MessageReceived { contact, .. } if *contact == f_at_t),
            )
            .await;
        n += 1;
    }
    let mut n = 0;
    while n < 20 {
        friend
            .wait("target's messages", |e| {
                matches!(e, Event::MessageReceived { .. })
            })
            .await;
        n += 1;
    }
    // The flood is capped: at most 10 pending, however long it goes on.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let contacts = target.h().contacts().await.expect("contacts");
    let pending = contacts
        .iter()
        .filter(|c| c.state == ContactState::IncomingPending)
        .count();
    assert!(pending <= 10, "{pending} pending");
    assert!(pending >= 1, "some requests get through");
    assert_eq!(contacts.len(), pending + 1);
    let saved = target.store.saved().expect("saved");
    assert!(saved.contacts.len() <= 11);
}

/// Silent strangers: at most `max_unauthenticated` at once, the stalest
/// closed to make room for newcomers, and each closed when its step time runs
/// out (review finding H3: turning newcomers away let 16 of them shut the
/// intake).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_strangers_are_capped_and_timed_out() {
    use allium_onion::Transport;
    use tokio::io::AsyncReadExt;
    let net = MemoryNetwork::new();
    let config = allium::engine::EngineConfig {
        max_unauthenticated: 4,
        step_timeout: std::time::Duration::from_secs(3),
        ..support::config()
    };
    let target = Peer::start_with(&net, allium_vault::Profile::new(support::keys()), config);
    let t = net.node();
    let mut conns = Vec::new();
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while conns.len() < 6 {
        match t.dial(target.id(), None).await {
            Ok(c) => conns.push(c),
            Err(_) => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "intake never came up"
                );
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
    // Past the cap, two of them make room (all are fresh, so chosen at
    // random: opening streams fast must not push anyone out in order);
    // four stay open (for now). None of them sent a byte, and none is
    // told anything.
    let mut b = [0u8; 1];
    let mut open = Vec::new();
    for c in conns.iter_mut() {
        match tokio::time::timeout(std::time::Duration::from_millis(500), c.read(&mut b)).await {
            Ok(n) => assert!(
                matches!(n, Ok(0) | Err(_)),
                "the engine said something to a silent stranger"
            ),
            Err(_) => open.push(c),
        }
    }
    assert_eq!(open.len(), 4, "the cap is 4");
    // Then the step time runs out for them too.
    for c in open {
        let n = tokio::time::timeout(support::PATIENCE, c.read(&mut b))
            .await
            .expect("timed out");
        assert!(matches!(n, Ok(0) | Err(_)));
    }
}
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_choices_survive_a_restart() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let before = a.h().settings().await.expect("settings");
    assert_eq!(before.custom_network, None);
    assert!(!before.notification_content);
    a.h()
        .set_custom_network(Some("/etc/allium/network.json".into()))
        .await
        .expect("set network");
    a.h()
        .set_notification_content(true)
        .await
        .expect("set notifications");
    a.restart().await;
    let after = a.h().settings().await.expect("settings");
    assert_eq!(
        after.custom_network.as_deref(),
        Some("/etc/allium/network.json")
    );
    assert!(after.notification_content);
    a.h().set_custom_network(None).await.expect("public again");
    assert_eq!(
        a.h().settings().await.expect("settings").custom_network,
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_fails_to_start_is_tried_again() {
    let net = MemoryNetwork::new();
    let profile = allium_vault::Profile::new(support::keys());
    let mut first = Peer::start_with(&net, profile.clone(), support::config());
    first
        .wait("published", |e| {
            matches!(
                e,
                Event::Service {
                    intake: true,
                    state: allium::engine::ServiceState::Reachable
                }
            )
        })
        .await;
    // The same identity again: its services cannot start while the first
    // runs (the in-memory network refuses a second publisher).
    let mut second = Peer::start_with(&net, profile, support::config());
    second
        .wait("broken", |e| {
            matches!(
                e,
                Event::Service {
                    intake: true,
                    state: allium::engine::ServiceState::Broken
                }
            )
        })
        .await;
    first.go_offline().await;
    second
        .wait("published after all", |e| {
            matches!(
                e,
                Event::Service {
                    intake: true,
                    state: allium::engine::ServiceState::Reachable
                }
            )
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_intake_key_cannot_take_over_a_contact() {
    use allium_onion::Transport;
    use allium_protocol::{
        ContactRequest, DiscoveryKey, Event as SessionEvent, IdentityKey, LocalIdentity, Message,
        Session, SessionConfig, StaticKeypair,
    };
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let mut b = Peer::start(&net);
    let (b_at_a, a_at_b) = befriend(&mut a, &mut b).await;
    let b_keys = b.store.saved().expect("saved").keys;
    // B's static key reaches A's disk shortly after the handshake.
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while a
        .store
        .saved()
        .expect("saved")
        .contacts
        .first()
        .and_then(|c| c.their_static)
        .is_none()
    {
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let before = a.store.saved().expect("saved").contacts[0].their_static;
    // B's HISTORY (sent after its SYNC) changes the contact too: wait for
    // it, so that only what the thief causes is looked at below.
    a.wait(
        "B's history statement",
        |e| matches!(e, Event::ContactChanged { contact } if contact.peer_keeps_history.is_some()),
    )
    .await;
    a.drain();
    a.seen.clear();

    // The thief has B's intake key but not B's static key.
    let thief = LocalIdentity {
        identity: IdentityKey::from_seed(&b_keys.intake_seed.0),
        endpoint: IdentityKey::from_seed(&support::keys().endpoint_seed.0).onion_id(),
        static_key: StaticKeypair::from_secret(&support::keys().static_secret.0),
    };
    let mut stream = net.node().dial(a.id(), None).await.expect("dial");
    let now = std::time::Instant::now();
    let mut s = Session::connect_intake(
        SessionConfig::default(),
        &thief,
        a.id(),
        now,
        &mut rand_core::OsRng,
    )
    .expect("session");
    s.send(
        now,
        Message::ContactRequest(ContactRequest {
            nickname: "B".into(),
            greeting: "it is me, new phone".into(),
            endpoint: thief.endpoint,
            discovery_key: DiscoveryKey([5; 32]),
        }),
    )
    .expect("send");
    let mut buf = vec![0u8; 70_000];
    let cause = loop {
        while let Some(t) = s.poll_transmit() {
            stream.write_all(&t).await.expect("write");
        }
        if let Some(SessionEvent::Closed(c)) =
            std::iter::from_fn(|| s.poll_event()).find(|e| matches!(e, SessionEvent::Closed(_)))
        {
            break c;
        }
        let n = tokio::time::timeout(support::PATIENCE, stream.read(&mut buf))
            .await
            .expect("answer")
            .expect("read");
        if n == 0 {
            s.handle_eof();
        } else {
            let _ = s.handle_bytes(std::time::Instant::now(), &buf[..n]);
        }
    };
    // Closed like any delivered request: the thief learns nothing.
    assert_eq!(
        cause,
        allium_protocol::CloseCause::Peer(allium_protocol::CloseReason::Normal)
    );
    let after = a.store.saved().expect("saved").contacts[0].their_static;
    assert_eq!(before, after, "the contact's static key was replaced");
    a.drain();
    assert!(
        !a.seen.iter().any(|e| matches!(
            e,
            Event::RequestReceived { .. } | Event::ContactChanged { .. }
        )),
        "{:?}",
        a.seen
    );
    // The real B still talks to A.
    b.h().send_message(a_at_b, "still me").await.expect("send");
    a.wait(
        "message",
        |e| matches!(e, Event::MessageReceived { contact, .. } if *contact == b_at_a),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_contact_gets_a_key_the_endpoint_already_published() {
    let net = MemoryNetwork::new();
    let mut a = Peer::start(&net);
    let b = Peer::start(&net);
    a.wait("endpoint up", |e| {
        matches!(
            e,
            Event::Service {
                intake: false,
                state: allium::engine::ServiceState::Reachable
            }
        )
    })
    .await;
    // Spare keys exist before anyone is added, and were in the first
    // descriptor (the endpoint was published with them).
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    let spares = loop {
        let saved = a.store.saved().expect("saved");
        if saved.spare_discovery_keys.len() == 2 {
            break saved.spare_discovery_keys;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no spare keys saved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let id = a.h().add_contact(&b.address(), "b", "").await.expect("add");
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    loop {
        let saved = a.store.saved().expect("saved");
        if let Some(c) = saved.contact(id) {
            assert!(
                spares.contains(&c.our_discovery_key),
                "a fresh key, not a published one"
            );
            // The pool is topped up again, with keys not given to anyone.
            assert_eq!(saved.spare_discovery_keys.len(), 2);
            assert!(!saved.spare_discovery_keys.contains(&c.our_discovery_key));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "contact never saved"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A setting out of range is refused as such, with the range in the words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_lock_past_a_day_is_refused() {
    let net = MemoryNetwork::new();
    let a = Peer::start(&net);
    let err = a.h().set_auto_lock(24 * 60 + 1).await.unwrap_err();
    assert_eq!(
        err,
        EngineError::InvalidSetting("lock after at most a day (1,440 minutes)")
    );
    a.h()
        .set_auto_lock(24 * 60)
        .await
        .expect("a day is allowed");
}

/// The folder for received files is kept with the profile; a path too
/// long for any file system is refused as such, and spaces alone mean
/// "ask each time".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_download_folder_is_kept_and_bounded() {
    let net = MemoryNetwork::new();
    let a = Peer::start(&net);
    let long = format!("/{}", "d".repeat(4096));
    assert_eq!(
        a.h().set_download_folder(Some(&long)).await,
        Err(EngineError::InvalidSetting(
            "a folder's path of at most 4,096 bytes"
        ))
    );
    a.h()
        .set_download_folder(Some("  /home/me/Downloads "))
        .await
        .expect("a folder");
    let settings = a.h().settings().await.expect("settings");
    assert_eq!(
        settings.download_folder.as_deref(),
        Some("/home/me/Downloads")
    );
    let deadline = tokio::time::Instant::now() + support::PATIENCE;
    while a
        .store
        .saved()
        .and_then(|p| p.settings.download_folder)
        .as_deref()
        != Some("/home/me/Downloads")
    {
        assert!(tokio::time::Instant::now() < deadline, "never saved");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    a.h().set_download_folder(Some("   ")).await.expect("none");
    assert_eq!(
        a.h().settings().await.expect("settings").download_folder,
        None
    );
}
