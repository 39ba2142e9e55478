//! The raw-stream workload both network benchmarks measure (included by
//! `onion/benches/network.rs` and the app's `benches/engine_tor.rs` with
//! `#[path]`, so that Arti, C tor and the app are timed by the same code):
//! a 64-byte echo for round trips, and a length-prefixed one-way stream
//! answered with one byte for throughput.

use std::time::{Duration, Instant};

use allium_onion::{Connection, DialError, TorTransport, Transport};
use allium_protocol::OnionId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Write size of the throughput stream.
pub const CHUNK: usize = 64 * 1024;
/// Size of one ping.
pub const PING_BYTES: usize = 64;

/// Dials until the descriptor is out and circuits work.
pub async fn dial_retrying(tor: &TorTransport, addr: OnionId) -> Connection {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match tor.dial(addr, None).await {
            Ok(c) => return c,
            Err(DialError::NotFound | DialError::Unreachable) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_secs(2)).await
            }
            Err(e) => panic!("dial: {e}"),
        }
    }
}

/// The service side of every measurement: a 64-byte message is echoed; a
/// stream that starts with `T` + 8-byte length is counted and answered with
/// one byte once all of it arrived.
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut conn: S) {
    let mut first = [0u8; 1];
    if conn.read_exact(&mut first).await.is_err() {
        return;
    }
    if first[0] == b'T' {
        let mut len = [0u8; 8];
        if conn.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut left = u64::from_be_bytes(len);
        let mut buf = vec![0u8; CHUNK];
        while left > 0 {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left -= (n as u64).min(left),
            }
        }
        let _ = conn.write_all(b"!").await;
        let _ = conn.flush().await;
        return;
    }
    let mut msg = [0u8; PING_BYTES];
    msg[0] = first[0];
    if conn.read_exact(&mut msg[1..]).await.is_err() {
        return;
    }
    loop {
        if conn.write_all(&msg).await.is_err() || conn.flush().await.is_err() {
            return;
        }
        if conn.read_exact(&mut msg).await.is_err() {
            return;
        }
    }
}

/// Round trips of one ping each, in ms.
pub async fn ping_pong<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut S, n: usize) -> Vec<f64> {
    let mut msg = [b'P'; PING_BYTES];
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        msg[1..9].copy_from_slice(&(i as u64).to_be_bytes());
        let t = Instant::now();
        conn.write_all(&msg).await.expect("ping");
        conn.flush().await.expect("flush");
        let mut back = [0u8; PING_BYTES];
        conn.read_exact(&mut back).await.expect("pong");
        assert_eq!(back, msg, "echo intact");
        times.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    times
}

/// Time to send `mib` MiB one way until the receiver confirms.
pub async fn throughput<S: AsyncRead + AsyncWrite + Unpin>(conn: &mut S, mib: usize) -> Duration {
    let total = (mib as u64) << 20;
    let chunk = vec![0x5au8; CHUNK];
    let t = Instant::now();
    conn.write_all(b"T").await.expect("start");
    conn.write_all(&total.to_be_bytes()).await.expect("length");
    let mut sent = 0u64;
    while sent < total {
        let n = (total - sent).min(CHUNK as u64) as usize;
        conn.write_all(&chunk[..n]).await.expect("data");
        sent += n as u64;
    }
    conn.flush().await.expect("flush");
    let mut done = [0u8; 1];
    conn.read_exact(&mut done).await.expect("receipt");
    t.elapsed()
}

/// Median and 95th percentile, rounded to 0.01.
pub fn percentiles(ms: &[f64]) -> (f64, f64) {
    let mut v = ms.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    let r = |x: f64| (x * 100.0).round() / 100.0;
    (r(at(0.5)), r(at(0.95)))
}

/// KiB to MiB, one decimal.
pub fn kib_to_mib(k: u64) -> f64 {
    (k as f64 / 1024.0 * 10.0).round() / 10.0
}
