//! The link to one contact while the engine runs: its session, its dial
//! schedule, and where delivery stands on it (issue 14: one sub-state per
//! module). Nothing here is saved; what must survive a restart lives in
//! the profile. The rules that touch only this state are methods here, so
//! that they can be tested without an engine.
//! It must never hold a session or a file itself: only ids and numbers.

use std::collections::VecDeque;
use std::time::Duration;

use std::time::Instant;

use super::conn::ConnId;

/// The link to one contact while running (not saved): its session, its
/// dial schedule and backoff, and where delivery stands on it.
#[derive(Default)]
pub(super) struct Link {
    /// The established endpoint session.
    pub(super) active: Option<ConnId>,
    /// When to dial next.
    pub(super) dial: Dial,
    /// Where delivery stands.
    pub(super) flow: Flow,
}

/// Where delivery to and from one contact stands in this run: what may be
/// written, what was, what was acknowledged, and what waits for the disk
/// (PROTOCOL.md §6.3). The core's `delivery.rs` decides when; the numbers
/// and the rules on them are here.
#[derive(Default)]
pub(super) struct Flow {
    /// Highest message id written to the active session.
    sent_upto: u64,
    /// Highest message id whose outbox is saved.
    durable_upto: u64,
    /// Message ids queued but not yet saved, with the change that added them.
    unsaved: VecDeque<(u64, u64)>,
    /// An acknowledgement to send once the change recording it is saved.
    ack_due: Option<(u64, u64)>,
    /// The change that last moved `last_received_id`.
    last_change: u64,
    /// Highest message id written to any session since the engine started:
    /// an acknowledgement beyond it is a lie (or a bug) and is clamped.
    written_upto: u64,
    /// The acknowledgement last sent on the active session: a duplicate
    /// CHAT does not earn a second one for the same id.
    ack_sent: Option<u64>,
    /// The highest id the contact acknowledged on the active session,
    /// whether or not we had written that far yet.
    ack_claimed: u64,
    /// Ids from here on were handed out since the last SYNC we handled
    /// from this contact (`Contact::unsynced_from`; PROTOCOL.md §6.3).
    first_new: u64,
    /// The contact's first SYNC since the engine started was handled.
    synced: bool,
    /// The contact's SYNC arrived on the active session: our messages may
    /// go out on it.
    peer_synced: bool,
    /// The change that recorded the first SYNC (`Contact::unsynced_from`
    /// cleared): no CHAT goes out until it is on disk, or a crash could
    /// bring back a boundary that what we sent has passed.
    sync_change: Option<u64>,
}

impl Flow {
    /// A new contact: its first id is 1, nothing saved yet.
    pub(super) fn new_contact() -> Flow {
        Flow {
            first_new: 1,
            ..Flow::default()
        }
    }

    /// A contact loaded from the profile: ids up to `durable_upto` are
    /// saved, and `first_new` is the first one the contact may not know.
    pub(super) fn loaded(durable_upto: u64, first_new: u64) -> Flow {
        Flow {
            durable_upto,
            first_new,
            ..Flow::default()
        }
    }

    /// Message `msg` was queued by change `change`: it may be written once
    /// that change is saved.
    pub(super) fn queued(&mut self, msg: u64, change: u64) {
        self.unsaved.push_back((msg, change));
    }

    pub(super) fn sent_upto(&self) -> u64 {
        self.sent_upto
    }

    /// Change `change` moved what we received (`last_received_id`).
    pub(super) fn recorded(&mut self, change: u64) {
        self.last_change = change;
    }

    pub(super) fn last_change(&self) -> u64 {
        self.last_change
    }

    /// Acknowledge `last` once change `change` is saved.
    pub(super) fn ack_when_saved(&mut self, last: u64, change: u64) {
        self.ack_due = Some((last, change));
    }

    /// A session became the active one; its outbox starts over just
    /// before `first` (the oldest unacknowledged id), but never past what
    /// is saved. Nothing is acknowledged or synced on it yet.
    pub(super) fn session_started(&mut self, first: u64) {
        self.sent_upto = first.saturating_sub(1).min(self.durable_upto);
        self.ack_sent = None;
        self.ack_claimed = 0;
        self.peer_synced = false;
    }

