//! An in-memory network for engine tests: many nodes in one process, with
//! faults injected per target (refuse, drop mid-stream, delay) and nodes
//! that vanish without a word, as a killed process behind Tor does. It follows
//! the same rules as the Tor transport (an endpoint admits only authorized
//! discovery keys; a stopped service is not found) so engine tests exercise
//! the same failures.

use std::collections::{BTreeSet, HashMap};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use allium_protocol::{DiscoveryKey, IdentityKey, OnionId};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, mpsc, watch};

use crate::transport::{
    ClientKey, Connection, DialError, Reachability, ServiceControl, ServiceError, ServiceHandle,
    Transport,
};

/// Bytes a pipe buffers in each direction.
const PIPE_BUFFER: usize = 64 * 1024;

/// What goes wrong when someone dials a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Dials fail as if the service did not answer.
    Refuse,
    /// Dials succeed, but the dialler's side of the connection breaks after
    /// this many bytes have been written to it (mid-frame, typically).
    DropAfter(usize),
    /// Dials take this long before they connect.
    Delay(Duration),
}

/// The shared in-memory network. Clone it to get more handles to the same
/// network; call [`MemoryNetwork::node`] for a transport.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<NetState>>,
}

#[derive(Default)]
struct NetState {
    services: HashMap<OnionId, Listener>,
    faults: HashMap<OnionId, Fault>,
    dials: u64,
    /// Tells a restarted service from the handle of its stopped
    /// predecessor, whose drop must not unpublish it.
    next_generation: u64,
}

struct Listener {
    /// `None` for a public intake.
    authorized: Option<BTreeSet<ClientKey>>,
    tx: mpsc::Sender<Connection>,
    generation: u64,
    /// The node that published it.
    owner: Arc<AtomicBool>,
}

