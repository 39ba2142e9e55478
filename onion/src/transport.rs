//! The `Transport` seam: what the engine needs from a network, and nothing
//! about how it is provided. Two implementations: [`crate::tor`] (Arti) and
//! [`crate::memory`] (in-process, with injected faults, for engine tests).

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;

use allium_protocol::{DiscoveryKey, IdentityKey, OnionId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, watch};

/// The virtual port every Allium onion service listens on.
pub const SERVICE_PORT: u16 = 9878;

/// A bidirectional byte stream to a peer.
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Stream for T {}

/// A connection to or from a peer.
pub type Connection = Box<dyn Stream>;

/// The public half of a discovery key: what an endpoint authorizes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientKey(pub [u8; 32]);

impl ClientKey {
    /// The public key matching a discovery secret.
    pub fn from_secret(secret: &DiscoveryKey) -> Self {
        ClientKey(secret.public_key())
    }
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientKey({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// Whether a published service can be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reachability {
    /// Introduction points and descriptor are being set up.
    Starting,
    /// Peers can reach it.
    Reachable,
    /// It is running but cannot currently be reached (for example the
    /// descriptor could not be published); it keeps trying.
    Unreachable,
    /// It stopped and will not recover by itself.
    Broken,
}

/// A service that did not become reachable in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the onion service is not reachable ({state:?}){}", problem.as_ref().map(|p| format!(": {p}")).unwrap_or_default())]
pub struct NotReachable {
    /// The last state seen.
    pub state: Reachability,
    /// The transport's words for what is wrong, if it said.
    pub problem: Option<String>,
}

/// Why a dial failed, in terms a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// No descriptor: the contact is offline, or the address is wrong.
    #[error("the contact is offline or the address does not exist (no descriptor found)")]
    NotFound,
    /// The service is restricted and we hold no (or a revoked) key for it.
    #[error("not authorized: the contact has not accepted us, or removed us")]
    NotAuthorized,
    /// A descriptor exists but the service did not answer.
    #[error("the contact's onion service did not answer; it may have just gone offline")]
    Unreachable,
    /// The dial took longer than its limit.
    #[error("connecting took longer than {0:?}; Tor may be slow, try again")]
    TimedOut(Duration),
    /// Tor is not (yet) connected to the network.
    #[error("Tor is not connected to the network yet")]
    NotBootstrapped,
    /// Anything else, with Tor's own words.
    #[error("connection failed: {0}")]
    Other(String),
}

/// Why a service could not be published or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// Another service with this address is already running here.
    #[error("this onion service is already running")]
    AlreadyRunning,
    /// More authorized clients than a descriptor can hold.
    #[error("too many authorized contacts for one endpoint (at most {0})")]
    TooManyClients(usize),
    /// The service has stopped.
    #[error("the onion service has stopped")]
    Stopped,
    /// Tor refused, with its own words.
    #[error("Tor could not run the onion service: {0}")]
    Tor(String),
}

/// What the network layer offers the engine.
///
/// Implementations are cheap to clone handles onto one network presence.
pub trait Transport: Clone + Send + Sync + 'static {
    /// Opens a stream to `target`'s service. `discovery` is the key the
    /// target issued us, needed for an endpoint (restricted discovery).
    fn dial(
        &self,
        target: OnionId,
        discovery: Option<&DiscoveryKey>,
    ) -> impl Future<Output = Result<Connection, DialError>> + Send;

    /// Publishes the public intake service for `identity`.
    fn publish_intake(
        &self,
        identity: &IdentityKey,
    ) -> impl Future<Output = Result<ServiceHandle, ServiceError>> + Send;

    /// Publishes the restricted-discovery endpoint for `identity`, reachable
    /// only with the discovery keys whose public halves are `authorized`.
    fn publish_endpoint(
        &self,
        identity: &IdentityKey,
        authorized: BTreeSet<ClientKey>,
    ) -> impl Future<Output = Result<ServiceHandle, ServiceError>> + Send;
}

