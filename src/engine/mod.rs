//! The messenger itself: contacts, sessions, delivery, files.
//!
//! One engine runs per unlocked profile. It talks to the outside (the
//! window, the JSON-RPC interface, tests) only through [`EngineHandle`]
//! commands in and [`Event`]s out, so that nothing outside ever waits on
//! Tor or the disk. Inside, it is a sans-IO state machine under a thin
//! shell, in the manner of quinn-proto:
//!
//! ```text
//!  UI / RPC ──EngineHandle──▶ shell ──Input──▶ Core ──Effect──▶ shell
//!     ▲                      (tokio)          (state,         │ dials, publishes,
//!     └──────── Event ─────────┘               no I/O)        │ saves, file work,
//!                                                              ▼ connection tasks
//! ```
//!
//! - `core/` owns the [`Profile`] and every decision; it is given the
//!   time with each input and an RNG at its start, and never awaits. Its
//!   files are its concerns: `services`, `commands`, `dials`, `conns`,
//!   `contacts` (requests) and `delivery`.
//! - `handle.rs` is what may be asked ([`EngineHandle`], commands that
//!   carry their own typed answer).
//! - `shell.rs` is the only place that spawns, sleeps, reads the clock,
//!   dials, publishes, saves and runs file work (on blocking threads).
//! - `conn.rs` runs one protocol `Session` per connection as a task.
//! - `admission.rs` (the request buckets, who makes room at a full
//!   service), `durability.rs` (what is on disk and what waits for it) and
//!   `links.rs` (per contact: the session, the dial schedule, where
//!   delivery stands) are sub-states the core owns, their fields private,
//!   their rules methods tested on their own.
//! - `files/` is the transfers' state machine; it sees the core only as a
//!   `Host` lent for one call (`core/transfers.rs`), and every touch of a
//!   file is a `FileJob` effect the shell runs on a blocking thread.
//! - `sim/` (tests only) runs many cores on a simulated clock, with
//!   faults, and checks what must always hold.
//!
//! The engine must never log addresses, nicknames or message text, and
//! never trust a timestamp from a peer (it puts none on the wire either).
//! It writes no file itself except received files, into the folder the
//! person chose; the profile is persisted by its [`ProfileSaver`].

mod admission;
mod conn;
mod core;
mod durability;
mod files;
mod handle;
mod links;
mod shell;
#[cfg(test)]
mod sim;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use allium_onion::{Reachability, Transport};
use allium_protocol::{OnionId, SessionConfig};
use allium_vault::{ContactId, ContactState, Direction, Profile, Settings};
use tokio::sync::mpsc;

pub use handle::EngineHandle;
pub(crate) use handle::{Answer, Command};
pub use store::{MemoryStore, NoStore, ProfileSaver, SaveError};

