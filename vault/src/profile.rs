//! What a profile remembers: the data model stored, encrypted, in the vault.
//!
//! Everything here is plain data with no behaviour beyond small helpers; the
//! engine owns the rules. Keys are raw 32-byte values so that this crate
//! needs no cryptographic identity types; secret ones are [`Secret32`]
//! (zeroized on drop, redacted in `Debug`). Fields added in later versions
//! carry `#[serde(default)]` so that older vaults still open.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A 32-byte secret (an Ed25519 seed, an X25519 secret, a discovery key).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Secret32(pub [u8; 32]);

impl fmt::Debug for Secret32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret32(redacted)")
    }
}

/// A 32-byte public value (an onion id's key, a Noise static public key).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Public32(pub [u8; 32]);

impl fmt::Debug for Public32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Public, but still identifying: never print it whole.
        write!(f, "Public32({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

fn hex_serialize<S: Serializer>(bytes: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
    // Encode on the stack and wipe it afterwards, so that no copy of a
    // secret is left in a freed heap buffer.
    let mut buf = Zeroizing::new([0u8; 64]);
    hex::encode_to_slice(bytes, &mut buf[..]).map_err(serde::ser::Error::custom)?;
    let text = std::str::from_utf8(&buf[..]).map_err(serde::ser::Error::custom)?;
    s.serialize_str(text)
}

fn hex_deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
    // Borrowed from the (zeroized) plaintext buffer: no intermediate String.
    let text = <&str>::deserialize(d)?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(serde::de::Error::custom)?;
    Ok(out)
}

impl Serialize for Secret32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Secret32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut bytes = hex_deserialize(d)?;
        let secret = Secret32(bytes);
        bytes.zeroize();
        Ok(secret)
    }
}

impl Serialize for Public32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex_serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Public32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex_deserialize(d).map(Public32)
    }
}

/// Everything a profile keeps across restarts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Our long-term keys.
    pub keys: ProfileKeys,
    /// The person's choices.
    #[serde(default)]
    pub settings: Settings,
    /// Contacts in every state (requests both ways, accepted).
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Contact identities (intake ids) whose requests are refused unheard.
    #[serde(default)]
    pub blocked: Vec<Public32>,
    /// The name each blocked identity had when it was blocked, so the
    /// person can tell whom to unblock (version 3; older profiles have
    /// none, and their blocked ids are listed by address alone).
    #[serde(default)]
    pub blocked_names: Vec<BlockedName>,
    /// Requesters we rejected: a repeated request from one of them is
    /// dropped without telling anyone.
    #[serde(default)]
    pub rejected: Vec<Public32>,
    /// The next [`ContactId`] to hand out; ids are never reused.
    #[serde(default = "first_contact_id")]
    pub next_contact_id: u64,
    /// Discovery keys already authorized on our endpoint but not yet given
    /// to anyone: the next contact gets one, so that its answer can find the
    /// endpoint at once instead of waiting for Tor to publish a new
    /// descriptor (Arti uploads a changed one at most once a minute).
    #[serde(default)]
    pub spare_discovery_keys: Vec<Secret32>,
}

/// What the person called a blocked identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlockedName {
    /// The blocked intake id.
    pub intake: Public32,
    /// Our name for it (a nickname, or the name it suggested).
    pub nickname: String,
}

fn first_contact_id() -> u64 {
    1
}

/// The profile's own secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileKeys {
    /// Ed25519 seed of the intake onion service: our public address and
    /// contact identity.
    pub intake_seed: Secret32,
    /// Ed25519 seed of the endpoint onion service (never published).
    pub endpoint_seed: Secret32,
    /// X25519 secret of our Noise static key.
    pub static_secret: Secret32,
}

/// The person's choices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Whether the intake (the public address) is published.
    pub intake_enabled: bool,
    /// The name we suggest for ourselves in contact requests (may be empty).
    pub display_name: String,
    /// Whether new contacts keep history unless switched per contact.
    pub history_by_default: bool,
    /// Whether desktop notifications show the sender and text.
    pub notification_content: bool,
    /// The largest incoming file accepted, in bytes.
    pub max_incoming_file: u64,
    /// A custom Tor network file (experts and tests); `None` = public Tor.
    pub custom_network: Option<String>,
    /// Lock the profile after this many minutes without use of the
    /// window; 0: never. Format version 3.
    pub auto_lock_minutes: u32,
    /// Where accepted files go without asking; `None`: ask each time.
    /// Format version 4.
    pub download_folder: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            intake_enabled: true,
            display_name: String::new(),
            history_by_default: false,
            notification_content: false,
            max_incoming_file: 4 << 30,
            custom_network: None,
            auto_lock_minutes: 0,
            download_folder: None,
        }
    }
}

/// A local, never-reused number for a contact (what the UI and JSON-RPC
/// name contacts by, so that addresses need not travel through them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ContactId(pub u64);

