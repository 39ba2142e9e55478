//! An extra C tor node on a local network: a client with a SOCKS port,
//! optionally hosting one onion service, for interoperability tests
//! against Arti.
//!
//! It follows the same rules as the network's nodes: a child process of
//! ours, owned by our pid, stopped and reaped when its handle is dropped.

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::network_file::NetworkFile;
use crate::ports::{PORT_TAKEN_LOG, free_port};
use crate::process::{NodeLayout, TorProcess, stop_all};
use crate::torrc::{ClientService, Role, path_is_plain, torrc};

/// How many times to start again when another process took the SOCKS port.
const START_ATTEMPTS: u32 = 3;
const POLL: Duration = Duration::from_millis(100);
/// Tor's notice when it can build circuits.
const BOOTSTRAPPED: &str = "Bootstrapped 100%";
/// Tor's message (info level, `rend` domain: the service log) when an HSDir
/// accepted one of our descriptors.
const DESCRIPTOR_UPLOADED: &str = "Uploaded hidden service descriptor (status 200";

/// How to start a [`CTorClient`].
#[derive(Clone, Debug)]
pub struct CTorClientOptions {
    /// Its name, for logs and errors (default `client`, or `clientN` when
    /// started through [`crate::TestNetwork::start_c_tor_client`]).
    pub name: Option<String>,
    /// Where to put its torrc, data, logs and onion-service keys. Reusing a
    /// directory keeps the onion address. `None`: `DIR/NAME` of the
    /// network when started through [`crate::TestNetwork`], otherwise a
    /// temporary directory deleted on drop.
    pub dir: Option<PathBuf>,
    /// An onion service to host.
    pub onion_service: Option<OnionServiceOptions>,
    /// How long to wait for it to bootstrap and, with a service, to upload
    /// the descriptor (default 300 s: once a client sat at 95 %,
    /// "Establishing a Tor circuit", for all of an earlier 120 s limit, in a
    /// CI run of the test suite; why is not known).
    pub ready_timeout: Duration,
    /// The `tor` program (default: [`crate::tor_program`]).
    pub tor: PathBuf,
}

impl Default for CTorClientOptions {
    fn default() -> Self {
        Self {
            name: None,
            dir: None,
            onion_service: None,
            ready_timeout: Duration::from_secs(300),
            tor: crate::tor_program(),
        }
    }
}

/// An onion service hosted by a C tor node: connections to
/// `ONION:virtual_port` are forwarded to `127.0.0.1:target_port`.
#[derive(Clone, Copy, Debug)]
pub struct OnionServiceOptions {
    /// The port clients dial on the onion address.
    pub virtual_port: u16,
    /// The local port that receives the connections.
    pub target_port: u16,
}

/// A running C tor client node.
#[derive(Debug)]
pub struct CTorClient {
    process: TorProcess,
    socks_port: u16,
    onion_hostname: Option<String>,
    /// Last, so the directory is deleted after the process has stopped.
    _temp: Option<TempDir>,
}

