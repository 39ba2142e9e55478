//! The local Tor network: its directory, keys, torrcs, tor processes,
//! readiness, network file and teardown.
//!
//! A `TestNetwork` owns every tor it starts and stops them all when it is
//! stopped or dropped. It only ever deletes inside a directory that it
//! marked as its own.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::Error;
use crate::client::{CTorClient, CTorClientOptions};
use crate::network_file::{AuthorityEntry, FallbackEntry, NetworkFile};
use crate::owner::{OWNER_FILE, live_owner, remove_owner_file, write_owner_file};
use crate::ports::{PORT_TAKEN_LOG, free_ports};
use crate::process::{NodeLayout, TorProcess, stop_all};
use crate::torrc::{Role, consensus_params, path_is_plain, torrc};

/// The file that marks a directory as made by this crate (and so safe to
/// wipe when it is reused).
const MARKER: &str = ".allium-testnet";
/// The network file's name inside the network directory.
pub(crate) const NETWORK_FILE_NAME: &str = "network.json";
/// How many times to start again when another process took a port.
const START_ATTEMPTS: u32 = 3;
/// How often readiness is checked.
const POLL: Duration = Duration::from_millis(250);

/// How to start a [`TestNetwork`].
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Where to put keys, torrcs, data and logs, and `network.json`. It must
    /// be new, empty, or a directory of an earlier network that is no longer
    /// running (whose contents are then deleted). `None`: a fresh temporary
    /// directory, deleted when the network is dropped.
    pub dir: Option<PathBuf>,
    /// How many directory authorities (default 3).
    pub authorities: usize,
    /// How many relays besides the authorities (default 5).
    pub relays: usize,
    /// How long to wait for every node to hold a complete consensus
    /// (default 180 s).
    pub ready_timeout: Duration,
    /// The `tor` program (default: [`crate::tor_program`]).
    pub tor: PathBuf,
    /// The `tor-gencert` program (default: `tor-gencert` from `PATH`).
    pub tor_gencert: PathBuf,
    /// If set and raised (for example by a signal handler), startup stops
    /// with [`Error::Cancelled`] and everything started is torn down.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            dir: None,
            authorities: 3,
            relays: 5,
            ready_timeout: Duration::from_secs(180),
            tor: crate::tor_program(),
            tor_gencert: "tor-gencert".into(),
            cancel: None,
        }
    }
}

/// How long startup took.
#[derive(Clone, Copy, Debug)]
pub struct StartupTimes {
    /// Choosing ports, generating keys, writing torrcs (last attempt).
    pub setup: Duration,
    /// From starting the tor processes until every node was ready.
    pub consensus: Duration,
    /// From the call to [`TestNetwork::start`] until it returned, all
    /// attempts included.
    pub total: Duration,
}

/// A running local Tor network: directory authorities and relays on
/// 127.0.0.1, every one a child process of this one.
#[derive(Debug)]
pub struct TestNetwork {
    nodes: NodeSet,
    dir: PathBuf,
    info: NetworkFile,
    times: StartupTimes,
    clients_started: AtomicUsize,
    /// Last, so the directory is deleted after the nodes have stopped.
    _temp: Option<TempDir>,
}

