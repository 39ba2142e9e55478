//! The Tor transport: Arti, embedded.
//!
//! Keys never touch Arti's disk: the primary keystore is Arti's ephemeral
//! (in-memory) one, the onion identity keys come from the caller (the vault)
//! with every launch, and discovery keys are inserted at dial time. What
//! Arti still writes under the state and cache directories (consensus,
//! guards, introduction-point state) is listed in the threat model.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use allium_protocol::{DiscoveryKey, IdentityKey, OnionId};
use arti_client::config::dir::{AuthorityContacts, FallbackDir};
use arti_client::config::onion_service::{OnionServiceConfig, OnionServiceConfigBuilder};
use arti_client::config::{CfgPath, TorClientConfigBuilder};
use arti_client::{ErrorKind, HasKind, KeystoreSelector, TorClient};
use futures::StreamExt;
use tokio::sync::{Semaphore, mpsc, watch};
use tor_cell::relaycell::msg::{Connected, End, EndReason};
use tor_config::ExplicitOrAuto;
use tor_hscrypto::pk::{HsClientDescEncKey, HsClientDescEncSecretKey, HsId, HsIdKeypair};
use tor_hsservice::config::restricted_discovery::HsClientNickname;
use tor_hsservice::status::State;
use tor_hsservice::{RunningOnionService, StreamRequest};
use tor_keymgr::config::ArtiKeystoreKind;
use tor_llcrypto::pk::curve25519;
use tor_rtcompat::PreferredRuntime;

use crate::network::{self, Network, NetworkFileError};
use crate::transport::{
    ClientKey, Connection, DialError, Reachability, SERVICE_PORT, ServiceControl, ServiceError,
    ServiceHandle, Transport,
};

/// Arti's limit on restricted-discovery clients per descriptor.
pub const MAX_AUTHORIZED_CLIENTS: usize =
    tor_hsservice::config::restricted_discovery::MAX_RESTRICTED_DISCOVERY_CLIENTS;

/// Connections open at once per service beyond which new ones are refused.
const MAX_OPEN_CONNECTIONS: usize = 64;
/// Streams one circuit may have open at once (Arti's default is 65,535).
const STREAMS_PER_CIRCUIT: u32 = 4;
/// At the intake a requester needs one stream (two while a retry overlaps a
/// closing one): an attacker must build a circuit, which the introduction
/// points rate-limit, for every slot it wants to hold (review finding H3).
const INTAKE_STREAMS_PER_CIRCUIT: u32 = 2;
/// Introduction requests per second the intake's introduction points pass
/// on, and the burst they allow (sent to them as DoS parameters): contact
/// requests are rare, floods are not.
const INTAKE_INTRO_RATE: (u32, u32) = (5, 20);

/// How to build the Tor client.
#[derive(Clone, Debug)]
pub struct TorConfig {
    /// Which network.
    pub network: Network,
    /// Arti's state directory (guards, service state): beside the vault, or
    /// in a private temporary directory for an amnesic session.
    pub state_dir: PathBuf,
    /// Arti's cache directory (consensus, descriptors).
    pub cache_dir: PathBuf,
    /// How long a dial may take.
    pub dial_timeout: Duration,
}

/// Bootstrap progress, for a progress bar.
#[derive(Clone, Debug, PartialEq)]
pub struct BootstrapProgress {
    /// 0.0 to 1.0.
    pub fraction: f32,
    /// What Tor is doing, in plain words.
    pub phase: String,
    /// Whether Tor can carry traffic now.
    pub ready: bool,
    /// Why Tor seems stuck, when Arti thinks it is.
    pub stuck: Option<Stuck>,
}

/// Why connecting to Tor is stuck, as far as Arti can tell (its guesses
/// are modest: "seems offline" may also mean a firewall).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stuck {
    /// No connection to the internet at all.
    Offline,
    /// Connections are made but seem filtered, or Tor's relays cannot be
    /// reached: Tor may be blocked here.
    Blocked,
    /// The computer's clock is wrong.
    Clock,
    /// Something else keeps the directory from loading.
    Directory,
}

