use super::*;
use crate::engine::ServiceState;

fn summary(id: u64, state: ContactState) -> ContactSummary {
    ContactSummary {
        id: ContactId(id),
        address: format!("allium:{}", "a".repeat(56)),
        nickname: format!("c{id}"),
        state,
        greeting: String::new(),
        suggested_nickname: String::new(),
        request_delivered: false,
        online: false,
        history_enabled: false,
        queued: 0,
        verified: false,
        peer_keeps_history: None,
    }
}

fn main_state() -> MainState {
    MainState::new(Snapshot {
        name: Some("p".into()),
        address: "allium:x".into(),
        tor: TorState::Ready,
        status: Status {
            address: "allium:x".into(),
            intake: Some(ServiceState::Starting),
            endpoint: ServiceState::Starting,
            save_error: None,
        },
        settings: Settings::default(),
        contacts: vec![summary(1, ContactState::Accepted)],
        transfers: Vec::new(),
        conversations: Vec::new(),
        blocked: Vec::new(),
        network: NetworkInUse::public(),
    })
}

fn received(id: u64, text: &str) -> SessionMsg {
    SessionMsg::Event(Box::new(Event::MessageReceived {
        contact: ContactId(1),
        message: MessageView {
            direction: Direction::Incoming,
            id,
            text: text.into(),
            at: 0,
            state: None,
        },
    }))
}

#[test]
fn a_flood_of_messages_keeps_only_the_newest_in_the_window() {
    let mut m = main_state();
    for id in 1..=(MAX_SHOWN_MESSAGES as u64 + 500) {
        m.apply(received(id, "x"), false);
    }
    let list = &m.conversations[&ContactId(1)];
    assert_eq!(list.len(), MAX_SHOWN_MESSAGES);
    assert_eq!(list.first().map(|m| m.id), Some(501));
}

#[test]
fn refused_offers_do_not_pile_up_in_the_window() {
    let mut m = main_state();
    for i in 0..500u32 {
        m.apply(
            SessionMsg::Event(Box::new(Event::FileCancelled {
                transfer: TransferView {
                    id: format!("{i:032x}"),
                    contact: ContactId(1),
                    direction: TransferDirection::Incoming,
                    name: "huge.iso".into(),
                    size: 1 << 40,
                    done: 0,
                    accepted: false,
                },
                cancelled: Cancelled {
                    by_peer: false,
                    reason: "too large".into(),
                },
            })),
            false,
        );
    }
    assert!(m.transfers.len() <= MAX_SHOWN_FINISHED_TRANSFERS + 1);
}

#[test]
fn a_contact_named_you_is_shown_as_a_contact() {
    let mut m = main_state();
    let mut s = summary(2, ContactState::Accepted);
    s.nickname = "You".into();
    m.apply(
        SessionMsg::Event(Box::new(Event::ContactChanged { contact: s })),
        false,
    );
    assert_eq!(m.contact_name(ContactId(2)), "You (a contact)");
    assert_eq!(m.contact_name(ContactId(1)), "c1");
}

#[test]
fn unread_counts_only_while_the_chat_is_closed() {
    let mut m = main_state();
    assert!(m.apply(received(1, "one"), true).is_some());
    assert!(m.apply(received(2, "two"), true).is_some());
    assert_eq!(m.contacts[&ContactId(1)].unread, 2);
    m.open_contact(ContactId(1));
    assert_eq!(m.contacts[&ContactId(1)].unread, 0);
    // Open and focused: no count, no notification.
    assert_eq!(m.apply(received(3, "three"), true), None);
    assert_eq!(m.contacts[&ContactId(1)].unread, 0);
    // Open but the window is in the background: notify, do not count.
    assert!(m.apply(received(4, "four"), false).is_some());
    assert_eq!(m.contacts[&ContactId(1)].unread, 0);
    assert_eq!(m.conversations[&ContactId(1)].len(), 4);
}

#[test]
fn a_delivery_state_that_overtakes_the_send_reply_is_kept() {
    let mut m = main_state();
    let c = ContactId(1);
    m.apply(
        SessionMsg::Event(Box::new(Event::MessageState {
            contact: c,
            id: 7,
            state: DeliveryState::Delivered,
        })),
        true,
    );
    m.apply(
        SessionMsg::Sent {
            contact: c,
            id: 7,
            text: "hi".into(),
            at: 0,
        },
        true,
    );
    let list = &m.conversations[&c];
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].state, Some(DeliveryState::Delivered));
}

#[test]
fn history_and_live_events_do_not_duplicate_messages() {
    let mut m = main_state();
    m.apply(received(1, "one"), true);
    m.apply(received(1, "one"), true);
    assert_eq!(m.conversations[&ContactId(1)].len(), 1);
}

#[test]
fn a_rejected_request_leaves_a_notice_and_closes_its_page() {
    let mut m = main_state();
    m.open_contact(ContactId(1));
    m.apply(
        SessionMsg::Event(Box::new(Event::RequestRejected {
            contact: ContactId(1),
        })),
        true,
    );
    assert!(m.contacts.is_empty());
    assert_eq!(m.view, View::Home);
    assert_eq!(m.notice.as_deref(), Some("c1 declined your request."));
}

#[test]
fn stale_transfer_snapshots_do_not_move_progress_back() {
    let mut m = main_state();
    let view = |done| TransferView {
        id: "00".into(),
        contact: ContactId(1),
        direction: TransferDirection::Incoming,
        name: "f".into(),
        size: 10,
        done,
        accepted: true,
    };
    m.apply(
        SessionMsg::Event(Box::new(Event::FileProgress {
            transfer: view(8),
            bytes_per_second: 5,
        })),
        true,
    );
    m.apply(SessionMsg::Transfers(vec![view(2)]), true);
    assert_eq!(m.transfers[0].view.done, 8);
    assert_eq!(m.transfers[0].bytes_per_second, 5);
}
