//! Two sessions talking in memory: every handshake path, every bad input
//! that applies to a session, and the timers.

mod common;

use std::time::Duration;

use allium_protocol::frame::HANDSHAKE_FRAME_MAX;
use allium_protocol::{
    Chat, CloseCause, CloseReason, ContactRequest, DiscoveryKey, Event, Message, OnionId,
    ProtocolError, RefuseReason, ReplayCache, Session, SessionConfig,
};
use common::{Admit, Pair, identity, rng};

fn chat(id: u64, text: &str) -> Message {
    Message::Chat(Chat {
        id,
        text: text.into(),
    })
}

fn established(events: &[Event]) -> Option<OnionId> {
    events.iter().find_map(|e| match e {
        Event::Established { peer, .. } => Some(*peer),
        _ => None,
    })
}

fn request(from: &allium_protocol::LocalIdentity) -> Message {
    Message::ContactRequest(ContactRequest {
        nickname: "Ana".into(),
        greeting: "I have documents about the port contract.".into(),
        endpoint: from.endpoint,
        discovery_key: DiscoveryKey([42; 32]),
    })
}

#[test]
fn intake_handshake_proves_both_identities_and_carries_messages() {
    for chunk in [usize::MAX, 1, 7] {
        let (a, b) = (identity(1), identity(2));
        let mut p = Pair::intake(&a, &b);
        p.chunk = chunk;
        p.initiator.send(p.now, request(&a)).expect("queue");
        p.drive();
        assert!(
            p.init_errors.is_empty() && p.resp_errors.is_empty(),
            "{:?} {:?}",
            p.init_errors,
            p.resp_errors
        );
        assert_eq!(established(&p.init_events), Some(b.identity.onion_id()));
        assert_eq!(established(&p.resp_events), Some(a.identity.onion_id()));
        assert_eq!(Pair::messages(&p.resp_events), vec![request(&a)]);
        // Three handshake transmissions: hello, response, final (+ request).
        assert_eq!(p.wire.len(), 3);
        p.responder
            .send(p.now, chat(1, "received, thank you"))
            .expect("send");
        p.drive();
        assert_eq!(
            Pair::messages(&p.init_events),
            vec![chat(1, "received, thank you")]
        );
    }
}

#[test]
fn endpoint_handshake_is_one_round_trip_with_early_data() {
    for chunk in [usize::MAX, 1] {
        let (a, b) = (identity(3), identity(4));
        let mut p = Pair::endpoint(&a, &b);
        p.chunk = chunk;
        p.initiator
            .send(p.now, chat(1, "are you there?"))
            .expect("queue");
        p.initiator.send(p.now, chat(2, "second")).expect("queue");
        // The first transmission alone delivers the first message.
        let hello = p.initiator.poll_transmit().expect("hello");
        for piece in hello.chunks(chunk.min(hello.len())) {
            p.responder
                .handle_bytes(p.now, piece)
                .expect("hello accepted");
        }
        let Some(Event::Admission(h)) = p.responder.poll_event() else {
            panic!("admission")
        };
        assert_eq!(h.claimed, a.identity.onion_id());
        assert_eq!(h.static_key, Some(a.static_key.public()));
        p.responder
            .admit_contact(p.now, &mut p.replay, a.static_key.public())
            .expect("admit");
        assert!(matches!(
            p.responder.poll_event(),
            Some(Event::Established { .. })
        ));
        assert_eq!(
            p.responder.poll_event(),
            Some(Event::Message(chat(1, "are you there?")))
        );
        p.drive();
        assert!(p.init_errors.is_empty() && p.resp_errors.is_empty());
        assert_eq!(established(&p.init_events), Some(b.endpoint));
        assert_eq!(Pair::messages(&p.resp_events), vec![chat(2, "second")]);
    }
}

