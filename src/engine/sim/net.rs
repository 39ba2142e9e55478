//! The simulator's streams: a pair of ends per connection, each end the
//! protocol `Session` a core opened on it, bytes carried between them in
//! order after a drawn delay. What a connection task does in the app
//! (`conn::run`) is done here by [`End::pump`] and `conn::apply`, on
//! simulated time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use allium_protocol::{Event as SessionEvent, Message, ReplayCache, Session};

use super::super::conn::{self, ConnId, SEND_HARD_CAP, SendQueue, ToConn};

/// One side of a pipe: 0 dialled, 1 accepted.
pub(super) type Side = usize;

pub(super) type PipeId = u64;

/// One end of a stream.
pub(super) struct End {
    pub(super) peer: usize,
    /// The peer's incarnation: a crash ends every end it had.
    pub(super) life: u32,
    pub(super) conn: Option<ConnId>,
    session: Option<Session>,
    replay: Option<Arc<Mutex<ReplayCache>>>,
    pub(super) queue: SendQueue,
    /// Bytes (and the end of the stream) that came before a session was
    /// opened on this end.
    early: VecDeque<Vec<u8>>,
    early_eof: bool,
    /// Nothing more reaches this end: its session finished, its stream
    /// was discarded, or its peer crashed.
    pub(super) gone: bool,
    /// When the last bytes it sent arrive: deliveries keep their order.
    pub(super) sent_until: Duration,
    /// The session timer scheduled for this end.
    pub(super) timer_at: Option<Duration>,
}

impl End {
    pub(super) fn new(peer: usize, life: u32) -> Self {
        End {
            peer,
            life,
            conn: None,
            session: None,
            replay: None,
            queue: SendQueue::default(),
            early: VecDeque::new(),
            early_eof: false,
            gone: false,
            sent_until: Duration::ZERO,
            timer_at: None,
        }
    }

    /// A core opened `session` on this end.
    pub(super) fn open(
        &mut self,
        conn: ConnId,
        session: Session,
        replay: Arc<Mutex<ReplayCache>>,
        queue: SendQueue,
        now: Instant,
    ) {
        self.conn = Some(conn);
        self.queue = queue;
        self.replay = Some(replay);
        let mut session = session;
        while let Some(bytes) = self.early.pop_front() {
            let _ = session.handle_bytes(now, &bytes);
        }
        if self.early_eof {
            session.handle_eof();
        }
        self.session = Some(session);
    }

    pub(super) fn is_open(&self) -> bool {
        self.session.is_some() && !self.gone
    }

    /// Bytes from the other end.
    pub(super) fn receive(&mut self, now: Instant, bytes: Vec<u8>) {
        match &mut self.session {
            Some(s) => {
                let _ = s.handle_bytes(now, &bytes);
            }
            None => self.early.push_back(bytes),
        }
    }

    /// The other end's stream ended.
    pub(super) fn eof(&mut self) {
        match &mut self.session {
            Some(s) => s.handle_eof(),
            None => self.early_eof = true,
        }
    }

    pub(super) fn timeout(&mut self, now: Instant) {
        if let Some(s) = &mut self.session
            && s.poll_timeout().is_some_and(|t| t <= now)
        {
            s.handle_timeout(now);
        }
    }

    /// Sends `m` on this end's session behind its core's back.
    pub(super) fn send_raw(&mut self, now: Instant, m: Message) -> Result<(), String> {
        match &mut self.session {
            Some(s) => s.send(now, m).map_err(|e| e.to_string()),
            None => Err("no session on this stream".into()),
        }
    }

    /// A command from the core; true if the core may resume bulk data.
    pub(super) fn apply(&mut self, now: Instant, command: ToConn) -> bool {
        match (&mut self.session, &self.replay) {
            (Some(s), Some(r)) => conn::apply(s, now, command, r, &self.queue),
            _ => false,
        }
    }

    /// What the session has to say: bytes for the other end, events for
    /// the core, whether it finished, and when its timer is due.
    pub(super) fn pump(&mut self) -> Pumped {
        let mut out = Pumped::default();
        let Some(s) = &mut self.session else {
            return out;
        };
        while let Some(bytes) = s.poll_transmit() {
            self.queue.add(bytes.len());
            out.bytes.push(bytes);
        }
        if self.queue.queued() > SEND_HARD_CAP && !s.is_closed() {
            // As the connection task does: a peer that stops reading is
            // given up on.
            s.handle_eof();
        }
        while let Some(ev) = s.poll_event() {
            out.events.push(ev);
        }
        // What the close produced goes out too.
        while let Some(bytes) = s.poll_transmit() {
            self.queue.add(bytes.len());
            out.bytes.push(bytes);
        }
        out.finished = s.is_closed();
        out.timer = s.poll_timeout();
        out
    }
}

#[derive(Default)]
pub(super) struct Pumped {
    pub(super) bytes: Vec<Vec<u8>>,
    pub(super) events: Vec<SessionEvent>,
    pub(super) finished: bool,
    pub(super) timer: Option<Instant>,
}

/// A stream between two peers.
pub(super) struct Pipe {
    pub(super) ends: [End; 2],
    /// Cut mid-frame: nothing more is carried either way.
    pub(super) cut: bool,
}
