#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod memory;
pub mod network;
pub mod tor;
pub mod transport;

pub use memory::{Fault, MemoryNetwork, MemoryTransport};
pub use network::{CustomNetwork, Network, NetworkFileError};
pub use tor::{
    BootstrapError, BootstrapProgress, MAX_AUTHORIZED_CLIENTS, Stuck, TorConfig, TorTransport,
};
pub use transport::{
    ClientKey, Connection, DialError, Incoming, NotReachable, Reachability, SERVICE_PORT,
    ServiceError, ServiceHandle, Transport,
};

/// The version of Arti (`arti-client`) this build embeds, for the window's
/// "about" section and bug reports. A test checks it against the pin in
/// this crate's `Cargo.toml`.
pub const ARTI_VERSION: &str = "0.47.0";

#[cfg(test)]
mod version_tests {
    #[test]
    fn arti_version_matches_the_pinned_dependency() {
        let manifest = include_str!("../Cargo.toml");
        let pin = format!("arti-client = {{ version = \"={}\"", super::ARTI_VERSION);
        assert!(
            manifest.contains(&pin),
            "ARTI_VERSION is out of date with Cargo.toml"
        );
    }
}