/// Limits and timers. The defaults suit the Tor network; tests shrink the
/// timers.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Per-session timers (handshake, idle, keepalive).
    pub session: SessionConfig,
    /// First retry delay after a failed dial or a lost session.
    pub backoff_initial: Duration,
    /// Longest retry delay: a contact that stays offline is still tried
    /// this often, so presence is never stale for longer.
    pub backoff_max: Duration,
    /// Dials in flight at once. Tor builds few circuits at a time; a large
    /// contact list is paced rather than dialled all at once.
    pub max_concurrent_dials: usize,
    /// Incoming connections per service that have not finished: before
    /// the handshake, and at the intake before the request. When they are
    /// all taken, a newcomer makes room by closing one of those that got
    /// the least far (`admission::make_room`), so silent or stalled
    /// strangers cannot keep a real requester out.
    pub max_unauthenticated: usize,
    /// Time an unfinished incoming connection gets for each step: the hello
    /// after opening, the handshake after the hello, the request after the
    /// handshake. A real peer needs one Tor round trip per step.
    pub step_timeout: Duration,
    /// The least time between a request at our intake and its receipt
    /// (CLOSE 0), whatever was decided about it: stored, a repeat, a
    /// blocked or rejected requester. A stored request also waits for the
    /// disk; below this delay that wait does not show (PROTOCOL.md §8
    /// step 2, §7.7).
    pub receipt_delay: Duration,
    /// Incoming requests waiting for a decision; more are refused as busy.
    pub max_pending_requests: usize,
    /// Contact requests accepted per minute at the intake (a token bucket
    /// with this burst).
    pub requests_per_minute: u32,
    /// Largest file we offer to send (the receiver has its own cap).
    pub max_outgoing_file: u64,
    /// File offers a contact may have waiting for our decision.
    pub max_pending_offers: usize,
    /// Shortest time between the starts of two saves: a peer cannot make
    /// us rewrite the profile more often (changes in between share the
    /// next save, so a burst costs one).
    pub min_save_interval: Duration,
    /// Handshake keys each service remembers to refuse a replayed hello
    /// (PROTOCOL.md §7.4: at least 24 hours, up to this many), separately
    /// for the intake and the endpoint.
    pub replay_keys: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            session: SessionConfig::default(),
            backoff_initial: Duration::from_secs(5),
            backoff_max: Duration::from_secs(300),
            max_concurrent_dials: 4,
            max_unauthenticated: 32,
            step_timeout: Duration::from_secs(15),
            receipt_delay: Duration::from_secs(1),
            max_pending_requests: 100,
            requests_per_minute: 10,
            max_outgoing_file: allium_protocol::message::MAX_FILE_SIZE,
            max_pending_offers: 8,
            min_save_interval: Duration::from_millis(100),
            replay_keys: 65_536,
        }
    }
}

/// What a caller may branch on, with a message a person can act on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The address did not parse: which check failed (PROTOCOL.md §2.3),
    /// for a caller to branch on; its text says what is wrong with it.
    #[error("that is not a valid Allium address: {0}")]
    BadAddress(allium_protocol::AddressError),
    /// The address is this profile's own.
    #[error("that is your own address; paste the address of the person you want to reach")]
    OwnAddress,
    /// A contact (or request) with this address exists already.
    #[error("this person is already in your contacts (or a request is pending)")]
    AlreadyContact,
    /// The address is on the block list.
    #[error("you blocked this address; unblock it first")]
    Blocked,
    /// No such contact (removed meanwhile, or a wrong id).
    #[error("no such contact")]
    NoSuchContact,
    /// Unblocking an address that is not blocked.
    #[error("this address is not blocked")]
    NotBlocked,
    /// The contact is not in a state that allows this.
    #[error("not possible now: {0}")]
    WrongState(&'static str),
    /// Text failed validation (too long, control characters, ...): the
    /// rule it broke (PROTOCOL.md §6.2).
    #[error("{0}")]
    InvalidText(allium_protocol::DecodeError),
    /// A setting out of its range; the text names the range.
    #[error("{0}")]
    InvalidSetting(&'static str),
    /// The endpoint cannot authorize more contacts.
    #[error("this profile cannot have more than {0} contacts (a Tor limit); remove one first")]
    TooManyContacts(usize),
    /// No such file transfer.
    #[error("no such file transfer")]
    NoSuchTransfer,
    /// A file could not be read or written.
    #[error("{0}")]
    File(String),
    /// The onion service could not be started or changed.
    #[error("Tor could not publish the service: {0}")]
    Service(String),
    /// The engine has stopped.
    #[error("Allium is shutting down")]
    Stopped,
    /// The latest changes could not be saved (at shutdown): why, typed.
    #[error("the latest changes could not be saved: {0}")]
    NotSaved(SaveError),
}

/// Delivery state of one of our messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Saved, waiting for the contact to be online.
    Queued,
    /// Written to a session; not yet acknowledged.
    Sent,
    /// The contact acknowledged it.
    Delivered,
}

