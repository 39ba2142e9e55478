//! Known-answer vectors: the exact bytes of both handshakes and of a few
//! frames, for fixed keys and a fixed RNG, pinned in `tests/vectors/*.json`
//! so that another implementation can check itself against ours.
//!
//! Each vector records every secret input (identity seeds, Noise static
//! secrets, and the ephemeral secrets our RNG produced), so it can be
//! reproduced without our RNG. `reproduce_with_plain_noise` does just that
//! with `snow`'s own X25519 and the prologue as PROTOCOL.md defines it.
//!
//! Regenerate (only when the protocol changes on purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test vectors`.

mod common;

use std::time::Instant;

use allium_protocol::frame::{FrameDecoder, FrameType};
use allium_protocol::noise::{ENDPOINT_PATTERN, INTAKE_PATTERN, PROLOGUE_DOMAIN};
use allium_protocol::{
    ContactRequest, DiscoveryKey, Event, IdentityKey, LocalIdentity, Message, ReplayCache, Session,
    SessionConfig, StaticKeypair,
};
use common::noise::{ephemeral_for, pad};
use common::vector_file::{check, pinned, transcript_frames, unhex};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{Value, json};

struct Party {
    identity_seed: [u8; 32],
    endpoint_seed: [u8; 32],
    static_secret: [u8; 32],
}

impl Party {
    fn new(tag: u8) -> Self {
        Party {
            identity_seed: [tag; 32],
            endpoint_seed: [tag + 1; 32],
            static_secret: [tag + 2; 32],
        }
    }
    fn local(&self) -> LocalIdentity {
        LocalIdentity {
            identity: IdentityKey::from_seed(&self.identity_seed),
            endpoint: IdentityKey::from_seed(&self.endpoint_seed).onion_id(),
            static_key: StaticKeypair::from_secret(&self.static_secret),
        }
    }
    fn describe(&self) -> Value {
        let l = self.local();
        json!({
            "identity_seed": hex::encode(self.identity_seed),
            "identity_public": hex::encode(l.identity.onion_id().as_bytes()),
            "address": l.identity.onion_id().to_address(),
            "endpoint_seed": hex::encode(self.endpoint_seed),
            "endpoint_public": hex::encode(l.endpoint.as_bytes()),
            "endpoint_address": l.endpoint.to_address(),
            "static_secret": hex::encode(self.static_secret),
            "static_public": hex::encode(l.static_key.public().0),
        })
    }
}

fn frames(bytes: &[u8]) -> Vec<Value> {
    let mut d = FrameDecoder::default();
    let mut input = bytes;
    let mut out = Vec::new();
    while let Some(f) = d
        .next_frame(&mut input, 65535)
        .expect("our own frames decode")
    {
        out.push(json!({ "type": f.kind.name(), "body": hex::encode(&f.body) }));
    }
    out
}

