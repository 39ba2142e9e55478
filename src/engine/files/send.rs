//! The sender's side of a transfer: the offer once hashed, FILE_ACCEPT,
//! reads in the window, FILE_ACK, pause and resume with the session.
//! It must never put more than the window beyond the last
//! acknowledgement on the wire, nor read the file on the engine's task.

use allium_protocol::message::MAX_CHUNK;
use allium_protocol::{CancelReason, FileChunk, FileOffer, Message, TransferId};
use allium_vault::ContactId;

use super::super::Event;
use super::{FileJob, Host, Reader, Transfers, reason_words};

/// Bytes the sender may have beyond the last acknowledgement.
pub(super) const WINDOW: u64 = 1 << 20;
/// The most one read takes from the file (then cut into chunks).
const READ_AT_ONCE: u64 = 256 * 1024;

impl Transfers {
    pub(super) fn on_hashed(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        result: Result<[u8; 32], String>,
    ) {
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        match result {
            Ok(digest) => {
                o.offer.sha256 = digest;
                o.hashed = true;
                let (contact, offer) = (o.contact, o.offer.clone());
                let sent = h.send(contact, Message::FileOffer(offer));
                if let Some(o) = self.outgoing.get_mut(&transfer) {
                    o.awaiting_accept = sent;
                }
            }
            Err(e) => self.end_outgoing(h, transfer, false, e, None),
        }
    }

    pub(super) fn on_accept(
        &mut self,
        h: &mut dyn Host,
        contact: ContactId,
        transfer: TransferId,
        offset: u64,
    ) {
        let io = self.next_io();
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        // Once per offer we made: a repeat would open the file again and
        // queue another window.
        if o.contact != contact || !o.awaiting_accept {
            return;
        }
        o.awaiting_accept = false;
        if offset > o.offer.size {
            self.rules_broken_on_outgoing(h, transfer);
            return;
        }
        o.reader = Reader::Opening;
        o.io = io;
        o.next = offset;
        o.acked = offset;
        let path = o.path.clone();
        h.job(FileJob::Open {
            transfer,
            io,
            path,
            offset,
        });
    }

    /// The receiver broke the transfer rules: the transfer ends, and it
    /// is told why.
    fn rules_broken_on_outgoing(&mut self, h: &mut dyn Host, transfer: TransferId) {
        let reason = CancelReason::Protocol;
        self.end_outgoing(h, transfer, true, reason_words(reason).into(), Some(reason));
    }

    pub(super) fn on_opened(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        io: u64,
        result: Result<std::fs::File, String>,
    ) {
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        if o.io != io || !matches!(o.reader, Reader::Opening) {
            return;
        }
        match result {
            Ok(f) => {
                o.reader = Reader::Ready(f);
                self.pump(h, transfer);
            }
            Err(e) => self.end_outgoing(h, transfer, false, e, Some(CancelReason::Io)),
        }
    }

    pub(super) fn on_file_ack(
        &mut self,
        h: &mut dyn Host,
        contact: ContactId,
        transfer: TransferId,
        received: u64,
    ) {
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        if o.contact != contact || matches!(o.reader, Reader::Closed) {
            return;
        }
        if received < o.acked || received > o.next {
            self.rules_broken_on_outgoing(h, transfer);
            return;
        }
        o.acked = received;
        let force = received == o.offer.size;
        let rate = o.progress.due(h.now(), received, force);
        if let Some(rate) = rate
            && let Some(o) = self.outgoing.get(&transfer)
        {
            let transfer = self.out_view(&transfer, o);
            h.emit(Event::FileProgress {
                transfer,
                bytes_per_second: rate,
            });
        }
        self.pump(h, transfer);
    }

    /// Reads the next part of the file while the window and the session's
    /// send queue allow.
    pub(super) fn pump(&mut self, h: &mut dyn Host, transfer: TransferId) {
        let Some(contact) = self.outgoing.get(&transfer).map(|o| o.contact) else {
            return;
        };
        // A peer that does not read gets no more than the send queue
        // holds; `pump_transfers_of` goes on once it drains.
        if !h.has_room(contact) {
            return;
        }
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        let in_flight = o.next - o.acked;
        if o.next >= o.offer.size || in_flight >= WINDOW {
            return;
        }
        // Only an open reader with no read out.
        if !matches!(o.reader, Reader::Ready(_)) {
            return;
        }
        let Reader::Ready(file) = std::mem::replace(&mut o.reader, Reader::Reading) else {
            return;
        };
        let len = (o.offer.size - o.next)
            .min(WINDOW - in_flight)
            .min(READ_AT_ONCE) as usize;
        let io = o.io;
        h.job(FileJob::Read {
            transfer,
            io,
            file,
            len,
        });
    }

    pub(super) fn on_read(
        &mut self,
        h: &mut dyn Host,
        transfer: TransferId,
        io: u64,
        result: Result<(std::fs::File, Vec<u8>), String>,
    ) {
        let Some(o) = self.outgoing.get_mut(&transfer) else {
            return;
        };
        if o.io != io || !matches!(o.reader, Reader::Reading) {
            return;
        }
        let (file, data) = match result {
            Ok(read) => read,
            Err(e) => {
                self.end_outgoing(h, transfer, false, e, Some(CancelReason::Io));
                return;
            }
        };
        o.reader = Reader::Ready(file);
        let contact = o.contact;
        let mut offset = o.next;
        o.next += data.len() as u64;
        for piece in data.chunks(MAX_CHUNK) {
            let chunk = FileChunk {
                transfer,
                offset,
                data: piece.to_vec(),
            };
            offset += piece.len() as u64;
            h.send(contact, Message::FileChunk(chunk));
        }
        self.pump(h, transfer);
    }

    /// Chunks held back for a full send queue go out again.
    pub(crate) fn pump_transfers_of(&mut self, h: &mut dyn Host, contact: ContactId) {
        let open: Vec<TransferId> = self
            .outgoing
            .iter()
            .filter(|(_, o)| o.contact == contact && matches!(o.reader, Reader::Ready(_)))
            .map(|(t, _)| *t)
            .collect();
        for t in open {
            self.pump(h, t);
        }
    }

    /// A session with `contact` came up: offers that were interrupted are
    /// made again with the same id, so the receiver resumes.
    pub(crate) fn resume_transfers(&mut self, h: &mut dyn Host, contact: ContactId) {
        let offers: Vec<FileOffer> = self
            .outgoing
            .values_mut()
            .filter(|o| o.contact == contact && o.hashed)
            .map(|o| {
                // The receiver says where to start again; what is out
                // with a read is stale.
                o.reader = Reader::Closed;
                o.awaiting_accept = true;
                o.offer.clone()
            })
            .collect();
        for offer in offers {
            h.send(contact, Message::FileOffer(offer));
        }
    }

    /// The session with `contact` ended: senders stop until it resumes.
    pub(crate) fn pause_transfers(&mut self, contact: ContactId) {
        for o in self.outgoing.values_mut() {
            if o.contact == contact {
                o.reader = Reader::Closed;
                o.awaiting_accept = false;
            }
        }
    }
}