    /// The active session ended: how far it was written.
    pub(super) fn session_ended(&mut self) -> u64 {
        std::mem::take(&mut self.sent_upto)
    }

    /// The ids that may be written now, after `sent_upto` up to the last
    /// saved one; `None` until the contact's SYNC came on this session and
    /// the first SYNC's change is saved.
    pub(super) fn writable(&self) -> Option<(u64, u64)> {
        (self.peer_synced && self.sync_change.is_none())
            .then_some((self.sent_upto, self.durable_upto))
    }

    /// Messages after `from` up to `last` were written. True when an
    /// acknowledgement claimed earlier now covers some of them.
    pub(super) fn wrote(&mut self, from: u64, last: u64) -> bool {
        let before = self.written_upto;
        self.sent_upto = self.sent_upto.max(last).max(from);
        self.written_upto = self.written_upto.max(last);
        self.ack_claimed > before && self.written_upto > before
    }

    /// Whether a CHAT may come now: not before the contact's SYNC, which
    /// says which ids it will use.
    pub(super) fn may_receive(&self) -> bool {
        self.peer_synced
    }

    /// CHAT `id` was received and recorded by change `change`: its
    /// acknowledgement waits for that change to be saved.
    pub(super) fn received(&mut self, id: u64, change: u64) {
        self.ack_due = Some((id, change));
        self.last_change = change;
    }

    /// A duplicate CHAT came while `last` is what we received and
    /// `durable` what is saved: whether to acknowledge `last` again now.
    /// Once per session (the stream is reliable: repeating a message must
    /// not make us repeat an answer, review finding M2), and only once the
    /// change that recorded `last` is saved (else it waits for it).
    pub(super) fn ack_again(&mut self, last: u64, durable: u64) -> bool {
        if self.ack_sent == Some(last) {
            false
        } else if self.last_change <= durable {
            self.ack_sent = Some(last);
            true
        } else {
            self.ack_due = Some((last, self.last_change));
            false
        }
    }

    /// The contact's SYNC came: whether it is its first this run, and the
    /// first id it may not know.
    pub(super) fn peer_synced(&mut self) -> (bool, u64) {
        let first = !self.synced;
        self.synced = true;
        self.peer_synced = true;
        (first, self.first_new)
    }

    /// The first SYNC's boundary was cleared by change `change`: nothing
    /// goes out until it is saved.
    pub(super) fn boundary_cleared(&mut self, change: u64) {
        self.sync_change = Some(change);
    }

    /// Whether the first SYNC came and its change is saved.
    #[cfg(test)]
    pub(super) fn sync_settled(&self) -> bool {
        self.synced && self.sync_change.is_none()
    }

    pub(super) fn first_new(&self) -> u64 {
        self.first_new
    }

    /// Our sending state went back and the contact has ids up to
    /// `peer_last`: what we queue got the `fresh` ids (change `change`,
    /// not saved yet), and `next` is the one after them.
    pub(super) fn renumbered(&mut self, peer_last: u64, next: u64, fresh: &[u64], change: u64) {
        // Nothing renumbered is on disk under its new id yet.
        self.durable_upto = peer_last;
        self.sent_upto = peer_last;
        self.first_new = next;
        self.unsaved = fresh.iter().map(|&id| (id, change)).collect();
    }

    /// The contact acknowledged `n`: how much of it counts, never more than
    /// was written (a hostile or confused ack cannot drop mail it never
    /// received, review finding L5). The claim is kept and applied as
    /// more is written, since the peer answers a duplicate only once per
    /// session.
    pub(super) fn acknowledged(&mut self, n: u64) -> u64 {
        self.ack_claimed = self.ack_claimed.max(n);
        self.ack_claimed.min(self.written_upto)
    }

    /// Everything up to change `durable` is on disk: see [`Link::on_durable`].
    fn on_durable(&mut self, durable: u64, session: bool) -> Option<u64> {
        if self.sync_change.is_some_and(|c| c <= durable) {
            self.sync_change = None;
        }
        while let Some(&(msg, change)) = self.unsaved.front() {
            if change > durable {
                break;
            }
            self.durable_upto = self.durable_upto.max(msg);
            self.unsaved.pop_front();
        }
        match self.ack_due {
            Some((last, change)) if change <= durable => {
                self.ack_due = None;
                (session && self.ack_sent != Some(last)).then(|| {
                    self.ack_sent = Some(last);
                    last
                })
            }
            _ => None,
        }
    }
}

