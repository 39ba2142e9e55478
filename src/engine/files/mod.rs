//! File transfers (PROTOCOL.md §6.4): offers, a 1 MiB window of chunks in
//! flight, acknowledgements every 256 KiB, resume after a reconnect, and the
//! digest checked before the file gets its final name.
//!
//! This module is the transfers' state machine and owns nothing else: it
//! decides, and every touch of a file is a [`FileJob`] effect that the
//! shell runs on a blocking thread (`jobs.rs`), coming back as a
//! [`FileDone`]. It knows the rest of the engine only as a [`Host`] (the
//! time, a contact's state, room on its session, sending, events, file
//! work, fresh ids and the caps), and must never import the core. A file handle is out with its job while it runs, so at
//! most one read (sending) or one write (receiving) per transfer is in
//! flight; `io` numbers tell a result from a reader or writer that was
//! reset meanwhile. `send.rs` is the sender's side, `receive.rs` the
//! receiver's.
//!
//! A received file is written only into the folder the person chose, under
//! a hidden partial name created exclusively, and moved to a sanitized name
//! that never replaces an existing file (a hard link, or where the file
//! system has none, an exclusive copy).
//!
//! A contact can repeat any message: each FILE_ACCEPT is honoured once per
//! offer we made, chunks go out only while the session's send queue has
//! room, and refused offers are reported at a bounded rate.

mod jobs;
mod receive;
mod send;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, VecDeque};
use std::fs::File;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use allium_protocol::text::TextField;
use allium_protocol::{CancelReason, FileOffer, Message, TransferId};
use allium_vault::{ContactId, ContactState};
use sha2::Sha256;

pub(crate) use jobs::{Cancel, FileDone, FileJob};
use jobs::{reason_words, sanitize_file_name};

use super::{Answer, Cancelled, EngineError, Event, TransferDirection, TransferView};

/// Progress events at most this often per transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How many received files `Transfers::placed` remembers.
const PLACED_REMEMBERED: usize = 64;
/// Refused file offers reported to the person per contact and minute; more
/// are still refused, without an event each.
const REFUSALS_SHOWN_PER_MINUTE: u32 = 10;

/// What the transfers need from the rest of the engine, and where what
/// they decide goes. The core lends its other parts for one call
/// (`core::FilesHost`); this module sees nothing else of it, and the core
/// nothing of the transfers' fields.
pub(crate) trait Host {
    fn now(&self) -> Instant;
    /// The contact's state, if it is one.
    fn contact_state(&self, contact: ContactId) -> Option<ContactState>;
    /// Whether the contact's session can take more bulk data now.
    fn has_room(&self, contact: ContactId) -> bool;
    /// Sends on the contact's established session; false if it has none.
    fn send(&mut self, contact: ContactId, m: Message) -> bool;
    /// Tells whoever listens (the window, a JSON-RPC client).
    fn emit(&mut self, e: Event);
    /// File work for the shell's blocking threads.
    fn job(&mut self, job: FileJob);
    /// A fresh, random transfer id.
    fn new_transfer(&mut self) -> TransferId;
    fn limits(&self) -> Limits;
}

/// The caps that apply to transfers now.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Largest file we offer to send.
    pub(crate) max_outgoing: u64,
    /// Largest file we accept an offer for (the person's setting).
    pub(crate) max_incoming: u64,
    /// Offers a contact may have waiting for the person's decision.
    pub(crate) max_pending_offers: usize,
}

fn accepted(h: &dyn Host, contact: ContactId) -> bool {
    h.contact_state(contact) == Some(ContactState::Accepted)
}

/// Where a file we send stands on disk.
enum Reader {
    /// Not open (no session, or waiting for FILE_ACCEPT).
    Closed,
    Opening,
    Ready(File),
    /// Out with a read.
    Reading,
}

struct Outgoing {
    contact: ContactId,
    offer: FileOffer,
    path: PathBuf,
    /// Ready to offer (digest known).
    hashed: bool,
    /// We made the offer on the current session and wait for its
    /// FILE_ACCEPT; any other FILE_ACCEPT is ignored (review finding M1).
    awaiting_accept: bool,
    reader: Reader,
    /// The reader's number: results of file work for an earlier one are
    /// stale.
    io: u64,
    /// Next byte to send.
    next: u64,
    /// Bytes the receiver stored.
    acked: u64,
    progress: Progress,
}

