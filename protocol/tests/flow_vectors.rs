//! Verdict vectors for the application-level rules of the contact flow
//! (PROTOCOL.md §6.6–§6.8, §8), pinned in `tests/vectors/flow-rules.json`
//! and replayed from the file against `allium_protocol::flow`, the
//! functions the engine decides with. Regenerate (only when a rule changes
//! on purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test flow_vectors`.

mod common;

use allium_protocol::flow::{self, AcceptVerdict, Dialler, Receipt, SessionRole, Survivor};
use allium_protocol::{
    CancelReason, Chat, CloseCause, CloseReason, ContactAccept, ContactRequest, DiscoveryKey,
    FileChunk, FileOffer, IdentityKey, Message, OnionId, ProtocolError, RefuseReason, TransferId,
};
use common::vector_file::{check, pinned};
use serde_json::{Value, json};

fn id(seed: u8) -> OnionId {
    IdentityKey::from_seed(&[seed; 32]).onion_id()
}

/// One message of each type, by its PROTOCOL.md §6.1 name.
fn samples() -> Vec<(&'static str, Message)> {
    let t = TransferId([1; 16]);
    vec![
        (
            "CONTACT_REQUEST",
            Message::ContactRequest(ContactRequest {
                nickname: "a".into(),
                greeting: String::new(),
                endpoint: id(9),
                discovery_key: DiscoveryKey([2; 32]),
            }),
        ),
        (
            "CONTACT_ACCEPT",
            Message::ContactAccept(ContactAccept {
                endpoint: id(9),
                discovery_key: DiscoveryKey([2; 32]),
            }),
        ),
        ("CONTACT_REJECT", Message::ContactReject),
        (
            "CHAT",
            Message::Chat(Chat {
                id: 1,
                text: "x".into(),
            }),
        ),
        ("ACK", Message::Ack { id: 1 }),
        (
            "SYNC",
            Message::Sync {
                resend_from: 1,
                last: 0,
            },
        ),
        ("HISTORY", Message::History { kept: false }),
        (
            "FILE_OFFER",
            Message::FileOffer(FileOffer {
                transfer: t,
                size: 1,
                sha256: [0; 32],
                name: "f".into(),
            }),
        ),
        (
            "FILE_ACCEPT",
            Message::FileAccept {
                transfer: t,
                offset: 0,
            },
        ),
        (
            "FILE_CHUNK",
            Message::FileChunk(FileChunk {
                transfer: t,
                offset: 0,
                data: vec![0],
            }),
        ),
        (
            "FILE_ACK",
            Message::FileAck {
                transfer: t,
                received: 1,
            },
        ),
        ("FILE_DONE", Message::FileDone { transfer: t }),
        (
            "FILE_CANCEL",
            Message::FileCancel {
                transfer: t,
                reason: CancelReason::ByUser,
            },
        ),
        ("KEEPALIVE", Message::Keepalive),
        ("CLOSE", Message::Close(CloseReason::Normal)),
    ]
}

fn role_named(name: &str) -> SessionRole {
    match name {
        "intake, as requester" => SessionRole::IntakeRequester,
        "intake, as responder" => SessionRole::IntakeResponder,
        "endpoint" => SessionRole::Endpoint,
        other => panic!("unknown role {other}"),
    }
}

fn message_named(name: &str) -> Message {
    samples()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, m)| m)
        .unwrap_or_else(|| panic!("unknown message {name}"))
}

fn allowed_cases() -> Vec<Value> {
    let mut out = Vec::new();
    for (role, flags) in [
        ("intake, as requester", vec![(false, false)]),
        ("intake, as responder", vec![(false, false), (true, false)]),
        ("endpoint", vec![(false, false), (false, true)]),
    ] {
        for (request_received, awaiting_answer) in flags {
            for (name, m) in samples() {
                let ok = flow::allowed(role_named(role), request_received, awaiting_answer, &m);
                out.push(json!({
                    "session": role,
                    "request_already_received": request_received,
                    "awaiting_the_contacts_answer": awaiting_answer,
                    "message": name,
                    "verdict": if ok { "allowed" } else { "ProtocolViolation" },
                }));
            }
        }
    }
    out
}

fn cause_named(name: &str) -> CloseCause {
    match name {
        "CLOSE 0" => CloseCause::Peer(CloseReason::Normal),
        "CLOSE 1" => CloseCause::Peer(CloseReason::ProtocolViolation),
        "CLOSE 2" => CloseCause::Peer(CloseReason::IdleTimeout),
        "CLOSE 3" => CloseCause::Peer(CloseReason::Shutdown),
        "CLOSE 4" => CloseCause::Peer(CloseReason::Replaced),
        "CLOSE 5" => CloseCause::Peer(CloseReason::NotAContact),
        "CLOSE 77 (unknown)" => CloseCause::Peer(CloseReason::Other(77)),
        "REFUSE 4" => CloseCause::Refused(RefuseReason::Busy),
        "REFUSE 5" => CloseCause::Refused(RefuseReason::NotAuthorized),
        "end of stream without CLOSE" => {
            CloseCause::Error(ProtocolError::UnexpectedEof { mid_frame: false })
        }
        "our own timeout (we sent CLOSE 2)" => CloseCause::Local(CloseReason::IdleTimeout),
        other => panic!("unknown cause {other}"),
    }
}

