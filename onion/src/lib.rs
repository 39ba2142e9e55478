#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod memory;
pub mod network;
pub mod tor;
pub mod transport;

pub use memory::{Fault, MemoryNetwork, MemoryTransport};
pub use network::{CustomNetwork, Network, NetworkFileError};
pub use tor::{BootstrapError, BootstrapProgress, MAX_AUTHORIZED_CLIENTS, TorConfig, TorTransport};
pub use transport::{
    ClientKey, Connection, DialError, Incoming, NotReachable, Reachability, SERVICE_PORT,
    ServiceError, ServiceHandle, Transport,
};