/// A contact as the outside sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ContactSummary {
    /// Local id.
    pub id: ContactId,
    /// Their `allium:` address.
    pub address: String,
    /// Our name for them.
    pub nickname: String,
    /// Where the relationship stands.
    pub state: ContactState,
    /// Incoming request: their greeting (plain text). Outgoing: ours.
    pub greeting: String,
    /// Incoming request: the name they suggest.
    pub suggested_nickname: String,
    /// Outgoing request: whether it reached them.
    pub request_delivered: bool,
    /// Whether a session with them is up now.
    pub online: bool,
    /// Whether history is kept.
    pub history_enabled: bool,
    /// Messages waiting for their acknowledgement.
    pub queued: usize,
    /// Whether the person compared safety words with them and marked
    /// them verified.
    pub verified: bool,
    /// Whether they keep a history of this conversation, as they last told
    /// us; `None` until they do (or if their Allium is too old to say).
    pub peer_keeps_history: Option<bool>,
}

/// A blocked address, for the list where it can be unblocked.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct BlockedView {
    /// Its `allium:` address.
    pub address: String,
    /// What the person called it when blocking it (may be empty).
    pub nickname: String,
}

/// One message of a conversation, as shown.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MessageView {
    /// Who wrote it.
    pub direction: Direction,
    /// Its id (the sender's numbering).
    pub id: u64,
    /// The text, to be shown as plain text only.
    pub text: String,
    /// Unix seconds, our clock.
    pub at: u64,
    /// Outgoing: where it stands.
    pub state: Option<DeliveryState>,
}

/// Who cancelled a transfer, and why.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Cancelled {
    /// Whether the other side cancelled it.
    pub by_peer: bool,
    /// In words.
    pub reason: String,
}

/// Direction of a file transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferDirection {
    /// We send.
    Outgoing,
    /// We receive.
    Incoming,
}

/// A file transfer as the outside sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TransferView {
    /// Its id, as hex.
    pub id: String,
    /// The contact.
    pub contact: ContactId,
    /// Which way.
    pub direction: TransferDirection,
    /// The file name (sanitized for incoming files).
    pub name: String,
    /// Total size in bytes.
    pub size: u64,
    /// Bytes stored by the receiver so far.
    pub done: u64,
    /// Incoming: whether we accepted it.
    pub accepted: bool,
}

/// The engine's state, for a status line.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// Our public address.
    pub address: String,
    /// Whether the intake can be reached; `None` when the person switched
    /// it off (the one place a status says so).
    pub intake: Option<ServiceState>,
    /// Whether the endpoint can be reached.
    pub endpoint: ServiceState,
    /// The last save error, if the latest change is not on disk.
    pub save_error: Option<SaveError>,
}

/// Reachability of one of our services, in words the UI maps to text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceState {
    /// Being published.
    Starting,
    /// Others can reach it.
    Reachable,
    /// Published but currently unreachable; Tor keeps trying.
    Unreachable,
    /// Stopped; switching it off and on again may help.
    Broken,
    /// Not running.
    Off,
}

impl From<Reachability> for ServiceState {
    fn from(r: Reachability) -> Self {
        match r {
            Reachability::Starting => ServiceState::Starting,
            Reachability::Reachable => ServiceState::Reachable,
            Reachability::Unreachable => ServiceState::Unreachable,
            _ => ServiceState::Broken,
        }
    }
}