impl MemoryNetwork {
    /// A new, empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// A transport for one node of this network.
    pub fn node(&self) -> MemoryTransport {
        MemoryTransport {
            net: self.clone(),
            gone: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The node that published `address` vanishes, as a process killed
    /// behind Tor does: nothing it had open is closed, every byte either
    /// way is lost from now on, and dials to it fail. Only timeouts can
    /// tell the others. Returns whether such a node was found.
    pub fn vanish(&self, address: &OnionId) -> bool {
        let Ok(st) = self.inner.lock() else {
            return false;
        };
        match st.services.get(address) {
            Some(l) => {
                l.owner.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }

    /// Sets (or with `None` clears) the fault for dials to `target`.
    pub fn set_fault(&self, target: OnionId, fault: Option<Fault>) {
        if let Ok(mut st) = self.inner.lock() {
            match fault {
                Some(f) => st.faults.insert(target, f),
                None => st.faults.remove(&target),
            };
        }
    }

    /// Number of dials so far (to check pacing and backoff).
    pub fn dial_count(&self) -> u64 {
        self.inner.lock().map(|s| s.dials).unwrap_or(0)
    }

    /// Whether a service with this address is published.
    pub fn is_published(&self, id: &OnionId) -> bool {
        self.inner
            .lock()
            .map(|s| s.services.contains_key(id))
            .unwrap_or(false)
    }
}

/// One node's view of a [`MemoryNetwork`].
#[derive(Clone)]
pub struct MemoryTransport {
    net: MemoryNetwork,
    /// Set when this node vanished.
    gone: Arc<AtomicBool>,
}

impl MemoryTransport {
    fn publish(
        &self,
        identity: &IdentityKey,
        authorized: Option<BTreeSet<ClientKey>>,
    ) -> Result<ServiceHandle, ServiceError> {
        let address = identity.onion_id();
        let (tx, rx) = mpsc::channel(16);
        let mut st = self
            .net
            .inner
            .lock()
            .map_err(|_| ServiceError::Tor("lock poisoned".into()))?;
        if st.services.contains_key(&address) {
            return Err(ServiceError::AlreadyRunning);
        }
        st.next_generation += 1;
        let generation = st.next_generation;
        st.services.insert(
            address,
            Listener {
                authorized: authorized.clone(),
                tx,
                generation,
                owner: self.gone.clone(),
            },
        );
        let (_status_tx, status) = watch::channel(Reachability::Reachable);
        Ok(ServiceHandle {
            address,
            restricted: authorized.is_some(),
            authorized: authorized.unwrap_or_default(),
            incoming: Some(rx),
            status,
            problem: watch::channel(None).1,
            control: Box::new(MemoryService {
                net: self.net.clone(),
                address,
                generation,
                _status: _status_tx,
            }),
        })
    }
}

impl Transport for MemoryTransport {
    async fn dial(
        &self,
        target: OnionId,
        discovery: Option<&DiscoveryKey>,
    ) -> Result<Connection, DialError> {
        let client = discovery.map(ClientKey::from_secret);
        let (fault, tx, owner) = {
            let mut st = self
                .net
                .inner
                .lock()
                .map_err(|_| DialError::Other("lock poisoned".into()))?;
            st.dials += 1;
            let fault = st.faults.get(&target).copied();
            let Some(listener) = st.services.get(&target) else {
                return Err(DialError::NotFound);
            };
            if let Some(allowed) = &listener.authorized
                && !client.is_some_and(|c| allowed.contains(&c))
            {
                return Err(DialError::NotAuthorized);
            }
            (fault, listener.tx.clone(), listener.owner.clone())
        };
        if owner.load(Ordering::SeqCst) || self.gone.load(Ordering::SeqCst) {
            return Err(DialError::Unreachable);
        }
        match fault {
            Some(Fault::Refuse) => return Err(DialError::Unreachable),
            Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
            _ => {}
        }
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        let ends = [self.gone.clone(), owner];
        tx.try_send(Box::new(Vanishing {
            inner: theirs,
            ends: ends.clone(),
        }))
        .map_err(|_| DialError::Unreachable)?;
        Ok(match fault {
            Some(Fault::DropAfter(n)) => Box::new(Vanishing {
                inner: Breaking {
                    inner: Some(ours),
                    budget: n,
                },
                ends,
            }),
            _ => Box::new(Vanishing { inner: ours, ends }),
        })
    }

    async fn publish_intake(&self, identity: &IdentityKey) -> Result<ServiceHandle, ServiceError> {
        self.publish(identity, None)
    }

    async fn publish_endpoint(
        &self,
        identity: &IdentityKey,
        authorized: BTreeSet<ClientKey>,
    ) -> Result<ServiceHandle, ServiceError> {
        self.publish(identity, Some(authorized))
    }
}

struct MemoryService {
    net: MemoryNetwork,
    address: OnionId,
    generation: u64,
    _status: watch::Sender<Reachability>,
}

impl ServiceControl for MemoryService {
    fn set_authorized(&self, clients: &BTreeSet<ClientKey>) -> Result<(), ServiceError> {
        let mut st = self
            .net
            .inner
            .lock()
            .map_err(|_| ServiceError::Tor("lock poisoned".into()))?;
        match st.services.get_mut(&self.address) {
            Some(l) if l.generation == self.generation => {
                l.authorized = Some(clients.clone());
                Ok(())
            }
            _ => Err(ServiceError::Stopped),
        }
    }
}

impl Drop for MemoryService {
    fn drop(&mut self) {
        if let Ok(mut st) = self.net.inner.lock()
            && st.services.get(&self.address).map(|l| l.generation) == Some(self.generation)
        {
            st.services.remove(&self.address);
        }
    }
}

/// A stream that breaks after a byte budget is written: the peer sees the
/// stream end in the middle of whatever was being sent.
struct Breaking {
    inner: Option<DuplexStream>,
    budget: usize,
}

impl AsyncRead for Breaking {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(s) => Pin::new(s).poll_read(cx, buf),
            None => Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into())),
        }
    }
}