#[test]
fn large_early_message_waits_for_the_handshake() {
    let (a, b) = (identity(5), identity(6));
    let mut p = Pair::endpoint(&a, &b);
    let long = "x".repeat(2000);
    p.initiator.send(p.now, chat(1, &long)).expect("queue");
    let hello = p.initiator.poll_transmit().expect("hello");
    assert!(hello.len() <= HANDSHAKE_FRAME_MAX + 2);
    p.responder.handle_bytes(p.now, &hello).expect("ok");
    let Some(Event::Admission(_)) = p.responder.poll_event() else {
        panic!()
    };
    p.responder
        .admit_contact(p.now, &mut p.replay, a.static_key.public())
        .expect("admit");
    assert!(matches!(
        p.responder.poll_event(),
        Some(Event::Established { .. })
    ));
    assert_eq!(p.responder.poll_event(), None, "nothing rode the hello");
    p.drive();
    assert_eq!(Pair::messages(&p.resp_events), vec![chat(1, &long)]);
}

#[test]
fn replayed_hello_is_rejected() {
    let (a, b) = (identity(7), identity(8));
    let mut p = Pair::endpoint(&a, &b);
    p.initiator.send(p.now, chat(1, "pay 100")).expect("queue");
    p.drive();
    let hello = p.wire[0].1.clone();
    // The same recorded hello, played to a new session of the same service.
    let mut again = Session::accept_endpoint(SessionConfig::default(), &b, p.now, &mut rng(9));
    again.handle_bytes(p.now, &hello).expect("hello parses");
    assert!(matches!(again.poll_event(), Some(Event::Admission(_))));
    assert_eq!(
        again.admit_contact(p.now, &mut p.replay, a.static_key.public()),
        Err(ProtocolError::Replayed)
    );
    assert_eq!(
        again.poll_event(),
        Some(Event::Closed(CloseCause::Error(ProtocolError::Replayed)))
    );
    assert!(again.is_closed());
}

#[test]
fn replayed_intake_hello_is_rejected_too() {
    let (a, b) = (identity(10), identity(11));
    let mut p = Pair::intake(&a, &b);
    p.drive();
    let hello = p.wire[0].1.clone();
    let mut again = Session::accept_intake(SessionConfig::default(), &b, p.now, &mut rng(12));
    again.handle_bytes(p.now, &hello).expect("parses");
    assert!(matches!(again.poll_event(), Some(Event::Admission(_))));
    assert_eq!(
        again.admit_stranger(p.now, &mut p.replay),
        Err(ProtocolError::Replayed)
    );
}

#[test]
fn endpoint_refuses_a_static_key_that_is_not_the_contacts() {
    let (a, b, c) = (identity(13), identity(14), identity(15));
    let mut p = Pair::endpoint(&a, &b);
    // The responder has someone else's key on file for the claimed id.
    p.admit = Admit::Contact(c.static_key.public());
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::IdentityMismatch]);
    assert_eq!(
        p.init_errors,
        vec![ProtocolError::Refused(RefuseReason::NotAuthorized)]
    );
    assert!(p.initiator.is_closed() && p.responder.is_closed());
}

#[test]
fn initiator_with_a_wrong_idea_of_the_responder_key_fails() {
    let (a, b, c) = (identity(16), identity(17), identity(18));
    let now = std::time::Instant::now();
    // Dials b's endpoint but expects c's static key: b cannot decrypt.
    let init = Session::connect_endpoint(
        SessionConfig::default(),
        &a,
        b.endpoint,
        c.static_key.public(),
        now,
        &mut rng(1),
    )
    .expect("connect");
    let resp = Session::accept_endpoint(SessionConfig::default(), &b, now, &mut rng(2));
    let mut p = Pair::new(init, resp, now, Admit::Contact(a.static_key.public()));
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::HandshakeFailed]);
}

#[test]
fn refused_admission_reaches_the_initiator() {
    let (a, b) = (identity(19), identity(20));
    let mut p = Pair::intake(&a, &b);
    p.admit = Admit::Nobody;
    p.drive();
    assert_eq!(
        p.init_errors,
        vec![ProtocolError::Refused(RefuseReason::NotAuthorized)]
    );
    assert_eq!(
        p.init_events.last(),
        Some(&Event::Closed(CloseCause::Refused(
            RefuseReason::NotAuthorized
        )))
    );
}