/// What happened, for the window and the JSON-RPC notifications.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A contact was added, changed state, or was renamed.
    ContactChanged {
        /// The contact now.
        contact: ContactSummary,
    },
    /// A contact was removed (by us, or it rejected our request).
    ContactRemoved {
        /// Which.
        contact: ContactId,
    },
    /// A stranger asked to become a contact.
    RequestReceived {
        /// The new pending contact.
        contact: ContactSummary,
    },
    /// Our request reached them.
    RequestDelivered {
        /// Which.
        contact: ContactId,
    },
    /// They accepted our request.
    RequestAccepted {
        /// Which.
        contact: ContactId,
    },
    /// A contact started or stopped keeping a history of the conversation
    /// (it said so; PROTOCOL.md §6.3). Not sent for its first word.
    PeerHistoryChanged {
        /// Which.
        contact: ContactId,
        /// Whether it keeps history now.
        kept: bool,
    },
    /// They declined our request.
    RequestRejected {
        /// Which (now removed).
        contact: ContactId,
    },
    /// A contact came online or went offline.
    Presence {
        /// Which.
        contact: ContactId,
        /// Whether a session is up.
        online: bool,
    },
    /// A message arrived.
    MessageReceived {
        /// From whom.
        contact: ContactId,
        /// The message.
        message: MessageView,
    },
    /// One of our messages changed delivery state.
    MessageState {
        /// To whom.
        contact: ContactId,
        /// Which.
        id: u64,
        /// Now.
        state: DeliveryState,
    },
    /// Messages from a contact that we had received and acknowledged are
    /// not in this profile (it was restored from an older copy, or the
    /// contact was removed and added again): ids `from` to `to` are gone
    /// from here, and delivery goes on after them.
    MessagesMissing {
        /// From whom.
        contact: ContactId,
        /// The first missing id.
        from: u64,
        /// The last missing id.
        to: u64,
    },
    /// Our profile had gone back in time (restored from an older copy)
    /// and the contact already holds some of the ids we were about to
    /// use: these messages, not yet delivered, got new ids (old, new).
    MessagesRenumbered {
        /// To whom.
        contact: ContactId,
        /// Each renumbered message: its old id and its new one.
        renumbered: Vec<(u64, u64)>,
    },
    /// A contact offers a file.
    FileOffered {
        /// The transfer.
        transfer: TransferView,
    },
    /// Bytes moved.
    FileProgress {
        /// The transfer, with `done` updated.
        transfer: TransferView,
        /// Bytes per second over the last interval.
        bytes_per_second: u64,
    },
    /// A transfer finished: the receiver checked the digest.
    FileCompleted {
        /// The transfer.
        transfer: TransferView,
        /// Incoming: where the file is now.
        path: Option<PathBuf>,
    },
    /// A transfer was abandoned.
    FileCancelled {
        /// The transfer.
        transfer: TransferView,
        /// Who and why.
        cancelled: Cancelled,
    },
    /// Our intake or endpoint changed reachability.
    Service {
        /// Our intake?
        intake: bool,
        /// Now.
        state: ServiceState,
    },
    /// The latest changes could not be saved (`None`: saved again).
    SaveProblem {
        /// What went wrong (`null` in JSON: saved again).
        error: Option<SaveError>,
    },
}

/// An address as a person may paste or type it: written in groups, or
/// broken over lines as on a printed card. White space of any kind inside
/// it is dropped; everything else is left for [`OnionId::parse`] to judge.
pub fn normalize_address(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}

/// How many safety words [`safety_words`] gives: 6 × 12.9 = 77 bits, far
/// beyond what anyone could match by making addresses until one fits.
pub const SAFETY_WORDS: usize = 6;

/// Words two contacts compare, by voice or in person, to check that each
/// holds the other's real address: the same on both sides (the two
/// addresses are sorted first), different for any other pair. They are
/// the EFF large word list's words for SHA-256 of a label and the two
/// intake ids, read as a number in base 7,776 (PROTOCOL.md §11).
pub fn safety_words(a: &OnionId, b: &OnionId) -> [&'static str; SAFETY_WORDS] {
    use sha2::{Digest, Sha256};
    let (lo, hi) = if a.as_bytes() <= b.as_bytes() {
        (a, b)
    } else {
        (b, a)
    };
    let digest = Sha256::new()
        .chain_update(b"allium safety words v1")
        .chain_update(lo.as_bytes())
        .chain_update(hi.as_bytes())
        .finalize();
    let mut first = [0u8; 16];
    first.copy_from_slice(&digest[..16]);
    // 7776⁶ ≈ 2⁷⁷·⁵ is far below 2¹²⁸: the words are as good as uniform.
    let mut n = u128::from_be_bytes(first);
    let base = crate::wordlist::LEN as u128;
    let mut out = [""; SAFETY_WORDS];
    for w in &mut out {
        *w = crate::wordlist::word((n % base) as usize);
        n /= base;
    }
    out
}

