//! Interoperability with C tor, the reference implementation, on the local
//! Tor network: a C tor client reaches an Allium-published service through
//! its SOCKS port, and Allium reaches a service hosted by C tor.
//!
//! Both directions need Arti and C tor to agree on onion-service time
//! periods, which the local network arranges with `hsdir_interval=30` and
//! 75-second votes (shared/notes/tor-testnet.md, pitfall 2).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use allium_onion::{SERVICE_PORT, Transport};
use allium_protocol::OnionId;
use allium_testnet::{CTorClient, CTorClientOptions, NetworkFile, OnionServiceOptions};
use common::{dial_id_until_found, key, node, reachable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn network_file() -> NetworkFile {
    NetworkFile::from_env()
        .expect("ALLIUM_TEST_NETWORK is not set: run ./scripts/test.sh")
        .expect("network file")
}

async fn c_tor(options: CTorClientOptions) -> CTorClient {
    let net = network_file();
    tokio::task::spawn_blocking(move || CTorClient::start(&net, options))
        .await
        .expect("join")
        .expect("C tor client starts")
}

/// A SOCKS5 CONNECT (RFC 1928) to `host:port`, by name, with no
/// authentication: the way any application reaches an onion service through
/// C tor. Returns the SOCKS reply code on failure.
async fn socks_connect(proxy: SocketAddr, host: &str, port: u16) -> Result<TcpStream, u8> {
    let mut s = TcpStream::connect(proxy).await.map_err(|_| 0xff)?;
    s.write_all(&[5, 1, 0]).await.map_err(|_| 0xff)?;
    let mut choice = [0u8; 2];
    s.read_exact(&mut choice).await.map_err(|_| 0xff)?;
    assert_eq!(choice, [5, 0], "C tor accepts no-authentication");
    let mut req = vec![5, 1, 0, 3, u8::try_from(host.len()).expect("short host")];
    req.extend_from_slice(host.as_bytes());
    req.extend_from_slice(&port.to_be_bytes());
    s.write_all(&req).await.map_err(|_| 0xff)?;
    let mut reply = [0u8; 10];
    s.read_exact(&mut reply).await.map_err(|_| 0xff)?;
    if reply[1] == 0 { Ok(s) } else { Err(reply[1]) }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_tor_client_reaches_an_allium_service() {
    let allium = node().await;
    let id = key(20);
    let mut svc = allium.tor.publish_intake(&id).await.expect("publish");
    reachable(&svc).await;
    let ctor = c_tor(CTorClientOptions::default()).await;

    let deadline = Instant::now() + common::DIAL_PATIENCE;
    let mut stream = loop {
        match socks_connect(
            ctor.socks_addr(),
            &id.onion_id().to_onion_host(),
            SERVICE_PORT,
        )
        .await
        {
            Ok(s) => break s,
            // 0x04 host unreachable / 0xf0-0xf7 Tor's onion-service errors:
            // the descriptor may not have reached every HSDir yet, or a time
            // period may be turning over (see `DIAL_PATIENCE`).
            Err(code) if Instant::now() < deadline => {
                eprintln!("SOCKS reply {code:#04x}, retrying");
                tokio::time::sleep(Duration::from_secs(3)).await
            }
            Err(code) => {
                panic!("C tor could not reach the Allium service: SOCKS reply {code:#04x}")
            }
        }
    };
    let mut inbound = svc.accept().await.expect("Allium accepts");
    stream.write_all(b"hello from C tor").await.expect("write");
    let mut got = [0u8; 16];
    inbound.read_exact(&mut got).await.expect("read");
    assert_eq!(&got, b"hello from C tor");
    inbound.write_all(b"hello from Arti").await.expect("reply");
    inbound.flush().await.expect("flush");
    let mut back = [0u8; 15];
    stream.read_exact(&mut back).await.expect("read reply");
    assert_eq!(&back, b"hello from Arti");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allium_reaches_a_service_hosted_by_c_tor() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let target_port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let ctor = c_tor(CTorClientOptions {
        onion_service: Some(OnionServiceOptions {
            virtual_port: SERVICE_PORT,
            target_port,
        }),
        ..CTorClientOptions::default()
    })
    .await;
    let host = ctor.onion_hostname().expect("C tor published its service");
    let target = OnionId::parse(host).expect("C tor's onion address parses as an Allium address");

    let allium = node().await;
    let mut conn = dial_id_until_found(&allium.tor, target, None)
        .await
        .expect("Allium reaches the C tor service");
    conn.write_all(b"ping over two implementations")
        .await
        .expect("write");
    conn.flush().await.expect("flush");
    let mut echo = [0u8; 29];
    conn.read_exact(&mut echo).await.expect("echo");
    assert_eq!(&echo, b"ping over two implementations");
}
