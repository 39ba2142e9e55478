//! File transfers (PROTOCOL.md §6.4): offers, a 1 MiB window of chunks in
//! flight, acknowledgements every 256 KiB, resume after a reconnect, and the
//! digest checked before the file gets its final name.
//!
//! A received file is written only into the folder the person chose, under
//! a hidden partial name created exclusively, and moved to a sanitized name
//! that never replaces an existing file (a hard link, or where the file
//! system has none, an exclusive copy). Hashing a whole file, checking what
//! reached the disk and placing it run on a blocking thread; single chunk
//! reads and writes (at most 63 KiB, to local files) are done inline.
//!
//! A contact can repeat any message: each FILE_ACCEPT is honoured once per
//! offer we made, chunks go out only while the session's send queue has
//! room, and refused offers are reported at a bounded rate.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use allium_protocol::message::MAX_CHUNK;
use allium_protocol::text::TextField;
use allium_protocol::{CancelReason, FileChunk, FileOffer, Message, TransferId};
use allium_vault::{ContactId, ContactState};
use rand_core::RngCore;
use sha2::{Digest, Sha256};
use std::time::Instant;

use super::conn::ConnId;
use super::core::{Core, Effect};
use super::{Cancelled, EngineError, Event, TransferDirection, TransferView};

/// Bytes the sender may have beyond the last acknowledgement.
const WINDOW: u64 = 1 << 20;
/// The receiver acknowledges at least this often.
const ACK_EVERY: u64 = 256 * 1024;
/// Progress events at most this often per transfer.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Work that reads or writes a whole file: the shell runs it on a
/// blocking thread ([`FileJob::run`]) and hands back its [`FileDone`].
pub(crate) enum FileJob {
    /// Hash a file we are about to offer.
    Hash { transfer: TransferId, path: PathBuf },
    /// Sync a received file, check what reached the disk and give it its
    /// final name.
    Place {
        transfer: TransferId,
        contact: ContactId,
        view: TransferView,
        file: File,
        partial: PathBuf,
        folder: PathBuf,
        name: String,
        digest: [u8; 32],
    },
}

impl FileJob {
    /// Does the work (blocking).
    pub(crate) fn run(self) -> FileDone {
        match self {
            FileJob::Hash { transfer, path } => FileDone::Hashed {
                transfer,
                result: hash_file(&path),
            },
            FileJob::Place {
                transfer,
                contact,
                view,
                file,
                partial,
                folder,
                name,
                digest,
            } => {
                let result = check_and_place(file, &partial, &folder, &name, digest);
                if result.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                FileDone::Placed {
                    transfer,
                    contact,
                    view,
                    result,
                }
            }
        }
    }
}

/// Results of blocking file work, back to the engine.
pub(crate) enum FileDone {
    /// The digest of a file we offer.
    Hashed {
        transfer: TransferId,
        result: Result<[u8; 32], String>,
    },
    /// A received file was checked on disk and placed (or not).
    Placed {
        transfer: TransferId,
        contact: ContactId,
        view: TransferView,
        result: Result<PathBuf, (CancelReason, String)>,
    },
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
    file: Option<File>,
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
}

struct Accepted {
    folder: PathBuf,
    partial: PathBuf,
    file: File,
    received: u64,
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

/// Every transfer of the engine, by id.
#[derive(Default)]
pub(crate) struct Transfers {
    outgoing: BTreeMap<TransferId, Outgoing>,
    incoming: BTreeMap<TransferId, Incoming>,
    /// Received files being checked and placed on a blocking thread: their
    /// ids stay taken until then, so that an offer reusing one cannot
    /// replace the partial file under the check.
    placing: BTreeMap<TransferId, (ContactId, FileOffer)>,
    /// The last files received, so that an offer repeated because our
    /// FILE_DONE was lost (the session ended first) is answered with
    /// FILE_DONE again, not received a second time (PROTOCOL.md §6.4).
    placed: VecDeque<(TransferId, ContactId, FileOffer)>,
}

/// How many received files `Transfers::placed` remembers.
const PLACED_REMEMBERED: usize = 64;

fn hex_id(t: &TransferId) -> String {
    hex::encode(t.0)
}

/// A name safe to create in the chosen folder: one component, no leading
/// dots (no hidden or special files), no separators or control characters
/// (already refused by the protocol, checked again here), not empty.
pub fn sanitize_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches(['.', ' ']).trim_end();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "received file".to_owned()
    } else {
        out
    }
}

