//! Hello verdict vectors (PROTOCOL.md §4.3, §4.6, §7.4): HELLO frames, as
//! a responder reads them off the stream, and what it must do: the error
//! it reports (§4.3's names) and what it sends back (a REFUSE with its
//! body, handshake message 2, or nothing). Sequences share one replay
//! memory, to pin when an ephemeral key is remembered (§7.4). Pinned in
//! `tests/vectors/hello-verdicts.json`. Regenerate (only when a rule
//! changes on purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test hello_vectors`.

mod common;

use std::time::Instant;

use allium_protocol::frame::{FrameDecoder, FrameType};
use allium_protocol::{
    Event, IdentityKey, LocalIdentity, Message, RefuseReason, ReplayCache, Session, SessionConfig,
    StaticKeypair, StaticPublicKey,
};
use common::noise::{Symmetric, dh, ephemeral_for, pad, public};
use common::vector_file::{check, pinned};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

fn local(seed: u8) -> LocalIdentity {
    LocalIdentity {
        identity: IdentityKey::from_seed(&[seed; 32]),
        endpoint: IdentityKey::from_seed(&[seed + 1; 32]).onion_id(),
        static_key: StaticKeypair::from_secret(&[seed + 2; 32]),
    }
}

/// The responder of every case, and the initiator whose hellos are bent.
fn responder() -> LocalIdentity {
    local(0x50)
}
fn initiator() -> LocalIdentity {
    local(0x10)
}

/// A hello frame as the initiator writes it (length, type, body).
fn hello(endpoint: bool, seed: u8) -> Vec<u8> {
    hello_offering(endpoint, seed, &[3, 2])
}

/// The same, offering `versions`.
fn hello_offering(endpoint: bool, seed: u8, versions: &[u8]) -> Vec<u8> {
    let (i, r) = (initiator(), responder());
    let config = SessionConfig {
        versions: versions.to_vec(),
        ..SessionConfig::default()
    };
    let mut rng = ChaCha20Rng::from_seed([seed; 32]);
    let now = Instant::now();
    let mut s = if endpoint {
        let mut s =
            Session::connect_endpoint(config, &i, r.endpoint, r.static_key.public(), now, &mut rng)
                .expect("session");
        s.send(
            now,
            Message::Sync {
                resend_from: 1,
                last: 0,
            },
        )
        .expect("early");
        s
    } else {
        Session::connect_intake(config, &i, r.identity.onion_id(), now, &mut rng).expect("session")
    };
    s.poll_transmit().expect("a hello")
}

/// An endpoint hello built by hand with the Noise of `common/noise.rs`,
/// carrying `static_bytes` as the initiator's static key: the reference
/// never writes one whose bytes differ from its key's canonical encoding,
/// so this is how a test gets one. X25519 ignores bit 255, so a key with
/// that bit set still authenticates; only a byte comparison catches it.
fn hand_built_endpoint_hello(static_bytes: [u8; 32]) -> Vec<u8> {
    let (i, r) = (initiator(), responder());
    let mut header = b"ALLIUM".to_vec();
    header.extend_from_slice(&[2, 3, 2, 2]);
    header.extend_from_slice(r.endpoint.as_bytes());
    header.extend_from_slice(i.identity.onion_id().as_bytes());
    let mut prologue = allium_protocol::noise::PROLOGUE_DOMAIN.to_vec();
    prologue.extend_from_slice(&header);
    let (is, ie) = (*i.static_key.secret(), [0x61u8; 32]);
    let rs_pub = r.static_key.public().0;
    let mut n = Symmetric::new(allium_protocol::noise::ENDPOINT_PATTERN, &prologue);
    n.mix_hash(&rs_pub);
    let mut msg = public(&ie).to_vec();
    n.mix_hash(&public(&ie));
    n.mix_key(&dh(&ie, &rs_pub), "es");
    msg.extend(n.encrypt_and_hash(&static_bytes, "s"));
    n.mix_key(&dh(&is, &rs_pub), "ss");
    let sync = Message::Sync {
        resend_from: 1,
        last: 0,
    };
    msg.extend(n.encrypt_and_hash(&pad(&sync.encode()), "payload"));
    let mut frame = Vec::new();
    allium_protocol::frame::write_frame(&mut frame, FrameType::Hello, &[header, msg].concat());
    frame
}

