//! The receiver's side of a transfer: the offer, the person's accept
//! (answered once the partial file exists), chunks written in order, and
//! the check and placing of the finished file.
//! It must never write outside the chosen folder, replace a file there,
//! or buffer more than the sender's window (and one chunk).

use std::fs::File;
use std::path::PathBuf;

use allium_protocol::{CancelReason, FileChunk, FileOffer, Message, TransferId};
use allium_vault::ContactId;
use sha2::{Digest, Sha256};

use super::super::{Answer, Cancelled, EngineError, Event, TransferDirection, TransferView};
use super::{
    Accepted, Cancel, FileJob, Host, Incoming, PLACED_REMEMBERED, Progress, Transfers, Writer,
    hex_id, reason_words, sanitize_file_name,
};

use super::send::WINDOW;
use allium_protocol::message::MAX_CHUNK;

/// The receiver acknowledges at least this often.
const ACK_EVERY: u64 = 256 * 1024;

impl Transfers {
    /// The person accepts an offered file into `folder`. Answered once the
    /// partial file is created there (`FileDone::Created`), or at once if
    /// it cannot be accepted.
    pub(crate) fn accept_file(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        folder: PathBuf,
        answer: Answer<()>,
    ) {
        let Some(i) = self.incoming.get_mut(&transfer) else {
            let _ = answer.send(Err(EngineError::NoSuchTransfer));
            return;
        };
        if i.accepted.is_some() || i.accepting.is_some() {
            let _ = answer.send(Err(EngineError::WrongState(
                "this file was already accepted",
            )));
            return;
        }
        let io = self.next_io();
        if let Some(i) = self.incoming.get_mut(&transfer) {
            i.accepting = Some((io, answer));
        }
        h.job(FileJob::Create {
            transfer,
            io,
            folder,
        });
    }

    pub(super) fn on_created(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        io: u64,
        folder: PathBuf,
        result: Result<(PathBuf, File), String>,
    ) {
        let now = h.now();
        let waiting = self
            .incoming
            .get_mut(&transfer)
            .filter(|i| i.accepting.as_ref().is_some_and(|(n, _)| *n == io));
        let Some(i) = waiting else {
            // Cancelled meanwhile (and answered then), perhaps offered and
            // accepted again since: this file is no one's.
            if let Ok((partial, _)) = result {
                h.job(FileJob::Remove {
                    path: partial,
                    then: None,
                    event: None,
                });
            }
            return;
        };
        let Some((_, answer)) = i.accepting.take() else {
            return;
        };
        let (partial, file) = match result {
            Ok(created) => created,
            Err(e) => {
                // Still on offer: the person can choose another folder.
                let _ = answer.send(Err(EngineError::File(e)));
                return;
            }
        };
        i.accepted = Some(Accepted {
            folder,
            partial,
            writer: Writer::Ready(file),
            io,
            pending: Vec::new(),
            received: 0,
            written: 0,
            acked: 0,
            hasher: Sha256::new(),
            progress: Progress::new(now, 0),
        });
        let contact = i.contact;
        h.send(
            contact,
            Message::FileAccept {
                transfer,
                offset: 0,
            },
        );
        let _ = answer.send(Ok(()));
    }

    pub(super) fn on_offer(&mut self, h: &mut dyn Host, contact: ContactId, offer: FileOffer) {
        let t = offer.transfer;
        if self.incoming.contains_key(&t) {
            self.offer_again(h, contact, offer);
            return;
        }
        let same = |c: &ContactId, o: &FileOffer| *c == contact && *o == offer;
        if self.placing.get(&t).is_some_and(|(c, o)| same(c, o)) {
            // Being placed: its FILE_DONE follows.
            return;
        }
        if self.placed.iter().any(|(id, c, o)| *id == t && same(c, o)) {
            // Received already; our FILE_DONE was lost with the session.
            h.send(contact, Message::FileDone { transfer: t });
            return;
        }
        if self.outgoing.contains_key(&t) || self.placing.contains_key(&t) {
            self.refuse_as_rule_broken(h, contact, t);
            return;
        }
        let limits = h.limits();
        let cap = limits.max_incoming;
        let name = sanitize_file_name(&offer.name);
        let waiting = self
            .incoming
            .values()
            .filter(|i| i.contact == contact && i.accepted.is_none())
            .count();
        let refuse = if offer.size > cap {
            Some(CancelReason::TooLarge)
        } else if offer.size == 0 || waiting >= limits.max_pending_offers {
            Some(CancelReason::Protocol)
        } else {
            None
        };
        if let Some(reason) = refuse {
            self.refuse_offer(h, contact, &offer, name, reason, cap);
            return;
        }
        let i = Incoming {
            contact,
            offer,
            name,
            accepted: None,
            accepting: None,
        };
        let view = self.in_view(&t, &i);
        self.incoming.insert(t, i);
        h.emit(Event::FileOffered { transfer: view });
    }