/// How a running service is changed; implemented by each transport.
pub(crate) trait ServiceControl: Send + Sync {
    /// Replaces the set of authorized clients (endpoints only).
    fn set_authorized(&self, clients: &BTreeSet<ClientKey>) -> Result<(), ServiceError>;
}

/// Incoming connections of a service, split off its [`ServiceHandle`].
pub struct Incoming(mpsc::Receiver<Connection>);

impl Incoming {
    /// The next incoming connection; `None` once the service has stopped.
    pub async fn accept(&mut self) -> Option<Connection> {
        self.0.recv().await
    }
}

/// A running onion service. Dropping it stops the service.
pub struct ServiceHandle {
    pub(crate) address: OnionId,
    pub(crate) restricted: bool,
    pub(crate) authorized: BTreeSet<ClientKey>,
    pub(crate) incoming: Option<mpsc::Receiver<Connection>>,
    pub(crate) status: watch::Receiver<Reachability>,
    /// The transport's own words for the last problem, if any.
    pub(crate) problem: watch::Receiver<Option<String>>,
    pub(crate) control: Box<dyn ServiceControl>,
}

impl ServiceHandle {
    /// The service's onion id.
    pub fn address(&self) -> OnionId {
        self.address
    }

    /// The next incoming connection; `None` once the service has stopped
    /// (or after [`ServiceHandle::take_incoming`]).
    pub async fn accept(&mut self) -> Option<Connection> {
        match &mut self.incoming {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// Hands the incoming connections to another task (which can then
    /// accept while this handle is used to authorize and revoke). The
    /// service still stops when this handle is dropped.
    pub fn take_incoming(&mut self) -> Option<Incoming> {
        self.incoming.take().map(Incoming)
    }

    /// Reachability, as it changes.
    pub fn status(&self) -> watch::Receiver<Reachability> {
        self.status.clone()
    }

    /// The last problem the transport reported, in its own words.
    pub fn problem(&self) -> Option<String> {
        self.problem.borrow().clone()
    }

    /// Waits until the service is reachable, or fails with the last state
    /// seen (and the problem, if one was reported) after `limit`.
    pub async fn wait_reachable(&self, limit: Duration) -> Result<(), NotReachable> {
        let mut rx = self.status.clone();
        let wait = rx.wait_for(|s| matches!(s, Reachability::Reachable | Reachability::Broken));
        let state = match tokio::time::timeout(limit, wait).await {
            Ok(Ok(s)) if *s == Reachability::Reachable => return Ok(()),
            Ok(Ok(s)) => *s,
            Ok(Err(_)) => Reachability::Broken,
            Err(_) => *self.status.borrow(),
        };
        Err(NotReachable {
            state,
            problem: self.problem(),
        })
    }

    /// The authorized clients (endpoints).
    pub fn authorized(&self) -> &BTreeSet<ClientKey> {
        &self.authorized
    }

    /// Lets the holder of `client`'s secret discover this endpoint, without
    /// restarting it.
    pub fn authorize(&mut self, client: ClientKey) -> Result<(), ServiceError> {
        let mut next = self.authorized.clone();
        next.insert(client);
        self.apply(next)
    }

    /// Stops `client` from discovering this endpoint from now on. (A client
    /// that already holds a fresh descriptor may still reach the
    /// introduction points until they rotate; the session layer refuses it.)
    pub fn revoke(&mut self, client: &ClientKey) -> Result<(), ServiceError> {
        let mut next = self.authorized.clone();
        next.remove(client);
        self.apply(next)
    }

    fn apply(&mut self, next: BTreeSet<ClientKey>) -> Result<(), ServiceError> {
        if !self.restricted {
            return Err(ServiceError::Tor(
                "the intake is public; it has no authorized clients".into(),
            ));
        }
        self.control.set_authorized(&next)?;
        self.authorized = next;
        Ok(())
    }
}