impl AsyncWrite for Breaking {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let budget = self.budget;
        let Some(s) = self.inner.as_mut() else {
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        };
        if budget == 0 {
            // Dropping our end closes the pipe for the peer.
            self.inner = None;
            return Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into()));
        }
        let n = buf.len().min(budget);
        match Pin::new(s).poll_write(cx, &buf[..n]) {
            Poll::Ready(Ok(w)) => {
                self.budget -= w;
                Poll::Ready(Ok(w))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(s) => Pin::new(s).poll_flush(cx),
            None => Poll::Ready(Err(std::io::ErrorKind::ConnectionReset.into())),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(s) => Pin::new(s).poll_shutdown(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}

/// A stream between two nodes that goes silent once either vanished:
/// reads never complete (not even with the end of the stream), writes are
/// swallowed.
struct Vanishing<S> {
    inner: S,
    ends: [Arc<AtomicBool>; 2],
}

impl<S> Vanishing<S> {
    fn silent(&self) -> bool {
        self.ends.iter().any(|e| e.load(Ordering::SeqCst))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Vanishing<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.silent() {
            // No waker is kept: nothing will ever arrive.
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Vanishing<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.silent() {
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.silent() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.silent() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A stream holding a connection-limit permit, released when it is dropped.
pub(crate) struct Permitted<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
}

impl<S> Permitted<S> {
    pub(crate) fn new(inner: S, permit: OwnedSemaphorePermit) -> Self {
        Permitted {
            inner,
            _permit: permit,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Permitted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Permitted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn key(seed: u8) -> IdentityKey {
        IdentityKey::generate(&mut ChaCha20Rng::from_seed([seed; 32]))
    }

    #[tokio::test]
    async fn endpoint_admits_only_authorized_keys_and_revocation_applies() {
        let net = MemoryNetwork::new();
        let (a, b) = (net.node(), net.node());
        let friend = DiscoveryKey([1; 32]);
        let stranger = DiscoveryKey([2; 32]);
        let id = key(1);
        let mut svc = b
            .publish_endpoint(&id, [ClientKey::from_secret(&friend)].into())
            .await
            .expect("publish");
        let mut conn = a
            .dial(id.onion_id(), Some(&friend))
            .await
            .expect("friend dials");
        conn.write_all(b"ping").await.expect("write");
        let mut inbound = svc.accept().await.expect("incoming");
        let mut buf = [0u8; 4];
        inbound.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"ping");
        assert_eq!(
            a.dial(id.onion_id(), Some(&stranger)).await.err(),
            Some(DialError::NotAuthorized)
        );
        assert_eq!(
            a.dial(id.onion_id(), None).await.err(),
            Some(DialError::NotAuthorized)
        );
        svc.revoke(&ClientKey::from_secret(&friend))
            .expect("revoke");
        assert_eq!(
            a.dial(id.onion_id(), Some(&friend)).await.err(),
            Some(DialError::NotAuthorized)
        );
        drop(svc);
        assert_eq!(
            a.dial(id.onion_id(), Some(&friend)).await.err(),
            Some(DialError::NotFound)
        );
    }

    #[tokio::test]
    async fn faults_refuse_and_break_mid_stream() {
        let net = MemoryNetwork::new();
        let n = net.node();
        let id = key(2);
        let mut svc = n.publish_intake(&id).await.expect("publish");
        net.set_fault(id.onion_id(), Some(Fault::Refuse));
        assert_eq!(
            n.dial(id.onion_id(), None).await.err(),
            Some(DialError::Unreachable)
        );
        net.set_fault(id.onion_id(), Some(Fault::DropAfter(3)));
        let mut c = n.dial(id.onion_id(), None).await.expect("dial");
        let mut inbound = svc.accept().await.expect("incoming");
        assert!(c.write_all(b"hello").await.is_err(), "breaks after 3 bytes");
        drop(c);
        let mut got = Vec::new();
        inbound.read_to_end(&mut got).await.expect("eof");
        assert_eq!(got, b"hel");
        net.set_fault(id.onion_id(), None);
        assert!(n.dial(id.onion_id(), None).await.is_ok());
        assert_eq!(net.dial_count(), 3);
    }

    #[tokio::test]
    async fn a_vanished_node_goes_silent_without_closing() {
        let net = MemoryNetwork::new();
        let (a, b) = (net.node(), net.node());
        let id = key(4);
        let mut svc = b.publish_intake(&id).await.expect("publish");
        let mut c = a.dial(id.onion_id(), None).await.expect("dial");
        let mut inbound = svc.accept().await.expect("incoming");
        c.write_all(b"hi").await.expect("write");
        let mut got = [0u8; 2];
        inbound.read_exact(&mut got).await.expect("read");
        assert!(net.vanish(&id.onion_id()));
        // Its writes and its close reach nobody; ours are swallowed.
        inbound.write_all(b"lost").await.expect("swallowed");
        drop(inbound);
        c.write_all(b"also lost").await.expect("swallowed");
        let read = tokio::time::timeout(Duration::from_millis(200), c.read(&mut got)).await;
        assert!(read.is_err(), "nothing, not even the end, arrives");
        assert_eq!(
            a.dial(id.onion_id(), None).await.err(),
            Some(DialError::Unreachable)
        );
        assert!(!net.vanish(&key(5).onion_id()));
    }

    #[tokio::test]
    async fn intake_off_and_on_again() {
        let net = MemoryNetwork::new();
        let n = net.node();
        let id = key(3);
        let svc = n.publish_intake(&id).await.expect("publish");
        assert_eq!(
            n.publish_intake(&id).await.err(),
            Some(ServiceError::AlreadyRunning)
        );
        drop(svc);
        assert_eq!(
            n.dial(id.onion_id(), None).await.err(),
            Some(DialError::NotFound)
        );
        let _svc = n.publish_intake(&id).await.expect("again");
        assert!(n.dial(id.onion_id(), None).await.is_ok());
    }
}
