//! One task per connection: it owns the protocol `Session`, feeds it the
//! stream's bytes and the timers, and exchanges only events and commands
//! with the engine. It never decides anything about contacts; admission is
//! asked of the engine.
//!
//! Writes go through a separate writer task, so that a peer that stops
//! reading can never stop us from reading (two peers both blocked on a full
//! pipe would otherwise deadlock). What waits to be written is counted in
//! bytes ([`SendQueue`]): the engine starts no more bulk data (file chunks,
//! outbox flushes) above [`SEND_HIGH_WATER`] (what it started may add one
//! file window, 1 MiB, past it) and resumes when the writer reports
//! [`ConnEvent::Drained`]; whatever a peer can make us queue beyond that
//! (acknowledgements, cancels) is capped at [`SEND_HARD_CAP`], past which
//! the connection is closed. A peer that stops reading therefore
//! costs us at most that many bytes, never more (review finding M1).

use std::time::Instant as StdInstant;

use allium_onion::Connection;
use allium_protocol::{
    CloseReason, Event as SessionEvent, Message, RefuseReason, ReplayCache, Session,
    StaticPublicKey,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// Above this many bytes waiting to be written, the engine queues no more
/// bulk data on the connection.
pub(crate) const SEND_HIGH_WATER: usize = 2 << 20;
/// Below this, after the engine was held back, the writer says so.
const SEND_LOW_WATER: usize = 512 << 10;
/// More than this waiting means the peer does not read: the connection is
/// closed.
pub(crate) const SEND_HARD_CAP: usize = 8 << 20;
/// How long a closed connection may take to write its last bytes.
const WRITER_GRACE: Duration = Duration::from_secs(10);

/// Bytes waiting to be written on one connection, shared by the engine,
/// the connection task and its writer.
#[derive(Clone, Default)]
pub(crate) struct SendQueue(Arc<SendQueueInner>);

#[derive(Default)]
struct SendQueueInner {
    bytes: AtomicUsize,
    /// The engine held back and waits for [`ConnEvent::Drained`].
    waiting: AtomicBool,
}

impl SendQueue {
    /// Bytes queued and not yet written.
    pub(crate) fn queued(&self) -> usize {
        self.0.bytes.load(Ordering::Relaxed)
    }

    /// Whether more bulk data may be queued now; if not, the engine is told
    /// when it may.
    pub(crate) fn has_room(&self) -> bool {
        if self.queued() < SEND_HIGH_WATER {
            return true;
        }
        self.0.waiting.store(true, Ordering::Relaxed);
        false
    }

    /// Whether the engine held back and the queue has drained meanwhile
    /// (in case the writer's [`ConnEvent::Drained`] found the engine's
    /// queue full); clears the flag.
    pub(crate) fn take_drained(&self) -> bool {
        self.queued() < SEND_LOW_WATER && self.0.waiting.swap(false, Ordering::Relaxed)
    }

    fn hold_back(&self) {
        self.0.waiting.store(true, Ordering::Relaxed);
    }

    pub(crate) fn add(&self, n: usize) {
        self.0.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes `n` written bytes off; true if the engine should now resume.
    pub(crate) fn written(&self, n: usize) -> bool {
        let before = self.0.bytes.fetch_sub(n, Ordering::Relaxed);
        before.saturating_sub(n) < SEND_LOW_WATER && self.0.waiting.swap(false, Ordering::Relaxed)
    }
}

/// A guess at the bytes a message takes on the wire, counted when the
/// engine queues it and corrected by the connection task once it is
/// encrypted (so that messages not yet encrypted count too).
pub(crate) fn estimate(m: &Message) -> usize {
    const OVERHEAD: usize = 64;
    match m {
        Message::FileChunk(c) => c.data.len() + OVERHEAD,
        Message::Chat(c) => c.text.len() + OVERHEAD,
        _ => 256,
    }
}

/// Engine-wide id of a connection.
pub(crate) type ConnId = u64;

/// What the engine tells a connection.
pub(crate) enum ToConn {
    /// Send an application message ([`estimate`] bytes of it are counted
    /// in the send queue already).
    Send(Message, usize),
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
    pub(crate) event: ConnEvent,
}

pub(crate) enum ConnEvent {
    /// From the protocol session.
    Session(SessionEvent),
    /// The send queue fell below the low-water mark after the engine held
    /// back: bulk data may flow again.
    Drained,
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
    events: mpsc::Sender<FromConn>,
    replay: Arc<Mutex<ReplayCache>>,
    queue: SendQueue,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    let (wtx, wrx) = mpsc::unbounded_channel::<Vec<u8>>();
    let mut writer_task = tokio::spawn(write_out(conn, writer, wrx, queue.clone(), events.clone()));
    let transmit = |session: &mut Session| {
        while let Some(bytes) = session.poll_transmit() {
            queue.add(bytes.len());
            let _ = wtx.send(bytes);
        }
    };

    let mut buf = vec![0u8; 16 * 1024];
    let mut read_open = true;
    let mut closed_sent = false;
    loop {
        transmit(&mut session);
        if queue.queued() > SEND_HARD_CAP && !session.is_closed() {
            // The peer has stopped reading (or reads slower than it makes
            // us write): give up on it rather than hold more.
            session.handle_eof();
        }
        closed_sent |= report(conn, &mut session, &events).await;
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
                Some(cmd) => {
                    if apply(&mut session, now(), cmd, &replay, &queue) {
                        let _ = events
                            .send(FromConn {
                                conn,
                                event: ConnEvent::Drained,
                            })
                            .await;
                    }
                }
                // The engine is gone: leave politely.
                None => session.close(now(), CloseReason::Shutdown),
            },
            _ = sleep_until(deadline) => session.handle_timeout(now()),
        }
    }
    // Flush what the close produced, then let the writer finish.
    transmit(&mut session);
    if !closed_sent {
        report(conn, &mut session, &events).await;
    }
    drop(wtx);
    // A peer that does not read would keep the writer (and what it holds)
    // forever: it gets a grace period, then the stream is dropped.
    if tokio::time::timeout(WRITER_GRACE, &mut writer_task)
        .await
        .is_err()
    {
        writer_task.abort();
    }
}