    /// Tells `contact` that what it sent about `t` breaks the rules, and
    /// nothing else.
    fn refuse_as_rule_broken(&mut self, h: &mut dyn Host, contact: ContactId, t: TransferId) {
        let reason = CancelReason::Protocol;
        h.send(
            contact,
            Message::FileCancel {
                transfer: t,
                reason,
            },
        );
    }

    /// An offer of a transfer we already hold: a resume (we say how much we
    /// have), or a clash (refused).
    fn offer_again(&mut self, h: &mut dyn Host, contact: ContactId, offer: FileOffer) {
        let t = offer.transfer;
        let Some(i) = self.incoming.get(&t) else {
            return;
        };
        if i.contact != contact || i.offer != offer {
            // Same id, different file: refuse this one, keep ours.
            self.refuse_as_rule_broken(h, contact, t);
            return;
        }
        // A resume: tell them what we hold (what is still to be
        // written is held too: its write is on its way).
        if let Some(a) = &i.accepted {
            let offset = a.received;
            if let Some(i) = self.incoming.get_mut(&t)
                && let Some(a) = i.accepted.as_mut()
            {
                a.acked = offset;
            }
            h.send(
                contact,
                Message::FileAccept {
                    transfer: t,
                    offset,
                },
            );
        }
    }

    /// Refuses an offer (too large, empty, too many waiting), telling the
    /// person at a bounded rate.
    fn refuse_offer(
        &mut self,
        h: &mut dyn Host,
        contact: ContactId,
        offer: &FileOffer,
        name: String,
        reason: CancelReason,
        cap: u64,
    ) {
        let t = offer.transfer;
        h.send(
            contact,
            Message::FileCancel {
                transfer: t,
                reason,
            },
        );
        if !self.count_refusal(h, contact) {
            // Still refused, but a contact repeating offers does not
            // get to fill the window with notices (review finding M2).
            return;
        }
        let transfer = TransferView {
            id: hex_id(&t),
            contact,
            direction: TransferDirection::Incoming,
            name,
            size: offer.size,
            done: 0,
            accepted: false,
        };
        h.emit(Event::FileCancelled {
            transfer,
            cancelled: Cancelled {
                by_peer: false,
                reason: match reason {
                    CancelReason::TooLarge => format!(
                        "refused a file of {} bytes: larger than your limit of {cap} bytes",
                        offer.size
                    ),
                    _ => "refused a file offer: too many offers waiting, or an empty file".into(),
                },
            },
        });
    }

    pub(super) fn on_chunk(&mut self, h: &mut dyn Host, contact: ContactId, chunk: FileChunk) {
        let t = chunk.transfer;
        let Some(i) = self.incoming.get_mut(&t) else {
            return;
        };
        if i.contact != contact {
            return;
        }
        let size = i.offer.size;
        let Some(a) = i.accepted.as_mut() else {
            // Chunks before our accept break the rules.
            self.end_incoming(
                h,
                t,
                true,
                reason_words(CancelReason::Protocol).into(),
                Some(CancelReason::Protocol),
            );
            return;
        };
        let len = chunk.data.len() as u64;
        if chunk.offset != a.received || a.received.saturating_add(len) > size {
            self.end_incoming(
                h,
                t,
                true,
                reason_words(CancelReason::Protocol).into(),
                Some(CancelReason::Protocol),
            );
            return;
        }
        // What waits here is bounded by the sender's window: it may not
        // send more than that beyond what we acknowledged (what was
        // written, or on a resume what we had received), so a sender that
        // does is breaking the rules, not waiting for a slow disk.
        if (a.received + len).saturating_sub(a.acked) > WINDOW + MAX_CHUNK as u64 {
            self.end_incoming(
                h,
                t,
                true,
                reason_words(CancelReason::Protocol).into(),
                Some(CancelReason::Protocol),
            );
            return;
        }
        a.hasher.update(&chunk.data);
        a.received += len;
        a.pending.extend_from_slice(&chunk.data);
        self.write_pending(h, t);
    }