/// When to dial a contact next, how long to wait after a failure, and
/// what to offer it. The caller adds the jitter and counts the dials in
/// flight; this holds the numbers and their rules.
#[derive(Default)]
pub(super) struct Dial {
    in_flight: bool,
    next: Option<Instant>,
    backoff: Duration,
    /// The versions to offer, after the contact refused ours; `None`: all
    /// we support.
    versions: Option<Vec<u8>>,
}

impl Dial {
    /// A schedule that starts at `backoff`, first due at `first`.
    pub(super) fn new(backoff: Duration, first: Option<Instant>) -> Dial {
        Dial {
            backoff,
            next: first,
            ..Dial::default()
        }
    }

    pub(super) fn in_flight(&self) -> bool {
        self.in_flight
    }

    /// Since when a dial is due at `now`, if one is (none while one is in
    /// flight).
    pub(super) fn due(&self, now: Instant) -> Option<Instant> {
        self.next.filter(|&at| at <= now && !self.in_flight)
    }

    /// Due at `now`, whatever the backoff said.
    pub(super) fn soon(&mut self, now: Instant) {
        self.next = Some(now);
    }

    /// Due at `at` (a retry, with its jitter).
    pub(super) fn at(&mut self, at: Instant) {
        self.next = Some(at);
    }

    /// Due at `now`, and the backoff back to `initial` (a new start).
    pub(super) fn restart(&mut self, initial: Duration, now: Instant) {
        self.backoff = initial;
        self.next = Some(now);
    }

    pub(super) fn started(&mut self) {
        self.in_flight = true;
        self.next = None;
    }

    pub(super) fn ended(&mut self) {
        self.in_flight = false;
    }

    /// A session is up: nothing to dial, and the next failure waits
    /// `initial` again.
    pub(super) fn connected(&mut self, initial: Duration) {
        self.backoff = initial;
        self.next = None;
    }

    /// The wait before the next dial, before jitter: after a failure the
    /// backoff so far, which doubles (up to `max`) for the one after; after
    /// a session that ended well, `initial`, and the backoff starts over.
    pub(super) fn wait_after(
        &mut self,
        failed: bool,
        initial: Duration,
        max: Duration,
    ) -> Duration {
        if failed {
            let wait = self.backoff;
            self.backoff = (self.backoff * 2).min(max);
            wait
        } else {
            self.backoff = initial;
            initial
        }
    }

    /// The contact refused our versions: offer these from now on.
    pub(super) fn offer_versions(&mut self, versions: Vec<u8>) {
        self.versions = Some(versions);
    }

    pub(super) fn versions(&self) -> Option<&[u8]> {
        self.versions.as_deref()
    }
}