/// Called after every event, so a window can repaint.
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// A running engine: its handle, its events, and its task.
pub struct Engine {
    /// Commands.
    pub handle: EngineHandle,
    /// Events, in order. Bounded: while nobody reads them the engine takes
    /// no new input (peers then wait, and nothing is lost).
    pub events: mpsc::Receiver<Event>,
    /// The engine task; it ends after [`EngineHandle::shutdown`].
    pub task: tokio::task::JoinHandle<()>,
    /// Our intake id (our address).
    pub address: OnionId,
}

impl Engine {
    /// Starts the engine for `profile` on `transport` (inside a tokio
    /// runtime). Services are published in the background; watch
    /// [`Event::Service`].
    pub fn start<T: Transport>(
        transport: T,
        profile: Profile,
        store: Box<dyn ProfileSaver>,
        config: EngineConfig,
        notify: Option<Notify>,
    ) -> Engine {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::channel(shell::EVENT_QUEUE);
        let (address, task) =
            shell::spawn(transport, profile, store, config, rx, events_tx, notify);
        Engine {
            handle: EngineHandle { tx },
            events,
            task,
            address,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(byte: u8) -> OnionId {
        allium_protocol::IdentityKey::from_seed(&[byte; 32]).onion_id()
    }

    #[test]
    fn safety_words_are_the_same_on_both_sides_and_differ_between_pairs() {
        let (a, b, c) = (id(1), id(2), id(3));
        assert_eq!(safety_words(&a, &b), safety_words(&b, &a));
        assert_ne!(safety_words(&a, &b), safety_words(&a, &c));
        assert_ne!(safety_words(&a, &b), safety_words(&c, &b));
        for w in safety_words(&a, &b) {
            assert!(crate::wordlist::eff_large().contains(&w));
        }
    }

    /// PROTOCOL.md §11's vector, so a second implementation can check its
    /// words; rewritten with `ALLIUM_REGENERATE_VECTORS=1`.
    #[test]
    fn safety_words_match_the_published_vector() {
        let (a, b) = (
            allium_protocol::IdentityKey::from_seed(&[1; 32]).onion_id(),
            allium_protocol::IdentityKey::from_seed(&[2; 32]).onion_id(),
        );
        let vector = serde_json::json!({
            "description": "PROTOCOL.md §11: the safety words of two intake ids",
            "a_seed": hex::encode([1u8; 32]),
            "b_seed": hex::encode([2u8; 32]),
            "a_intake_id": hex::encode(a.as_bytes()),
            "b_intake_id": hex::encode(b.as_bytes()),
            "words": safety_words(&a, &b),
        });
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/protocol/tests/vectors/safety-words.json"
        );
        let text = serde_json::to_string_pretty(&vector).expect("json") + "\n";
        if std::env::var_os("ALLIUM_REGENERATE_VECTORS").is_some() {
            std::fs::write(path, &text).expect("write the vector");
        }
        let on_file = std::fs::read_to_string(path).expect("the vector file");
        assert_eq!(on_file, text, "rewrite with ALLIUM_REGENERATE_VECTORS=1");
    }

    #[test]
    fn addresses_in_groups_or_over_lines_are_accepted() {
        let a = id(7).to_address();
        let (head, tail) = a.split_at(20);
        let grouped = format!("  {head}\n\u{a0}\t{tail}\r\n");
        assert_eq!(normalize_address(&grouped), a);
        let spaced: String = a
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = (i > 7 && i % 4 == 0).then_some(' ');
                sep.into_iter().chain(std::iter::once(c))
            })
            .collect();
        assert_ne!(spaced, a);
        assert_eq!(OnionId::parse(&normalize_address(&spaced)), Ok(id(7)));
    }
}
