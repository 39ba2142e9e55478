//! Verdict vectors: inputs a parser must accept or refuse, each with the
//! required verdict, pinned in `tests/vectors/addresses.json` (PROTOCOL.md
//! §2.3) and `tests/vectors/refuse-bodies.json` (§4.8). The format is in
//! `tests/vectors/README.md`.
//!
//! Two checks: the cases below, run through our parser, must give exactly
//! the file (so the file cannot go stale), and every case in the file is
//! replayed from the file alone (so another implementation can do the
//! same without reading this). Regenerate (only when the rules change on
//! purpose) with
//! `ALLIUM_REGENERATE_VECTORS=1 cargo test -p allium-protocol --test parse_vectors`.

mod common;

use allium_protocol::text::TextField;
use allium_protocol::{DecodeError, IdentityKey, Message, OnionId, RefuseReason};
use common::vector_file::{check, pinned};
use data_encoding::BASE32_NOPAD;
use serde_json::{Value, json};
use sha3::{Digest, Sha3_256};

/// `allium:` and the base32 of `key || checksum || version`, with a
/// correct checksum for whatever key and version: lets a case reach the
/// checks after the checksum.
fn encode(key: [u8; 32], version: u8) -> String {
    let mut h = Sha3_256::new();
    h.update(b".onion checksum");
    h.update(key);
    h.update([version]);
    let d = h.finalize();
    let mut raw = key.to_vec();
    raw.extend_from_slice(&[d[0], d[1], version]);
    format!("allium:{}", BASE32_NOPAD.encode(&raw).to_ascii_lowercase())
}

