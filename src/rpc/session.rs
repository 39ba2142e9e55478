//! One client's session: the methods, the one profile it may open, and
//! the tasks that turn engine events and Tor state into notifications.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};
use tokio::io::AsyncBufRead;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::methods;
use super::passphrase;
use super::wire::{self, ErrorCode, Line, MAX_LINE, Params, RpcError, echo};
use crate::app::{Backend, ProfileControl, Running, TorState, check_new_passphrase};
use crate::engine::{Engine, EngineError, EngineHandle, Event};

/// How long a clean engine shutdown may take (closing sessions, saving)
/// before its task is stopped.
const ENGINE_STOP: Duration = Duration::from_secs(20);

/// How long the last events may take to reach the output after the engine
/// stopped (a client that stopped reading gets no more).
const EVENTS_DRAIN: Duration = Duration::from_secs(5);

/// The open profile.
pub(super) struct Open {
    pub(super) handle: EngineHandle,
    task: JoinHandle<()>,
    pub(super) tor: watch::Receiver<TorState>,
    pub(super) name: Option<String>,
    pub(super) control: Box<dyn ProfileControl>,
    /// Taken when the forwarders start, after the response that opened
    /// the profile is queued (so that no event precedes it).
    events: Option<mpsc::Receiver<Event>>,
    forwarders: Option<(JoinHandle<()>, JoinHandle<()>)>,
}

/// One JSON-RPC client (one connection): named so as not to be taken for
/// a protocol `Session` with a contact.
pub(crate) struct Client {
    backend: Arc<dyn Backend>,
    out: mpsc::Sender<String>,
    open: Option<Open>,
}

impl Client {
    pub fn new(backend: Arc<dyn Backend>, out: mpsc::Sender<String>) -> Self {
        Client {
            backend,
            out,
            open: None,
        }
    }

    /// Reads and answers requests until the input ends or a `shutdown`.
    pub async fn run<R: AsyncBufRead + Unpin>(&mut self, mut input: R) -> io::Result<()> {
        let mut buf = Vec::new();
        loop {
            match wire::read_line(&mut input, &mut buf).await? {
                Line::Eof => return Ok(()),
                Line::TooLong => {
                    let e = RpcError::new(
                        ErrorCode::LineTooLong,
                        format!(
                            "a request may be at most {MAX_LINE} bytes on one line; this line \
                             was skipped"
                        ),
                    );
                    self.send(wire::response(Value::Null, Err(e))).await;
                }
                Line::Complete => {
                    let line = buf.trim_ascii();
                    // Blank lines are allowed, so that pasted sessions can
                    // be spaced out.
                    if line.is_empty() {
                        continue;
                    }
                    let request = match wire::parse(line) {
                        Ok(r) => r,
                        Err((id, e)) => {
                            self.send(wire::response(id, Err(e))).await;
                            continue;
                        }
                    };
                    let (result, stop) = self.call(&request.method, request.params).await;
                    if let Some(id) = request.id {
                        self.send(wire::response(id, result)).await;
                    }
                    self.start_forwarders();
                    if stop {
                        return Ok(());
                    }
                }
            }
        }
    }

    async fn send(&self, line: String) {
        // A send fails only when the writer has failed; serve notices that.
        let _ = self.out.send(line).await;
    }

    /// Stops the open profile's engine, if any, letting it save and
    /// letting its last events out.
    pub async fn close(&mut self) -> Result<(), RpcError> {
        let Some(mut open) = self.open.take() else {
            return Ok(());
        };
        let result = match open.handle.shutdown().await {
            // It had stopped already: nothing left to save.
            Ok(()) | Err(EngineError::Stopped) => Ok(()),
            Err(e) => Err(RpcError::from(e)),
        };
        if tokio::time::timeout(ENGINE_STOP, &mut open.task)
            .await
            .is_err()
        {
            tracing::warn!("the engine did not stop in time; stopping it");
            open.task.abort();
        }
        if let Some((mut events, tor)) = open.forwarders.take() {
            tor.abort();
            let _ = tor.await;
            // The event stream ends with the engine task.
            if tokio::time::timeout(EVENTS_DRAIN, &mut events)
                .await
                .is_err()
            {
                events.abort();
            }
        }
        result
    }

    /// [`Client::close`] when nobody is left to hear how it went.
    pub async fn close_quietly(&mut self) {
        if self.close().await.is_err() {
            // The engine reported the save problem as an event already.
            tracing::warn!("the profile's last changes could not be saved");
        }
    }

    fn start_forwarders(&mut self) {
        let Some(open) = &mut self.open else {
            return;
        };
        let Some(events) = open.events.take() else {
            return;
        };
        let events = tokio::spawn(forward_events(events, self.out.clone()));
        let tor = tokio::spawn(forward_tor(open.tor.clone(), self.out.clone()));
        open.forwarders = Some((events, tor));
    }

