//! Property tests: every message and address round-trips through its
//! encoding, and arbitrary bytes never make a decoder panic or accept a
//! non-canonical encoding.

use allium_protocol::message::{MAX_CHUNK, MAX_FILE_SIZE};
use allium_protocol::{
    CancelReason, Chat, CloseReason, ContactAccept, ContactRequest, DiscoveryKey, FileChunk,
    FileOffer, IdentityKey, Message, OnionId, TransferId,
};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn onion_id() -> impl Strategy<Value = OnionId> {
    any::<[u8; 32]>()
        .prop_map(|seed| IdentityKey::generate(&mut ChaCha20Rng::from_seed(seed)).onion_id())
}

/// Text a person could type: letters from several scripts, digits,
/// punctuation, emoji; `extra` adds characters only some fields allow.
fn text(min: usize, max: usize, extra: &'static str) -> impl Strategy<Value = String> {
    let base = "abcXYZ019 .,!?-_'()éßøЖжאבعربي中文😀🌱";
    let chars: Vec<char> = base.chars().chain(extra.chars()).collect();
    proptest::collection::vec(proptest::sample::select(chars), min..=max)
        .prop_map(|v| v.into_iter().collect())
}

fn transfer() -> impl Strategy<Value = TransferId> {
    any::<[u8; 16]>().prop_map(TransferId)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            text(0, 30, ""),
            text(0, 1000, "\n\t<>&\"\u{200D}\u{202E}"),
            onion_id(),
            any::<[u8; 32]>()
        )
            .prop_map(|(nickname, greeting, endpoint, k)| Message::ContactRequest(
                ContactRequest {
                    nickname,
                    greeting,
                    endpoint,
                    discovery_key: DiscoveryKey(k),
                }
            )),
        (onion_id(), any::<[u8; 32]>()).prop_map(|(endpoint, k)| Message::ContactAccept(
            ContactAccept {
                endpoint,
                discovery_key: DiscoveryKey(k)
            }
        )),
        Just(Message::ContactReject),
        (1..=u64::MAX, text(1, 4000, "\n\t<>&\"\u{200D}\u{202E}"))
            .prop_map(|(id, text)| Message::Chat(Chat { id, text })),
        (1..=u64::MAX).prop_map(|id| Message::Ack { id }),
        (1..=u64::MAX, any::<u64>())
            .prop_map(|(resend_from, last)| Message::Sync { resend_from, last }),
        (
            transfer(),
            0..=MAX_FILE_SIZE,
            any::<[u8; 32]>(),
            text(1, 60, "").prop_filter("not . or ..", |n| n != "." && n != "..")
        )
            .prop_map(
                |(transfer, size, sha256, name)| Message::FileOffer(FileOffer {
                    transfer,
                    size,
                    sha256,
                    name,
                })
            ),
        (transfer(), 0..=MAX_FILE_SIZE)
            .prop_map(|(transfer, offset)| Message::FileAccept { transfer, offset }),
        (
            transfer(),
            0..=MAX_FILE_SIZE - MAX_CHUNK as u64,
            proptest::collection::vec(any::<u8>(), 1..=2048)
        )
            .prop_map(|(transfer, offset, data)| Message::FileChunk(FileChunk {
                transfer,
                offset,
                data
            })),
        (transfer(), 0..=MAX_FILE_SIZE)
            .prop_map(|(transfer, received)| Message::FileAck { transfer, received }),
        transfer().prop_map(|transfer| Message::FileDone { transfer }),
        (
            transfer(),
            proptest::sample::select(vec![
                CancelReason::ByUser,
                CancelReason::DigestMismatch,
                CancelReason::TooLarge,
                CancelReason::Io,
                CancelReason::Protocol,
            ])
        )
            .prop_map(|(transfer, reason)| Message::FileCancel { transfer, reason }),
        Just(Message::Keepalive),
        any::<u16>().prop_map(|c| Message::Close(CloseReason::from_code(c))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn every_message_round_trips(m in message()) {
        prop_assert_eq!(m.validate(), Ok(()));
        let bytes = m.encode();
        prop_assert_eq!(Message::decode(&bytes), Ok(m));
    }

    #[test]
    fn arbitrary_bytes_decode_canonically_or_not_at_all(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(m) = Message::decode(&bytes) {
            prop_assert_eq!(m.encode(), bytes);
        }
    }

    #[test]
    fn mutated_messages_decode_canonically_or_not_at_all(m in message(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bytes = m.encode();
        let i = at.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(m2) = Message::decode(&bytes) {
            prop_assert_eq!(m2.encode(), bytes);
        }
    }

    #[test]
    fn addresses_round_trip(id in onion_id()) {
        prop_assert_eq!(OnionId::parse(&id.to_address()), Ok(id));
        prop_assert_eq!(OnionId::parse(&id.to_onion_host()), Ok(id));
        prop_assert_eq!(OnionId::parse(&id.to_onion_id_string().to_uppercase()), Ok(id));
    }

    #[test]
    fn arbitrary_address_strings_never_panic(s in "\\PC{0,80}") {
        let _ = OnionId::parse(&s);
    }
}

#[test]
fn chat_text_at_the_limit_round_trips() {
    let m = Message::Chat(Chat {
        id: u64::MAX,
        text: "😀".repeat(4000),
    });
    assert_eq!(Message::decode(&m.encode()), Ok(m));
    let c = Message::FileChunk(FileChunk {
        transfer: TransferId([1; 16]),
        offset: MAX_FILE_SIZE - MAX_CHUNK as u64,
        data: vec![7; MAX_CHUNK],
    });
    assert_eq!(Message::decode(&c.encode()), Ok(c));
}