fn address_verdict(input: &str) -> Value {
    match OnionId::parse(input) {
        Ok(id) => json!({"verdict": "valid", "key": hex::encode(id.as_bytes())}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn refuse_verdict(body: &[u8]) -> Value {
    match RefuseReason::decode(body) {
        Ok(r) => json!({"verdict": "valid", "reason": format!("{r:?}")}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn address_cases() -> Vec<(&'static str, String)> {
    let id = IdentityKey::from_seed(&[7; 32]).onion_id();
    let a = id.to_address();
    let bare = id.to_onion_id_string();
    let mut typo = bare.clone().into_bytes();
    typo[10] = if typo[10] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).expect("ascii");
    // The y coordinate 2 is on no point of the curve; y = p + 1 encodes the
    // point y = 1 (the identity) in a second, non-canonical way; 01 00…00
    // is the identity itself, of small order.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2;
    let mut y_above_p = [0xffu8; 32];
    y_above_p[0] = 0xee;
    y_above_p[31] = 0x7f;
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let mut sign_bit_on_identity = identity;
    sign_bit_on_identity[31] |= 0x80;
    let mut p_plus_2 = [0xffu8; 32];
    p_plus_2[0] = 0xef;
    p_plus_2[31] = 0x7f;
    let mixed = (curve25519_dalek::edwards::CompressedEdwardsY(*id.as_bytes())
        .decompress()
        .expect("a key")
        + curve25519_dalek::constants::EIGHT_TORSION[1])
        .compress()
        .to_bytes();
    let mut one_char_more = bare.clone();
    one_char_more.push('a');
    vec![
        ("the canonical form", a.clone()),
        ("the bare id", bare.clone()),
        ("the id with .onion", format!("{bare}.onion")),
        ("prefix and suffix together", format!("allium:{bare}.onion")),
        ("any ASCII case", a.to_ascii_uppercase()),
        (
            "mixed case prefix and suffix",
            format!("AlLiUm:{bare}.OnIoN"),
        ),
        (
            "surrounding white space: ASCII, NBSP, ideographic space",
            format!(" \t\n\u{a0}\u{3000}{a}\r\n "),
        ),
        ("empty", String::new()),
        ("white space only", " \t\u{a0} ".into()),
        ("a bare prefix", "allium:".into()),
        ("a bare suffix", ".onion".into()),
        ("55 characters", a[..a.len() - 1].into()),
        ("57 characters", format!("allium:{one_char_more}")),
        (
            "white space inside is not trimmed (applications may drop it first)",
            format!("allium:{} {}", &bare[..28], &bare[28..]),
        ),
        (
            "56 characters, one of them not ASCII: counted as characters",
            format!("allium:{}é", &bare[..55]),
        ),
        ("a digit outside 2-7", format!("allium:{}1", &bare[..55])),
        ("the prefix twice", format!("allium:allium:{bare}")),
        (
            "a typo: the checksum does not match",
            format!("allium:{typo}"),
        ),
        ("version 2, checksum right", encode(*id.as_bytes(), 2)),
        ("a key that is not a curve point", encode(off_curve, 3)),
        (
            "a non-canonical key encoding (y >= p)",
            encode(y_above_p, 3),
        ),
        (
            "a small-order key (the identity point)",
            encode(identity, 3),
        ),
        (
            "the identity point with the sign bit set (x = 0): non-canonical",
            encode(sign_bit_on_identity, 3),
        ),
        (
            "y = p + 2 (y − p = 2 is on no point): not a key",
            encode(p_plus_2, 3),
        ),
        (
            "a mixed-order key (a key plus a point of order 8): a valid address",
            encode(mixed, 3),
        ),
    ]
}

fn refuse_cases() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("code 1, versions [3, 2]", vec![1, 2, 3, 2]),
        ("code 1, one version", vec![1, 1, 2]),
        ("code 2, wrong domain", vec![2]),
        ("code 3, wrong destination", vec![3]),
        ("code 4, busy", vec![4]),
        ("code 5, not authorized", vec![5]),
        ("code 6, protocol error", vec![6]),
        ("empty", vec![]),
        ("code 0", vec![0]),
        ("code 7", vec![7]),
        ("code 1 without a count", vec![1]),
        ("code 1, count 0", vec![1, 0]),
        ("code 1, count 9", vec![1, 9, 9, 8, 7, 6, 5, 4, 3, 2, 1]),
        ("code 1, fewer versions than counted", vec![1, 2, 3]),
        ("code 1, versions not decreasing", vec![1, 2, 2, 3]),
        ("code 1, a repeated version", vec![1, 2, 3, 3]),
        ("code 1, version 0", vec![1, 2, 3, 0]),
        ("code 1, trailing byte", vec![1, 1, 2, 0]),
        ("code 5, trailing byte", vec![5, 0]),
    ]
}

#[test]
fn address_verdicts() {
    let cases: Vec<Value> = address_cases()
        .into_iter()
        .map(|(what, input)| {
            let mut v = address_verdict(&input);
            v["case"] = json!(what);
            v["input"] = json!(input);
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §2.3: each input and the verdict a parser must give: \
                        \"valid\" with the 32-byte key, or the error (the check that fails \
                        first, named as the reference names it)",
        "cases": cases,
    });
    check("addresses", &doc);
    // Replay from the file alone.
    for c in pinned("addresses")["cases"].as_array().expect("cases") {
        let input = c["input"].as_str().expect("input");
        let got = address_verdict(input);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
        assert_eq!(got["key"], c["key"], "{}", c["case"]);
    }
}

#[test]
fn refuse_body_verdicts() {
    let cases: Vec<Value> = refuse_cases()
        .into_iter()
        .map(|(what, body)| {
            let mut v = refuse_verdict(&body);
            v["case"] = json!(what);
            v["body"] = json!(hex::encode(&body));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.8: each REFUSE frame body (hex) and the verdict: \
                        \"valid\" with the reason, or the error",
        "cases": cases,
    });
    check("refuse-bodies", &doc);
    for c in pinned("refuse-bodies")["cases"].as_array().expect("cases") {
        let body = hex::decode(c["body"].as_str().expect("body")).expect("hex");
        let got = refuse_verdict(&body);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
        assert_eq!(got["reason"], c["reason"], "{}", c["case"]);
    }
}

/// The body of a message whose only variable field is `bytes` as field
/// `kind`, so that a case is also replayed through the message decoder.
fn message_with(kind: TextField, bytes: &[u8]) -> Vec<u8> {
    let endpoint = IdentityKey::from_seed(&[7; 32]).onion_id();
    let len = u16::try_from(bytes.len()).expect("cases fit a text16");
    let mut m = Vec::new();
    let text16 = |m: &mut Vec<u8>, b: &[u8], len: u16| {
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(b);
    };
    match kind {
        TextField::Nickname | TextField::Greeting => {
            m.push(0x01);
            m.extend_from_slice(endpoint.as_bytes());
            m.extend_from_slice(&[0x42; 32]);
            if kind == TextField::Nickname {
                text16(&mut m, bytes, len);
                text16(&mut m, b"", 0);
            } else {
                text16(&mut m, b"", 0);
                text16(&mut m, bytes, len);
            }
        }
        TextField::ChatText => {
            m.push(0x10);
            m.extend_from_slice(&1u64.to_be_bytes());
            text16(&mut m, bytes, len);
        }
        TextField::FileName => {
            m.push(0x20);
            m.extend_from_slice(&[0x11; 16]);
            m.extend_from_slice(&0u64.to_be_bytes());
            m.extend_from_slice(&[0x22; 32]);
            text16(&mut m, bytes, len);
        }
    }
    m
}

fn field_named(name: &str) -> TextField {
    match name {
        "Nickname" => TextField::Nickname,
        "Greeting" => TextField::Greeting,
        "ChatText" => TextField::ChatText,
        "FileName" => TextField::FileName,
        other => panic!("unknown field kind {other}"),
    }
}

fn text_verdict(kind: TextField, bytes: &[u8]) -> Value {
    let direct = kind.decode(bytes);
    // The same bytes inside a message must give the same verdict: the
    // wire path adds no check and skips none.
    let wire = Message::decode(&message_with(kind, bytes));
    match (direct, wire) {
        (Ok(s), Ok(m)) => {
            let carried = match m {
                Message::ContactRequest(r) if kind == TextField::Nickname => r.nickname,
                Message::ContactRequest(r) => r.greeting,
                Message::Chat(c) => c.text,
                Message::FileOffer(o) => o.name,
                other => panic!("unexpected {other:?}"),
            };
            assert_eq!(carried, s);
            json!({"verdict": "valid"})
        }
        (Err(e), Err(w)) => {
            assert_eq!(e, w, "the message decoder disagrees");
            let mut v = json!({"verdict": format!("{e:?}")});
            if let DecodeError::ForbiddenCharacter { code, .. } = e {
                v["character"] = json!(format!("U+{code:04X}"));
            }
            v
        }
        (d, w) => panic!("field decoder says {d:?}, message decoder {w:?}"),
    }
}

#[allow(clippy::too_many_lines)] // one line per case reads best
fn text_cases() -> Vec<(&'static str, TextField, Vec<u8>)> {
    use TextField::{ChatText, FileName, Greeting, Nickname};
    let s = |t: &str| t.as_bytes().to_vec();
    let with = |c: char| format!("a{c}b").into_bytes();
    let mut cases = vec![
        (
            "a name with an accent and an emoji",
            Nickname,
            s("Ana María 🌱"),
        ),
        ("empty", Nickname, s("")),
        ("30 characters", Nickname, s(&"x".repeat(30))),
        (
            "30 four-byte characters: 120 bytes",
            Nickname,
            s(&"🌱".repeat(30)),
        ),
        ("31 characters", Nickname, s(&"x".repeat(31))),
        (
            "31 four-byte characters: the byte cap fails first",
            Nickname,
            s(&"🌱".repeat(31)),
        ),
        (
            "an unassigned code point (U+0378 in Unicode 15.1)",
            Nickname,
            with('\u{378}'),
        ),
        (
            "U+2065, unassigned, between two format ranges",
            Nickname,
            with('\u{2065}'),
        ),
        ("a private-use character", Nickname, with('\u{E000}')),
        (
            "markup, as in the 2014 Ricochet finding",
            Nickname,
            s("<img src=x>"),
        ),
        (
            "the first forbidden character is reported",
            Nickname,
            s("a\u{202E}b&c"),
        ),
    ];
    for (what, c) in [
        ("NUL", '\0'),
        ("TAB", '\t'),
        ("LF", '\n'),
        ("DEL", '\u{7F}'),
        ("a C1 control (NEL)", '\u{85}'),
        ("the last C1 control", '\u{9F}'),
        ("soft hyphen (Cf)", '\u{AD}'),
        ("Arabic number sign (Cf)", '\u{600}'),
        ("zero-width space (Cf)", '\u{200B}'),
        ("zero-width joiner (Cf)", '\u{200D}'),
        ("right-to-left override (Cf)", '\u{202E}'),
        ("first strong isolate (Cf)", '\u{2068}'),
        ("byte order mark (Cf)", '\u{FEFF}'),
        (
            "Egyptian hieroglyph format control (Cf, Unicode 15)",
            '\u{1343F}',
        ),
        ("a tag character (Cf)", '\u{E0041}'),
        ("line separator", '\u{2028}'),
        ("paragraph separator", '\u{2029}'),
        ("quotation mark", '"'),
        ("less-than sign", '<'),
        ("greater-than sign", '>'),
        ("ampersand", '&'),
        ("a non-character (U+FDD0)", '\u{FDD0}'),
        ("a non-character (U+FFFE)", '\u{FFFE}'),
        ("a non-character (U+1FFFF)", '\u{1FFFF}'),
        ("the last non-character (U+10FFFF)", '\u{10FFFF}'),
    ] {
        cases.push((what, Nickname, with(c)));
    }
    for (what, b) in [
        ("a lone continuation byte", vec![0x61, 0x80]),
        ("a truncated sequence", vec![0x61, 0xC3]),
        ("an encoded surrogate", vec![0xED, 0xA0, 0x80]),
        ("an overlong form of '/'", vec![0xC0, 0xAF]),
        ("a code point above U+10FFFF", vec![0xF4, 0x90, 0x80, 0x80]),
    ] {
        cases.push((what, Nickname, b));
    }
    cases.extend([
        ("empty", Greeting, s("")),
        ("TAB and LF", Greeting, s("Hello,\n\tI read your article.")),
        (
            "bidi controls and joiners are typed by people",
            Greeting,
            s("שלום \u{202B}x\u{202C} 👩\u{200D}💻"),
        ),
        ("1,000 characters", Greeting, s(&"x".repeat(1000))),
        ("1,001 characters", Greeting, s(&"x".repeat(1001))),
        (
            "4,001 bytes",
            Greeting,
            s(&"é".repeat(2000)).into_iter().chain([b'x']).collect(),
        ),
        ("CR", Greeting, with('\r')),
        ("NUL", Greeting, with('\0')),
        ("a C1 control", Greeting, with('\u{85}')),
        ("a non-character", Greeting, with('\u{FFFF}')),
        (
            "markup is text",
            ChatText,
            s("<b>not bold</b> https://x.invalid"),
        ),
        ("one character", ChatText, s("x")),
        ("empty", ChatText, s("")),
        ("4,000 characters", ChatText, s(&"x".repeat(4000))),
        ("4,001 characters", ChatText, s(&"x".repeat(4001))),
        (
            "16,001 bytes",
            ChatText,
            s(&"🌱".repeat(4000)).into_iter().chain([b'x']).collect(),
        ),
        (
            "a format character is allowed",
            ChatText,
            s("a\u{200B}b\u{FEFF}"),
        ),
        ("CR", ChatText, with('\r')),
        ("ESC", ChatText, with('\u{1B}')),
        ("a non-character", ChatText, with('\u{FDEF}')),
        ("invalid UTF-8", ChatText, vec![0xFF]),
        ("a plain name", FileName, s("report (final).pdf")),
        ("three dots is a name", FileName, s("...")),
        (
            "a colon is allowed (the receiver sanitizes for its file system)",
            FileName,
            s("a:b.txt"),
        ),
        ("255 bytes", FileName, s(&"x".repeat(255))),
        ("256 bytes", FileName, s(&"é".repeat(128))),
        ("empty", FileName, s("")),
        (".", FileName, s(".")),
        ("..", FileName, s("..")),
        ("a path", FileName, s("../etc/passwd")),
        ("a Windows path", FileName, s("..\\boot.ini")),
        (
            "a right-to-left override hiding an extension",
            FileName,
            s("cod\u{202E}fdp.exe"),
        ),
        ("NUL", FileName, with('\0')),
        ("a line separator", FileName, with('\u{2028}')),
        ("a non-character", FileName, with('\u{FFFE}')),
    ]);
    cases
}

#[test]
fn text_field_verdicts() {
    let name = |k: TextField| format!("{k:?}");
    let cases: Vec<Value> = text_cases()
        .into_iter()
        .map(|(what, kind, bytes)| {
            let mut v = text_verdict(kind, &bytes);
            v["case"] = json!(what);
            v["field"] = json!(name(kind));
            v["bytes"] = json!(hex::encode(&bytes));
            if let Ok(t) = std::str::from_utf8(&bytes) {
                v["text"] = json!(t);
            }
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §6.2: the bytes of one text field (hex; \"text\" repeats \
                        them when they are UTF-8) and the verdict a receiver must give: \
                        \"valid\", or the error of the first check that fails",
        "cases": cases,
    });
    check("text-fields", &doc);
    for c in pinned("text-fields")["cases"].as_array().expect("cases") {
        let kind = field_named(c["field"].as_str().expect("field"));
        let bytes = hex::decode(c["bytes"].as_str().expect("bytes")).expect("hex");
        let got = text_verdict(kind, &bytes);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
    }
}

fn key_verdict(key: &[u8; 32]) -> Value {
    match allium_protocol::identity::check_public_key(key) {
        Ok(()) => json!({"verdict": "valid"}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn x25519_cases() -> Vec<(&'static str, [u8; 32])> {
    let mut p = [0xffu8; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    let plus = |mut k: [u8; 32], d: u8| {
        // p + d or p - d for small d, on the low byte (no carry for these).
        k[0] = k[0].wrapping_add(d);
        k
    };
    let high = |mut k: [u8; 32]| {
        k[31] |= 0x80;
        k
    };
    let mut one = [0u8; 32];
    one[0] = 1;
    let order8_a: [u8; 32] =
        hex::decode("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
            .expect("hex")
            .try_into()
            .expect("32");
    let order8_b: [u8; 32] =
        hex::decode("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")
            .expect("hex")
            .try_into()
            .expect("32");
    let good = allium_protocol::StaticKeypair::from_secret(&[0x21; 32])
        .public()
        .0;
    vec![
        ("a key from a real secret", good),
        (
            "the same with bit 255 set: passes this check, but is not the key on file (§4.3 #11 compares bytes)",
            high(good),
        ),
        (
            "p + 2: a non-canonical form of u = 2, not of small order",
            plus(p, 2),
        ),
        ("all zero", [0; 32]),
        ("zero with bit 255 set", high([0; 32])),
        ("u = 1 (order 4 on the curve)", one),
        ("u = 1 with bit 255 set", high(one)),
        ("a point of order 8", order8_a),
        ("the other point of order 8", order8_b),
        ("a point of order 8 with bit 255 set", high(order8_b)),
        ("p - 1 (u = -1, of order 4)", plus(p, 0xff)),
        ("p: a non-canonical form of 0", p),
        ("p + 1: a non-canonical form of 1", plus(p, 1)),
        ("p + 1 with bit 255 set", high(plus(p, 1))),
    ]
}

/// PROTOCOL.md §4.7.
#[test]
fn x25519_key_verdicts() {
    let cases: Vec<Value> = x25519_cases()
        .into_iter()
        .map(|(what, key)| {
            let mut v = key_verdict(&key);
            v["case"] = json!(what);
            v["key"] = json!(hex::encode(key));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §4.7: X25519 public keys (ephemeral, and static after \
                        decryption) and the verdict of the key check",
        "cases": cases,
    });
    check("x25519-keys", &doc);
    for c in pinned("x25519-keys")["cases"].as_array().expect("cases") {
        let key: [u8; 32] = hex::decode(c["key"].as_str().expect("key"))
            .expect("hex")
            .try_into()
            .expect("32 bytes");
        assert_eq!(key_verdict(&key)["verdict"], c["verdict"], "{}", c["case"]);
    }
}

fn padding_verdict(plaintext: &[u8]) -> Value {
    match allium_protocol::message::unpad(plaintext) {
        Ok(m) => json!({"verdict": "valid", "message_length": m.len()}),
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn padded(mlen: u16, body: &[u8], total: usize) -> Vec<u8> {
    let mut p = mlen.to_be_bytes().to_vec();
    p.extend_from_slice(body);
    p.resize(total, 0);
    p
}

fn padding_cases() -> Vec<(&'static str, Vec<u8>)> {
    let keepalive = [0x30u8];
    let mut nonzero = padded(1, &keepalive, 256);
    nonzero[255] = 1;
    let mut nonzero_first = padded(1, &keepalive, 256);
    nonzero_first[3] = 0x80;
    vec![
        ("KEEPALIVE in 256 bytes", padded(1, &keepalive, 256)),
        (
            "254 bytes: the most that fits 256",
            padded(254, &[0x42; 254], 256),
        ),
        ("255 bytes go in 1,024", padded(255, &[0x42; 255], 1024)),
        (
            "an empty message (the message decoder then refuses it)",
            padded(0, &[], 256),
        ),
        (
            "the largest message, 65,502 bytes (of zeros: still a message)",
            padded(65502, &[], 65504),
        ),
        ("no plaintext", vec![]),
        ("one byte", vec![0]),
        ("255 bytes: not a bucket", padded(1, &keepalive, 255)),
        ("257 bytes: not a bucket", padded(1, &keepalive, 257)),
        ("65,505 bytes: not a bucket", padded(1, &keepalive, 65505)),
        (
            "KEEPALIVE in 1,024: not the smallest bucket",
            padded(1, &keepalive, 1024),
        ),
        (
            "MLEN 255 in 256: past the end",
            padded(255, &[0x42; 254], 256),
        ),
        ("MLEN 65,535 in 65,504", padded(65535, &[], 65504)),
        ("the last padding byte is not zero", nonzero),
        ("the first padding byte is not zero", nonzero_first),
    ]
}

/// PROTOCOL.md §5.
#[test]
fn padding_verdicts() {
    let cases: Vec<Value> = padding_cases()
        .into_iter()
        .map(|(what, p)| {
            let mut v = padding_verdict(&p);
            v["case"] = json!(what);
            // Written up to its last non-zero byte; zeros fill the rest.
            let end = p.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            v["plaintext_length"] = json!(p.len());
            v["plaintext"] = json!(hex::encode(&p[..end]));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §5: decrypted TRANSPORT plaintexts (MLEN || MESSAGE || \
                        padding), written up to their last non-zero byte and filled with zeros \
                        to plaintext_length, and the verdict: \"valid\" with the length of \
                        the message (the MLEN bytes after the first two), or the error",
        "cases": cases,
    });
    check("padding", &doc);
    for c in pinned("padding")["cases"].as_array().expect("cases") {
        let mut p = hex::decode(c["plaintext"].as_str().expect("plaintext")).expect("hex");
        p.resize(
            usize::try_from(c["plaintext_length"].as_u64().expect("length")).expect("fits"),
            0,
        );
        let got = padding_verdict(&p);
        assert_eq!(got["verdict"], c["verdict"], "{}", c["case"]);
        assert_eq!(got["message_length"], c["message_length"], "{}", c["case"]);
    }
}

fn message_verdict(version: u8, body: &[u8]) -> Value {
    match Message::decode_for(version, body) {
        Ok(m) => {
            // Canonical: the one encoding of what was decoded.
            assert_eq!(m.encode(), body, "{m:?} re-encodes differently");
            json!({"verdict": "valid"})
        }
        Err(e) => json!({"verdict": format!("{e:?}")}),
    }
}

fn be64(v: u64) -> [u8; 8] {
    v.to_be_bytes()
}

#[allow(clippy::too_many_lines)] // one line per case reads best
fn message_cases() -> Vec<(&'static str, u8, Vec<u8>)> {
    let endpoint = IdentityKey::from_seed(&[7; 32]).onion_id();
    let cat = |parts: &[&[u8]]| parts.concat();
    let t = [0x11u8; 16];
    let text = |s: &str| {
        let mut v = u16::try_from(s.len())
            .expect("short")
            .to_be_bytes()
            .to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    };
    let mut small = [0u8; 32];
    small[0] = 1;
    let max = 1u64 << 40;
    vec![
        (
            "CONTACT_REQUEST",
            3,
            cat(&[
                &[0x01],
                endpoint.as_bytes(),
                &[0x42; 32],
                &text("Ana"),
                &text("hi"),
            ]),
        ),
        (
            "CONTACT_REQUEST naming a small-order endpoint",
            3,
            cat(&[&[0x01], &small, &[0x42; 32], &text(""), &text("")]),
        ),
        (
            "CONTACT_REQUEST whose nickname LEN is over its cap (121 > 120)",
            3,
            cat(&[&[0x01], endpoint.as_bytes(), &[0x42; 32], &[0, 121]]),
        ),
        (
            "CONTACT_REQUEST without its greeting",
            3,
            cat(&[&[0x01], endpoint.as_bytes(), &[0x42; 32], &text("Ana")]),
        ),
        (
            "CONTACT_ACCEPT",
            3,
            cat(&[&[0x02], endpoint.as_bytes(), &[0x24; 32]]),
        ),
        (
            "CONTACT_ACCEPT one byte short",
            3,
            cat(&[&[0x02], endpoint.as_bytes(), &[0x24; 31]]),
        ),
        ("CONTACT_REJECT", 3, vec![0x03]),
        ("CONTACT_REJECT with a trailing byte", 3, vec![0x03, 0x00]),
        ("CHAT", 3, cat(&[&[0x10], &be64(1), &text("hello")])),
        (
            "CHAT with id 0",
            3,
            cat(&[&[0x10], &be64(0), &text("hello")]),
        ),
        (
            "CHAT with empty text",
            3,
            cat(&[&[0x10], &be64(1), &text("")]),
        ),
        (
            "CHAT with a trailing byte",
            3,
            cat(&[&[0x10], &be64(1), &text("x"), &[0]]),
        ),
        ("ACK", 3, cat(&[&[0x11], &be64(7)])),
        ("ACK 0", 3, cat(&[&[0x11], &be64(0)])),
        ("ACK truncated", 3, cat(&[&[0x11], &[0; 7]])),
        ("SYNC", 3, cat(&[&[0x12], &be64(1), &be64(0)])),
        (
            "SYNC with resend_from 0",
            3,
            cat(&[&[0x12], &be64(0), &be64(0)]),
        ),
        (
            "SYNC above 2^62: decodes; the application then closes with CLOSE 1 (§6.3)",
            3,
            cat(&[&[0x12], &be64(1), &be64(u64::MAX)]),
        ),
        ("HISTORY kept", 3, vec![0x13, 1]),
        ("HISTORY not kept", 3, vec![0x13, 0]),
        ("HISTORY with kept = 2", 3, vec![0x13, 2]),
        (
            "HISTORY on a version-2 session: an unknown type there",
            2,
            vec![0x13, 1],
        ),
        (
            "FILE_OFFER",
            3,
            cat(&[&[0x20], &t, &be64(10), &[0x33; 32], &text("a.txt")]),
        ),
        (
            "FILE_OFFER of 2^40 bytes",
            3,
            cat(&[&[0x20], &t, &be64(max), &[0x33; 32], &text("a.txt")]),
        ),
        (
            "FILE_OFFER of 2^40 + 1 bytes",
            3,
            cat(&[&[0x20], &t, &be64(max + 1), &[0x33; 32], &text("a.txt")]),
        ),
        ("FILE_ACCEPT", 3, cat(&[&[0x21], &t, &be64(0)])),
        (
            "FILE_ACCEPT past 2^40",
            3,
            cat(&[&[0x21], &t, &be64(max + 1)]),
        ),
        (
            "FILE_CHUNK",
            3,
            cat(&[&[0x22], &t, &be64(0), &[0, 0, 0, 3], b"abc"]),
        ),
        (
            "FILE_CHUNK without data",
            3,
            cat(&[&[0x22], &t, &be64(0), &[0, 0, 0, 0]]),
        ),
        (
            "FILE_CHUNK whose LEN is over 64,512",
            3,
            cat(&[&[0x22], &t, &be64(0), &64_513u32.to_be_bytes()]),
        ),
        (
            "FILE_CHUNK ending past 2^40",
            3,
            cat(&[&[0x22], &t, &be64(max - 1), &[0, 0, 0, 2], b"ab"]),
        ),
        ("FILE_ACK", 3, cat(&[&[0x23], &t, &be64(5)])),
        ("FILE_ACK past 2^40", 3, cat(&[&[0x23], &t, &be64(max + 1)])),
        ("FILE_DONE", 3, cat(&[&[0x24], &t])),
        ("FILE_CANCEL", 3, cat(&[&[0x25], &t, &[1]])),
        ("FILE_CANCEL with reason 0", 3, cat(&[&[0x25], &t, &[0]])),
        (
            "FILE_CANCEL with an unknown reason",
            3,
            cat(&[&[0x25], &t, &[0x7f]]),
        ),
        ("KEEPALIVE", 3, vec![0x30]),
        ("KEEPALIVE with a trailing byte", 3, vec![0x30, 0x30]),
        ("CLOSE 0", 3, vec![0x31, 0, 0]),
        (
            "CLOSE with an unknown code: kept, not rejected",
            3,
            vec![0x31, 0, 77],
        ),
        ("CLOSE truncated", 3, vec![0x31, 0]),
        ("empty", 3, vec![]),
        ("type 0x00", 3, vec![0x00]),
        ("type 0x04", 3, vec![0x04]),
        ("type 0x14", 3, vec![0x14]),
        ("type 0x26", 3, vec![0x26]),
        ("type 0x32", 3, vec![0x32]),
        ("type 0xff", 3, vec![0xff]),
    ]
}

/// PROTOCOL.md §6 and §6.1: message bodies and the verdict of canonical
/// decoding; every valid one re-encodes to the same bytes.
#[test]
fn message_verdicts() {
    let cases: Vec<Value> = message_cases()
        .into_iter()
        .map(|(what, version, body)| {
            let mut v = message_verdict(version, &body);
            v["case"] = json!(what);
            v["version"] = json!(version);
            v["body"] = json!(hex::encode(&body));
            v
        })
        .collect();
    let doc = json!({
        "description": "PROTOCOL.md §6 and §6.1: MESSAGE bytes (after unpadding, hex), the \
                        protocol version of the session they arrive on, and the verdict of \
                        decoding: \"valid\" (and the bytes are the one encoding of what they \
                        decode to), or the error",
        "cases": cases,
    });
    check("messages", &doc);
    for c in pinned("messages")["cases"].as_array().expect("cases") {
        let body = hex::decode(c["body"].as_str().expect("body")).expect("hex");
        let version = u8::try_from(c["version"].as_u64().expect("version")).expect("small");
        assert_eq!(
            message_verdict(version, &body)["verdict"],
            c["verdict"],
            "{}",
            c["case"]
        );
    }
}