    /// Runs one method; `true` when the session is to end.
    async fn call(&mut self, method: &str, p: Params) -> (Result<Value, RpcError>, bool) {
        if method == "shutdown" {
            if let Err(e) = p.finish() {
                return (Err(e), false);
            }
            return (self.close().await.map(|()| Value::Null), true);
        }
        (self.dispatch(method, p).await, false)
    }

    async fn dispatch(&mut self, method: &str, mut p: Params) -> Result<Value, RpcError> {
        match method {
            "profile.list" => {
                p.finish()?;
                Ok(json!({"profiles": self.backend.profiles()?}))
            }
            "profile.create" | "profile.unlock" => {
                let name = p.string("name")?;
                let source = passphrase::Source::from_params(&mut p)?;
                p.finish()?;
                // Before reading: a pipe's passphrase is read only once.
                self.check_none_open()?;
                let passphrase = source.read().await?;
                let running = if method == "profile.create" {
                    check_new_passphrase(&passphrase, &passphrase, &[name.as_str()])?;
                    self.backend.create(name, passphrase).await?
                } else {
                    self.backend.unlock(name, passphrase).await?
                };
                Ok(self.opened(running))
            }
            "profile.amnesic" => {
                let intake = p.opt_bool("intake")?.unwrap_or(false);
                p.finish()?;
                self.check_none_open()?;
                let running = self.backend.amnesic().await?;
                if intake {
                    running.engine.handle.set_intake(true).await?;
                }
                Ok(self.opened(running))
            }
            _ => match methods::find(method) {
                Some(call) => call(self, p).await,
                None => Err(RpcError::new(
                    ErrorCode::NoSuchMethod,
                    format!(
                        "there is no method \"{}\"; docs/json-rpc.md lists them",
                        echo(method)
                    ),
                )),
            },
        }
    }

    pub(super) fn profile(&self) -> Result<&Open, RpcError> {
        self.open.as_ref().ok_or_else(|| {
            RpcError::new(
                ErrorCode::NotOpen,
                "no profile is open yet; call profile.create, profile.unlock or \
                 profile.amnesic first",
            )
        })
    }

    fn check_none_open(&self) -> Result<(), RpcError> {
        match &self.open {
            None => Ok(()),
            Some(open) => Err(RpcError::new(
                ErrorCode::AlreadyOpen,
                match &open.name {
                    Some(_) => {
                        "a profile is already open; one allium process serves one \
                                profile, so start another for a second"
                    }
                    None => {
                        "an amnesic session is already open; one allium process serves \
                             one profile, so start another for a second"
                    }
                },
            )),
        }
    }

    /// Keeps `running` as the open profile; the response describes it.
    fn opened(&mut self, running: Running) -> Value {
        let Running {
            engine,
            tor,
            name,
            control,
            ..
        } = running;
        let Engine {
            handle,
            events,
            task,
            address,
        } = engine;
        let address = address.to_address();
        let result = json!({
            "profile": name,
            "amnesic": name.is_none(),
            "address": address,
        });
        self.open = Some(Open {
            handle,
            task,
            tor,
            name,
            control,
            events: Some(events),
            forwarders: None,
        });
        result
    }
}

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|_| {
        RpcError::new(
            ErrorCode::Internal,
            "the answer could not be written as JSON (a file name that is not UTF-8?)",
        )
    })
}

/// The Tor connection as JSON: always the same four members.
pub(super) fn tor_json(state: &TorState) -> Value {
    match state {
        TorState::Connecting { fraction, phase } => json!({
            "state": "connecting", "fraction": fraction, "phase": phase, "message": null,
        }),
        TorState::Stuck { fraction, advice } => json!({
            "state": "blocked", "fraction": fraction, "phase": null, "message": advice,
        }),
        TorState::Ready => json!({
            "state": "ready", "fraction": 1.0, "phase": null, "message": null,
        }),
        TorState::Failed { message } => json!({
            "state": "failed", "fraction": null, "phase": null, "message": message,
        }),
    }
}

async fn forward_events(mut events: mpsc::Receiver<Event>, out: mpsc::Sender<String>) {
    while let Some(event) = events.recv().await {
        match serde_json::to_value(&event) {
            Ok(params) => {
                if out.send(wire::notification("event", params)).await.is_err() {
                    return;
                }
            }
            // Only a path that is not UTF-8 can fail; the content is not
            // logged.
            Err(_) => tracing::warn!("an engine event could not be written as JSON; dropped"),
        }
    }
}

/// Sends the current Tor state, then every change, until the backend
/// stops reporting (an in-memory backend never changes it).
async fn forward_tor(mut tor: watch::Receiver<TorState>, out: mpsc::Sender<String>) {
    loop {
        let state = tor_json(&tor.borrow_and_update());
        if out.send(wire::notification("tor", state)).await.is_err() {
            return;
        }
        if tor.changed().await.is_err() {
            return;
        }
    }
}
