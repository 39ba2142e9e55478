#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod client;
mod network;
mod network_file;
mod owner;
mod ports;
mod process;
mod shared_random;
mod torrc;

use std::path::PathBuf;
use std::time::Duration;

pub use client::{CTorClient, CTorClientOptions, OnionServiceOptions};
pub use network::{StartOptions, StartupTimes, TestNetwork};
pub use network_file::{AuthorityEntry, FallbackEntry, NETWORK_FILE_ENV, NetworkFile};
pub use owner::{OWNER_FILE, stop_owner};

/// Everything that can go wrong while starting, watching or stopping a
/// local Tor network.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system or process operation failed; `context` says which.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A helper command (`tor-gencert`, `tor --list-fingerprint`) failed.
    /// Typically `tor` is not installed or the directory is not writable.
    #[error("`{command}` failed ({status}): {output}")]
    Command {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr (and stdout), trimmed.
        output: String,
    },
    /// A file that tor wrote did not have the expected format.
    #[error("unexpected contents in {path}: {what}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: String,
    },
    /// The network file could not be read, written or parsed.
    #[error("network file {path}: {source}")]
    NetworkFile {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The chosen directory holds files that this crate did not create, so
    /// it refuses to use (and later wipe) it.
    #[error(
        "{path} is not empty and was not made by allium-testnet; choose an empty or new directory"
    )]
    DirNotEmpty {
        /// The directory.
        path: PathBuf,
    },
    /// The chosen directory belongs to a network that is still running.
    #[error("a test network owned by pid {pid} is still running in {path}")]
    AlreadyRunning {
        /// The directory.
        path: PathBuf,
        /// The owning process.
        pid: u32,
    },
    /// The directory's path cannot be written into a torrc (tor's `Log`
    /// option splits on spaces).
    #[error("{path}: directory paths must be UTF-8 without spaces, quotes or backslashes")]
    UnsupportedPath {
        /// The directory.
        path: PathBuf,
    },
    /// The options make no sense (for example zero authorities).
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// A tor process ended on its own, typically because of a bad option or
    /// a port it could not bind.
    #[error("tor node {node} exited ({status}); last lines of {log}:\n{tail}")]
    NodeExited {
        /// The node's name (`auth0`, `relay3`, `client0`, …).
        node: String,
        /// How it ended.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// A node did not become ready in time.
    #[error("tor node {node} not ready after {waited:?}: {reason}; last lines of {log}:\n{tail}")]
    NotReady {
        /// The first node that is not ready.
        node: String,
        /// How long we waited.
        waited: Duration,
        /// What it lacks.
        reason: String,
        /// Its log file.
        log: PathBuf,
        /// The last lines of that log.
        tail: String,
    },
    /// Another process took one of the chosen ports, every time we tried.
    #[error("ports were taken by other processes on each of {attempts} attempts")]
    PortsInUse {
        /// How many times we tried.
        attempts: u32,
    },
    /// The caller's cancel flag was raised during startup.
    #[error("cancelled")]
    Cancelled,
}

/// The `tor` program to run by default: the first `tor` on `PATH`, else
/// `/usr/sbin/tor` (where Debian installs it; `/usr/sbin` is often not on a
/// normal user's `PATH`), else plain `tor`.
pub fn tor_program() -> PathBuf {
    let on_path = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("tor"))
            .find(|candidate| candidate.is_file())
    });
    on_path
        .or_else(|| Some(PathBuf::from("/usr/sbin/tor")).filter(|p| p.is_file()))
        .unwrap_or_else(|| "tor".into())
}

impl Error {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}
