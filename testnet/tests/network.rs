//! One local Tor network for this whole test binary (it takes about a
//! minute to start): it must become ready, describe itself correctly in
//! its network file, carry an onion service between two extra C tor nodes,
//! and leave no tor process behind when dropped.

use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use allium_testnet::{
    CTorClientOptions, NetworkFile, OWNER_FILE, OnionServiceOptions, StartOptions, TestNetwork,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn network_starts_carries_an_onion_service_and_stops_cleanly() -> TestResult {
    let dir = tempfile::tempdir()?;
    let net_dir = dir.path().join("net");
    let mut network = TestNetwork::start(StartOptions {
        dir: Some(net_dir.clone()),
        ..StartOptions::default()
    })?;
    let times = network.startup_times();
    eprintln!("network ready in {times:?}");

    // Ready: every node (3 authorities, 5 relays) runs, and its own cached
    // consensus lists all 8 as HSDir and Stable.
    network.check_ready()?;
    let nodes = network.nodes();
    assert_eq!(nodes.len(), 8);
    for (name, pid) in &nodes {
        assert!(is_running_tor(*pid), "{name} (pid {pid}) is not running");
        let consensus =
            fs::read_to_string(net_dir.join(name).join("data/cached-microdesc-consensus"))?;
        let hsdirs = consensus
            .lines()
            .filter(|l| l.starts_with("s ") && l.contains(" HSDir") && l.contains(" Guard"))
            .count();
        assert_eq!(hsdirs, 8, "{name}'s consensus");
    }
    assert!(net_dir.join(OWNER_FILE).exists());

    check_network_file(&network)?;

    // An onion service hosted by one C tor node, reached through the SOCKS
    // port of another.
    let echo = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let echo_port = echo.local_addr()?.port();
    let echo_thread = thread::spawn(move || -> std::io::Result<()> {
        let (mut stream, _) = echo.accept()?;
        let mut buf = [0u8; 64];
        let n = stream.read(&mut buf)?;
        stream.write_all(&buf[..n])
    });
    let started = Instant::now();
    let service = network.start_c_tor_client(CTorClientOptions {
        onion_service: Some(OnionServiceOptions {
            virtual_port: 80,
            target_port: echo_port,
        }),
        ..CTorClientOptions::default()
    })?;
    let hostname = service
        .onion_hostname()
        .ok_or("no onion hostname")?
        .to_owned();
    assert!(
        hostname.ends_with(".onion") && hostname.len() == 62,
        "{hostname}"
    );
    eprintln!("C tor service published in {:?}", started.elapsed());
    let started = Instant::now();
    let client = network.start_c_tor_client(CTorClientOptions::default())?;
    assert!(client.onion_hostname().is_none());
    assert_ne!(client.socks_port(), service.socks_port());
    eprintln!("C tor client bootstrapped in {:?}", started.elapsed());

    let started = Instant::now();
    let mut stream = socks5_connect_with_retries(client.socks_addr(), &hostname, 80)?;
    stream.write_all(b"hello through tor")?;
    let mut reply = [0u8; 17];
    stream.read_exact(&mut reply)?;
    assert_eq!(&reply, b"hello through tor");
    eprintln!("echo through the onion service in {:?}", started.elapsed());
    echo_thread.join().map_err(|_| "echo thread panicked")??;
    let rss = |pid: u32| {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
                Some(line.trim_start_matches("VmRSS:").trim().to_owned())
            })
            .unwrap_or_default()
    };
    eprintln!(
        "RSS: C tor service {}, client {}",
        rss(service.pid()),
        rss(client.pid())
    );

    // Teardown: every tor we started is gone (reaped), and so is the owner
    // record.
    let mut pids: Vec<u32> = nodes.iter().map(|(_, pid)| *pid).collect();
    pids.extend([service.pid(), client.pid()]);
    drop(stream);
    client.stop();
    drop(service);
    network.stop();
    for pid in pids {
        assert!(!is_running_tor(pid), "pid {pid} still runs");
    }
    assert!(!net_dir.join(OWNER_FILE).exists());
    Ok(())
}

/// The network file parses and lists 3 authorities and 8 fallbacks with
/// well-formed identities and distinct loopback ports.
fn check_network_file(network: &TestNetwork) -> TestResult {
    let text = fs::read_to_string(network.network_file())?;
    let file: NetworkFile = serde_json::from_str(&text)?;
    assert_eq!(&file, network.info());
    assert_eq!(file.authorities.len(), 3);
    assert_eq!(file.fallbacks.len(), 8);

    let is_hex40 = |s: &str| s.len() == 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    let mut ports = Vec::new();
    for authority in &file.authorities {
        assert!(is_hex40(&authority.v3ident), "{authority:?}");
        assert!(is_hex40(&authority.rsa_identity), "{authority:?}");
        ports.push(loopback_port(&authority.dirport)?);
        // Every authority is also a fallback, with the same identity and ORPort.
        assert!(
            file.fallbacks
                .iter()
                .any(|f| f.rsa_identity == authority.rsa_identity
                    && f.orports == [authority.orport.clone()])
        );
    }
    for fallback in &file.fallbacks {
        assert!(is_hex40(&fallback.rsa_identity), "{fallback:?}");
        assert_eq!(fallback.ed_identity.len(), 43, "{fallback:?}");
        assert!(
            fallback
                .ed_identity
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        );
        assert_eq!(fallback.orports.len(), 1);
        ports.push(loopback_port(&fallback.orports[0])?);
    }
    let count = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), count, "ports are not distinct");
    Ok(())
}

fn loopback_port(address: &str) -> Result<u16, Box<dyn std::error::Error>> {
    let address: SocketAddr = address.parse()?;
    assert_eq!(address.ip(), Ipv4Addr::LOCALHOST);
    Ok(address.port())
}

/// Whether `pid` is a live (not zombie) `tor` process.
fn is_running_tor(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
    stat.contains("(tor)") && !state.is_some_and(|s| s.starts_with('Z'))
}

/// A SOCKS5 CONNECT to `host:port`, retried for up to a minute (the
/// client may not have fetched the descriptor on the first try).
fn socks5_connect_with_retries(
    proxy: SocketAddr,
    host: &str,
    port: u16,
) -> Result<TcpStream, Box<dyn std::error::Error>> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match socks5_connect(proxy, host, port) {
            Ok(stream) => return Ok(stream),
            Err(e) if Instant::now() < deadline => {
                eprintln!("SOCKS connect failed, retrying: {e}");
                thread::sleep(Duration::from_secs(1));
            }
            Err(e) => return Err(e),
        }
    }
}

fn socks5_connect(
    proxy: SocketAddr,
    host: &str,
    port: u16,
) -> Result<TcpStream, Box<dyn std::error::Error>> {
    let mut stream = TcpStream::connect(proxy)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.write_all(&[5, 1, 0])?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice)?;
    if choice != [5, 0] {
        return Err(format!("SOCKS method refused: {choice:?}").into());
    }
    let mut request = vec![5, 1, 0, 3, u8::try_from(host.len())?];
    request.extend_from_slice(host.as_bytes());
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head)?;
    if head[1] != 0 {
        return Err(format!("SOCKS CONNECT failed with reply {:#04x}", head[1]).into());
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        _ => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len)?;
            usize::from(len[0]) + 2
        }
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound)?;
    Ok(stream)
}