/// `name`, or `name (1).ext`, `name (2).ext`, … : the first that does not
/// exist. Creation itself is exclusive (hard link), so a race cannot
/// overwrite either.
fn candidate(folder: &Path, name: &str, n: u32) -> PathBuf {
    if n == 0 {
        return folder.join(name);
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => folder.join(format!("{stem} ({n}).{ext}")),
        _ => folder.join(format!("{name} ({n})")),
    }
}

fn place_without_overwriting(
    partial: &Path,
    folder: &Path,
    name: &str,
) -> std::io::Result<PathBuf> {
    for n in 0..1000 {
        let target = candidate(folder, name, n);
        let linked = std::fs::hard_link(partial, &target);
        let placed = match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // FAT, exFAT and some network file systems have no hard links:
            // an exclusive create and a copy never replace a file either.
            Err(_) => copy_exclusive(partial, &target),
            ok => ok,
        };
        match placed {
            Ok(()) => {
                let _ = std::fs::remove_file(partial);
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many files with this name in the folder",
    ))
}

fn copy_exclusive(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
    let copied = std::io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all());
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Syncs the received file, checks the digest of what is on disk (not only
/// of what we meant to write), and gives it its final name.
fn check_and_place(
    file: File,
    partial: &Path,
    folder: &Path,
    name: &str,
    digest: [u8; 32],
) -> Result<PathBuf, (CancelReason, String)> {
    let io = |e: std::io::Error| (CancelReason::Io, format!("could not save the file: {e}"));
    file.sync_all().map_err(io)?;
    drop(file);
    let on_disk = hash_file(partial).map_err(|e| (CancelReason::Io, e))?;
    if on_disk != digest {
        return Err((
            CancelReason::DigestMismatch,
            reason_words(CancelReason::DigestMismatch).into(),
        ));
    }
    place_without_overwriting(partial, folder, name).map_err(io)
}

fn hash_file(path: &Path) -> Result<[u8; 32], String> {
    let mut f = File::open(path).map_err(|e| format!("could not read the file: {e}"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("could not read the file: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}

fn reason_words(r: CancelReason) -> &'static str {
    match r {
        CancelReason::ByUser => "declined or cancelled",
        CancelReason::DigestMismatch => "the file arrived damaged (its digest did not match)",
        CancelReason::TooLarge => "the file is larger than the receiver accepts",
        CancelReason::Io => "the file could not be read or written",
        CancelReason::Protocol => "the other side broke the transfer rules",
        _ => "cancelled",
    }
}

impl Core {
    fn out_view(&self, t: &TransferId, o: &Outgoing) -> TransferView {
        TransferView {
            id: hex_id(t),
            contact: o.contact,
            direction: TransferDirection::Outgoing,
            name: o.offer.name.clone(),
            size: o.offer.size,
            done: o.acked,
            accepted: o.file.is_some(),
        }
    }

    fn in_view(&self, t: &TransferId, i: &Incoming) -> TransferView {
        TransferView {
            id: hex_id(t),
            contact: i.contact,
            direction: TransferDirection::Incoming,
            name: i.name.clone(),
            size: i.offer.size,
            done: i.accepted.as_ref().map(|a| a.received).unwrap_or(0),
            accepted: i.accepted.is_some(),
        }
    }

    pub(super) fn transfer_views(&self) -> Vec<TransferView> {
        let mut v: Vec<TransferView> = self
            .files
            .outgoing
            .iter()
            .map(|(t, o)| self.out_view(t, o))
            .chain(self.files.incoming.iter().map(|(t, i)| self.in_view(t, i)))
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    pub(super) fn offer_file(
        &mut self,
        contact: ContactId,
        path: PathBuf,
    ) -> Result<String, EngineError> {
        let c = self
            .profile
            .contact(contact)
            .ok_or(EngineError::NoSuchContact)?;
        if c.state != ContactState::Accepted {
            return Err(EngineError::WrongState(
                "files can be sent once the contact has accepted",
            ));
        }
        let meta = std::fs::metadata(&path)
            .map_err(|e| EngineError::File(format!("could not read {}: {e}", path.display())))?;
        if !meta.is_file() {
            return Err(EngineError::File(format!(
                "{} is not a file",
                path.display()
            )));
        }
        if meta.len() == 0 {
            return Err(EngineError::File("the file is empty".into()));
        }
        if meta.len() > self.config.max_outgoing_file {
            return Err(EngineError::File(format!(
                "the file is too large to send (at most {} bytes)",
                self.config.max_outgoing_file
            )));
        }
        let raw = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = sanitize_file_name(&raw);
        TextField::FileName
            .validate(&name)
            .map_err(|e| EngineError::File(e.to_string()))?;
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        let transfer = TransferId(id);
        self.files.outgoing.insert(
            transfer,
            Outgoing {
                contact,
                offer: FileOffer {
                    transfer,
                    size: meta.len(),
                    sha256: [0; 32],
                    name,
                },
                path: path.clone(),
                hashed: false,
                awaiting_accept: false,
                file: None,
                next: 0,
                acked: 0,
                progress: Progress::new(self.now, 0),
            },
        );
        self.effects
            .push_back(Effect::File(FileJob::Hash { transfer, path }));
        Ok(hex_id(&transfer))
    }

    pub(super) fn on_file_done(&mut self, done: FileDone) {
        match done {
            FileDone::Hashed { transfer, result } => {
                let Some(o) = self.files.outgoing.get_mut(&transfer) else {
                    return;
                };
                match result {
                    Ok(digest) => {
                        o.offer.sha256 = digest;
                        o.hashed = true;
                        let (contact, offer) = (o.contact, o.offer.clone());
                        let sent = self.send_to_contact(contact, Message::FileOffer(offer));
                        if let Some(o) = self.files.outgoing.get_mut(&transfer) {
                            o.awaiting_accept = sent;
                        }
                    }
                    Err(e) => self.end_outgoing(transfer, false, e, None),
                }
            }
            FileDone::Placed {
                transfer,
                contact,
                view,
                result,
            } => {
                let placing = self.files.placing.remove(&transfer);
                match result {
                    Ok(path) => {
                        if let Some((contact, offer)) = placing {
                            if self.files.placed.len() >= PLACED_REMEMBERED {
                                self.files.placed.pop_front();
                            }
                            self.files.placed.push_back((transfer, contact, offer));
                        }
                        self.send_to_contact(contact, Message::FileDone { transfer });
                        self.emit(Event::FileCompleted {
                            transfer: view,
                            path: Some(path),
                        });
                    }
                    Err((reason, words)) => {
                        self.send_to_contact(contact, Message::FileCancel { transfer, reason });
                        self.emit(Event::FileCancelled {
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
    }

    /// Whether another refused offer from `contact` may be reported this
    /// minute.
    fn count_refusal(&mut self, contact: ContactId) -> bool {
        let now = self.now;
        let Some(r) = self.links.get_mut(&contact) else {
            return false;
        };
        let (count, since) = &mut r.refusals_shown;
        if since.is_none_or(|s| now.duration_since(s) >= Duration::from_secs(60)) {
            *since = Some(now);
            *count = 0;
        }
        *count += 1;
        *count <= super::core::REFUSALS_SHOWN_PER_MINUTE
    }

    /// Chunks held back for a full send queue go out again.
    pub(super) fn pump_transfers_of(&mut self, contact: ContactId) {
        let open: Vec<TransferId> = self
            .files
            .outgoing
            .iter()
            .filter(|(_, o)| o.contact == contact && o.file.is_some())
            .map(|(t, _)| *t)
            .collect();
        for t in open {
            self.pump(t);
        }
    }

    /// A session with `contact` came up: offers that were interrupted are
    /// made again with the same id, so the receiver resumes.
    pub(super) fn resume_transfers(&mut self, contact: ContactId) {
        let offers: Vec<FileOffer> = self
            .files
            .outgoing
            .values_mut()
            .filter(|o| o.contact == contact && o.hashed)
            .map(|o| {
                // The receiver says where to start again.
                o.file = None;
                o.awaiting_accept = true;
                o.offer.clone()
            })
            .collect();
        for offer in offers {
            self.send_to_contact(contact, Message::FileOffer(offer));
        }
    }

    /// The session with `contact` ended: senders stop until it resumes.
    pub(super) fn pause_transfers(&mut self, contact: ContactId) {
        for o in self.files.outgoing.values_mut() {
            if o.contact == contact {
                o.file = None;
                o.awaiting_accept = false;
            }
        }
    }

    pub(super) fn cancel_transfers_of(&mut self, contact: ContactId) {
        let ids: Vec<TransferId> = self
            .files
            .outgoing
            .iter()
            .filter(|(_, o)| o.contact == contact)
            .map(|(t, _)| *t)
            .chain(
                self.files
                    .incoming
                    .iter()
                    .filter(|(_, i)| i.contact == contact)
                    .map(|(t, _)| *t),
            )
            .collect();
        for t in ids {
            self.end_any(t, false, "the contact was removed".into(), None);
        }
    }

    pub(super) fn accept_file(
        &mut self,
        transfer: TransferId,
        folder: PathBuf,
    ) -> Result<(), EngineError> {
        let i = self
            .files
            .incoming
            .get(&transfer)
            .ok_or(EngineError::NoSuchTransfer)?;
        if i.accepted.is_some() {
            return Err(EngineError::WrongState("this file was already accepted"));
        }
        if !folder.is_dir() {
            return Err(EngineError::File(format!(
                "{} is not a folder; choose another",
                folder.display()
            )));
        }
        let partial = folder.join(format!(".allium-{}.part", hex_id(&transfer)));
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let opened = match opts.open(&partial) {
            // Left by a crash in an earlier run (its transfer state is
            // gone with it): ours by name, so start it over.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&partial);
                opts.open(&partial)
            }
            other => other,
        };
        let file = opened.map_err(|e| {
            EngineError::File(format!("could not write into {}: {e}", folder.display()))
        })?;
        let contact = i.contact;
        if let Some(i) = self.files.incoming.get_mut(&transfer) {
            i.accepted = Some(Accepted {
                folder,
                partial,
                file,
                received: 0,
                acked: 0,
                hasher: Sha256::new(),
                progress: Progress::new(self.now, 0),
            });
        }
        self.send_to_contact(
            contact,
            Message::FileAccept {
                transfer,
                offset: 0,
            },
        );
        Ok(())
    }

    pub(super) fn cancel_file_by_user(&mut self, transfer: TransferId) -> Result<(), EngineError> {
        let contact = self
            .files
            .outgoing
            .get(&transfer)
            .map(|o| o.contact)
            .or_else(|| self.files.incoming.get(&transfer).map(|i| i.contact))
            .ok_or(EngineError::NoSuchTransfer)?;
        self.send_to_contact(
            contact,
            Message::FileCancel {
                transfer,
                reason: CancelReason::ByUser,
            },
        );
        self.end_any(
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
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if self.files.outgoing.contains_key(&t) {
            self.end_outgoing(t, by_peer, reason, tell);
        } else {
            self.end_incoming(t, by_peer, reason, tell);
        }
    }

    fn tell_cancel(
        &mut self,
        contact: ContactId,
        transfer: TransferId,
        tell: Option<CancelReason>,
    ) {
        if let Some(reason) = tell {
            self.send_to_contact(contact, Message::FileCancel { transfer, reason });
        }
    }

    fn end_outgoing(
        &mut self,
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if let Some(o) = self.files.outgoing.remove(&t) {
            self.tell_cancel(o.contact, t, tell);
            let transfer = self.out_view(&t, &o);
            self.emit(Event::FileCancelled {
                transfer,
                cancelled: Cancelled { by_peer, reason },
            });
        }
    }

    fn end_incoming(
        &mut self,
        t: TransferId,
        by_peer: bool,
        reason: String,
        tell: Option<CancelReason>,
    ) {
        if let Some(i) = self.files.incoming.remove(&t) {
            self.tell_cancel(i.contact, t, tell);
            let transfer = self.in_view(&t, &i);
            if let Some(a) = i.accepted {
                drop(a.file);
                let _ = std::fs::remove_file(&a.partial);
            }
            self.emit(Event::FileCancelled {
                transfer,
                cancelled: Cancelled { by_peer, reason },
            });
        }
    }

    pub(super) fn on_file_message(&mut self, conn: ConnId, contact: ContactId, m: Message) {
        if self.links.get(&contact).and_then(|r| r.active) != Some(conn) {
            return;
        }
        // Files only between accepted contacts (review finding L5).
        if !self
            .profile
            .contact(contact)
            .is_some_and(|c| c.state == ContactState::Accepted)
        {
            return;
        }
        match m {
            Message::FileOffer(offer) => self.on_offer(contact, offer),
            Message::FileAccept { transfer, offset } => {
                let Some(o) = self.files.outgoing.get_mut(&transfer) else {
                    return;
                };
                // Once per offer we made: a repeat would open the file again
                // and queue another window.
                if o.contact != contact || !o.awaiting_accept {
                    return;
                }
                o.awaiting_accept = false;
                if offset > o.offer.size {
                    self.end_outgoing(
                        transfer,
                        true,
                        reason_words(CancelReason::Protocol).into(),
                        Some(CancelReason::Protocol),
                    );
                    return;
                }
                let opened = File::open(&o.path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(offset))?;
                    Ok(f)
                });
                match opened {
                    Ok(f) => {
                        o.file = Some(f);
                        o.next = offset;
                        o.acked = offset;
                        self.pump(transfer);
                    }
                    Err(e) => self.end_outgoing(
                        transfer,
                        false,
                        format!("could not read the file: {e}"),
                        Some(CancelReason::Io),
                    ),
                }
            }
            Message::FileAck { transfer, received } => {
                let Some(o) = self.files.outgoing.get_mut(&transfer) else {
                    return;
                };
                if o.contact != contact || o.file.is_none() {
                    return;
                }
                if received < o.acked || received > o.next {
                    self.end_outgoing(
                        transfer,
                        true,
                        reason_words(CancelReason::Protocol).into(),
                        Some(CancelReason::Protocol),
                    );
                    return;
                }
                o.acked = received;
                let force = received == o.offer.size;
                let rate = o.progress.due(self.now, received, force);
                if let Some(rate) = rate
                    && let Some(o) = self.files.outgoing.get(&transfer)
                {
                    let transfer = self.out_view(&transfer, o);
                    self.emit(Event::FileProgress {
                        transfer,
                        bytes_per_second: rate,
                    });
                }
                self.pump(transfer);
            }
            Message::FileChunk(chunk) => self.on_chunk(contact, chunk),
            Message::FileDone { transfer } => {
                if let Some(o) = self.files.outgoing.get(&transfer)
                    && o.contact == contact
                    && o.acked == o.offer.size
                    && let Some(o) = self.files.outgoing.remove(&transfer)
                {
                    let transfer = self.out_view(&transfer, &o);
                    self.emit(Event::FileCompleted {
                        transfer,
                        path: None,
                    });
                }
            }
            Message::FileCancel { transfer, reason } => {
                let ours = self
                    .files
                    .outgoing
                    .get(&transfer)
                    .map(|o| o.contact)
                    .or_else(|| self.files.incoming.get(&transfer).map(|i| i.contact));
                if ours == Some(contact) {
                    self.end_any(transfer, true, reason_words(reason).into(), None);
                }
            }
            _ => {}
        }
    }

    /// Sends chunks while the window allows.
    fn pump(&mut self, transfer: TransferId) {
        let mut chunks = Vec::new();
        let mut failed = None;
        let Some(contact) = self.files.outgoing.get(&transfer).map(|o| o.contact) else {
            return;
        };
        // A peer that does not read gets no more than the send queue
        // holds; `pump_transfers_of` goes on once it drains.
        if !self.has_room(contact) {
            return;
        }
        {
            let Some(o) = self.files.outgoing.get_mut(&transfer) else {
                return;
            };
            let Some(f) = o.file.as_mut() else { return };
            while o.next < o.offer.size && o.next - o.acked < WINDOW {
                let want = (o.offer.size - o.next).min(MAX_CHUNK as u64) as usize;
                let mut data = vec![0u8; want];
                if let Err(e) = f.read_exact(&mut data) {
                    failed = Some(format!("could not read the file: {e}"));
                    break;
                }
                chunks.push(FileChunk {
                    transfer,
                    offset: o.next,
                    data,
                });
                o.next += want as u64;
            }
        }
        for c in chunks {
            self.send_to_contact(contact, Message::FileChunk(c));
        }
        if let Some(e) = failed {
            self.end_outgoing(transfer, false, e, Some(CancelReason::Io));
        }
    }

    fn on_offer(&mut self, contact: ContactId, offer: FileOffer) {
        let t = offer.transfer;
        if let Some(i) = self.files.incoming.get(&t) {
            if i.contact != contact || i.offer != offer {
                // Same id, different file: refuse this one, keep ours.
                self.send_to_contact(
                    contact,
                    Message::FileCancel {
                        transfer: t,
                        reason: CancelReason::Protocol,
                    },
                );
                return;
            }
            // A resume: tell them what we hold.
            if let Some(a) = &i.accepted {
                let offset = a.received;
                if let Some(i) = self.files.incoming.get_mut(&t)
                    && let Some(a) = i.accepted.as_mut()
                {
                    a.acked = offset;
                }
                self.send_to_contact(
                    contact,
                    Message::FileAccept {
                        transfer: t,
                        offset,
                    },
                );
            }
            return;
        }
        let same = |c: &ContactId, o: &FileOffer| *c == contact && *o == offer;
        if self.files.placing.get(&t).is_some_and(|(c, o)| same(c, o)) {
            // Being placed: its FILE_DONE follows.
            return;
        }
        if self
            .files
            .placed
            .iter()
            .any(|(id, c, o)| *id == t && same(c, o))
        {
            // Received already; our FILE_DONE was lost with the session.
            self.send_to_contact(contact, Message::FileDone { transfer: t });
            return;
        }
        if self.files.outgoing.contains_key(&t) || self.files.placing.contains_key(&t) {
            self.send_to_contact(
                contact,
                Message::FileCancel {
                    transfer: t,
                    reason: CancelReason::Protocol,
                },
            );
            return;
        }
        let cap = self.profile.settings.max_incoming_file;
        let name = sanitize_file_name(&offer.name);
        let waiting = self
            .files
            .incoming
            .values()
            .filter(|i| i.contact == contact && i.accepted.is_none())
            .count();
        let refuse = if offer.size > cap {
            Some(CancelReason::TooLarge)
        } else if offer.size == 0 || waiting >= self.config.max_pending_offers {
            Some(CancelReason::Protocol)
        } else {
            None
        };
        if let Some(reason) = refuse {
            self.send_to_contact(
                contact,
                Message::FileCancel {
                    transfer: t,
                    reason,
                },
            );
            if !self.count_refusal(contact) {
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
            self.emit(Event::FileCancelled {
                transfer,
                cancelled: Cancelled {
                    by_peer: false,
                    reason: match reason {
                        CancelReason::TooLarge => format!(
                            "refused a file of {} bytes: larger than your limit of {cap} bytes",
                            offer.size
                        ),
                        _ => {
                            "refused a file offer: too many offers waiting, or an empty file".into()
                        }
                    },
                },
            });
            return;
        }
        let i = Incoming {
            contact,
            offer,
            name,
            accepted: None,
        };
        let view = self.in_view(&t, &i);
        self.files.incoming.insert(t, i);
        self.emit(Event::FileOffered { transfer: view });
    }

    fn on_chunk(&mut self, contact: ContactId, chunk: FileChunk) {
        let t = chunk.transfer;
        let Some(i) = self.files.incoming.get_mut(&t) else {
            return;
        };
        if i.contact != contact {
            return;
        }
        let size = i.offer.size;
        let digest = i.offer.sha256;
        let Some(a) = i.accepted.as_mut() else {
            // Chunks before our accept break the rules.
            self.end_incoming(
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
                t,
                true,
                reason_words(CancelReason::Protocol).into(),
                Some(CancelReason::Protocol),
            );
            return;
        }
        if let Err(e) = a.file.write_all(&chunk.data) {
            self.end_incoming(
                t,
                false,
                format!("could not write the file: {e}"),
                Some(CancelReason::Io),
            );
            return;
        }
        a.hasher.update(&chunk.data);
        a.received += len;
        let received = a.received;
        let complete = received == size;
        let ack = complete || received - a.acked >= ACK_EVERY;
        if ack {
            a.acked = received;
        }
        let rate = a.progress.due(self.now, received, complete);
        if ack {
            self.send_to_contact(
                contact,
                Message::FileAck {
                    transfer: t,
                    received,
                },
            );
        }
        if let Some(rate) = rate
            && let Some(i) = self.files.incoming.get(&t)
        {
            let transfer = self.in_view(&t, i);
            self.emit(Event::FileProgress {
                transfer,
                bytes_per_second: rate,
            });
        }
        if complete {
            self.finish_incoming(t, digest);
        }
    }

    fn finish_incoming(&mut self, t: TransferId, digest: [u8; 32]) {
        let Some(mut i) = self.files.incoming.remove(&t) else {
            return;
        };
        let Some(a) = i.accepted.take() else { return };
        let view = TransferView {
            id: hex_id(&t),
            contact: i.contact,
            direction: TransferDirection::Incoming,
            name: i.name.clone(),
            size: i.offer.size,
            done: a.received,
            accepted: true,
        };
        let streamed: [u8; 32] = a.hasher.finalize().into();
        if streamed != digest {
            drop(a.file);
            let _ = std::fs::remove_file(&a.partial);
            let reason = CancelReason::DigestMismatch;
            self.send_to_contact(
                i.contact,
                Message::FileCancel {
                    transfer: t,
                    reason,
                },
            );
            self.emit(Event::FileCancelled {
                transfer: view,
                cancelled: Cancelled {
                    by_peer: false,
                    reason: reason_words(reason).into(),
                },
            });
            return;
        }
        // Syncing, reading the file back and placing it touch the disk:
        // not on the engine task.
        self.files.placing.insert(t, (i.contact, i.offer.clone()));
        self.effects.push_back(Effect::File(FileJob::Place {
            transfer: t,
            contact: i.contact,
            view,
            file: a.file,
            partial: a.partial,
            folder: a.folder,
            name: i.name,
            digest,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_file_name("report.pdf"), "report.pdf");
        assert_eq!(sanitize_file_name("..bashrc"), "bashrc");
        assert_eq!(sanitize_file_name(".hidden"), "hidden");
        assert_eq!(sanitize_file_name("a/b\\c"), "a_b_c");
        assert_eq!(sanitize_file_name("x\u{7}y"), "x_y");
        assert_eq!(sanitize_file_name("..."), "received file");
        assert_eq!(sanitize_file_name("C:evil"), "C_evil");
        assert!(sanitize_file_name(&"é".repeat(200)).len() <= 200);
    }

    /// Where the folder cannot take a hard link of the partial file (FAT,
    /// exFAT, some network file systems; here: a different file system),
    /// the file is still placed, by an exclusive copy, without replacing
    /// anything (review finding L3).
    #[test]
    fn placing_falls_back_to_a_copy_where_hard_links_fail() {
        use std::os::unix::fs::MetadataExt;
        let shm = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let dev = |p: &Path| std::fs::metadata(p).expect("metadata").dev();
        assert_ne!(
            dev(shm.path()),
            dev(disk.path()),
            "the test needs /dev/shm on another file system than the source tree"
        );
        let partial = shm.path().join(".part");
        std::fs::write(&partial, b"new").expect("write");
        assert!(std::fs::hard_link(&partial, disk.path().join("probe")).is_err());
        std::fs::write(disk.path().join("a.txt"), b"old").expect("write");
        let placed = place_without_overwriting(&partial, disk.path(), "a.txt").expect("placed");
        assert_eq!(placed, disk.path().join("a (1).txt"));
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert_eq!(
            std::fs::read(disk.path().join("a.txt")).expect("read"),
            b"old"
        );
        assert!(!partial.exists());
    }

    #[test]
    fn existing_files_are_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), b"old").expect("write");
        std::fs::write(dir.path().join("a (1).txt"), b"old").expect("write");
        let partial = dir.path().join(".part");
        std::fs::write(&partial, b"new").expect("write");
        let placed = place_without_overwriting(&partial, dir.path(), "a.txt").expect("placed");
        assert_eq!(placed, dir.path().join("a (2).txt"));
        assert_eq!(
            std::fs::read(dir.path().join("a.txt")).expect("read"),
            b"old"
        );
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert!(!partial.exists());
    }
}