struct Incoming {
    contact: ContactId,
    offer: FileOffer,
    /// Sanitized.
    name: String,
    accepted: Option<Accepted>,
    /// Its partial file is being created (by the file work numbered so);
    /// the person's answer waits.
    accepting: Option<(u64, Answer<()>)>,
}

/// Where a file we receive stands on disk.
enum Writer {
    Ready(File),
    /// Out with a write.
    Writing,
}

struct Accepted {
    folder: PathBuf,
    partial: PathBuf,
    writer: Writer,
    /// The writer's number (see `Outgoing::io`).
    io: u64,
    /// Bytes received and not yet handed to a write (one buffer: many
    /// tiny chunks cost their bytes, not an allocation each).
    pending: Vec<u8>,
    /// Bytes received from the contact, in order.
    received: u64,
    /// Bytes written to the partial file.
    written: u64,
    acked: u64,
    hasher: Sha256,
    progress: Progress,
}

struct Progress {
    at: Instant,
    bytes: u64,
}

impl Progress {
    fn new(now: Instant, bytes: u64) -> Self {
        Progress { at: now, bytes }
    }

    /// Bytes per second since the last report, if one is due.
    fn due(&mut self, now: Instant, bytes: u64, force: bool) -> Option<u64> {
        let elapsed = now.saturating_duration_since(self.at);
        if !force && elapsed < PROGRESS_EVERY {
            return None;
        }
        let rate = if elapsed.is_zero() {
            0
        } else {
            (bytes.saturating_sub(self.bytes) as f64 / elapsed.as_secs_f64()) as u64
        };
        *self = Progress::new(now, bytes);
        Some(rate)
    }
}

/// A file the person asked to send, while its size is checked.
struct Inspecting {
    contact: ContactId,
    path: PathBuf,
    name: String,
    answer: Answer<String>,
}

/// Every transfer of the engine, by id.
#[derive(Default)]
pub(crate) struct Transfers {
    outgoing: BTreeMap<TransferId, Outgoing>,
    incoming: BTreeMap<TransferId, Incoming>,
    inspecting: BTreeMap<TransferId, Inspecting>,
    /// Received files being checked and placed on a blocking thread: their
    /// ids stay taken until then, so that an offer reusing one cannot
    /// replace the partial file under the check.
    placing: BTreeMap<TransferId, (ContactId, FileOffer)>,
    /// The last files received, so that an offer repeated because our
    /// FILE_DONE was lost (the session ended first) is answered with
    /// FILE_DONE again, not received a second time (PROTOCOL.md §6.4).
    placed: VecDeque<(TransferId, ContactId, FileOffer)>,
    /// The last reader or writer number handed out.
    last_io: u64,
    /// Refused offers reported per contact this minute, and since when.
    refusals: BTreeMap<ContactId, (u32, Option<Instant>)>,
}

impl Transfers {
    fn next_io(&mut self) -> u64 {
        self.last_io += 1;
        self.last_io
    }
}

fn hex_id(t: &TransferId) -> String {
    hex::encode(t.0)
}

impl Transfers {
    fn out_view(&self, t: &TransferId, o: &Outgoing) -> TransferView {
        TransferView {
            id: hex_id(t),
            contact: o.contact,
            direction: TransferDirection::Outgoing,
            name: o.offer.name.clone(),
            size: o.offer.size,
            done: o.acked,
            accepted: !matches!(o.reader, Reader::Closed),
        }
    }

    fn in_view(&self, t: &TransferId, i: &Incoming) -> TransferView {
        TransferView {
            id: hex_id(t),
            contact: i.contact,
            direction: TransferDirection::Incoming,
            name: i.name.clone(),
            size: i.offer.size,
            done: i.accepted.as_ref().map(|a| a.written).unwrap_or(0),
            accepted: i.accepted.is_some(),
        }
    }

