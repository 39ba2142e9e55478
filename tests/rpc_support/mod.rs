//! A JSON-RPC client for the tests: drives `allium::rpc::serve` over an
//! in-memory pipe, keeping notifications aside while it waits for
//! responses.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use allium::app::{Backend, MemoryBackend};
use allium::engine::EngineConfig;
use allium_onion::MemoryNetwork;
use allium_protocol::SessionConfig;
use serde_json::{Value, json};
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use tokio::task::JoinHandle;

/// Upper bound for anything to happen: only a failing test waits this long.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Engine timers shrunk for the in-memory network.
pub fn config() -> EngineConfig {
    EngineConfig {
        session: SessionConfig::default(),
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..EngineConfig::default()
    }
}

pub fn backend(net: &MemoryNetwork) -> Arc<dyn Backend> {
    Arc::new(MemoryBackend::new(net.clone(), config()))
}

pub struct Client {
    writer: Option<WriteHalf<DuplexStream>>,
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    /// Notifications not yet looked at, in order.
    pub notifications: VecDeque<Value>,
    next_id: u64,
    pub server: Option<JoinHandle<io::Result<()>>>,
}

impl Client {
    /// Serves a fresh session on `backend`.
    pub fn start(backend: Arc<dyn Backend>) -> Client {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (server_read, server_write) = tokio::io::split(server);
        let server = tokio::spawn(allium::rpc::serve(
            backend,
            BufReader::new(server_read),
            server_write,
        ));
        let (read, write) = tokio::io::split(client);
        Client {
            writer: Some(write),
            lines: BufReader::new(read).lines(),
            notifications: VecDeque::new(),
            next_id: 1,
            server: Some(server),
        }
    }

    /// Sends raw bytes as one line.
    pub async fn send_line(&mut self, line: &[u8]) {
        let w = self.writer.as_mut().expect("input still open");
        w.write_all(line).await.expect("write");
        w.write_all(b"\n").await.expect("write");
        w.flush().await.expect("flush");
    }

    /// Ends the input, as closing stdin does.
    pub async fn close_input(&mut self) {
        let mut w = self.writer.take().expect("input still open");
        w.shutdown().await.expect("shutdown");
    }

    /// The next output line as JSON; `None` at the end of the output.
    pub async fn next_line(&mut self) -> Option<Value> {
        let line = tokio::time::timeout(PATIENCE, self.lines.next_line())
            .await
            .expect("timed out waiting for output")
            .expect("read");
        line.map(|l| {
            let v: Value = serde_json::from_str(&l).expect("every output line is JSON");
            assert_eq!(v["jsonrpc"], "2.0", "{v}");
            v
        })
    }

    /// The next response, keeping notifications aside.
    pub async fn response(&mut self) -> Value {
        loop {
            let v = self.next_line().await.expect("a response before the end");
            if v.get("id").is_some() {
                return v;
            }
            self.notifications.push_back(v);
        }
    }

    /// Sends a request and returns the whole response.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let req = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_line(req.to_string().as_bytes()).await;
        let resp = self.response().await;
        assert_eq!(resp["id"], id, "{resp}");
        resp
    }

    /// A call that must succeed: its result.
    pub async fn ok(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params).await;
        assert!(resp.get("error").is_none(), "{method} failed: {resp}");
        resp["result"].clone()
    }

    /// A call that must fail: its error object.
    pub async fn err(&mut self, method: &str, params: Value) -> Value {
        let resp = self.call(method, params).await;
        assert!(resp.get("result").is_none(), "{method} succeeded: {resp}");
        resp["error"].clone()
    }

    /// Waits for a notification whose params match `f`, looking at the
    /// ones set aside first. Earlier ones stay set aside.
    pub async fn notification<F: FnMut(&Value) -> bool>(&mut self, what: &str, mut f: F) -> Value {
        if let Some(i) = self.notifications.iter().position(&mut f) {
            return self.notifications.remove(i).expect("present");
        }
        loop {
            let v = self
                .next_line()
                .await
                .unwrap_or_else(|| panic!("output ended while waiting for {what}"));
            assert!(
                v.get("id").is_none(),
                "unexpected response {v} waiting for {what}"
            );
            if f(&v) {
                return v;
            }
            self.notifications.push_back(v);
        }
    }

    /// Waits for an engine event called `name` matching `f`; returns its
    /// params.
    pub async fn event<F: FnMut(&Value) -> bool>(&mut self, name: &str, mut f: F) -> Value {
        let n = self
            .notification(name, |n| {
                n["method"] == "event" && n["params"]["event"] == name && f(&n["params"])
            })
            .await;
        n["params"].clone()
    }

    /// Waits for the server to finish after shutdown or end of input,
    /// reading what remains; returns the notifications it wrote last.
    pub async fn finish(&mut self) -> io::Result<()> {
        while let Some(v) = self.next_line().await {
            assert!(v.get("id").is_none(), "unexpected response {v}");
            self.notifications.push_back(v);
        }
        let server = self.server.take().expect("server running");
        tokio::time::timeout(PATIENCE, server)
            .await
            .expect("serve returns")
            .expect("serve does not panic")
    }
}

/// Writes a passphrase file (with a trailing newline, as editors do).
pub fn passphrase_file(dir: &std::path::Path, name: &str, passphrase: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("{passphrase}\n")).expect("write passphrase");
    path.to_str().expect("UTF-8 temp path").to_owned()
}