#[test]
fn wrong_domain_and_wrong_destination_are_refused() {
    let (a, b) = (identity(21), identity(22));
    let now = std::time::Instant::now();
    // An endpoint hello arriving at the intake (same id, other service).
    let init = Session::connect_endpoint(
        SessionConfig::default(),
        &a,
        b.identity.onion_id(),
        b.static_key.public(),
        now,
        &mut rng(1),
    )
    .expect("connect");
    let resp = Session::accept_intake(SessionConfig::default(), &b, now, &mut rng(2));
    let mut p = Pair::new(init, resp, now, Admit::Stranger);
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::WrongDomain("endpoint")]);
    assert_eq!(
        p.init_errors,
        vec![ProtocolError::Refused(RefuseReason::WrongDomain)]
    );

    // A hello for c's intake arriving at b's.
    let c = identity(23);
    let init = Session::connect_intake(
        SessionConfig::default(),
        &a,
        c.identity.onion_id(),
        now,
        &mut rng(3),
    )
    .expect("connect");
    let resp = Session::accept_intake(SessionConfig::default(), &b, now, &mut rng(4));
    let mut p = Pair::new(init, resp, now, Admit::Stranger);
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::WrongDestination]);
    assert_eq!(
        p.init_errors,
        vec![ProtocolError::Refused(RefuseReason::WrongDestination)]
    );
}

#[test]
fn reflected_identity_or_static_key_is_rejected() {
    let b = identity(24);
    let now = std::time::Instant::now();
    // Dialling ourselves is refused locally.
    assert!(matches!(
        Session::connect_intake(
            SessionConfig::default(),
            &b,
            b.identity.onion_id(),
            now,
            &mut rng(1)
        ),
        Err(ProtocolError::Reflected)
    ));
    // Someone holding b's identity key dials b's endpoint: the hello claims
    // b's own id.
    let mut mirror = identity(25);
    mirror.identity = b.identity.clone();
    let init = Session::connect_endpoint(
        SessionConfig::default(),
        &mirror,
        b.endpoint,
        b.static_key.public(),
        now,
        &mut rng(2),
    )
    .expect("connect");
    let resp = Session::accept_endpoint(SessionConfig::default(), &b, now, &mut rng(3));
    let mut p = Pair::new(init, resp, now, Admit::Contact(b.static_key.public()));
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::Reflected]);
    // Two parties with the same static key: whoever sees the other's first
    // (here the initiator, in the intake response) refuses it.
    let mut twin = identity(26);
    twin.static_key = b.static_key.clone();
    let mut p = Pair::intake(&twin, &b);
    p.drive();
    assert_eq!(p.init_errors, vec![ProtocolError::Reflected]);
    // And at the endpoint the responder sees it in the first message.
    let init = Session::connect_endpoint(
        SessionConfig::default(),
        &twin,
        b.endpoint,
        b.static_key.public(),
        now,
        &mut rng(4),
    )
    .expect("connect");
    let resp = Session::accept_endpoint(SessionConfig::default(), &b, now, &mut rng(5));
    let mut p = Pair::new(init, resp, now, Admit::Contact(b.static_key.public()));
    p.drive();
    assert_eq!(p.resp_errors, vec![ProtocolError::Reflected]);
}