    pub(super) fn transfer_views(&self) -> Vec<TransferView> {
        let mut v: Vec<TransferView> = self
            .outgoing
            .iter()
            .map(|(t, o)| self.out_view(t, o))
            .chain(self.incoming.iter().map(|(t, i)| self.in_view(t, i)))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// The person offers the file at `path` to `contact`. Answered once the
    /// file's size is known (`FileDone::Inspected`).
    pub(super) fn offer_file(
        &mut self,
        h: &mut dyn Host,
        contact: ContactId,
        path: PathBuf,
        answer: Answer<String>,
    ) {
        let checked = self.check_offer(h, contact, &path);
        let name = match checked {
            Ok(name) => name,
            Err(e) => {
                let _ = answer.send(Err(e));
                return;
            }
        };
        let transfer = h.new_transfer();
        self.inspecting.insert(
            transfer,
            Inspecting {
                contact,
                path: path.clone(),
                name,
                answer,
            },
        );
        h.job(FileJob::Inspect { transfer, path });
    }

    /// What can be checked before touching the file: the contact, and the
    /// name it will be offered under.
    fn check_offer(
        &self,
        h: &dyn Host,
        contact: ContactId,
        path: &std::path::Path,
    ) -> Result<String, EngineError> {
        let state = h.contact_state(contact).ok_or(EngineError::NoSuchContact)?;
        if state != ContactState::Accepted {
            return Err(EngineError::WrongState(
                "files can be sent once the contact has accepted",
            ));
        }
        let raw = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = sanitize_file_name(&raw);
        TextField::FileName
            .validate(&name)
            .map_err(|e| EngineError::File(e.to_string()))?;
        Ok(name)
    }

    fn on_inspected(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        result: Result<u64, String>,
    ) {
        let Some(ins) = self.inspecting.remove(&transfer) else {
            return;
        };
        let accepted = accepted(h, ins.contact);
        let size = match result {
            Err(e) => Err(EngineError::File(e)),
            Ok(_) if !accepted => Err(EngineError::NoSuchContact),
            Ok(0) => Err(EngineError::File("the file is empty".into())),
            Ok(n) if n > h.limits().max_outgoing => Err(EngineError::File(format!(
                "the file is too large to send (at most {} bytes)",
                h.limits().max_outgoing
            ))),
            Ok(n) => Ok(n),
        };
        let size = match size {
            Ok(n) => n,
            Err(e) => {
                let _ = ins.answer.send(Err(e));
                return;
            }
        };
        self.outgoing.insert(
            transfer,
            Outgoing {
                contact: ins.contact,
                offer: FileOffer {
                    transfer,
                    size,
                    sha256: [0; 32],
                    name: ins.name,
                },
                path: ins.path.clone(),
                hashed: false,
                awaiting_accept: false,
                reader: Reader::Closed,
                io: 0,
                next: 0,
                acked: 0,
                progress: Progress::new(h.now(), 0),
            },
        );
        h.job(FileJob::Hash {
            transfer,
            path: ins.path,
        });
        let _ = ins.answer.send(Ok(hex_id(&transfer)));
    }

    pub(super) fn on_file_done(&mut self, h: &mut dyn Host, done: FileDone) {
        match done {
            FileDone::Inspected { transfer, result } => self.on_inspected(h, transfer, result),
            FileDone::Hashed { transfer, result } => self.on_hashed(h, transfer, result),
            FileDone::Opened {
                transfer,
                io,
                result,
            } => self.on_opened(h, transfer, io, result),
            FileDone::Read {
                transfer,
                io,
                result,
            } => self.on_read(h, transfer, io, result),
            FileDone::Created {
                transfer,
                io,
                folder,
                result,
            } => self.on_created(h, transfer, io, folder, result),
            FileDone::Written {
                transfer,
                io,
                len,
                result,
            } => self.on_written(h, transfer, io, len, result),
            FileDone::Placed {
                transfer,
                contact,
                view,
                result,
            } => self.on_placed(h, transfer, contact, view, result),
            FileDone::Removed { then, event } => {
                if let Some(c) = then {
                    let m = Message::FileCancel {
                        transfer: c.transfer,
                        reason: c.reason,
                    };
                    h.send(c.contact, m);
                }
                if let Some(e) = event {
                    h.emit(*e);
                }
            }
        }
    }

    /// Whether another refused offer from `contact` may be reported this
    /// minute.
    fn count_refusal(&mut self, h: &mut dyn Host, contact: ContactId) -> bool {
        let now = h.now();
        let (count, since) = self.refusals.entry(contact).or_insert((0, None));
        if since.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(60)) {
            *since = Some(now);
            *count = 0;
        }
        *count += 1;
        *count <= REFUSALS_SHOWN_PER_MINUTE
    }