/// The writing half: writes what the session produced, coalescing what
/// is queued before each flush, and tells the engine when the send queue
/// drained below its mark.
async fn write_out(
    conn: ConnId,
    mut writer: tokio::io::WriteHalf<Connection>,
    mut wrx: mpsc::UnboundedReceiver<Vec<u8>>,
    queue: SendQueue,
    drained: mpsc::Sender<FromConn>,
) {
    while let Some(bytes) = wrx.recv().await {
        let mut batch = vec![bytes];
        while let Ok(more) = wrx.try_recv() {
            batch.push(more);
        }
        for bytes in batch {
            if writer.write_all(&bytes).await.is_err() {
                return;
            }
            if queue.written(bytes.len())
                && drained
                    .try_send(FromConn {
                        conn,
                        event: ConnEvent::Drained,
                    })
                    .is_err()
            {
                // The engine is busy: ask again after the next write.
                queue.hold_back();
            }
        }
        if writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.shutdown().await;
}

/// Hands the session's events to the engine; true if one was its close.
/// Waits while the engine is behind: we then stop reading the peer, which
/// is the backpressure we want.
async fn report(conn: ConnId, session: &mut Session, events: &mpsc::Sender<FromConn>) -> bool {
    let mut closed = false;
    while let Some(ev) = session.poll_event() {
        closed |= matches!(ev, SessionEvent::Closed(_));
        let _ = events
            .send(FromConn {
                conn,
                event: ConnEvent::Session(ev),
            })
            .await;
    }
    closed
}

/// Carries out the engine's command on `session`; true if the engine held
/// back and may now resume ([`ConnEvent::Drained`]).
pub(crate) fn apply(
    session: &mut Session,
    now: StdInstant,
    command: ToConn,
    replay: &Mutex<ReplayCache>,
    queue: &SendQueue,
) -> bool {
    match command {
        ToConn::Send(m, counted) => {
            // The encrypted bytes are counted when transmitted; the
            // engine's estimate comes off now.
            let drained = queue.written(counted);
            let _ = session.send(now, m);
            drained
        }
        ToConn::Close(reason) => {
            session.close(now, reason);
            false
        }
        ToConn::Admit(a) => {
            let mut cache = match replay.lock() {
                Ok(c) => c,
                Err(p) => p.into_inner(),
            };
            let _ = match a {
                Admission::Stranger => session.admit_stranger(now, &mut cache),
                Admission::Contact(s) => session.admit_contact(now, &mut cache, s),
                Admission::Refuse(r) => {
                    session.refuse(r);
                    Ok(())
                }
            };
            false
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