impl Stuck {
    /// What to tell a person, with what to try.
    pub fn advice(self) -> &'static str {
        match self {
            Stuck::Offline => {
                "Tor cannot reach the internet. Check that this computer is online (cable, \
                 Wi-Fi, airplane mode), then try again."
            }
            Stuck::Blocked => {
                "Tor cannot reach its network: the connection seems filtered, so Tor may be \
                 blocked where you are. Try again later or from another network."
            }
            Stuck::Clock => {
                "This computer's clock seems wrong, and Tor cannot connect with a wrong \
                 clock. Set the right date, time and time zone, then try again."
            }
            Stuck::Directory => "Tor cannot load the list of relays. Try again in a minute.",
        }
    }
}

/// What bootstrapping is doing, in words, from how far it is.
fn phase_words(fraction: f32) -> &'static str {
    if fraction < 0.05 {
        "connecting to the Tor network"
    } else if fraction < 0.9 {
        "loading the list of relays"
    } else {
        "almost ready"
    }
}

/// Why Tor could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BootstrapError {
    /// The network file is unusable.
    #[error(transparent)]
    Network(#[from] NetworkFileError),
    /// The configuration was rejected (a bug, or an unusable directory).
    #[error("Tor's configuration was rejected: {0}")]
    Config(String),
    /// Tor could not connect to the network.
    #[error(
        "could not connect to the Tor network: {0}. Check the computer's internet connection, then retry."
    )]
    Connect(String),
}

type RendRequests =
    std::pin::Pin<Box<dyn futures::Stream<Item = tor_hsservice::RendRequest> + Send>>;

/// A Tor client with the services it publishes. Clones share it.
#[derive(Clone)]
pub struct TorTransport {
    client: Arc<TorClient<PreferredRuntime>>,
    dial_timeout: Duration,
    state: Arc<Mutex<KeyState>>,
}

#[derive(Default)]
struct KeyState {
    /// Service nickname → the id whose key is in the keystore.
    service_keys: HashMap<String, OnionId>,
    /// Target → the discovery key in the keystore for it.
    discovery: HashMap<OnionId, ClientKey>,
}

impl TorTransport {
    /// Creates the client without connecting; call [`TorTransport::bootstrap`].
    pub fn create(config: &TorConfig) -> Result<Self, BootstrapError> {
        // Arti's rustls runtime needs a process-wide crypto provider; a
        // second call (another profile, another test) finds it installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let built = client_config(config)?;
        let client = TorClient::builder()
            .config(built)
            .bootstrap_behavior(arti_client::BootstrapBehavior::Manual)
            .create_unbootstrapped()
            .map_err(|e| BootstrapError::Config(e.to_string()))?;
        Ok(TorTransport {
            client,
            dial_timeout: config.dial_timeout,
            state: Arc::default(),
        })
    }

    /// A client that shares this one's directory, guards and runtime but
    /// never a circuit with it: what several unrelated people look like
    /// (tests play many strangers this way). It has no services and no
    /// discovery keys of its own.
    pub fn isolated(&self) -> Self {
        TorTransport {
            client: self.client.isolated_client(),
            dial_timeout: self.dial_timeout,
            state: Arc::default(),
        }
    }

    /// Progress events until ready (and after, should Tor lose the network).
    pub fn bootstrap_progress(&self) -> impl futures::Stream<Item = BootstrapProgress> + use<> {
        self.client.bootstrap_events().map(|s| {
            use arti_client::status::BlockageKind as K;
            let stuck = s.blocked().map(|b| match b.kind() {
                K::Offline => Stuck::Offline,
                K::Filtering | K::CantReachTor => Stuck::Blocked,
                K::ClockSkewed => Stuck::Clock,
                _ => Stuck::Directory,
            });
            BootstrapProgress {
                fraction: s.as_frac(),
                phase: phase_words(s.as_frac()).to_owned(),
                ready: s.ready_for_traffic(),
                stuck,
            }
        })
    }