    /// Hands what was received to a write, unless one is out.
    fn write_pending(&mut self, h: &mut dyn Host, t: TransferId) {
        let Some(a) = self.incoming.get_mut(&t).and_then(|i| i.accepted.as_mut()) else {
            return;
        };
        if a.pending.is_empty() || !matches!(a.writer, Writer::Ready(_)) {
            return;
        }
        let Writer::Ready(file) = std::mem::replace(&mut a.writer, Writer::Writing) else {
            return;
        };
        let data = std::mem::take(&mut a.pending);
        let io = a.io;
        h.job(FileJob::Write {
            transfer: t,
            io,
            file,
            data,
        });
    }

    pub(super) fn on_written(
        &mut self,
        h: &mut dyn Host,
        t: TransferId,
        io: u64,
        len: u64,
        result: Result<File, String>,
    ) {
        let Some(i) = self.incoming.get_mut(&t) else {
            return;
        };
        let contact = i.contact;
        let (size, digest) = (i.offer.size, i.offer.sha256);
        let Some(a) = i.accepted.as_mut().filter(|a| a.io == io) else {
            return;
        };
        let file = match result {
            Ok(f) => f,
            Err(e) => {
                self.end_incoming(h, t, false, e, Some(CancelReason::Io));
                return;
            }
        };
        a.writer = Writer::Ready(file);
        a.written += len;
        let written = a.written;
        let complete = written == size;
        let ack = complete || written.saturating_sub(a.acked) >= ACK_EVERY;
        if ack {
            a.acked = written;
        }
        let rate = a.progress.due(h.now(), written, complete);
        if ack {
            h.send(
                contact,
                Message::FileAck {
                    transfer: t,
                    received: written,
                },
            );
        }
        if let Some(rate) = rate
            && let Some(i) = self.incoming.get(&t)
        {
            let transfer = self.in_view(&t, i);
            h.emit(Event::FileProgress {
                transfer,
                bytes_per_second: rate,
            });
        }
        if complete {
            self.finish_incoming(h, t, digest);
        } else {
            self.write_pending(h, t);
        }
    }

    fn finish_incoming(&mut self, h: &mut dyn Host, t: TransferId, digest: [u8; 32]) {
        let Some(mut i) = self.incoming.remove(&t) else {
            return;
        };
        let Some(a) = i.accepted.take() else { return };
        let Writer::Ready(file) = a.writer else {
            return;
        };
        let view = TransferView {
            id: hex_id(&t),
            contact: i.contact,
            direction: TransferDirection::Incoming,
            name: i.name.clone(),
            size: i.offer.size,
            done: a.written,
            accepted: true,
        };
        let streamed: [u8; 32] = a.hasher.finalize().into();
        if streamed != digest {
            drop(file);
            let reason = CancelReason::DigestMismatch;
            // The data goes first, then the sender hears (§6.4 step 5).
            let then = Some(Cancel {
                contact: i.contact,
                transfer: t,
                reason,
            });
            let event = Event::FileCancelled {
                transfer: view,
                cancelled: Cancelled {
                    by_peer: false,
                    reason: reason_words(reason).into(),
                },
            };
            h.job(FileJob::Remove {
                path: a.partial,
                then,
                event: Some(Box::new(event)),
            });
            return;
        }
        self.placing.insert(t, (i.contact, i.offer.clone()));
        h.job(FileJob::Place {
            transfer: t,
            contact: i.contact,
            view,
            file,
            partial: a.partial,
            folder: a.folder,
            name: i.name,
            digest,
        });
    }

    pub(super) fn on_placed(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        contact: ContactId,
        view: TransferView,
        result: Result<PathBuf, (CancelReason, String)>,
    ) {
        let placing = self.placing.remove(&transfer);
        match result {
            Ok(path) => {
                if let Some((contact, offer)) = placing {
                    if self.placed.len() >= PLACED_REMEMBERED {
                        self.placed.pop_front();
                    }
                    self.placed.push_back((transfer, contact, offer));
                }
                h.send(contact, Message::FileDone { transfer });
                h.emit(Event::FileCompleted {
                    transfer: view,
                    path: Some(path),
                });
            }
            Err((reason, words)) => {
                h.send(contact, Message::FileCancel { transfer, reason });
                h.emit(Event::FileCancelled {
                    transfer: view,
                    cancelled: Cancelled {
                        by_peer: false,
                        reason: words,
                    },
                });
            }
        }
    }
}