fn hello_body(b: &allium_protocol::LocalIdentity, versions: &[u8], ephemeral: [u8; 32]) -> Vec<u8> {
    let a = identity(27);
    let mut body = vec![1u8]; // HELLO
    body.extend_from_slice(b"ALLIUM");
    body.push(versions.len() as u8);
    body.extend_from_slice(versions);
    body.push(1); // intake
    body.extend_from_slice(b.identity.onion_id().as_bytes());
    body.extend_from_slice(a.identity.onion_id().as_bytes());
    body.extend_from_slice(&ephemeral);
    let mut frame = (body.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    frame
}

fn feed_intake(frame: &[u8]) -> (Result<(), ProtocolError>, Option<Vec<u8>>) {
    let b = identity(28);
    let mut s = Session::accept_intake(
        SessionConfig::default(),
        &b,
        std::time::Instant::now(),
        &mut rng(1),
    );
    let r = s.handle_bytes(std::time::Instant::now(), frame);
    assert!(s.is_closed() || r.is_ok());
    (r, s.poll_transmit())
}

#[test]
fn crafted_hellos_get_exact_errors() {
    let b = identity(28);
    let good_e = allium_protocol::StaticKeypair::from_secret(&[5; 32])
        .public()
        .0;
    // Sanity: the crafted hello is accepted as is.
    let (r, _) = feed_intake(&hello_body(&b, &[2], good_e));
    assert_eq!(r, Ok(()));
    assert_eq!(
        feed_intake(&hello_body(&b, &[2], [0; 32])).0,
        Err(ProtocolError::ZeroKey)
    );
    let mut order8 = [0u8; 32];
    order8.copy_from_slice(
        &hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
            .expect("hex"),
    );
    assert_eq!(
        feed_intake(&hello_body(&b, &[2], order8)).0,
        Err(ProtocolError::SmallOrderKey)
    );
    let (r, refuse) = feed_intake(&hello_body(&b, &[9], good_e));
    assert_eq!(
        r,
        Err(ProtocolError::UnsupportedVersion {
            offered: vec![9],
            supported: vec![3, 2]
        })
    );
    assert_eq!(
        refuse,
        Some(vec![0, 5, 4, 1, 2, 3, 2]),
        "REFUSE(unsupported version, [3, 2])"
    );
    // A version-2 peer is still served, at version 2.
    let (r, _) = feed_intake(&hello_body(&b, &[3, 2], good_e));
    assert_eq!(r, Ok(()));
    // Version 1 had no SYNC (PROTOCOL.md §6.3): refused, with our list, so
    // a version-1 peer can tell why.
    let (r, refuse) = feed_intake(&hello_body(&b, &[1], good_e));
    assert_eq!(
        r,
        Err(ProtocolError::UnsupportedVersion {
            offered: vec![1],
            supported: vec![3, 2]
        })
    );
    assert_eq!(refuse, Some(vec![0, 5, 4, 1, 2, 3, 2]));
    assert_eq!(
        feed_intake(&hello_body(&b, &[2, 2], good_e)).0,
        Err(ProtocolError::MalformedHandshake(
            "version list not strictly decreasing"
        ))
    );
    assert_eq!(
        feed_intake(&hello_body(&b, &[], good_e)).0,
        Err(ProtocolError::MalformedHandshake(
            "version count out of range"
        ))
    );
    let mut bad_magic = hello_body(&b, &[2], good_e);
    bad_magic[3] = b'X';
    assert_eq!(feed_intake(&bad_magic).0, Err(ProtocolError::BadMagic));
    // Payload in the intake's first message.
    let mut with_payload = hello_body(&b, &[2], good_e);
    with_payload.push(0);
    let len = (with_payload.len() - 2) as u16;
    with_payload[..2].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        feed_intake(&with_payload).0,
        Err(ProtocolError::MalformedHandshake(
            "payload in the first intake message"
        ))
    );
    // Oversized, unknown and out-of-order frames.
    assert_eq!(
        feed_intake(&[0x10, 0x01]).0,
        Err(ProtocolError::FrameTooLarge {
            len: 4097,
            max: HANDSHAKE_FRAME_MAX
        })
    );
    assert_eq!(feed_intake(&[0, 0]).0, Err(ProtocolError::EmptyFrame));
    assert_eq!(
        feed_intake(&[0, 1, 0x09]).0,
        Err(ProtocolError::UnknownFrameType(9))
    );
    assert_eq!(
        feed_intake(&[0, 1, 0x03]).0,
        Err(ProtocolError::UnexpectedFrame {
            frame: "TRANSPORT",
            state: "waiting for a hello"
        })
    );
    assert_eq!(
        feed_intake(&[0, 3, 0x01, b'A', b'L']).0,
        Err(ProtocolError::MalformedHandshake("truncated"))
    );
}