    /// Connects to the network.
    pub async fn bootstrap(&self) -> Result<(), BootstrapError> {
        self.client
            .bootstrap()
            .await
            .map_err(|e| BootstrapError::Connect(e.to_string()))
    }

    async fn launch(
        &self,
        nickname: &str,
        identity: &IdentityKey,
        authorized: Option<&BTreeSet<ClientKey>>,
    ) -> Result<ServiceHandle, ServiceError> {
        let address = identity.onion_id();
        let config = service_config(nickname, authorized)?;
        let known = self
            .state
            .lock()
            .map_err(|_| ServiceError::Tor("lock poisoned".into()))?
            .service_keys
            .get(nickname)
            .copied();
        let tor_err = |e: arti_client::Error| ServiceError::Tor(e.to_string());
        if known.is_some_and(|id| id != address) {
            return Err(ServiceError::AlreadyRunning);
        }
        // Launching needs a connected client (Arti persists introduction
        // point state only once it holds its state lock); waiting here also
        // covers a bootstrap still under way. Repeated calls are cheap.
        self.client.bootstrap().await.map_err(tor_err)?;
        let remember = |inserted: bool| {
            if let Ok(mut st) = self.state.lock() {
                if inserted {
                    st.service_keys.insert(nickname.to_owned(), address);
                } else {
                    st.service_keys.remove(nickname);
                }
            }
        };
        let launched: Option<(Arc<RunningOnionService>, RendRequests)> = if known.is_some() {
            // Relaunch: the key is already in the ephemeral keystore, and
            // Arti refuses to insert it twice.
            match self.client.launch_onion_service(config) {
                Ok(l) => l.map(|(r, s)| (r, Box::pin(s) as RendRequests)),
                Err(e) => {
                    // Perhaps the key never got in after all: the next
                    // attempt inserts it again.
                    remember(false);
                    return Err(tor_err(e));
                }
            }
        } else {
            // Arti inserts the key, then launches; if the launch fails the
            // key stays, and inserting it again would fail every retry:
            // remember it as inserted either way.
            let result = self
                .client
                .launch_onion_service_with_hsid(config, hsid_keypair(identity));
            remember(true);
            result
                .map_err(tor_err)?
                .map(|(r, s)| (r, Box::pin(s) as RendRequests))
        };
        let (running, requests) =
            launched.ok_or(ServiceError::Tor("the service is disabled".into()))?;

        let (status_tx, status_rx) = watch::channel(Reachability::Starting);
        let status_tx = Arc::new(status_tx);
        // Once reachable (Arti said so, or a client got through), a service
        // that republishes (new introduction points, a changed client
        // list) stays reachable in what we report: its last descriptor is
        // good for hours. Without this the window flip-flopped between
        // "reachable" and "publishing" while people were talking to it.
        let seen = Arc::new(AtomicBool::new(false));
        let (problem_tx, problem_rx) = watch::channel(None);
        let (conn_tx, conn_rx) = mpsc::channel(16);
        let mut status_events = running.status_events();
        let (tx, seen_by_status) = (status_tx.clone(), seen.clone());
        let status_task = tokio::spawn(async move {
            while let Some(s) = status_events.next().await {
                let problem = s.current_problem().map(|p| format!("{p:?}"));
                let has_problem = problem.is_some();
                let r = settled(
                    reachability(s.state(), has_problem),
                    has_problem,
                    &seen_by_status,
                );
                problem_tx.send_replace(problem);
                if tx.send(r).is_err() {
                    break;
                }
            }
        });
        let limit = Arc::new(Semaphore::new(MAX_OPEN_CONNECTIONS));
        let accept_task = tokio::spawn(async move {
            let mut streams = std::pin::pin!(tor_hsservice::handle_rend_requests(requests));
            while let Some(req) = streams.next().await {
                // A client completed a rendezvous with us: we are reachable,
                // whatever the descriptor bookkeeping says.
                if !seen.swap(true, Ordering::SeqCst) {
                    status_tx.send_if_modified(|r| {
                        let change = *r == Reachability::Starting;
                        if change {
                            *r = Reachability::Reachable;
                        }
                        change
                    });
                }
                let tx = conn_tx.clone();
                let limit = limit.clone();
                tokio::spawn(accept_one(req, tx, limit));
            }
        });
        Ok(ServiceHandle {
            address,
            restricted: authorized.is_some(),
            authorized: authorized.cloned().unwrap_or_default(),
            incoming: Some(conn_rx),
            status: status_rx,
            problem: problem_rx,
            control: Box::new(TorService {
                nickname: nickname.to_owned(),
                running,
                tasks: vec![status_task, accept_task],
            }),
        })
    }