fn transcript(endpoint: bool) -> Value {
    let (alice, bob) = (Party::new(0x01), Party::new(0x11));
    let (a, b) = (alice.local(), bob.local());
    let (init_seed, resp_seed) = ([0xA0; 32], [0xB0; 32]);
    let now = Instant::now();
    let cfg = SessionConfig::default();
    let (mut init, mut resp, first) = if endpoint {
        let init = Session::connect_endpoint(
            cfg.clone(),
            &a,
            b.endpoint,
            b.static_key.public(),
            now,
            &mut ChaCha20Rng::from_seed(init_seed),
        )
        .expect("connect");
        let resp = Session::accept_endpoint(cfg, &b, now, &mut ChaCha20Rng::from_seed(resp_seed));
        // An endpoint session starts with each side's SYNC (§6.3); the
        // initiator's rides the hello as the early message.
        (
            init,
            resp,
            Message::Sync {
                resend_from: 1,
                last: 0,
            },
        )
    } else {
        let init = Session::connect_intake(
            cfg.clone(),
            &a,
            b.identity.onion_id(),
            now,
            &mut ChaCha20Rng::from_seed(init_seed),
        )
        .expect("connect");
        let resp = Session::accept_intake(cfg, &b, now, &mut ChaCha20Rng::from_seed(resp_seed));
        let req = Message::ContactRequest(ContactRequest {
            nickname: "Alice".into(),
            greeting: "Hello Bob, it's Alice.".into(),
            endpoint: a.endpoint,
            discovery_key: DiscoveryKey([0x42; 32]),
        });
        (init, resp, req)
    };
    init.send(now, first.clone()).expect("send");
    // Only what §6.7 allows: on the intake the responder may accept on the
    // same session; on the endpoint it sends its own SYNC.
    let reply = if endpoint {
        Message::Sync {
            resend_from: 1,
            last: 0,
        }
    } else {
        Message::ContactAccept(allium_protocol::ContactAccept {
            endpoint: b.endpoint,
            discovery_key: DiscoveryKey([0x24; 32]),
        })
    };
    let mut replay = ReplayCache::default();
    let mut wire = Vec::new();
    let mut replied = false;
    for _ in 0..10 {
        if let Some(bytes) = init.poll_transmit() {
            resp.handle_bytes(now, &bytes).expect("responder accepts");
            wire.push(json!({ "from": "initiator", "bytes": hex::encode(&bytes), "frames": frames(&bytes) }));
        }
        while let Some(ev) = resp.poll_event() {
            match ev {
                Event::Admission(_) if endpoint => resp
                    .admit_contact(now, &mut replay, a.static_key.public())
                    .expect("admit"),
                Event::Admission(_) => resp.admit_stranger(now, &mut replay).expect("admit"),
                Event::Message(m) => {
                    assert_eq!(m, first);
                    if !replied {
                        resp.send(now, reply.clone()).expect("reply");
                        replied = true;
                    }
                }
                _ => {}
            }
        }
        if let Some(bytes) = resp.poll_transmit() {
            init.handle_bytes(now, &bytes).expect("initiator accepts");
            wire.push(json!({ "from": "responder", "bytes": hex::encode(&bytes), "frames": frames(&bytes) }));
        }
    }
    let got: Vec<_> = std::iter::from_fn(|| init.poll_event()).collect();
    assert!(got.contains(&Event::Message(reply.clone())));
    json!({
        "description": if endpoint {
            "Endpoint handshake (Noise IK): Alice dials Bob's endpoint; her SYNC rides the hello as the early message; Bob answers with his SYNC."
        } else {
            "Intake handshake (Noise XX): Alice sends Bob a contact request at his intake; Bob accepts it on the same session (CONTACT_ACCEPT, which §6.7 allows there)."
        },
        "noise_protocol": if endpoint { ENDPOINT_PATTERN } else { INTAKE_PATTERN },
        "initiator": alice.describe(),
        "responder": bob.describe(),
        "initiator_ephemeral_secret": hex::encode(ephemeral_for(init_seed)),
        "responder_ephemeral_secret": hex::encode(ephemeral_for(resp_seed)),
        "first_message": hex::encode(first.encode()),
        "reply_message": hex::encode(reply.encode()),
        "wire": wire,
    })
}

#[test]
fn intake_vector() {
    check("intake-handshake", &transcript(false));
}

#[test]
fn endpoint_vector() {
    check("endpoint-handshake", &transcript(true));
}

// ---- independent reproduction with plain snow ----

struct PlainResolver;
struct NoRng;
impl snow::types::Random for NoRng {
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), snow::Error> {
        Err(snow::Error::Rng)
    }
}
impl snow::resolvers::CryptoResolver for PlainResolver {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(NoRng))
    }
    fn resolve_dh(&self, c: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        snow::resolvers::DefaultResolver.resolve_dh(c)
    }
    fn resolve_hash(&self, c: &snow::params::HashChoice) -> Option<Box<dyn snow::types::Hash>> {
        snow::resolvers::DefaultResolver.resolve_hash(c)
    }
    fn resolve_cipher(
        &self,
        c: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        snow::resolvers::DefaultResolver.resolve_cipher(c)
    }
}

