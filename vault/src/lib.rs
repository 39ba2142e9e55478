#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod amnesic;
mod error;
mod format;
pub mod profile;
mod store;
mod vault;

pub use amnesic::{
    AmnesicSession, amnesic_parent_candidates, install_exit_cleanup, install_panic_cleanup,
    remove_amnesic_dirs, sweep_stale_amnesic_dirs,
};
pub use error::VaultError;
pub use format::{FORMAT_VERSION, HEADER_LEN, KdfParams, MAGIC};
pub use profile::{
    BlockedName, Contact, ContactId, ContactState, Direction, HistoryEntry, Profile, ProfileKeys,
    Public32, QueuedMessage, Secret32, Settings,
};
pub use store::{
    ProfileLock, ProfileName, ProfilePaths, ProfileStore, UnlockedProfile, default_data_dir,
};
pub use vault::Vault;