    /// Makes sure the keystore holds `key` for `target` (replacing a
    /// different one, for a contact who re-issued its key).
    fn ensure_discovery_key(&self, target: OnionId, key: &DiscoveryKey) -> Result<(), DialError> {
        let public = ClientKey::from_secret(key);
        let mut st = self
            .state
            .lock()
            .map_err(|_| DialError::Other("lock poisoned".into()))?;
        if st.discovery.get(&target) == Some(&public) {
            return Ok(());
        }
        let hsid = HsId::from(*target.as_bytes());
        if st.discovery.contains_key(&target) {
            self.client
                .remove_service_discovery_key(KeystoreSelector::Primary, hsid)
                .map_err(|e| DialError::Other(e.to_string()))?;
        }
        let secret = HsClientDescEncSecretKey::from(curve25519::StaticSecret::from(key.0));
        self.client
            .insert_service_discovery_key(KeystoreSelector::Primary, hsid, secret)
            .map_err(|e| DialError::Other(e.to_string()))?;
        st.discovery.insert(target, public);
        Ok(())
    }
}

impl Transport for TorTransport {
    async fn dial(
        &self,
        target: OnionId,
        discovery: Option<&DiscoveryKey>,
    ) -> Result<Connection, DialError> {
        if let Some(key) = discovery {
            self.ensure_discovery_key(target, key)?;
        }
        let host = target.to_onion_host();
        match tokio::time::timeout(self.dial_timeout, self.client.connect((host, SERVICE_PORT)))
            .await
        {
            Err(_) => Err(DialError::TimedOut(self.dial_timeout)),
            Ok(Ok(stream)) => Ok(Box::new(stream)),
            Ok(Err(e)) => Err(dial_error(&e)),
        }
    }

    async fn publish_intake(&self, identity: &IdentityKey) -> Result<ServiceHandle, ServiceError> {
        self.launch("intake", identity, None).await
    }

    async fn publish_endpoint(
        &self,
        identity: &IdentityKey,
        authorized: BTreeSet<ClientKey>,
    ) -> Result<ServiceHandle, ServiceError> {
        self.launch("endpoint", identity, Some(&authorized)).await
    }
}