const CAUSES: [&str; 11] = [
    "CLOSE 0",
    "CLOSE 1",
    "CLOSE 2",
    "CLOSE 3",
    "CLOSE 4",
    "CLOSE 5",
    "CLOSE 77 (unknown)",
    "REFUSE 4",
    "REFUSE 5",
    "end of stream without CLOSE",
    "our own timeout (we sent CLOSE 2)",
];

fn receipt_name(r: Receipt) -> &'static str {
    match r {
        Receipt::Received => "received",
        Receipt::NotReceived => "not received",
    }
}

fn dialler_named(name: &str) -> Dialler {
    match name {
        "us" => Dialler::Us,
        "them" => Dialler::Them,
        other => panic!("unknown dialler {other}"),
    }
}

fn accept_name(v: AcceptVerdict) -> &'static str {
    match v {
        AcceptVerdict::First => "first: keep endpoint and key",
        AcceptVerdict::Repeat => "repeat: nothing changes",
        AcceptVerdict::Reissue => "re-issue: keep the new key",
        AcceptVerdict::Violation => "ProtocolViolation",
    }
}

fn key_of(v: &Value) -> [u8; 32] {
    hex::decode(v.as_str().expect("hex"))
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}

fn onion(v: &Value) -> OnionId {
    OnionId::from_bytes(key_of(v)).expect("a valid id")
}

fn accept_replay(c: &Value) -> &'static str {
    let on_file = (!c["on_file"].is_null()).then(|| {
        (
            onion(&c["on_file"]["endpoint"]),
            key_of(&c["on_file"]["discovery_key"]),
        )
    });
    accept_name(flow::accept_verdict(
        on_file.as_ref().map(|(e, k)| (e, k)),
        &onion(&c["endpoint"]),
        &key_of(&c["discovery_key"]),
        (&onion(&c["our_intake"]), &onion(&c["our_endpoint"])),
        &onion(&c["their_intake"]),
    ))
}

