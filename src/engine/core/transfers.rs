//! The core's side of the file transfers: it lends its parts other than
//! the transfers (`files/`) for one call at a time, as their
//! [`Host`](crate::engine::files::Host), and routes what concerns them to
//! them. It owns no transfer state and must never reach into it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::time::Instant;

use allium_protocol::{Message, TransferId};
use allium_vault::{ContactId, ContactState, Profile};

use super::super::conn::ConnId;
use super::super::files::{FileDone, FileJob, Host, Limits, Transfers};
use super::super::links::Link;
use super::super::{Answer, EngineConfig, EngineError, Event, TransferView};
use super::conns::{ConnInfo, queue_send};
use super::{Core, Effect, Rng};

/// What the transfers see of the core during one call.
struct FilesHost<'a> {
    now: Instant,
    rng: &'a mut Rng,
    config: &'a EngineConfig,
    profile: &'a Profile,
    links: &'a BTreeMap<ContactId, Link>,
    conns: &'a BTreeMap<ConnId, ConnInfo>,
    effects: &'a mut VecDeque<Effect>,
}

impl FilesHost<'_> {
    fn active(&self, contact: ContactId) -> Option<(ConnId, &ConnInfo)> {
        let conn = self.links.get(&contact).and_then(|l| l.active)?;
        self.conns.get(&conn).map(|c| (conn, c))
    }
}

impl Host for FilesHost<'_> {
    fn now(&self) -> Instant {
        self.now
    }

    fn contact_state(&self, contact: ContactId) -> Option<ContactState> {
        self.profile.contact(contact).map(|c| c.state)
    }

    fn has_room(&self, contact: ContactId) -> bool {
        self.active(contact)
            .is_some_and(|(_, c)| c.queue().has_room())
    }

    fn send(&mut self, contact: ContactId, m: Message) -> bool {
        let Some(conn) = self.links.get(&contact).and_then(|l| l.active) else {
            return false;
        };
        if let Some(c) = self.conns.get(&conn) {
            queue_send(self.effects, conn, c.queue(), m);
        }
        true
    }

    fn emit(&mut self, e: Event) {
        self.effects.push_back(Effect::Event(e));
    }

    fn job(&mut self, job: FileJob) {
        self.effects.push_back(Effect::File(job));
    }

    fn new_transfer(&mut self) -> TransferId {
        let mut id = [0u8; 16];
        self.rng.fill_bytes(&mut id);
        TransferId(id)
    }

    fn limits(&self) -> Limits {
        Limits {
            max_outgoing: self.config.max_outgoing_file,
            max_incoming: self.profile.settings.max_incoming_file,
            max_pending_offers: self.config.max_pending_offers,
        }
    }
}

impl Core {
    /// Runs `f` on the transfers, with the rest of the core as their host.
    fn with_files<R>(&mut self, f: impl FnOnce(&mut Transfers, &mut dyn Host) -> R) -> R {
        let mut host = FilesHost {
            now: self.now,
            rng: &mut self.rng,
            config: &self.config,
            profile: &self.profile,
            links: &self.links,
            conns: &self.conns,
            effects: &mut self.effects,
        };
        f(&mut self.files, &mut host)
    }

    pub(super) fn transfer_views(&self) -> Vec<TransferView> {
        self.files.transfer_views()
    }

    pub(super) fn offer_file(&mut self, contact: ContactId, path: PathBuf, answer: Answer<String>) {
        self.with_files(|f, h| f.offer_file(h, contact, path, answer));
    }

    pub(super) fn accept_file(
        &mut self,
        transfer: TransferId,
        folder: PathBuf,
        answer: Answer<()>,
    ) {
        self.with_files(|f, h| f.accept_file(h, transfer, folder, answer));
    }

    pub(super) fn cancel_file_by_user(&mut self, transfer: TransferId) -> Result<(), EngineError> {
        self.with_files(|f, h| f.cancel_file_by_user(h, transfer))
    }

    /// The contact is gone: its transfers end.
    pub(super) fn cancel_transfers_of(&mut self, contact: ContactId) {
        self.with_files(|f, h| f.cancel_transfers_of(h, contact));
    }

    pub(super) fn on_file_done(&mut self, done: FileDone) {
        self.with_files(|f, h| f.on_file_done(h, done));
    }

    /// A file message on connection `conn`: heard only from the contact's
    /// active session.
    pub(super) fn on_file_message(&mut self, conn: ConnId, contact: ContactId, m: Message) {
        if self.links.get(&contact).and_then(|l| l.active) == Some(conn) {
            self.with_files(|f, h| f.on_message(h, contact, m));
        }
    }

    /// The contact's send queue has room again.
    pub(super) fn pump_transfers_of(&mut self, contact: ContactId) {
        self.with_files(|f, h| f.pump_transfers_of(h, contact));
    }

    /// A session with the contact came up.
    pub(super) fn resume_transfers(&mut self, contact: ContactId) {
        self.with_files(|f, h| f.resume_transfers(h, contact));
    }

    /// The session with the contact ended.
    pub(super) fn pause_transfers(&mut self, contact: ContactId) {
        self.files.pause_transfers(contact);
    }
}