impl Link {
    /// Everything up to change `durable` is on disk: what waited for it may
    /// go (the two durability rules, PROTOCOL.md §6.3). Messages saved up
    /// to `durable` may be written (`durable_upto`); a CHAT may follow the
    /// first SYNC once its change is saved; and the acknowledgement that
    /// waited for its change is returned, to be sent, unless this session
    /// already carried it or there is no session.
    pub(super) fn on_durable(&mut self, durable: u64) -> Option<u64> {
        self.flow.on_durable(durable, self.active.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sendable_in_order_as_their_changes_are_saved() {
        let mut l = Link::default();
        l.flow.unsaved.extend([(1, 10), (2, 11), (3, 12)]);
        assert_eq!(l.on_durable(9), None);
        assert_eq!(l.flow.durable_upto, 0, "nothing saved yet");
        l.on_durable(11);
        assert_eq!(l.flow.durable_upto, 2);
        assert_eq!(l.flow.unsaved.len(), 1);
        l.on_durable(12);
        assert_eq!((l.flow.durable_upto, l.flow.unsaved.len()), (3, 0));
    }

    #[test]
    fn an_ack_waits_for_its_change_and_goes_once_per_session() {
        let mut l = Link {
            active: Some(1),
            ..Link::default()
        };
        l.flow.ack_due = Some((5, 20));
        assert_eq!(l.on_durable(19), None, "not on disk yet");
        assert_eq!(l.on_durable(20), Some(5));
        assert_eq!(l.flow.ack_sent, Some(5));
        // The same ack due again on the same session: not repeated.
        l.flow.ack_due = Some((5, 21));
        assert_eq!(l.on_durable(21), None);
        assert_eq!(l.flow.ack_due, None, "consumed");
    }

    #[test]
    fn no_session_no_ack() {
        let mut l = Link::default();
        l.flow.ack_due = Some((3, 1));
        assert_eq!(l.on_durable(1), None);
        assert_eq!(l.flow.ack_sent, None, "the next session sends its own");
    }

    #[test]
    fn chat_waits_for_the_first_sync_to_be_saved() {
        let mut l = Link::default();
        l.flow.sync_change = Some(7);
        l.on_durable(6);
        assert_eq!(l.flow.sync_change, Some(7));
        l.on_durable(7);
        assert_eq!(l.flow.sync_change, None);
    }

    #[test]
    fn the_backoff_doubles_up_to_its_cap_and_starts_over_after_a_session() {
        let (initial, max) = (Duration::from_secs(5), Duration::from_secs(300));
        let mut d = Dial::new(initial, None);
        let waits: Vec<u64> = (0..8)
            .map(|_| d.wait_after(true, initial, max).as_secs())
            .collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        assert_eq!(d.wait_after(false, initial, max), initial);
        assert_eq!(d.wait_after(true, initial, max), initial, "started over");
        d.wait_after(true, initial, max);
        d.connected(initial);
        assert_eq!(d.wait_after(true, initial, max), initial);
    }

    #[test]
    fn nothing_is_due_while_a_dial_is_in_flight_or_before_its_time() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut d = Dial::new(Duration::from_secs(5), Some(later));
        assert_eq!(d.due(now), None, "not yet");
        assert_eq!(d.due(later), Some(later));
        d.started();
        d.soon(later);
        assert_eq!(d.due(later), None, "one at a time");
        d.ended();
        assert_eq!(d.due(later), Some(later), "asked for meanwhile: due now");
        d.connected(Duration::from_secs(5));
        assert_eq!(d.due(later), None);
    }

    #[test]
    fn an_ack_counts_only_as_far_as_was_written_and_the_rest_when_it_is() {
        let mut f = Flow::new_contact();
        f.wrote(0, 3);
        assert_eq!(f.acknowledged(10), 3, "clamped to what was written");
        assert!(
            f.wrote(3, 5),
            "the earlier claim covers what was just written"
        );
        assert_eq!(f.acknowledged(0), 5);
        assert!(!f.wrote(5, 5), "nothing new written");
    }

    #[test]
    fn nothing_is_written_before_the_peers_sync_nor_before_its_change_is_saved() {
        let mut f = Flow::loaded(4, 5);
        f.session_started(2);
        assert_eq!(f.writable(), None, "no SYNC yet");
        let (first, first_new) = f.peer_synced();
        assert!(first);
        assert_eq!(first_new, 5);
        assert_eq!(
            f.writable(),
            Some((1, 4)),
            "from just before the oldest unacked"
        );
        f.boundary_cleared(9);
        assert_eq!(f.writable(), None, "the first SYNC's change is not saved");
        f.on_durable(9, true);
        assert_eq!(f.writable(), Some((1, 4)));
        assert!(!f.peer_synced().0, "the second SYNC is not the first");
        f.session_started(1);
        assert!(!f.may_receive(), "a new session waits for its own SYNC");
    }

    #[test]
    fn a_duplicate_is_acknowledged_once_per_session_and_only_when_saved() {
        let mut f = Flow::new_contact();
        f.received(4, 8);
        assert!(!f.ack_again(4, 7), "its change is not saved yet");
        assert_eq!(f.ack_due, Some((4, 8)));
        assert!(f.ack_again(4, 8));
        assert!(!f.ack_again(4, 8), "once per session");
        f.session_started(1);
        assert!(f.ack_again(4, 8), "a new session may hear it again");
    }
}
