#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod address;
mod codec;
pub mod error;
pub mod flow;
pub mod frame;
#[doc(hidden)]
pub mod fuzz_harness;
pub mod identity;
pub mod message;
pub mod noise;
pub mod replay;
pub mod session;
pub mod text;

pub use address::OnionId;
pub use error::{AddressError, CloseCause, DecodeError, ProtocolError};
pub use frame::Purpose;
pub use identity::{IdentityKey, IdentityProof, StaticKeypair, StaticPublicKey};
pub use message::{
    CancelReason, Chat, CloseReason, ContactAccept, ContactRequest, DiscoveryKey, FileChunk,
    FileOffer, Message, RefuseReason, TransferId,
};
pub use replay::ReplayCache;
pub use session::{Event, LocalIdentity, PeerHello, Session, SessionConfig};

/// The first bytes of every Allium connection.
pub const PROTOCOL_MAGIC: &[u8; 6] = b"ALLIUM";
/// Protocol versions this implementation speaks, most preferred first.
/// Version 3 is version 2 plus HISTORY (PROTOCOL.md §4.2, §6.1).
pub const SUPPORTED_VERSIONS: &[u8] = &[3, 2];
/// The first version with HISTORY.
pub const HISTORY_VERSION: u8 = 3;
/// Most versions a hello may offer.
pub const MAX_VERSIONS: usize = 8;