/// Offsets in the frame: 2 length bytes and the type come first.
const MAGIC: usize = 3;
const N: usize = 9;
/// With two versions offered.
const PURPOSE: usize = 12;
const RESPONDER: usize = 13;
const INITIATOR: usize = 45;
const NOISE: usize = 77;

fn with_len(mut f: Vec<u8>) -> Vec<u8> {
    let len = u16::try_from(f.len() - 2).unwrap_or(u16::MAX);
    f[..2].copy_from_slice(&len.to_be_bytes());
    f
}

fn set(mut f: Vec<u8>, at: usize, bytes: &[u8]) -> Vec<u8> {
    f[at..at + bytes.len()].copy_from_slice(bytes);
    f
}

/// How the responder's application answers the admission event.
#[derive(Clone, Copy)]
enum Policy {
    /// At the intake: admit (a stranger may always try).
    Stranger,
    /// At the endpoint: the claimed id is a contact whose key on file is
    /// the initiator's.
    Contact,
    /// At the endpoint: a contact, but the key on file is another one.
    ContactWithAnotherKey,
    /// At the endpoint: not a contact.
    NotAContact,
    /// At the endpoint: a contact whose key on file is the initiator's, in
    /// its canonical bytes (whatever the hello carries).
    ContactCanonical,
}

fn policy_named(s: &str) -> Policy {
    match s {
        "admit as a stranger" => Policy::Stranger,
        "a contact with this static key" => Policy::Contact,
        "a contact with another static key" => Policy::ContactWithAnotherKey,
        "not a contact" => Policy::NotAContact,
        "a contact whose key on file is the initiator's canonical one" => Policy::ContactCanonical,
        other => panic!("unknown policy {other}"),
    }
}

fn policy_name(p: Policy) -> &'static str {
    match p {
        Policy::Stranger => "admit as a stranger",
        Policy::Contact => "a contact with this static key",
        Policy::ContactWithAnotherKey => "a contact with another static key",
        Policy::NotAContact => "not a contact",
        Policy::ContactCanonical => "a contact whose key on file is the initiator's canonical one",
    }
}

/// Feeds `frame` to a fresh responder at `service` and reports what it
/// does: its error (if it closed) and the frames it sent.
fn respond(service: &str, frame: &[u8], policy: Policy, replay: &mut ReplayCache) -> Value {
    let r = responder();
    let now = Instant::now();
    let mut rng = ChaCha20Rng::from_seed([0x77; 32]);
    let mut s = match service {
        "intake" => Session::accept_intake(SessionConfig::default(), &r, now, &mut rng),
        "endpoint" => Session::accept_endpoint(SessionConfig::default(), &r, now, &mut rng),
        other => panic!("unknown service {other}"),
    };
    let _ = s.handle_bytes(now, frame);
    let mut closed = Value::Null;
    while let Some(ev) = s.poll_event() {
        match ev {
            Event::Admission(hello) => {
                let _ = match policy {
                    Policy::Stranger => s.admit_stranger(now, replay),
                    Policy::Contact => s.admit_contact(
                        now,
                        replay,
                        hello.static_key.unwrap_or(StaticPublicKey([9; 32])),
                    ),
                    Policy::ContactWithAnotherKey => s.admit_contact(
                        now,
                        replay,
                        StaticKeypair::from_secret(&[0x33; 32]).public(),
                    ),
                    Policy::NotAContact => {
                        s.refuse(Some(RefuseReason::NotAuthorized));
                        Ok(())
                    }
                    Policy::ContactCanonical => {
                        s.admit_contact(now, replay, initiator().static_key.public())
                    }
                };
            }
            Event::Closed(c) => closed = json!(format!("{c:?}")),
            _ => {}
        }
    }
    json!({"closed": closed, "sent": sent_frames(&mut s)})
}

/// The frames a session has to write, by type (a REFUSE with its body).
fn sent_frames(s: &mut Session) -> Vec<Value> {
    let mut sent = Vec::new();
    let mut dec = FrameDecoder::default();
    while let Some(bytes) = s.poll_transmit() {
        let mut input = &bytes[..];
        while let Ok(Some(f)) = dec.next_frame(&mut input, u16::MAX.into()) {
            sent.push(match f.kind {
                FrameType::Refuse => json!(format!("REFUSE {}", hex::encode(&f.body))),
                other => json!(other.name()),
            });
        }
    }
    sent
}

