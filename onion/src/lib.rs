#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod memory;
pub mod network;
pub mod tor;
pub mod transport;

pub use memory::{Fault, MemoryNetwork, MemoryTransport};
pub use network::{CustomNetwork, Network, NetworkFileError};
pub use tor::{BootstrapError, BootstrapProgress, TorConfig, TorTransport};
pub use transport::{
    ClientKey, Connection, DialError, NotReachable, Reachability, SERVICE_PORT, ServiceError,
    ServiceHandle, Transport,
};