struct TorService {
    nickname: String,
    running: Arc<RunningOnionService>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl ServiceControl for TorService {
    fn set_authorized(&self, clients: &BTreeSet<ClientKey>) -> Result<(), ServiceError> {
        let config = service_config(&self.nickname, Some(clients))?;
        self.running
            .reconfigure(config, arti_client::config::Reconfigure::AllOrNothing)
            .map_err(|e| ServiceError::Tor(e.to_string()))
    }
}

impl Drop for TorService {
    fn drop(&mut self) {
        // The accept task holds the request stream; ending it and dropping
        // `running` stops the service.
        for t in &self.tasks {
            t.abort();
        }
    }
}

async fn accept_one(req: StreamRequest, tx: mpsc::Sender<Connection>, limit: Arc<Semaphore>) {
    use tor_proto::stream::IncomingStreamRequest;
    let port_ok =
        matches!(req.request(), IncomingStreamRequest::Begin(b) if b.port() == SERVICE_PORT);
    let permit = match limit.try_acquire_owned() {
        Ok(p) if port_ok => p,
        _ => {
            let reason = if port_ok {
                EndReason::RESOURCELIMIT
            } else {
                EndReason::DONE
            };
            let _ = req.reject(End::new_with_reason(reason)).await;
            return;
        }
    };
    if let Ok(stream) = req.accept(Connected::new_empty()).await {
        let conn: Connection = Box::new(crate::memory::Permitted::new(stream, permit));
        // A full queue means the application is behind: wait for it,
        // holding the stream and its permit (so at most
        // MAX_OPEN_CONNECTIONS wait), rather than drop a stream that may
        // be a requester's among a stranger's burst. The application
        // decides whom to close (review of H3: dropped here, a requester
        // never reached the engine's rule).
        let _ = tx.send(conn).await;
    }
}

/// What to report, given what Arti says now and whether the service was
/// ever reachable: after that, republishing without a problem is not
/// "starting" again. A service with a current problem (Arti recovering
/// from one, say) is never called reachable by this rule.
fn settled(now: Reachability, has_problem: bool, seen: &AtomicBool) -> Reachability {
    match now {
        Reachability::Reachable => {
            seen.store(true, Ordering::SeqCst);
            now
        }
        Reachability::Starting if has_problem => Reachability::Unreachable,
        Reachability::Starting if seen.load(Ordering::SeqCst) => Reachability::Reachable,
        other => other,
    }
}

fn reachability(state: State, has_problem: bool) -> Reachability {
    match state {
        State::Running | State::DegradedReachable => Reachability::Reachable,
        // On a private network Arti never reports Running: it publishes for
        // two time periods and the second HSDir ring does not exist. With a
        // good upload and no current problem the service is reachable
        // (shared/notes/tor-testnet.md, pitfall 1).
        State::DegradedUnreachable if !has_problem => Reachability::Reachable,
        State::DegradedUnreachable => Reachability::Unreachable,
        State::Broken => Reachability::Broken,
        // `Shutdown` is also the state of a service not yet launched, which
        // a relaunched service reports first; ours only shut down when their
        // handle is dropped, after which nobody watches.
        _ => Reachability::Starting,
    }
}

fn dial_error(e: &arti_client::Error) -> DialError {
    match e.kind() {
        ErrorKind::OnionServiceNotFound => DialError::NotFound,
        ErrorKind::OnionServiceMissingClientAuth | ErrorKind::OnionServiceWrongClientAuth => {
            DialError::NotAuthorized
        }
        ErrorKind::OnionServiceNotRunning
        | ErrorKind::OnionServiceConnectionFailed
        | ErrorKind::RemoteConnectionRefused
        | ErrorKind::RemoteStreamError
        // Circuits to the service's introduction or rendezvous points did
        // not complete in Tor's own time limits: worth a later retry.
        | ErrorKind::TorNetworkTimeout
        | ErrorKind::RemoteNetworkTimeout => DialError::Unreachable,
        ErrorKind::BootstrapRequired => DialError::NotBootstrapped,
        _ => DialError::Other(e.to_string()),
    }
}

fn hsid_keypair(identity: &IdentityKey) -> HsIdKeypair {
    let kp = tor_llcrypto::pk::ed25519::Keypair::from_bytes(identity.seed());
    HsIdKeypair::from(tor_llcrypto::pk::ed25519::ExpandedKeypair::from(&kp))
}

fn service_config(
    nickname: &str,
    authorized: Option<&BTreeSet<ClientKey>>,
) -> Result<OnionServiceConfig, ServiceError> {
    let mut b = OnionServiceConfigBuilder::default();
    b.nickname(
        nickname
            .parse()
            .map_err(|_| ServiceError::Tor(format!("bad nickname {nickname}")))?,
    );
    b.max_concurrent_streams_per_circuit(if authorized.is_none() {
        INTAKE_STREAMS_PER_CIRCUIT
    } else {
        STREAMS_PER_CIRCUIT
    });
    if authorized.is_none() {
        let (rate, burst) = INTAKE_INTRO_RATE;
        b.rate_limit_at_intro(Some(tor_hsservice::config::TokenBucketConfig::new(
            rate, burst,
        )));
    }
    if let Some(clients) = authorized {
        if clients.len() >= MAX_AUTHORIZED_CLIENTS {
            return Err(ServiceError::TooManyClients(MAX_AUTHORIZED_CLIENTS - 1));
        }
        let rd = b.restricted_discovery();
        rd.enabled(true);
        let keys = rd.static_keys().access();
        for c in clients.iter().copied().chain(padding_keys(clients.len())) {
            keys.push((
                client_nickname(&c)?,
                HsClientDescEncKey::from(curve25519::PublicKey::from(c.0)),
            ));
        }
    }
    b.build().map_err(|e| ServiceError::Tor(e.to_string()))
}

/// The descriptor lists one `auth-client` line per authorized key, and its
/// outer layer is readable by anyone who knows the endpoint id: the count
/// would tell them how many contacts we have. So the set is padded
/// (PROTOCOL.md §8 step 1, `allium_protocol::flow::authorized_set_size`),
/// and never left empty (Arti refuses restricted discovery with no
/// clients, and an endpoint must never run unrestricted).
fn padded_count(real: usize) -> usize {
    allium_protocol::flow::authorized_set_size(real, MAX_AUTHORIZED_CLIENTS).unwrap_or(real)
}

/// Keys nobody holds: each is the public half of a fresh random secret
/// that is wiped at once. New ones at every launch and reconfiguration, so
/// no secret behind them exists anywhere (never a constant: a key whose
/// secret is in the source is a key everyone holds).
fn padding_keys(real: usize) -> impl Iterator<Item = ClientKey> {
    (real..padded_count(real)).map(|_| {
        let mut secret = zeroize::Zeroizing::new([0u8; 32]);
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, secret.as_mut());
        ClientKey::from_secret(&DiscoveryKey(*secret))
    })
}

