//! Contact flows on the in-memory network.

mod support;

use allium::engine::{DeliveryState, EngineError, Event};
use allium_onion::MemoryNetwork;
use allium_vault::ContactState;
use support::{Peer, befriend};

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
    assert!(matches!(err, EngineError::BadAddress(_)), "{err:?}");
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
    assert!(matches!(err, EngineError::InvalidText(_)), "{err:?}");
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
