#![doc = include_str!("../README.md")]

pub mod profile;

pub use profile::{
    Contact, ContactId, ContactState, Direction, HistoryEntry, Profile, ProfileKeys, Public32,
    QueuedMessage, Secret32, Settings,
};