impl TestNetwork {
    /// Starts a network and waits until it is ready: until **every** node's
    /// cached consensus lists all relays and authorities as HSDir and Stable (and
    /// carries our consensus parameters). Then writes `network.json`.
    pub fn start(options: StartOptions) -> Result<Self, Error> {
        let started = Instant::now();
        if options.authorities == 0 {
            return Err(Error::InvalidOptions(
                "at least one authority is needed".into(),
            ));
        }
        let (dir, temp) = match &options.dir {
            Some(dir) => (prepare_dir(dir)?, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("allium-testnet-")
                    .tempdir()
                    .map_err(Error::io("creating a temporary directory"))?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        if !path_is_plain(&dir) {
            return Err(Error::UnsupportedPath { path: dir });
        }
        write_owner_file(&dir)?;
        let launched = launch_with_retries(&dir, &options);
        let (nodes, info, mut times) = launched.inspect_err(|_| remove_owner_file(&dir))?;
        times.total = started.elapsed();
        Ok(Self {
            nodes,
            dir,
            info,
            times,
            clients_started: AtomicUsize::new(0),
            _temp: temp,
        })
    }

    /// The network's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The network file (`DIR/network.json`).
    pub fn network_file(&self) -> PathBuf {
        self.dir.join(NETWORK_FILE_NAME)
    }

    /// What the network file says.
    pub fn info(&self) -> &NetworkFile {
        &self.info
    }

    /// How long startup took.
    pub fn startup_times(&self) -> StartupTimes {
        self.times
    }

    /// Each node's name and pid, authorities first.
    pub fn nodes(&self) -> Vec<(String, u32)> {
        self.nodes
            .0
            .iter()
            .map(|node| (node.name().to_owned(), node.pid()))
            .collect()
    }

    /// Checks that every node is still running.
    pub fn check_running(&mut self) -> Result<(), Error> {
        for node in &mut self.nodes.0 {
            if let Some(status) = node.exit_status() {
                return Err(node.exited_error(status));
            }
        }
        Ok(())
    }

    /// Checks that every node is still running and that each one's cached
    /// consensus is complete (the readiness rule of [`TestNetwork::start`]).
    pub fn check_ready(&mut self) -> Result<(), Error> {
        self.check_running()?;
        let expected = self.nodes.0.len();
        match first_unready(&self.nodes.0, expected) {
            None => Ok(()),
            Some((node, reason)) => Err(not_ready(node, reason, Duration::ZERO)),
        }
    }

    /// Starts a C tor client (optionally hosting an onion service) on this
    /// network, by default in `DIR/clientN`. See [`CTorClient::start`].
    pub fn start_c_tor_client(&self, mut options: CTorClientOptions) -> Result<CTorClient, Error> {
        let n = self.clients_started.fetch_add(1, Ordering::Relaxed);
        let name = options.name.get_or_insert_with(|| format!("client{n}"));
        if options.dir.is_none() {
            options.dir = Some(self.dir.join(&*name));
        }
        CTorClient::start(&self.info, options)
    }

    /// Stops every node (SIGTERM, then SIGKILL after 5 s) and reaps it;
    /// deletes the directory if it was a temporary one. Dropping the
    /// network does the same.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for TestNetwork {
    fn drop(&mut self) {
        self.nodes.stop();
        remove_owner_file(&self.dir);
    }
}

/// The tor processes of a network, stopped together (in parallel) when
/// dropped, including on every error path during startup.
#[derive(Debug, Default)]
struct NodeSet(Vec<TorProcess>);

impl NodeSet {
    fn stop(&mut self) {
        stop_all(&mut self.0);
    }
}

impl Drop for NodeSet {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Creates `dir` or checks that it may be used, and marks it as ours.
fn prepare_dir(dir: &Path) -> Result<PathBuf, Error> {
    fs::create_dir_all(dir).map_err(Error::io(format!("creating {}", dir.display())))?;
    let dir = fs::canonicalize(dir).map_err(Error::io(format!("resolving {}", dir.display())))?;
    if !path_is_plain(&dir) {
        return Err(Error::UnsupportedPath { path: dir });
    }
    let mut entries =
        fs::read_dir(&dir).map_err(Error::io(format!("listing {}", dir.display())))?;
    if entries.next().is_some() {
        if !dir.join(MARKER).exists() {
            return Err(Error::DirNotEmpty { path: dir });
        }
        if let Some(pid) = live_owner(&dir) {
            return Err(Error::AlreadyRunning { path: dir, pid });
        }
        wipe(&dir, &[])?;
    }
    let marker = dir.join(MARKER);
    fs::write(
        &marker,
        "made by allium-testnet; everything here may be deleted\n",
    )
    .map_err(Error::io(format!("writing {}", marker.display())))?;
    Ok(dir)
}

/// Deletes everything in `dir` except the names in `keep`.
fn wipe(dir: &Path, keep: &[&str]) -> Result<(), Error> {
    let context = || format!("clearing {}", dir.display());
    for entry in fs::read_dir(dir).map_err(Error::io(context()))? {
        let entry = entry.map_err(Error::io(context()))?;
        if keep.iter().any(|k| entry.file_name() == *k) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().map_err(Error::io(context()))?.is_dir() {
            fs::remove_dir_all(&path)
        } else {
            fs::remove_file(&path)
        };
        removed.map_err(Error::io(format!("deleting {}", path.display())))?;
    }
    Ok(())
}

fn launch_with_retries(
    dir: &Path,
    options: &StartOptions,
) -> Result<(NodeSet, NetworkFile, StartupTimes), Error> {
    for attempt in 1..=START_ATTEMPTS {
        if attempt > 1 {
            wipe(dir, &[MARKER, OWNER_FILE])?;
        }
        if let Some(launched) = launch(dir, options)? {
            return Ok(launched);
        }
    }
    Err(Error::PortsInUse {
        attempts: START_ATTEMPTS,
    })
}

/// One node before it runs.
struct NodeSpec {
    name: String,
    or_port: u16,
    /// Authorities only.
    dir_port: Option<u16>,
    layout: NodeLayout,
}

/// A node's identities, as tor generated them.
struct NodeKeys {
    rsa_identity: String,
    ed_identity: String,
    /// Authorities only: the `fingerprint` line of the certificate.
    v3ident: Option<String>,
}

/// Generates keys, writes torrcs, starts every node and waits for the
/// network to be ready. `Ok(None)`: a port was taken, try again.
fn launch(
    dir: &Path,
    options: &StartOptions,
) -> Result<Option<(NodeSet, NetworkFile, StartupTimes)>, Error> {
    let setup_started = Instant::now();
    let specs = node_specs(dir, options)?;
    let keys = generate_keys(&specs, options)?;
    let info = network_file(&specs, &keys);
    let owner = std::process::id();
    for spec in &specs {
        let role = match spec.dir_port {
            Some(dir_port) => Role::Authority {
                or_port: spec.or_port,
                dir_port,
            },
            None => Role::Relay {
                or_port: spec.or_port,
            },
        };
        let path = spec.layout.torrc();
        fs::write(&path, torrc(&spec.name, &role, &spec.layout, &info, owner))
            .map_err(Error::io(format!("writing {}", path.display())))?;
    }
    let setup = setup_started.elapsed();

    let consensus_started = Instant::now();
    let mut nodes = NodeSet::default();
    for spec in &specs {
        nodes
            .0
            .push(TorProcess::spawn(&options.tor, &spec.name, &spec.layout)?);
    }
    if !wait_ready(&mut nodes.0, options)? {
        return Ok(None);
    }
    let consensus = consensus_started.elapsed();
    info.save(&dir.join(NETWORK_FILE_NAME))?;
    let times = StartupTimes {
        setup,
        consensus,
        total: Duration::ZERO,
    };
    Ok(Some((nodes, info, times)))
}

/// Names, fresh ports and directories: `auth0…`, then `relay0…`.
fn node_specs(dir: &Path, options: &StartOptions) -> Result<Vec<NodeSpec>, Error> {
    let (authorities, relays) = (options.authorities, options.relays);
    // Authorities take two ports each (ORPort, DirPort), relays one.
    let ports = free_ports(2 * authorities + relays)?;
    let authority = |i: usize| NodeSpec {
        name: format!("auth{i}"),
        or_port: ports[2 * i],
        dir_port: Some(ports[2 * i + 1]),
        layout: NodeLayout::new(dir.join(format!("auth{i}"))),
    };
    let relay = |i: usize| NodeSpec {
        name: format!("relay{i}"),
        or_port: ports[2 * authorities + i],
        dir_port: None,
        layout: NodeLayout::new(dir.join(format!("relay{i}"))),
    };
    Ok((0..authorities)
        .map(authority)
        .chain((0..relays).map(relay))
        .collect())
}

/// Generates every node's keys, one thread per node: authority keys and
/// certificate with `tor-gencert`, relay identity keys with
/// `tor --list-fingerprint`.
fn generate_keys(specs: &[NodeSpec], options: &StartOptions) -> Result<Vec<NodeKeys>, Error> {
    thread::scope(|scope| {
        let handles: Vec<_> = specs
            .iter()
            .map(|spec| scope.spawn(move || node_keys(spec, options)))
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}

fn node_keys(spec: &NodeSpec, options: &StartOptions) -> Result<NodeKeys, Error> {
    spec.layout.create()?;
    let data = spec.layout.data();
    let v3ident = match spec.dir_port {
        Some(dir_port) => {
            let keys = data.join("keys");
            fs::create_dir_all(&keys).map_err(Error::io(format!("creating {}", keys.display())))?;
            let mut gencert = Command::new(&options.tor_gencert);
            gencert
                .args(["--create-identity-key", "--passphrase-fd", "0", "-i"])
                .arg(keys.join("authority_identity_key"))
                .arg("-s")
                .arg(keys.join("authority_signing_key"))
                .arg("-c")
                .arg(keys.join("authority_certificate"))
                .args(["-m", "12", "-a", &format!("127.0.0.1:{dir_port}")]);
            // An empty passphrase, on stdin.
            run(&mut gencert, b"\n")?;
            let certificate = keys.join("authority_certificate");
            crate::shared_random::seed(&data, std::time::SystemTime::now())?;
            Some(word_after(&certificate, "fingerprint ", 40)?)
        }
        None => None,
    };
    let mut list = Command::new(&options.tor);
    list.args([
        "--list-fingerprint",
        "--orport",
        "1",
        "--nickname",
        &spec.name,
    ])
    .args(["--ignore-missing-torrc", "-f", "/dev/null"])
    .args(["--defaults-torrc", "/dev/null", "--datadirectory"])
    .arg(&data);
    run(&mut list, b"")?;
    Ok(NodeKeys {
        rsa_identity: word_after(&data.join("fingerprint"), &format!("{} ", spec.name), 40)?,
        ed_identity: word_after(
            &data.join("fingerprint-ed25519"),
            &format!("{} ", spec.name),
            43,
        )?,
        v3ident,
    })
}

/// Runs a command to completion with `input` on stdin; an error carries
/// its output.
fn run(command: &mut Command, input: &[u8]) -> Result<(), Error> {
    let line = format!("{command:?}");
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(Error::io(format!("running {line}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    let output = child
        .wait_with_output()
        .map_err(Error::io(format!("running {line}")))?;
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stdout));
    Err(Error::Command {
        command: line,
        status: output.status.to_string(),
        output: text.trim().to_owned(),
    })
}

/// The word that follows `prefix` at the start of a line of `path`, which
/// must be `len` characters long.
fn word_after(path: &Path, prefix: &str, len: usize) -> Result<String, Error> {
    let text =
        fs::read_to_string(path).map_err(Error::io(format!("reading {}", path.display())))?;
    text.lines()
        .find_map(|line| line.strip_prefix(prefix))
        .map(str::trim)
        .filter(|word| word.len() == len && !word.contains(char::is_whitespace))
        .map(str::to_owned)
        .ok_or_else(|| Error::Parse {
            path: path.to_owned(),
            what: format!("a line `{prefix}<{len} characters>`"),
        })
}

fn network_file(specs: &[NodeSpec], keys: &[NodeKeys]) -> NetworkFile {
    let mut file = NetworkFile {
        authorities: Vec::new(),
        fallbacks: Vec::new(),
    };
    for (spec, keys) in specs.iter().zip(keys) {
        let orport = format!("127.0.0.1:{}", spec.or_port);
        if let (Some(dir_port), Some(v3ident)) = (spec.dir_port, &keys.v3ident) {
            file.authorities.push(AuthorityEntry {
                name: spec.name.clone(),
                v3ident: v3ident.clone(),
                rsa_identity: keys.rsa_identity.clone(),
                orport: orport.clone(),
                dirport: format!("127.0.0.1:{dir_port}"),
            });
        }
        file.fallbacks.push(FallbackEntry {
            name: spec.name.clone(),
            rsa_identity: keys.rsa_identity.clone(),
            ed_identity: keys.ed_identity.clone(),
            orports: vec![orport],
        });
    }
    file
}

/// Waits until every node is ready. `Ok(false)`: a node could not bind a
/// port (another process took it).
fn wait_ready(nodes: &mut [TorProcess], options: &StartOptions) -> Result<bool, Error> {
    let started = Instant::now();
    let expected = nodes.len();
    loop {
        if options
            .cancel
            .as_ref()
            .is_some_and(|cancel| cancel.load(Ordering::Relaxed))
        {
            return Err(Error::Cancelled);
        }
        for node in nodes.iter_mut() {
            if let Some(status) = node.exit_status() {
                if node.log_contains(PORT_TAKEN_LOG) {
                    return Ok(false);
                }
                return Err(node.exited_error(status));
            }
        }
        match first_unready(nodes, expected) {
            None => return Ok(true),
            Some((node, reason)) if started.elapsed() >= options.ready_timeout => {
                return Err(not_ready(node, reason, started.elapsed()));
            }
            Some(_) => thread::sleep(POLL),
        }
    }
}

fn not_ready(node: &TorProcess, reason: String, waited: Duration) -> Error {
    Error::NotReady {
        node: node.name().to_owned(),
        waited,
        reason,
        log: node.log_path(),
        tail: node.log_tail(),
    }
}

/// The first node whose consensus is not (yet) complete, and why.
fn first_unready(nodes: &[TorProcess], expected: usize) -> Option<(&TorProcess, String)> {
    nodes.iter().find_map(|node| {
        consensus_complete(&node.layout().data(), expected)
            .err()
            .map(|reason| (node, reason))
    })
}

/// Whether the node's cached microdescriptor consensus lists `expected`
/// relays as HSDir and Stable, and carries our consensus parameters.
pub(crate) fn consensus_complete(data_dir: &Path, expected: usize) -> Result<(), String> {
    let Ok(consensus) = fs::read_to_string(data_dir.join("cached-microdesc-consensus")) else {
        return Err("it has no consensus yet".into());
    };
    // Every node must be an HSDir (so every HSDir holds every descriptor)
    // and Stable (onion-service circuits use only Stable relays).
    for flag in ["HSDir", "Stable"] {
        let flagged = consensus
            .lines()
            .filter(|line| line.starts_with("s ") && line.split(' ').any(|f| f == flag))
            .count();
        if flagged != expected {
            return Err(format!(
                "its consensus lists {flagged} {flag} relays, expecting {expected}"
            ));
        }
    }
    let voted: Vec<&str> = consensus
        .lines()
        .filter(|line| line.starts_with("params "))
        .flat_map(|line| line.split(' ').skip(1))
        .collect();
    match consensus_params()
        .into_iter()
        .find(|p| !voted.contains(&p.as_str()))
    {
        Some(missing) => Err(format!("its consensus lacks the parameter {missing}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    #[test]
    fn consensus_readiness_counts_flags_and_checks_the_parameters() -> TestResult {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("cached-microdesc-consensus");
        assert_eq!(
            consensus_complete(dir.path(), 2).expect_err("no file"),
            "it has no consensus yet"
        );
        let params = "params cbtdisabled=1 hsdir_interval=30\n";
        let relay = "r x\ns Fast Guard HSDir Running Stable V2Dir Valid\n";
        let unstable = "r y\ns Fast Guard HSDir Running V2Dir Valid\n";
        for (consensus, expected) in [
            (
                format!("{params}{relay}"),
                "its consensus lists 1 HSDir relays, expecting 2",
            ),
            (
                format!("{params}{relay}{unstable}"),
                "its consensus lists 1 Stable relays, expecting 2",
            ),
            (
                format!("params foo=1\n{relay}{relay}"),
                "its consensus lacks the parameter cbtdisabled=1",
            ),
            (
                format!("params cbtdisabled=1\n{relay}{relay}"),
                "its consensus lacks the parameter hsdir_interval=30",
            ),
        ] {
            fs::write(&path, &consensus)?;
            assert_eq!(
                consensus_complete(dir.path(), 2).expect_err(&consensus),
                expected
            );
        }
        fs::write(&path, format!("{params}{relay}{relay}"))?;
        consensus_complete(dir.path(), 2)?;
        Ok(())
    }

    #[test]
    fn refuses_a_directory_it_did_not_make() -> TestResult {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join("precious.txt"), "keep me")?;
        let err = TestNetwork::start(StartOptions {
            dir: Some(dir.path().to_owned()),
            ..StartOptions::default()
        })
        .expect_err("a foreign directory");
        assert!(matches!(err, Error::DirNotEmpty { .. }), "{err}");
        assert!(dir.path().join("precious.txt").exists());
        Ok(())
    }

    #[test]
    fn reuses_its_own_directory_once_the_owner_is_gone() -> TestResult {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join(MARKER), "")?;
        fs::write(dir.path().join("old.log"), "")?;
        let prepared = prepare_dir(dir.path())?;
        assert!(!prepared.join("old.log").exists());
        assert!(prepared.join(MARKER).exists());
        Ok(())
    }

    #[test]
    fn refuses_a_directory_whose_owner_is_alive() -> TestResult {
        let dir = tempfile::tempdir()?;
        fs::write(dir.path().join(MARKER), "")?;
        write_owner_file(dir.path())?;
        let err = prepare_dir(dir.path()).expect_err("a live owner");
        assert!(matches!(err, Error::AlreadyRunning { pid, .. } if pid == std::process::id()));
        Ok(())
    }
}