/// Rebuilds every handshake message of a pinned vector from its recorded
/// inputs and the rules of PROTOCOL.md §4, with `snow`'s own X25519.
fn reproduce(name: &str) {
    let v = pinned(name);
    let endpoint = v["noise_protocol"] == ENDPOINT_PATTERN;
    let wire = v["wire"].as_array().expect("wire");
    let hello = unhex(&wire[0]["frames"][0]["body"]);
    assert_eq!(wire[0]["frames"][0]["type"], FrameType::Hello.name());
    // Header: magic, 2 versions, versions 3 and 2, purpose, responder,
    // initiator.
    let header_len = 6 + 1 + 2 + 1 + 32 + 32;
    let mut expected_header = b"ALLIUM".to_vec();
    expected_header.extend_from_slice(&[2, 3, 2, if endpoint { 2 } else { 1 }]);
    let responder_id = if endpoint {
        &v["responder"]["endpoint_public"]
    } else {
        &v["responder"]["identity_public"]
    };
    expected_header.extend_from_slice(&unhex(responder_id));
    expected_header.extend_from_slice(&unhex(&v["initiator"]["identity_public"]));
    assert_eq!(&hello[..header_len], &expected_header[..]);
    let mut prologue = PROLOGUE_DOMAIN.to_vec();
    prologue.extend_from_slice(&expected_header);

    let params: snow::params::NoiseParams = v["noise_protocol"]
        .as_str()
        .expect("name")
        .parse()
        .expect("params");
    let (is, ie, rs, re) = (
        unhex(&v["initiator"]["static_secret"]),
        unhex(&v["initiator_ephemeral_secret"]),
        unhex(&v["responder"]["static_secret"]),
        unhex(&v["responder_ephemeral_secret"]),
    );
    let rs_pub = unhex(&v["responder"]["static_public"]);
    let mut ib = snow::Builder::with_resolver(params.clone(), Box::new(PlainResolver))
        .prologue(&prologue)
        .expect("p")
        .local_private_key(&is)
        .expect("s")
        .fixed_ephemeral_key_for_testing_only(&ie);
    if endpoint {
        ib = ib.remote_public_key(&rs_pub).expect("rs");
    }
    let mut init = ib.build_initiator().expect("init");
    let mut resp = snow::Builder::with_resolver(params, Box::new(PlainResolver))
        .prologue(&prologue)
        .expect("p")
        .local_private_key(&rs)
        .expect("s")
        .fixed_ephemeral_key_for_testing_only(&re)
        .build_responder()
        .expect("resp");

    let mut buf = vec![0u8; 65535];
    let mut payload = vec![0u8; 65535];
    // Message 1: the rest of the hello.
    let early = if endpoint {
        pad(&unhex(&v["first_message"]))
    } else {
        Vec::new()
    };
    let n = init.write_message(&early, &mut buf).expect("write 1");
    assert_eq!(
        hex::encode(&buf[..n]),
        hex::encode(&hello[header_len..]),
        "{name}: message 1"
    );
    resp.read_message(&buf[..n], &mut payload).expect("read 1");
    // Message 2 (and 3 for XX) from the following HANDSHAKE frames.
    let handshake_frames = transcript_frames(&v, FrameType::Handshake.name());
    assert_eq!(handshake_frames.len(), if endpoint { 1 } else { 2 });
    for (from_init, body) in handshake_frames {
        let (writer, reader) = if from_init {
            (&mut init, &mut resp)
        } else {
            (&mut resp, &mut init)
        };
        // The payload is an identity proof (XX) or empty (IK): take it from
        // the peer's reading of the pinned bytes and check it re-encrypts
        // to the same bytes.
        let len = reader
            .read_message(&body, &mut payload)
            .expect("pinned message authenticates");
        let n = writer
            .write_message(&payload[..len], &mut buf)
            .expect("write");
        assert_eq!(
            hex::encode(&buf[..n]),
            hex::encode(&body),
            "{name}: handshake message"
        );
    }
    assert!(init.is_handshake_finished() && resp.is_handshake_finished());

    // Transport frames: each decrypts to a padded message (PROTOCOL.md §5).
    let mut init = init.into_transport_mode().expect("transport");
    let mut resp = resp.into_transport_mode().expect("transport");
    let mut plaintexts = Vec::new();
    for t in wire {
        let from_init = t["from"] == "initiator";
        for f in t["frames"].as_array().expect("frames") {
            if f["type"] != FrameType::Transport.name() {
                continue;
            }
            let reader = if from_init { &mut resp } else { &mut init };
            let n = reader
                .read_message(&unhex(&f["body"]), &mut payload)
                .expect("decrypts");
            plaintexts.push(payload[..n].to_vec());
        }
    }
    let mut expected = Vec::new();
    if !endpoint {
        expected.push(pad(&unhex(&v["first_message"])));
    }
    expected.push(pad(&unhex(&v["reply_message"])));
    assert_eq!(plaintexts, expected, "{name}: transport plaintexts");
}

#[test]
fn reproduce_with_plain_noise() {
    reproduce("intake-handshake");
    reproduce("endpoint-handshake");
}