fn client_nickname(c: &ClientKey) -> Result<HsClientNickname, ServiceError> {
    let hex: String = c.0.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("c{hex}")
        .parse()
        .map_err(|_| ServiceError::Tor("bad client nickname".into()))
}

fn client_config(config: &TorConfig) -> Result<arti_client::TorClientConfig, BootstrapError> {
    let mut b = TorClientConfigBuilder::default();
    b.storage()
        .state_dir(CfgPath::new_literal(config.state_dir.clone()))
        .cache_dir(CfgPath::new_literal(config.cache_dir.clone()));
    b.storage()
        .keystore()
        .primary()
        .kind(ExplicitOrAuto::Explicit(ArtiKeystoreKind::Ephemeral));
    if let Network::Custom(net) = &config.network {
        net.check()?;
        let mut auth = AuthorityContacts::builder();
        for a in &net.authorities {
            auth.v3idents().push(network::rsa_identity(&a.v3ident)?);
        }
        *b.tor_network().authorities() = auth;
        let mut fallbacks = Vec::new();
        for f in &net.fallbacks {
            let mut fb = FallbackDir::builder();
            fb.rsa_identity(network::rsa_identity(&f.rsa_identity)?)
                .ed_identity(network::ed_identity(&f.ed_identity)?);
            for p in &f.orports {
                fb.orports().push(network::socket_addr(p)?);
            }
            fallbacks.push(fb);
        }
        b.tor_network().set_fallback_caches(fallbacks);
        // All relays of a local network share one address: without this no
        // path can be built. Never applied to the public network.
        b.path_rules()
            .ipv4_subnet_family_prefix(33)
            .ipv6_subnet_family_prefix(129);
        // A test network has no exits: do not try to predict exit circuits.
        b.preemptive_circuits().set_initial_predicted_ports(vec![]);
    }
    b.build().map_err(|e| BootstrapError::Config(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_reachable_republishing_is_not_starting_again() {
        let seen = AtomicBool::new(false);
        let fine = false;
        assert_eq!(
            settled(Reachability::Starting, fine, &seen),
            Reachability::Starting
        );
        assert_eq!(
            settled(Reachability::Reachable, fine, &seen),
            Reachability::Reachable
        );
        assert_eq!(
            settled(Reachability::Starting, fine, &seen),
            Reachability::Reachable
        );
        // Real trouble is still told: recovering from a problem, or worse.
        assert_eq!(
            settled(Reachability::Starting, true, &seen),
            Reachability::Unreachable
        );
        assert_eq!(
            settled(Reachability::Unreachable, true, &seen),
            Reachability::Unreachable
        );
        assert_eq!(
            settled(Reachability::Broken, true, &seen),
            Reachability::Broken
        );
    }

    #[test]
    fn reachability_rule() {
        assert_eq!(reachability(State::Running, false), Reachability::Reachable);
        assert_eq!(
            reachability(State::DegradedUnreachable, false),
            Reachability::Reachable
        );
        assert_eq!(
            reachability(State::DegradedUnreachable, true),
            Reachability::Unreachable
        );
        assert_eq!(
            reachability(State::Bootstrapping, false),
            Reachability::Starting
        );
        assert_eq!(reachability(State::Broken, true), Reachability::Broken);
        assert_eq!(reachability(State::Shutdown, false), Reachability::Starting);
    }

    fn keys(n: u32) -> BTreeSet<ClientKey> {
        (0..n)
            .map(|i| {
                let mut k = [0u8; 32];
                k[..4].copy_from_slice(&i.to_be_bytes());
                ClientKey(k)
            })
            .collect()
    }

    fn configured(c: &OnionServiceConfig) -> Vec<[u8; 32]> {
        c.restricted_discovery()
            .static_keys()
            .as_ref()
            .values()
            .map(|k| *k.as_ref().as_bytes())
            .collect()
    }

    #[test]
    fn endpoint_config_is_always_restricted() {
        let c = service_config("endpoint", Some(&keys(0))).expect("builds with no contacts");
        assert!(*c.restricted_discovery().enabled());
        assert_eq!(
            configured(&c).len(),
            allium_protocol::flow::AUTHORIZED_PADDING_BUCKET
        );
        let too_many = keys(MAX_AUTHORIZED_CLIENTS as u32);
        assert_eq!(
            service_config("endpoint", Some(&too_many)).err(),
            Some(ServiceError::TooManyClients(MAX_AUTHORIZED_CLIENTS - 1))
        );
    }

    #[test]
    fn the_authorized_set_is_padded_so_its_size_says_little() {
        // One contact more or less does not move the count inside a
        // bucket; only bucket boundaries do.
        for (real, listed) in [
            (0, 16),
            (1, 16),
            (2, 16),
            (3, 16),
            (16, 16),
            (17, 32),
            (100, 112),
            (MAX_AUTHORIZED_CLIENTS - 1, MAX_AUTHORIZED_CLIENTS),
        ] {
            let c = service_config("endpoint", Some(&keys(real as u32))).expect("builds");
            let listed_keys = configured(&c);
            assert_eq!(listed_keys.len(), listed, "{real} real clients");
            // Every real client is among them.
            for k in keys(real as u32) {
                assert!(listed_keys.contains(&k.0), "{real}: a contact is missing");
            }
        }
    }

    #[test]
    fn no_key_anyone_can_derive_is_ever_authorized() {
        // The key 0.1 authorized on every endpoint: its secret was in the
        // source, so everyone held it (review finding H1).
        let old = ClientKey::from_secret(&DiscoveryKey(*b"allium endpoint: no contact yet."));
        let a = configured(&service_config("endpoint", Some(&keys(1))).expect("builds"));
        let b = configured(&service_config("endpoint", Some(&keys(1))).expect("builds"));
        assert!(!a.contains(&old.0) && !b.contains(&old.0));
        // Padding is fresh each time: no two configurations share a key
        // beyond the real one, so nothing fixed stands behind them.
        let shared = a.iter().filter(|k| b.contains(k)).count();
        assert_eq!(shared, 1, "only the one real client is in both");
    }
}