#[test]
fn flow_rule_verdicts() {
    // §8 step 2: receipts.
    let receipts: Vec<Value> = [true, false]
        .into_iter()
        .flat_map(|sent| {
            CAUSES.iter().map(move |cause| {
                json!({
                    "request_sent": sent,
                    "session_ended_by": cause,
                    "verdict": receipt_name(flow::receipt(sent, &cause_named(cause))),
                })
            })
        })
        .collect();
    // §6.8: survivors, for a lower and a higher intake id of ours.
    let (low, high) = {
        let (a, b) = (id(1), id(2));
        if a.as_bytes() < b.as_bytes() {
            (a, b)
        } else {
            (b, a)
        }
    };
    let mut survivors = Vec::new();
    for (ours, theirs) in [(low, high), (high, low)] {
        for existing in ["us", "them"] {
            for new in ["us", "them"] {
                let s = flow::survivor(&ours, &theirs, dialler_named(existing), dialler_named(new));
                survivors.push(json!({
                    "our_intake": hex::encode(ours.as_bytes()),
                    "their_intake": hex::encode(theirs.as_bytes()),
                    "existing_dialled_by": existing,
                    "new_dialled_by": new,
                    "verdict": match s { Survivor::Existing => "existing", Survivor::New => "new" },
                }));
            }
        }
    }
    // §8 steps 3 and 4: CONTACT_ACCEPT.
    let (our_intake, our_endpoint, their_intake, their_endpoint) = (id(1), id(3), id(2), id(4));
    let h = |o: &OnionId| hex::encode(o.as_bytes());
    let file =
        |e: &OnionId, k: u8| json!({"endpoint": h(e), "discovery_key": hex::encode([k; 32])});
    let mut accepts = Vec::new();
    for (what, on_file, endpoint, key) in [
        (
            "the answer to a pending request",
            Value::Null,
            their_endpoint,
            5u8,
        ),
        (
            "the same again",
            file(&their_endpoint, 5),
            their_endpoint,
            5,
        ),
        (
            "the same endpoint, another key",
            file(&their_endpoint, 5),
            their_endpoint,
            6,
        ),
        ("another endpoint", file(&their_endpoint, 5), id(8), 5),
        (
            "pending, naming our own endpoint",
            Value::Null,
            our_endpoint,
            5,
        ),
        ("pending, naming our intake", Value::Null, our_intake, 5),
        (
            "pending, naming the sender's intake",
            Value::Null,
            their_intake,
            5,
        ),
        (
            "accepted, naming our own endpoint",
            file(&their_endpoint, 5),
            our_endpoint,
            5,
        ),
    ] {
        let mut c = json!({
            "case": what,
            "on_file": on_file,
            "endpoint": h(&endpoint),
            "discovery_key": hex::encode([key; 32]),
            "our_intake": h(&our_intake),
            "our_endpoint": h(&our_endpoint),
            "their_intake": h(&their_intake),
        });
        c["verdict"] = json!(accept_replay(&c));
        accepts.push(c);
    }
    // §6.8: what a lost session's messages still do.
    let lost: Vec<Value> = samples()
        .into_iter()
        .map(|(name, m)| {
            json!({
                "message": name,
                "verdict": if flow::kept_from_a_lost_session(&m) { "handled" } else { "ignored" },
            })
        })
        .collect();
    // §8 step 1: how many keys an endpoint lists (Arti allows 160).
    let sizes: Vec<Value> = [
        0usize, 1, 2, 15, 16, 17, 32, 33, 100, 143, 144, 145, 159, 160, 161,
    ]
    .into_iter()
    .map(|real| {
        json!({
            "authorized_keys": real,
            "limit": 160,
            "verdict": flow::authorized_set_size(real, 160)
                .map_or(json!("no room: refuse the new contact"), |n| json!(n)),
        })
    })
    .collect();
    // §8 step 5 and §9: when to dial again after an endpoint session ended.
    let ends: Vec<Value> = CAUSES
        .iter()
        .map(|cause| {
            json!({
                "session_ended_by": cause,
                "verdict": match flow::redial_after(&cause_named(cause)) {
                    flow::Redial::Soon => "dial again soon; keep the messages",
                    flow::Redial::Backoff => "back off; keep the messages",
                },
            })
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §6.6–§6.8 and §8: the rules of the contact flow as verdicts. \
                        `messages`: whether a message may arrive on a session (else CLOSE 1); \
                        `receipts`: what the end of the intake session a request was sent on \
                        means; `survivors`: which of two sessions with one contact survives; \
                        `contact_accepts`: what a CONTACT_ACCEPT does to what is on file; \
                        `lost_sessions`: which messages of a session that lost (§6.8) are still \
                        handled; `authorized_set_sizes`: how many keys an endpoint lists, \
                        padding included, for a number of real ones; `session_ends`: when to \
                        dial a contact again after its endpoint session ended",
        "messages": allowed_cases(),
        "receipts": receipts,
        "survivors": survivors,
        "contact_accepts": accepts,
        "lost_sessions": lost,
        "authorized_set_sizes": sizes,
        "session_ends": ends,
    });
    check("flow-rules", &doc);

    // Replay from the file alone.
    let f = pinned("flow-rules");
    for c in f["messages"].as_array().expect("messages") {
        let ok = flow::allowed(
            role_named(c["session"].as_str().expect("session")),
            c["request_already_received"].as_bool().expect("flag"),
            c["awaiting_the_contacts_answer"].as_bool().expect("flag"),
            &message_named(c["message"].as_str().expect("message")),
        );
        assert_eq!(ok, c["verdict"] == "allowed", "{c}");
    }
    for c in f["receipts"].as_array().expect("receipts") {
        let r = flow::receipt(
            c["request_sent"].as_bool().expect("flag"),
            &cause_named(c["session_ended_by"].as_str().expect("cause")),
        );
        assert_eq!(receipt_name(r), c["verdict"], "{c}");
    }
    for c in f["survivors"].as_array().expect("survivors") {
        let s = flow::survivor(
            &onion(&c["our_intake"]),
            &onion(&c["their_intake"]),
            dialler_named(c["existing_dialled_by"].as_str().expect("who")),
            dialler_named(c["new_dialled_by"].as_str().expect("who")),
        );
        let want = if c["verdict"] == "new" {
            Survivor::New
        } else {
            Survivor::Existing
        };
        assert_eq!(s, want, "{c}");
    }
    for c in f["contact_accepts"].as_array().expect("accepts") {
        assert_eq!(accept_replay(c), c["verdict"], "{}", c["case"]);
    }
    for c in f["lost_sessions"].as_array().expect("lost") {
        let m = message_named(c["message"].as_str().expect("message"));
        assert_eq!(
            flow::kept_from_a_lost_session(&m),
            c["verdict"] == "handled",
            "{c}"
        );
    }
    for c in f["session_ends"].as_array().expect("ends") {
        let r = flow::redial_after(&cause_named(c["session_ended_by"].as_str().expect("cause")));
        assert_eq!(
            r == flow::Redial::Soon,
            c["verdict"] == "dial again soon; keep the messages",
            "{c}"
        );
    }
    for c in f["authorized_set_sizes"].as_array().expect("sizes") {
        let n = flow::authorized_set_size(
            usize::try_from(c["authorized_keys"].as_u64().expect("n")).expect("fits"),
            usize::try_from(c["limit"].as_u64().expect("limit")).expect("fits"),
        );
        assert_eq!(n.map(|n| n as u64), c["verdict"].as_u64(), "{c}");
    }
}
