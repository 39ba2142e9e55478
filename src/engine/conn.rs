//! One task per connection: it owns the protocol `Session`, feeds it the
//! stream's bytes and the timers, and exchanges only events and commands
//! with the engine. It never decides anything about contacts; admission is
//! asked of the engine.
//!
//! Writes go through a separate writer task, so that a peer that stops
//! reading can never stop us from reading (two peers both blocked on a full
//! pipe would otherwise deadlock). What is queued for writing is bounded by
//! the protocol's own windows (outbox, file window).

use std::time::Instant as StdInstant;

use allium_onion::Connection;
use allium_protocol::{
    CloseReason, Event as SessionEvent, Message, RefuseReason, ReplayCache, Session,
    StaticPublicKey,
};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Engine-wide id of a connection.
pub(crate) type ConnId = u64;

/// What the engine tells a connection.
pub(crate) enum ToConn {
    /// Send an application message.
    Send(Message),
    /// Close with this reason.
    Close(CloseReason),
    /// Answer to an admission question.
    Admit(Admission),
}

/// The engine's decision about a hello.
pub(crate) enum Admission {
    Stranger,
    Contact(StaticPublicKey),
    Refuse(Option<RefuseReason>),
}

/// What a connection tells the engine.
pub(crate) struct FromConn {
    pub(crate) conn: ConnId,
    pub(crate) event: SessionEvent,
}

fn now() -> StdInstant {
    tokio::time::Instant::now().into_std()
}

/// Runs `session` over `stream` until it is closed. The last event sent is
/// always `Closed`.
pub(crate) async fn run(
    conn: ConnId,
    mut session: Session,
    stream: Connection,
    mut commands: mpsc::UnboundedReceiver<ToConn>,
    events: mpsc::UnboundedSender<FromConn>,
    replay: Arc<Mutex<ReplayCache>>,
) {
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    let writer_task = tokio::spawn(async move {
        while let Some(bytes) = wrx.recv().await {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
            // Coalesce whatever else is queued before flushing.
            while let Ok(more) = wrx.try_recv() {
                if writer.write_all(&more).await.is_err() {
                    return;
                }
            }
            if writer.flush().await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    });

    let mut buf = vec![0u8; 16 * 1024];
    let mut read_open = true;
    let mut closed_sent = false;
    loop {
        while let Some(bytes) = session.poll_transmit() {
            let _ = wtx.send(bytes);
        }
        while let Some(ev) = session.poll_event() {
            let closed = matches!(ev, SessionEvent::Closed(_));
            let _ = events.send(FromConn { conn, event: ev });
            if closed {
                closed_sent = true;
            }
        }
        if session.is_closed() {
            break;
        }
        let deadline = session.poll_timeout().map(tokio::time::Instant::from_std);
        tokio::select! {
            read = reader.read(&mut buf), if read_open => match read {
                Ok(0) | Err(_) => {
                    read_open = false;
                    session.handle_eof();
                }
                Ok(n) => {
                    // Errors close the session; the Closed event says why.
                    let _ = session.handle_bytes(now(), buf.get(..n).unwrap_or_default());
                }
            },
            cmd = commands.recv() => match cmd {
                Some(ToConn::Send(m)) => {
                    let _ = session.send(now(), m);
                }
                Some(ToConn::Close(reason)) => session.close(now(), reason),
                Some(ToConn::Admit(a)) => {
                    let mut cache = match replay.lock() {
                        Ok(c) => c,
                        Err(p) => p.into_inner(),
                    };
                    let _ = match a {
                        Admission::Stranger => session.admit_stranger(now(), &mut cache),
                        Admission::Contact(s) => session.admit_contact(now(), &mut cache, s),
                        Admission::Refuse(r) => {
                            session.refuse(r);
                            Ok(())
                        }
                    };
                }
                // The engine is gone: leave politely.
                None => session.close(now(), CloseReason::Shutdown),
            },
            _ = sleep_until(deadline) => session.handle_timeout(now()),
        }
    }
    // Flush what the close produced, then let the writer finish.
    while let Some(bytes) = session.poll_transmit() {
        let _ = wtx.send(bytes);
    }
    if !closed_sent {
        while let Some(ev) = session.poll_event() {
            let _ = events.send(FromConn { conn, event: ev });
        }
    }
    drop(wtx);
    let _ = writer_task.await;
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