impl CTorClient {
    /// Starts a C tor client on `network` (for example one loaded with
    /// [`NetworkFile::from_env`]) and waits until it has bootstrapped and,
    /// if it hosts an onion service, until at least one HSDir has accepted
    /// the service's descriptor.
    pub fn start(network: &NetworkFile, options: CTorClientOptions) -> Result<Self, Error> {
        let name = options.name.clone().unwrap_or_else(|| "client".into());
        let (dir, temp) = match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir)
                    .map_err(Error::io(format!("creating {}", dir.display())))?;
                let dir = fs::canonicalize(dir)
                    .map_err(Error::io(format!("resolving {}", dir.display())))?;
                (dir, None)
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("allium-testnet-client-")
                    .tempdir()
                    .map_err(Error::io("creating a temporary directory"))?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        if !path_is_plain(&dir) {
            return Err(Error::UnsupportedPath { path: dir });
        }
        let layout = NodeLayout::new(dir);
        layout.create()?;
        for _ in 0..START_ATTEMPTS {
            if let Some((process, socks_port, onion_hostname)) =
                launch(network, &options, &name, &layout)?
            {
                return Ok(Self {
                    process,
                    socks_port,
                    onion_hostname,
                    _temp: temp,
                });
            }
        }
        Err(Error::PortsInUse {
            attempts: START_ATTEMPTS,
        })
    }

    /// Its SOCKS5 address, `127.0.0.1:PORT`.
    pub fn socks_addr(&self) -> SocketAddr {
        (Ipv4Addr::LOCALHOST, self.socks_port).into()
    }

    /// Its SOCKS port on 127.0.0.1.
    pub fn socks_port(&self) -> u16 {
        self.socks_port
    }

    /// The onion service's hostname (`<56 characters>.onion`), if it hosts
    /// one. Its descriptor was published when `start` returned.
    pub fn onion_hostname(&self) -> Option<&str> {
        self.onion_hostname.as_deref()
    }

    /// The tor process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The node's directory (torrc, `data/`, `hs/`, `notice.log`).
    pub fn dir(&self) -> &Path {
        self.process.layout().dir()
    }

    /// Stops the node (SIGTERM, then SIGKILL after 5 s) and reaps it.
    /// Dropping it does the same.
    pub fn stop(mut self) {
        stop_all(std::slice::from_mut(&mut self.process));
    }
}

/// One attempt. `Ok(None)`: the SOCKS port was taken, try again.
fn launch(
    network: &NetworkFile,
    options: &CTorClientOptions,
    name: &str,
    layout: &NodeLayout,
) -> Result<Option<(TorProcess, u16, Option<String>)>, Error> {
    let socks_port = free_port()?;
    let hs_dir = layout.dir().join("hs");
    let role = Role::Client {
        socks_port,
        onion_service: options.onion_service.map(|service| ClientService {
            dir: &hs_dir,
            log: layout.service_log(),
            virtual_port: service.virtual_port,
            target_port: service.target_port,
        }),
    };
    let path = layout.torrc();
    let text = torrc(name, &role, layout, network, std::process::id());
    fs::write(&path, text).map_err(Error::io(format!("writing {}", path.display())))?;
    // Start each attempt with fresh logs, so old lines do not count.
    let _ = fs::remove_file(layout.log());
    let _ = fs::remove_file(layout.service_log());

    let mut process = TorProcess::spawn(&options.tor, name, layout)?;
    let started = Instant::now();
    loop {
        if let Some(status) = process.exit_status() {
            if process.log_contains(PORT_TAKEN_LOG) {
                return Ok(None);
            }
            return Err(process.exited_error(status));
        }
        match readiness(layout, &hs_dir, options.onion_service.is_some()) {
            Ok(hostname) => return Ok(Some((process, socks_port, hostname))),
            Err(reason) if started.elapsed() >= options.ready_timeout => {
                return Err(Error::NotReady {
                    node: name.to_owned(),
                    waited: started.elapsed(),
                    reason,
                    log: process.log_path(),
                    tail: process.log_tail(),
                });
            }
            Err(_) => thread::sleep(POLL),
        }
    }
}

/// `Ok(hostname if a service)` once the node is ready, else why not.
fn readiness(layout: &NodeLayout, hs_dir: &Path, service: bool) -> Result<Option<String>, String> {
    let log = fs::read_to_string(layout.log()).unwrap_or_default();
    if !log.contains(BOOTSTRAPPED) {
        return Err("it has not bootstrapped".into());
    }
    if !service {
        return Ok(None);
    }
    let hostname = fs::read_to_string(hs_dir.join("hostname"))
        .map_err(|_| "its onion service has no hostname yet".to_owned())?;
    let uploaded = fs::read_to_string(layout.service_log()).unwrap_or_default();
    if !uploaded.contains(DESCRIPTOR_UPLOADED) {
        return Err("no HSDir has accepted its descriptor yet".into());
    }
    Ok(Some(hostname.trim().to_owned()))
}