#[test]
fn tampered_transport_frame_closes_the_session() {
    let (a, b) = (identity(29), identity(30));
    let mut p = Pair::endpoint(&a, &b);
    p.drive();
    p.initiator.send(p.now, chat(1, "hello")).expect("send");
    let mut bytes = p.initiator.poll_transmit().expect("frame");
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert_eq!(
        p.responder.handle_bytes(p.now, &bytes),
        Err(ProtocolError::DecryptFailed)
    );
    assert!(p.responder.is_closed());
    // The responder tells the initiator why (it can still encrypt).
    let close = p.responder.poll_transmit().expect("close frame");
    p.initiator
        .handle_bytes(p.now, &close)
        .expect("close is valid");
    let events: Vec<_> = std::iter::from_fn(|| p.initiator.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseCause::Peer(
            CloseReason::ProtocolViolation
        )))
    );
}

#[test]
fn close_is_delivered_and_later_sends_fail() {
    let (a, b) = (identity(31), identity(32));
    let mut p = Pair::intake(&a, &b);
    p.drive();
    p.initiator.close(p.now, CloseReason::Shutdown);
    p.drive();
    assert_eq!(
        p.resp_events.last(),
        Some(&Event::Closed(CloseCause::Peer(CloseReason::Shutdown)))
    );
    assert_eq!(
        p.initiator.send(p.now, chat(1, "late")),
        Err(ProtocolError::Closed)
    );
}

#[test]
fn timers_keepalive_idle_and_handshake() {
    let (a, b) = (identity(33), identity(34));
    let mut p = Pair::intake(&a, &b);
    p.drive();
    let cfg = SessionConfig::default();
    // Both sides keep each other alive indefinitely.
    for _ in 0..10 {
        let next = p.initiator.poll_timeout().expect("timer");
        assert!(next <= p.now + cfg.keepalive_interval);
        p.advance(cfg.keepalive_interval);
    }
    assert!(p.initiator.is_established() && p.responder.is_established());
    assert!(
        Pair::messages(&p.resp_events).is_empty(),
        "keepalives are not events"
    );
    // A silent peer is dropped after the idle timeout.
    let now = p.now + cfg.idle_timeout;
    p.initiator.handle_timeout(now);
    assert!(p.initiator.is_closed());
    let events: Vec<_> = std::iter::from_fn(|| p.initiator.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseCause::Error(
            ProtocolError::IdleTimeout
        )))
    );
    // An unauthenticated connection that never finishes is dropped.
    let mut lone = Session::accept_intake(cfg.clone(), &b, p.now, &mut rng(1));
    assert_eq!(lone.poll_timeout(), Some(p.now + cfg.handshake_timeout));
    lone.handle_bytes(p.now, &[0, 50, 1])
        .expect("partial hello");
    lone.handle_timeout(p.now + cfg.handshake_timeout - Duration::from_millis(1));
    assert!(!lone.is_closed());
    lone.handle_timeout(p.now + cfg.handshake_timeout);
    assert_eq!(
        lone.poll_event(),
        Some(Event::Closed(CloseCause::Error(
            ProtocolError::HandshakeTimeout
        )))
    );
}

#[test]
fn eof_mid_frame_and_mid_handshake() {
    let b = identity(35);
    let now = std::time::Instant::now();
    let mut s = Session::accept_intake(SessionConfig::default(), &b, now, &mut rng(1));
    s.handle_bytes(now, &[0, 40, 1, b'A']).expect("partial");
    s.handle_eof();
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseCause::Error(
            ProtocolError::UnexpectedEof { mid_frame: true }
        )))
    );
    let mut s = Session::accept_intake(SessionConfig::default(), &b, now, &mut rng(1));
    s.handle_eof();
    assert_eq!(
        s.poll_event(),
        Some(Event::Closed(CloseCause::Error(
            ProtocolError::UnexpectedEof { mid_frame: false }
        )))
    );
}

#[test]
fn invalid_outgoing_messages_are_refused_locally() {
    let (a, b) = (identity(36), identity(37));
    let mut p = Pair::intake(&a, &b);
    p.drive();
    assert!(matches!(
        p.initiator.send(p.now, chat(1, "")),
        Err(ProtocolError::InvalidOutgoing(_))
    ));
    assert!(matches!(
        p.initiator.send(p.now, chat(0, "zero id")),
        Err(ProtocolError::InvalidOutgoing(_))
    ));
    assert!(
        p.initiator.is_established(),
        "a local mistake does not close the session"
    );
}