type Case = (&'static str, &'static str, Vec<u8>, Policy);
/// One hello of a sequence: the service, the frame, the admission.
type Step = (&'static str, Vec<u8>, Policy);

fn single_cases() -> Vec<Case> {
    use Policy::{Contact, ContactCanonical, ContactWithAnotherKey, NotAContact, Stranger};
    let xx = hello(false, 1);
    let ik = hello(true, 2);
    let r = responder();
    let i = initiator();
    let small_order = {
        let mut k = [0u8; 32];
        k[0] = 1;
        k
    };
    let mut bigger = ik.clone();
    bigger.resize(4096 + 3, 0x41); // a 4,097-byte frame: over the cap
    let bigger = with_len(bigger);
    let mut xx_payload = xx.clone();
    xx_payload.push(0);
    let xx_payload = with_len(xx_payload);
    let mut ik_tampered = ik.clone();
    ik_tampered[NOISE + 40] ^= 1; // inside the encrypted static key
    let truncated = with_len(xx[..NOISE + 31].to_vec());
    let canonical = initiator().static_key.public().0;
    let mut high_bit = canonical;
    high_bit[31] |= 0x80;
    vec![
        ("a valid intake hello", "intake", xx.clone(), Stranger),
        (
            "a valid endpoint hello from a contact",
            "endpoint",
            ik.clone(),
            Contact,
        ),
        (
            "#1 wrong magic",
            "intake",
            set(xx.clone(), MAGIC, b"ALLIUN"),
            Stranger,
        ),
        (
            "#2 no versions",
            "intake",
            set(xx.clone(), N, &[0]),
            Stranger,
        ),
        (
            "#2 versions not decreasing",
            "intake",
            set(xx.clone(), N + 1, &[2, 3]),
            Stranger,
        ),
        (
            "#2 a version 0",
            "intake",
            set(xx.clone(), N + 1, &[3, 0]),
            Stranger,
        ),
        (
            "#2 purpose 3",
            "intake",
            set(xx.clone(), PURPOSE, &[3]),
            Stranger,
        ),
        (
            "#2 an initiator id of small order",
            "intake",
            set(xx.clone(), INITIATOR, &small_order),
            Stranger,
        ),
        (
            "#2 a body that ends in the header",
            "intake",
            with_len(xx[..INITIATOR + 10].to_vec()),
            Stranger,
        ),
        (
            "#3 only versions the responder does not speak",
            "intake",
            set(xx.clone(), N + 1, &[9, 8]),
            Stranger,
        ),
        (
            "#3 version 1 alone is refused too",
            "intake",
            set(hello_offering(false, 1, &[2]), N + 1, &[1]),
            Stranger,
        ),
        (
            "#3 offering [4, 1]: the first offer decides",
            "intake",
            set(set(xx.clone(), N, &[2]), N + 1, &[4, 1]),
            Stranger,
        ),
        (
            "a version-2 initiator is served at version 2",
            "intake",
            hello_offering(false, 1, &[2]),
            Stranger,
        ),
        (
            "#4 an endpoint hello at the intake",
            "intake",
            ik.clone(),
            Stranger,
        ),
        (
            "#4 an intake hello at the endpoint",
            "endpoint",
            xx.clone(),
            Contact,
        ),
        (
            "#5 another responder id",
            "intake",
            set(xx.clone(), RESPONDER, i.identity.onion_id().as_bytes()),
            Stranger,
        ),
        (
            "#6 the responder's own intake id as initiator",
            "intake",
            set(xx.clone(), INITIATOR, r.identity.onion_id().as_bytes()),
            Stranger,
        ),
        (
            "#6 the responder's own endpoint id as initiator",
            "intake",
            set(xx.clone(), INITIATOR, r.endpoint.as_bytes()),
            Stranger,
        ),
        (
            "#7 Noise message 1 shorter than a key",
            "intake",
            truncated,
            Stranger,
        ),
        (
            "#7 an all-zero ephemeral key",
            "intake",
            set(xx.clone(), NOISE, &[0; 32]),
            Stranger,
        ),
        (
            "#7 an ephemeral key of small order",
            "intake",
            set(xx.clone(), NOISE, &small_order),
            Stranger,
        ),
        (
            "#8 IK message 1 that does not authenticate",
            "endpoint",
            ik_tampered,
            Contact,
        ),
        (
            "#9 an XX message 1 with a payload",
            "intake",
            xx_payload,
            Stranger,
        ),
        ("#11 not a contact", "endpoint", ik.clone(), NotAContact),
        (
            "a hand-built hello with the initiator's key as it is: admitted",
            "endpoint",
            hand_built_endpoint_hello(canonical),
            ContactCanonical,
        ),
        (
            "#11 the same key with bit 255 set: it authenticates, but its bytes are not the ones on file",
            "endpoint",
            hand_built_endpoint_hello(high_bit),
            ContactCanonical,
        ),
        (
            "#11 a contact whose key on file differs",
            "endpoint",
            ik.clone(),
            ContactWithAnotherKey,
        ),
        (
            "§4.6 an early message too large: the frame is over 4,096 bytes",
            "endpoint",
            bigger,
            Contact,
        ),
    ]
}

/// Sequences of hellos to one responder sharing one replay memory (§7.4).
fn sequences() -> Vec<(&'static str, Vec<Step>)> {
    use Policy::{Contact, ContactWithAnotherKey, NotAContact, Stranger};
    let xx = hello(false, 3);
    let ik = hello(true, 4);
    vec![
        (
            "an endpoint hello, then the same bytes again",
            vec![
                ("endpoint", ik.clone(), Contact),
                ("endpoint", ik.clone(), Contact),
            ],
        ),
        (
            "a replay from a claimed id that is not a contact gets the refusal, not Replayed (#11 before #10)",
            vec![
                ("endpoint", ik.clone(), Contact),
                ("endpoint", ik.clone(), NotAContact),
            ],
        ),
        (
            "an intake hello whose handshake never finishes, then the same bytes again",
            vec![
                ("intake", xx.clone(), Stranger),
                ("intake", xx.clone(), Stranger),
            ],
        ),
        (
            "refused at #11 (not a contact) leaves no trace: the same bytes are admitted later",
            vec![
                ("endpoint", ik.clone(), NotAContact),
                ("endpoint", ik.clone(), Contact),
            ],
        ),
        (
            "refused at #11 (another key on file) leaves no trace",
            vec![
                ("endpoint", hello(true, 5), ContactWithAnotherKey),
                ("endpoint", hello(true, 5), Contact),
            ],
        ),
        (
            "a hello refused for its version (#3) leaves no trace",
            vec![
                ("intake", set(hello(false, 6), N + 1, &[9, 8]), Stranger),
                ("intake", hello(false, 6), Stranger),
            ],
        ),
    ]
}

fn run_case(service: &str, frame: &[u8], policy: Policy, replay: &mut ReplayCache) -> Value {
    let mut v = respond(service, frame, policy, replay);
    v["service"] = json!(service);
    v["admission"] = json!(policy_name(policy));
    v["hello"] = json!(hex::encode(frame));
    v
}

#[test]
fn hello_verdicts() {
    let singles: Vec<Value> = single_cases()
        .into_iter()
        .map(|(what, service, frame, policy)| {
            let mut v = run_case(service, &frame, policy, &mut ReplayCache::default());
            v["case"] = json!(what);
            v
        })
        .collect();
    let seqs: Vec<Value> = sequences()
        .into_iter()
        .map(|(what, steps)| {
            let mut replay = ReplayCache::default();
            let steps: Vec<Value> = steps
                .into_iter()
                .map(|(service, frame, policy)| run_case(service, &frame, policy, &mut replay))
                .collect();
            json!({"case": what, "steps": steps})
        })
        .collect();
    let r = responder();
    let doc = json!({
        "description": "PROTOCOL.md §4.3, §4.6 and §7.4: HELLO frames (length, type, body) as a \
                        responder reads them, the admission its application decides (for hellos \
                        that reach #11), and what it must do: `closed`, the error it closes with \
                        (null: the handshake goes on), and `sent`, the frames it writes. In \
                        `sequences` the steps share one replay memory",
        "responder": {
            "intake": hex::encode(r.identity.onion_id().as_bytes()),
            "endpoint": hex::encode(r.endpoint.as_bytes()),
            "static_secret": hex::encode(r.static_key.secret()),
            "static_public": hex::encode(r.static_key.public().0),
            "intake_seed": hex::encode(r.identity.seed()),
            "endpoint_seed": hex::encode([0x51u8; 32]),
        },
        "cases": singles,
        "sequences": seqs,
    });
    check("hello-verdicts", &doc);

    let f = pinned("hello-verdicts");
    let replay_one = |c: &Value, replay: &mut ReplayCache| {
        let frame = hex::decode(c["hello"].as_str().expect("hello")).expect("hex");
        let got = respond(
            c["service"].as_str().expect("service"),
            &frame,
            policy_named(c["admission"].as_str().expect("admission")),
            replay,
        );
        assert_eq!(got["closed"], c["closed"], "{c}");
        assert_eq!(got["sent"], c["sent"], "{c}");
    };
    for c in f["cases"].as_array().expect("cases") {
        replay_one(c, &mut ReplayCache::default());
    }
    for s in f["sequences"].as_array().expect("sequences") {
        let mut replay = ReplayCache::default();
        for c in s["steps"].as_array().expect("steps") {
            replay_one(c, &mut replay);
        }
    }
}

/// What a session does with `bytes` read off the stream: as a responder
/// waiting for the hello, or as an intake initiator that sent its hello
/// and waits for message 2.
fn frame_verdict(side: &str, bytes: &[u8], end_of_stream: bool) -> Value {
    let now = Instant::now();
    let mut rng = ChaCha20Rng::from_seed([0x66; 32]);
    let mut s = match side {
        "responder, before the hello" => {
            Session::accept_intake(SessionConfig::default(), &responder(), now, &mut rng)
        }
        "initiator, waiting for message 2" => {
            let mut s = Session::connect_intake(
                SessionConfig::default(),
                &initiator(),
                responder().identity.onion_id(),
                now,
                &mut rng,
            )
            .expect("session");
            let _hello = s.poll_transmit();
            s
        }
        other => panic!("unknown side {other}"),
    };
    let _ = s.handle_bytes(now, bytes);
    if end_of_stream {
        s.handle_eof();
    }
    let mut closed = Value::Null;
    while let Some(ev) = s.poll_event() {
        if let Event::Closed(c) = ev {
            closed = json!(format!("{c:?}"));
        }
    }
    json!({"closed": closed})
}

fn frame(kind: FrameType, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    allium_protocol::frame::write_frame(&mut out, kind, body);
    out
}

/// PROTOCOL.md §3: frames a session must refuse before it reads their
/// body, or because they come in the wrong state.
#[test]
fn frame_verdicts() {
    let r = "responder, before the hello";
    let i = "initiator, waiting for message 2";
    let xx = hello(false, 1);
    let mut over = vec![0x10, 0x01, 1]; // LEN 4,097: over the cap before the handshake
    over.resize(40, 0);
    let transport = frame(FrameType::Transport, &[0; 16]);
    let cases: Vec<(&str, &str, Vec<u8>, bool)> = vec![
        ("a valid hello", r, xx.clone(), false),
        ("a valid hello, then the stream ends", r, xx.clone(), true),
        ("LEN 0", r, vec![0, 0], false),
        (
            "LEN 4,097 before the handshake: refused before its body is read",
            r,
            over,
            false,
        ),
        (
            "LEN 65,535 before the handshake",
            r,
            vec![0xff, 0xff],
            false,
        ),
        ("an unknown frame type (9)", r, vec![0, 1, 9], false),
        ("frame type 0", r, vec![0, 1, 0], false),
        ("a TRANSPORT frame first", r, transport.clone(), false),
        (
            "a HANDSHAKE frame first",
            r,
            frame(FrameType::Handshake, &[0; 32]),
            false,
        ),
        (
            "a REFUSE sent to a responder",
            r,
            frame(FrameType::Refuse, &[5]),
            false,
        ),
        (
            "two hellos in one write",
            r,
            [xx.clone(), xx.clone()].concat(),
            false,
        ),
        ("the stream ends inside a frame header", r, vec![0], true),
        ("the stream ends inside a hello", r, xx[..40].to_vec(), true),
        ("the stream ends before anything", r, vec![], true),
        ("a HELLO instead of message 2", i, xx.clone(), false),
        (
            "a TRANSPORT frame instead of message 2",
            i,
            transport,
            false,
        ),
        (
            "a REFUSE 3 instead of message 2",
            i,
            frame(FrameType::Refuse, &[3]),
            false,
        ),
        (
            "a malformed REFUSE instead of message 2",
            i,
            frame(FrameType::Refuse, &[9]),
            false,
        ),
    ];
    let list: Vec<Value> = cases
        .into_iter()
        .map(|(what, side, bytes, end)| {
            let mut v = frame_verdict(side, &bytes, end);
            v["case"] = json!(what);
            v["side"] = json!(side);
            v["bytes"] = json!(hex::encode(&bytes));
            v["then_end_of_stream"] = json!(end);
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §3: bytes read off a fresh stream (hex) by a session in the \
                        state `side` names, then the end of the stream if \
                        `then_end_of_stream`, and `closed`, the error it must close with \
                        (null: it goes on). A two-hello write closes on the second",
        "cases": list,
    });
    check("frames", &doc);
    for c in pinned("frames")["cases"].as_array().expect("cases") {
        let bytes = hex::decode(c["bytes"].as_str().expect("bytes")).expect("hex");
        let got = frame_verdict(
            c["side"].as_str().expect("side"),
            &bytes,
            c["then_end_of_stream"].as_bool().expect("flag"),
        );
        assert_eq!(got["closed"], c["closed"], "{}", c["case"]);
    }
}

const REPLY_SEED: [u8; 32] = [0x44; 32];

/// The intake initiator of these cases and its hello.
fn waiting_initiator() -> (Session, Vec<u8>) {
    let mut s = Session::connect_intake(
        SessionConfig::default(),
        &initiator(),
        responder().identity.onion_id(),
        Instant::now(),
        &mut ChaCha20Rng::from_seed(REPLY_SEED),
    )
    .expect("session");
    let hello = s.poll_transmit().expect("hello");
    (s, hello)
}

/// A HANDSHAKE frame carrying XX message 2 built by hand for the hello of
/// [`waiting_initiator`]: the responder's static key `s_pub` and the
/// payload `proof`, whatever they are.
fn hand_built_message_2(hello: &[u8], s_pub: [u8; 32], proof: &[u8]) -> Vec<u8> {
    let header = &hello[3..NOISE];
    let mut prologue = allium_protocol::noise::PROLOGUE_DOMAIN.to_vec();
    prologue.extend_from_slice(header);
    let ie = ephemeral_for(REPLY_SEED);
    let ie_pub = public(&ie);
    assert_eq!(&hello[NOISE..NOISE + 32], &ie_pub, "the derived ephemeral");
    let re = [0x62u8; 32];
    let mut n = Symmetric::new(allium_protocol::noise::INTAKE_PATTERN, &prologue);
    n.mix_hash(&ie_pub);
    n.encrypt_and_hash(&[], "payload (empty)");
    let mut msg = public(&re).to_vec();
    n.mix_hash(&public(&re));
    n.mix_key(&dh(&re, &ie_pub), "ee");
    msg.extend(n.encrypt_and_hash(&s_pub, "s"));
    // es from the initiator's side: DH(e, s), which needs no secret of s.
    n.mix_key(&dh(&ie, &s_pub), "es");
    msg.extend(n.encrypt_and_hash(proof, "payload"));
    let mut frame = Vec::new();
    allium_protocol::frame::write_frame(&mut frame, FrameType::Handshake, &msg);
    frame
}

/// The static key and identity proof one side of an XX handshake sends
/// (`sender`, to `receiver`), each case breaking one check of §4.5 or §4.4
/// (`claimed`: what the proof must be for, in words).
fn static_and_proof_cases(
    sender: &LocalIdentity,
    receiver: &LocalIdentity,
    claimed: &str,
    stranger_seed: u8,
) -> Vec<(String, [u8; 32], Vec<u8>)> {
    let own = sender.static_key.public();
    let proof = |by: &IdentityKey, key: &StaticPublicKey| by.prove(key).to_bytes().to_vec();
    let good = proof(&sender.identity, &own);
    let stranger = IdentityKey::from_seed(&[stranger_seed; 32]);
    let other_key = StaticKeypair::from_secret(&[stranger_seed + 1; 32]).public();
    let mut small = [0u8; 32];
    small[0] = 1;
    let theirs = receiver.static_key.public();
    vec![
        (
            format!("the sender's key and its proof for {claimed}: established"),
            own.0,
            good.clone(),
        ),
        (
            "the receiver's own static key (Reflected)".into(),
            theirs.0,
            proof(&sender.identity, &theirs),
        ),
        ("a static key of small order".into(), small, good.clone()),
        (
            format!("a proof by another identity than {claimed}"),
            own.0,
            proof(&stranger, &own),
        ),
        (
            "a proof for another static key".into(),
            own.0,
            proof(&sender.identity, &other_key),
        ),
        ("no proof".into(), own.0, vec![]),
        ("a proof a byte short".into(), own.0, good[..95].to_vec()),
        (
            "a proof a byte long".into(),
            own.0,
            [good.clone(), vec![0]].concat(),
        ),
    ]
}

/// What session `s` does with the handshake frame `frame`: the error it
/// closes with (null: none), whether it is established, what it writes.
fn reads(mut s: Session, frame: &[u8]) -> Value {
    let _ = s.handle_bytes(Instant::now(), frame);
    let mut closed = Value::Null;
    let mut established = false;
    while let Some(ev) = s.poll_event() {
        match ev {
            Event::Closed(c) => closed = json!(format!("{c:?}")),
            Event::Established { .. } => established = true,
            _ => {}
        }
    }
    json!({"closed": closed, "established": established, "sent": sent_frames(&mut s)})
}

fn initiator_reads(frame: &[u8]) -> Value {
    reads(waiting_initiator().0, frame)
}

/// PROTOCOL.md §4.5 and §4.4 from the initiator's side: XX message 2 built
/// by hand, with the responder's static key and proof chosen to break one
/// check each, and what the initiator must do.
#[test]
fn message_2_verdicts() {
    let (_, hello) = waiting_initiator();
    let cases = static_and_proof_cases(&responder(), &initiator(), "the id dialled", 0x70);
    let list: Vec<Value> = cases
        .into_iter()
        .map(|(what, s_pub, payload)| {
            let frame = hand_built_message_2(&hello, s_pub, &payload);
            let mut v = initiator_reads(&frame);
            v["case"] = json!(what);
            v["message_2"] = json!(hex::encode(&frame));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.5: an intake initiator (the keys of `local(0x10)` in \
                        tests/hello_vectors.rs, dialling the responder of hello-verdicts.json) \
                        sent `hello`; each case is the HANDSHAKE frame it then reads, built by \
                        hand, and what it must do: `closed` (null: it goes on), whether it is \
                        `established`, and the frames it writes (message 3)",
        "initiator": {
            "intake_seed": hex::encode(initiator().identity.seed()),
            "static_secret": hex::encode(initiator().static_key.secret()),
            "ephemeral_secret": hex::encode(ephemeral_for(REPLY_SEED)),
        },
        "hello": hex::encode(&hello),
        "cases": list,
    });
    check("message-2-verdicts", &doc);
    for c in pinned("message-2-verdicts")["cases"]
        .as_array()
        .expect("cases")
    {
        let frame = hex::decode(c["message_2"].as_str().expect("frame")).expect("hex");
        let got = initiator_reads(&frame);
        assert_eq!(got["closed"], c["closed"], "{}", c["case"]);
        assert_eq!(got["established"], c["established"], "{}", c["case"]);
        assert_eq!(got["sent"], c["sent"], "{}", c["case"]);
    }
}

const RESPONDER_SEED: [u8; 32] = [0x45; 32];

/// An intake responder that read the hello of [`waiting_initiator`],
/// admitted it and wrote message 2; and that message 2.
fn responder_after_message_2(replay: &mut ReplayCache) -> (Session, Vec<u8>) {
    let (_, hello) = waiting_initiator();
    let now = Instant::now();
    let mut s = Session::accept_intake(
        SessionConfig::default(),
        &responder(),
        now,
        &mut ChaCha20Rng::from_seed(RESPONDER_SEED),
    );
    s.handle_bytes(now, &hello).expect("hello");
    while let Some(ev) = s.poll_event() {
        if let Event::Admission(_) = ev {
            s.admit_stranger(now, replay).expect("admitted");
        }
    }
    let message_2 = s.poll_transmit().expect("message 2");
    (s, message_2)
}

/// A HANDSHAKE frame carrying XX message 3 built by hand: the initiator's
/// static key `s_pub` and payload `proof`, whatever they are. Checks on
/// the way that the hand-built state reproduces the responder's message 2.
fn hand_built_message_3(hello: &[u8], message_2: &[u8], s_pub: [u8; 32], proof: &[u8]) -> Vec<u8> {
    let r = responder();
    let header = &hello[3..NOISE];
    let mut prologue = allium_protocol::noise::PROLOGUE_DOMAIN.to_vec();
    prologue.extend_from_slice(header);
    let ie = ephemeral_for(REPLY_SEED);
    let re = ephemeral_for(RESPONDER_SEED);
    let (ie_pub, re_pub) = (public(&ie), public(&re));
    let rs_pub = r.static_key.public();
    let mut n = Symmetric::new(allium_protocol::noise::INTAKE_PATTERN, &prologue);
    n.mix_hash(&ie_pub);
    n.encrypt_and_hash(&[], "payload (empty)");
    // Message 2, rebuilt: its proof is deterministic (Ed25519).
    let mut rebuilt = re_pub.to_vec();
    n.mix_hash(&re_pub);
    n.mix_key(&dh(&re, &ie_pub), "ee");
    rebuilt.extend(n.encrypt_and_hash(&rs_pub.0, "s"));
    n.mix_key(&dh(&ie, &rs_pub.0), "es");
    rebuilt.extend(n.encrypt_and_hash(&r.identity.prove(&rs_pub).to_bytes(), "payload"));
    let mut frame_2 = Vec::new();
    allium_protocol::frame::write_frame(&mut frame_2, FrameType::Handshake, &rebuilt);
    assert_eq!(
        frame_2, message_2,
        "the hand-built state follows the responder"
    );
    // Message 3: s, se, payload; se from the responder's side, DH(e, s).
    let mut msg = n.encrypt_and_hash(&s_pub, "s");
    n.mix_key(&dh(&re, &s_pub), "se");
    msg.extend(n.encrypt_and_hash(proof, "payload"));
    let mut frame = Vec::new();
    allium_protocol::frame::write_frame(&mut frame, FrameType::Handshake, &msg);
    frame
}

fn responder_reads(frame: &[u8]) -> Value {
    reads(
        responder_after_message_2(&mut ReplayCache::default()).0,
        frame,
    )
}

/// PROTOCOL.md §4.5 and §4.4 from the responder's side: XX message 3 built
/// by hand, breaking one check each, and what the intake must do.
#[test]
fn message_3_verdicts() {
    let (_, hello) = waiting_initiator();
    let (_, message_2) = responder_after_message_2(&mut ReplayCache::default());
    let cases = static_and_proof_cases(
        &initiator(),
        &responder(),
        "the INITIATOR of the hello",
        0x72,
    );
    let list: Vec<Value> = cases
        .into_iter()
        .map(|(what, s_pub, payload)| {
            let frame = hand_built_message_3(&hello, &message_2, s_pub, &payload);
            let mut v = responder_reads(&frame);
            v["case"] = json!(what);
            v["message_3"] = json!(hex::encode(&frame));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.5: the responder of hello-verdicts.json, at its intake, \
                        read `hello` (from message-2-verdicts.json's initiator), admitted it and \
                        wrote `message_2` with the ephemeral secret given; each case is the \
                        HANDSHAKE frame it then reads, built by hand, and what it must do: \
                        `closed` (null: established), `established`, and the frames it writes",
        "responder_ephemeral_secret": hex::encode(ephemeral_for(RESPONDER_SEED)),
        "hello": hex::encode(&hello),
        "message_2": hex::encode(&message_2),
        "cases": list,
    });
    check("message-3-verdicts", &doc);
    for c in pinned("message-3-verdicts")["cases"]
        .as_array()
        .expect("cases")
    {
        let frame = hex::decode(c["message_3"].as_str().expect("frame")).expect("hex");
        let got = responder_reads(&frame);
        assert_eq!(got["closed"], c["closed"], "{}", c["case"]);
        assert_eq!(got["established"], c["established"], "{}", c["case"]);
        assert_eq!(got["sent"], c["sent"], "{}", c["case"]);
    }
}