/// Where a contact relationship stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactState {
    /// We asked; no answer yet (the request may not even be delivered).
    OutgoingPending,
    /// They asked; we have not decided.
    IncomingPending,
    /// Both sides are contacts.
    Accepted,
}

/// One contact, or a request in either direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Local id.
    pub id: ContactId,
    /// Their contact identity: their intake id (their address).
    pub intake: Public32,
    /// Our name for them.
    pub nickname: String,
    /// Where the relationship stands.
    pub state: ContactState,
    /// Outgoing request: the greeting we send. Incoming: the one they sent.
    #[serde(default)]
    pub greeting: String,
    /// Incoming request: the name they suggested for themselves.
    #[serde(default)]
    pub suggested_nickname: String,
    /// Whether the outgoing request has reached them.
    #[serde(default)]
    pub request_delivered: bool,
    /// We accepted and still owe them the CONTACT_ACCEPT (they were offline).
    #[serde(default)]
    pub accept_pending: bool,
    /// Their Noise static key, proven at the intake handshake.
    #[serde(default)]
    pub their_static: Option<Public32>,
    /// Their endpoint onion id.
    #[serde(default)]
    pub their_endpoint: Option<Public32>,
    /// The discovery key they gave us for their endpoint.
    #[serde(default)]
    pub their_discovery_key: Option<Secret32>,
    /// The discovery key we issued them for our endpoint (its public half is
    /// authorized there while they are a contact or a request we made).
    pub our_discovery_key: Secret32,
    /// Whether this conversation's history is kept (in the vault only).
    #[serde(default)]
    pub history_enabled: bool,
    /// The id our next chat message to them gets (PROTOCOL.md §6.3).
    #[serde(default = "first_message_id")]
    pub next_message_id: u64,
    /// The highest id of theirs we delivered in order.
    #[serde(default)]
    pub last_received_id: u64,
    /// Messages not yet acknowledged, oldest first.
    #[serde(default)]
    pub outbox: Vec<QueuedMessage>,
    /// Kept history, oldest first (empty unless `history_enabled`).
    #[serde(default)]
    pub history: Vec<HistoryEntry>,
    /// When the contact (or request) was created, Unix seconds, our clock.
    #[serde(default)]
    pub created_at: u64,
    /// Our `next_message_id` when the engine first loaded this contact
    /// after the last SYNC it handled from them (`None` right after one):
    /// ids from here on are ones a copy of this profile restored from
    /// before may not know (PROTOCOL.md §6.3). Kept so that a restart
    /// between a restore and the next SYNC does not move it. Format
    /// version 2.
    #[serde(default)]
    pub unsynced_from: Option<u64>,
    /// Whether the person compared safety words with this contact and
    /// marked it verified. Format version 3.
    #[serde(default)]
    pub verified: bool,
    /// Whether the contact keeps a history of this conversation, as it
    /// last told us (protocol version 3); `None` until it does. Format
    /// version 3.
    #[serde(default)]
    pub peer_keeps_history: Option<bool>,
}

fn first_message_id() -> u64 {
    1
}

/// A message waiting for its acknowledgement.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueuedMessage {
    /// Its id on the wire.
    pub id: u64,
    /// The text.
    pub text: String,
    /// When the person sent it, Unix seconds, our clock.
    pub queued_at: u64,
}

/// Who wrote a history entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// We received it.
    Incoming,
    /// We sent it.
    Outgoing,
}

/// One line of kept history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryEntry {
    /// Who wrote it.
    pub direction: Direction,
    /// The message id on the wire (the sender's numbering).
    pub id: u64,
    /// The text.
    pub text: String,
    /// Sent or received, Unix seconds, our clock (never the peer's).
    pub at: u64,
    /// Outgoing only: whether it was acknowledged.
    #[serde(default)]
    pub delivered: bool,
}

impl Profile {
    /// A new profile around fresh keys, with default settings.
    pub fn new(keys: ProfileKeys) -> Self {
        Profile {
            keys,
            settings: Settings::default(),
            contacts: Vec::new(),
            blocked: Vec::new(),
            blocked_names: Vec::new(),
            rejected: Vec::new(),
            next_contact_id: first_contact_id(),
            spare_discovery_keys: Vec::new(),
        }
    }

    /// The contact with local id `id`.
    pub fn contact(&self, id: ContactId) -> Option<&Contact> {
        self.contacts.iter().find(|c| c.id == id)
    }

    /// The contact with local id `id`, to change.
    pub fn contact_mut(&mut self, id: ContactId) -> Option<&mut Contact> {
        self.contacts.iter_mut().find(|c| c.id == id)
    }

    /// The contact whose intake id is `intake`.
    pub fn contact_by_intake(&self, intake: &Public32) -> Option<&Contact> {
        self.contacts.iter().find(|c| &c.intake == intake)
    }

    /// Hands out the next contact id.
    pub fn allocate_contact_id(&mut self) -> ContactId {
        let id = ContactId(self.next_contact_id);
        self.next_contact_id = self.next_contact_id.saturating_add(1);
        id
    }
}