    pub(super) fn cancel_transfers_of(&mut self, h: &mut dyn Host, contact: ContactId) {
        let ids: Vec<TransferId> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.contact == contact)
            .map(|(t, _)| *t)
            .chain(
                self.incoming
                    .iter()
                    .filter(|(_, i)| i.contact == contact)
                    .map(|(t, _)| *t),
            )
            .collect();
        for t in ids {
            self.end_any(h, t, false, "the contact was removed".into(), None);
        }
        // One entry per contact at most, gone with the contact.
        self.refusals.remove(&contact);
    }

    pub(super) fn cancel_file_by_user(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
    ) -> Result<(), EngineError> {
        let contact = self
            .outgoing
            .get(&transfer)
            .map(|o| o.contact)
            .or_else(|| self.incoming.get(&transfer).map(|i| i.contact))
            .ok_or(EngineError::NoSuchTransfer)?;
        h.send(
            contact,
            Message::FileCancel {
                transfer,
                reason: CancelReason::ByUser,
            },
        );
        self.end_any(
            h,
            transfer,
            false,
            reason_words(CancelReason::ByUser).into(),
            None,
        );
        Ok(())
    }

    /// Ends a transfer in either direction, cleaning up, with an event.
    fn end_any(
        &mut self,
        h: &mut dyn Host,
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if self.outgoing.contains_key(&t) {
            self.end_outgoing(h, t, by_peer, reason, tell);
        } else {
            self.end_incoming(h, t, by_peer, reason, tell);
        }
    }

    fn tell_cancel(
        &mut self,
        h: &mut dyn Host,
        contact: ContactId,
        transfer: TransferId,
        tell: Option<CancelReason>,
    ) {
        if let Some(reason) = tell {
            h.send(contact, Message::FileCancel { transfer, reason });
        }
    }

    fn end_outgoing(
        &mut self,
        h: &mut dyn Host,
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if let Some(o) = self.outgoing.remove(&t) {
            self.tell_cancel(h, o.contact, t, tell);
            let transfer = self.out_view(&t, &o);
            h.emit(Event::FileCancelled {
                transfer,
                cancelled: Cancelled { by_peer, reason },
            });
        }
    }

    fn end_incoming(
        &mut self,
        h: &mut dyn Host,
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if let Some(i) = self.incoming.remove(&t) {
            let transfer = self.in_view(&t, &i);
            if let Some((_, answer)) = i.accepting {
                let _ = answer.send(Err(EngineError::NoSuchTransfer));
            }
            let event = Event::FileCancelled {
                transfer,
                cancelled: Cancelled { by_peer, reason },
            };
            match i.accepted {
                // A write still out finds its transfer gone and closes the
                // file; removing the name does not wait for it. The sender
                // and the person hear of it once the data is gone.
                Some(a) => {
                    let then = tell.map(|reason| Cancel {
                        contact: i.contact,
                        transfer: t,
                        reason,
                    });
                    h.job(FileJob::Remove {
                        path: a.partial,
                        then,
                        event: Some(Box::new(event)),
                    });
                }
                None => {
                    self.tell_cancel(h, i.contact, t, tell);
                    h.emit(event);
                }
            }
        }
    }

    /// A file message from `contact`, on its active session (the core
    /// checks that).
    pub(crate) fn on_message(&mut self, h: &mut dyn Host, contact: ContactId, m: Message) {
        // Files only between accepted contacts (review finding L5).
        if !accepted(h, contact) {
            return;
        }
        match m {
            Message::FileOffer(offer) => self.on_offer(h, contact, offer),
            Message::FileAccept { transfer, offset } => {
                self.on_accept(h, contact, transfer, offset)
            }
            Message::FileAck { transfer, received } => {
                self.on_file_ack(h, contact, transfer, received)
            }
            Message::FileChunk(chunk) => self.on_chunk(h, contact, chunk),
            Message::FileDone { transfer } => {
                if let Some(o) = self.outgoing.get(&transfer)
                    && o.contact == contact
                    && o.acked == o.offer.size
                    && let Some(o) = self.outgoing.remove(&transfer)
                {
                    let transfer = self.out_view(&transfer, &o);
                    h.emit(Event::FileCompleted {
                        transfer,
                        path: None,
                    });
                }
            }
            Message::FileCancel { transfer, reason } => {
                let ours = self
                    .outgoing
                    .get(&transfer)
                    .map(|o| o.contact)
                    .or_else(|| self.incoming.get(&transfer).map(|i| i.contact));
                if ours == Some(contact) {
                    self.end_any(h, transfer, true, reason_words(reason).into(), None);
                }
            }
            _ => {}
        }
    }
}