#[test]
fn admission_calls_in_the_wrong_state_are_errors() {
    let (a, b) = (identity(38), identity(39));
    let mut p = Pair::intake(&a, &b);
    let mut cache = ReplayCache::default();
    assert_eq!(
        p.responder.admit_stranger(p.now, &mut cache),
        Err(ProtocolError::WrongState(
            "no hello is waiting for admission"
        ))
    );
    assert_eq!(
        p.responder
            .admit_contact(p.now, &mut cache, a.static_key.public()),
        Err(ProtocolError::WrongState(
            "admit_contact is for the endpoint"
        ))
    );
    p.drive();
    assert!(p.responder.is_established());
}

#[test]
fn silent_refusal_sends_nothing() {
    let (a, b) = (identity(40), identity(41));
    let mut p = Pair::intake(&a, &b);
    let hello = p.initiator.poll_transmit().expect("hello");
    p.responder.handle_bytes(p.now, &hello).expect("ok");
    assert!(matches!(
        p.responder.poll_event(),
        Some(Event::Admission(_))
    ));
    p.responder.refuse(None);
    assert!(p.responder.is_closed());
    assert_eq!(
        p.responder.poll_transmit(),
        None,
        "not a byte for a blocked stranger"
    );
    // The initiator only sees the stream end.
    p.initiator.handle_eof();
    let events: Vec<_> = std::iter::from_fn(|| p.initiator.poll_event()).collect();
    assert_eq!(
        events.last(),
        Some(&Event::Closed(CloseCause::Error(
            ProtocolError::UnexpectedEof { mid_frame: false }
        )))
    );
}

/// Version 3 adds HISTORY; a version-2 session neither sends nor takes it,
/// and a version-2 initiator is served at version 2 (§4.3).
#[test]
fn history_needs_version_3_on_both_sides() {
    let (a, b) = (identity(40), identity(41));
    let history = Message::History { kept: true };
    // Both at 3: it goes through.
    let mut p = Pair::endpoint(&a, &b);
    p.drive();
    assert_eq!(p.initiator.version(), 3);
    assert_eq!(p.responder.version(), 3);
    assert!(
        p.resp_events
            .iter()
            .any(|e| matches!(e, Event::Established { version: 3, .. }))
    );
    p.initiator.send(p.now, history.clone()).expect("send");
    p.drive();
    assert_eq!(Pair::messages(&p.resp_events), vec![history.clone()]);

    // An initiator offering only 2 (an older build): version 2, no HISTORY.
    let old = SessionConfig {
        versions: vec![2],
        ..SessionConfig::default()
    };
    let now = std::time::Instant::now();
    let initiator = Session::connect_endpoint(
        old,
        &a,
        b.endpoint,
        b.static_key.public(),
        now,
        &mut rng(140),
    )
    .expect("connect");
    let responder = Session::accept_endpoint(SessionConfig::default(), &b, now, &mut rng(141));
    let mut p = Pair::new(
        initiator,
        responder,
        now,
        common::Admit::Contact(a.static_key.public()),
    );
    p.drive();
    assert_eq!(p.responder.version(), 2);
    assert_eq!(
        p.responder.send(p.now, history.clone()),
        Err(ProtocolError::WrongState(
            "HISTORY needs protocol version 3 on both sides"
        ))
    );
    assert!(p.init_errors.is_empty() && p.resp_errors.is_empty());

    // Offers must be supported versions, strictly decreasing.
    for bad in [vec![], vec![4, 3], vec![2, 3], vec![3, 3]] {
        let config = SessionConfig {
            versions: bad.clone(),
            ..SessionConfig::default()
        };
        assert!(
            Session::connect_intake(config, &a, b.identity.onion_id(), now, &mut rng(142)).is_err(),
            "{bad:?}"
        );
    }
}