/// The endpoint transcript's initiator, rebuilt from its seeds.
fn endpoint_initiator() -> Session {
    let (alice, bob) = (Party::new(0x01), Party::new(0x11));
    let (a, b) = (alice.local(), bob.local());
    let mut s = Session::connect_endpoint(
        SessionConfig::default(),
        &a,
        b.endpoint,
        b.static_key.public(),
        Instant::now(),
        &mut ChaCha20Rng::from_seed([0xA0; 32]),
    )
    .expect("connect");
    s.send(
        Instant::now(),
        Message::Sync {
            resend_from: 1,
            last: 0,
        },
    )
    .expect("early");
    s
}

/// What the initiator does with the responder's bytes: its events, and
/// whether it writes anything back.
fn initiator_reads(responder_bytes: &[Vec<u8>]) -> Value {
    let mut init = endpoint_initiator();
    let _hello = init.poll_transmit().expect("hello");
    let mut errors = Vec::new();
    for b in responder_bytes {
        if let Err(e) = init.handle_bytes(Instant::now(), b) {
            errors.push(format!("{e:?}"));
        }
    }
    let events: Vec<String> = std::iter::from_fn(|| init.poll_event())
        .map(|e| match e {
            Event::Established { version, .. } => format!("Established (version {version})"),
            Event::Message(m) => format!("Message({m:?})"),
            Event::Closed(c) => format!("Closed({c:?})"),
            other => format!("{other:?}"),
        })
        .collect();
    let wrote = std::iter::from_fn(|| init.poll_transmit()).count();
    json!({"events": events, "errors": errors, "frames_written_back": wrote})
}

/// PROTOCOL.md §6.6: after a CLOSE, nothing counts. The endpoint
/// transcript's responder sends its SYNC, then CLOSE 0, and in the same
/// write a TRANSPORT frame that would not decrypt and a frame of an unknown
/// type: the initiator reports the close, ignores both without a word, and
/// sends no CLOSE back.
#[test]
fn frames_after_a_close_are_ignored() {
    let (alice, bob) = (Party::new(0x01), Party::new(0x11));
    let (a, b) = (alice.local(), bob.local());
    let now = Instant::now();
    let mut init = endpoint_initiator();
    let mut resp = Session::accept_endpoint(
        SessionConfig::default(),
        &b,
        now,
        &mut ChaCha20Rng::from_seed([0xB0; 32]),
    );
    let hello = init.poll_transmit().expect("hello");
    resp.handle_bytes(now, &hello).expect("hello");
    let mut replay = ReplayCache::default();
    while let Some(ev) = resp.poll_event() {
        if let Event::Admission(_) = ev {
            resp.admit_contact(now, &mut replay, a.static_key.public())
                .expect("admit");
        }
    }
    resp.send(
        now,
        Message::Sync {
            resend_from: 1,
            last: 0,
        },
    )
    .expect("sync");
    let handshake = resp.poll_transmit().expect("message 2 and the SYNC");
    resp.close(now, allium_protocol::CloseReason::Normal);
    let mut last = resp.poll_transmit().expect("the CLOSE");
    // After it: 40 bytes that are not a ciphertext of ours, then type 9.
    allium_protocol::frame::write_frame(&mut last, FrameType::Transport, &[0x5a; 40]);
    last.extend_from_slice(&[0, 2, 9, 0]);
    let doc = json!({
        "description": "PROTOCOL.md §6.6: the endpoint transcript (endpoint-handshake.json: the \
                        same keys and hello), after which the responder writes CLOSE 0 followed, \
                        in the same write, by a TRANSPORT frame that does not decrypt and a frame \
                        of unknown type 9. `responder_writes` are its two writes (hex); `initiator` \
                        is what the initiator must report (its events; no error) and that it \
                        writes nothing back",
        "transcript": "endpoint-handshake.json",
        "responder_writes": [hex::encode(&handshake), hex::encode(&last)],
        "initiator": initiator_reads(&[handshake, last]),
    });
    check("after-close", &doc);
    let f = pinned("after-close");
    let writes: Vec<Vec<u8>> = f["responder_writes"]
        .as_array()
        .expect("writes")
        .iter()
        .map(unhex)
        .collect();
    assert_eq!(initiator_reads(&writes), f["initiator"]);
    // The bytes after the CLOSE, fed one at a time, change nothing either.
    let mut one_by_one = vec![writes[0].clone()];
    one_by_one.extend(writes[1].iter().map(|b| vec![*b]));
    assert_eq!(initiator_reads(&one_by_one), f["initiator"]);
}
