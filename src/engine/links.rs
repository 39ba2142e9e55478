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
    /// Highest message id written to the active session.
    pub(super) sent_upto: u64,
    /// Highest message id whose outbox is saved.
    pub(super) durable_upto: u64,
    /// Message ids queued but not yet saved, with the change that added them.
    pub(super) unsaved: VecDeque<(u64, u64)>,
    /// An acknowledgement to send once the change recording it is saved.
    pub(super) ack_due: Option<(u64, u64)>,
    /// The change that last moved `last_received_id`.
    pub(super) last_change: u64,
    /// Highest message id written to any session since the engine started:
    /// an acknowledgement beyond it is a lie (or a bug) and is clamped.
    pub(super) written_upto: u64,
    /// The acknowledgement last sent on the active session: a duplicate
    /// CHAT does not earn a second one for the same id.
    pub(super) ack_sent: Option<u64>,
    /// The highest id the contact acknowledged on the active session,
    /// whether or not we had written that far yet.
    pub(super) ack_claimed: u64,
    /// Ids from here on were handed out since the last SYNC we handled
    /// from this contact (`Contact::unsynced_from`; PROTOCOL.md §6.3).
    pub(super) first_new: u64,
    /// The contact's first SYNC since the engine started was handled.
    pub(super) synced: bool,
    /// The contact's SYNC arrived on the active session: our messages may
    /// go out on it.
    pub(super) peer_synced: bool,
    /// The change that recorded the first SYNC (`Contact::unsynced_from`
    /// cleared): no CHAT goes out until it is on disk, or a crash could
    /// bring back a boundary that what we sent has passed.
    pub(super) sync_change: Option<u64>,
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
                (self.active.is_some() && self.ack_sent != Some(last)).then(|| {
                    self.ack_sent = Some(last);
                    last
                })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_become_sendable_in_order_as_their_changes_are_saved() {
        let mut l = Link::default();
        l.unsaved.extend([(1, 10), (2, 11), (3, 12)]);
        assert_eq!(l.on_durable(9), None);
        assert_eq!(l.durable_upto, 0, "nothing saved yet");
        l.on_durable(11);
        assert_eq!(l.durable_upto, 2);
        assert_eq!(l.unsaved.len(), 1);
        l.on_durable(12);
        assert_eq!((l.durable_upto, l.unsaved.len()), (3, 0));
    }

    #[test]
    fn an_ack_waits_for_its_change_and_goes_once_per_session() {
        let mut l = Link {
            active: Some(1),
            ack_due: Some((5, 20)),
            ..Link::default()
        };
        assert_eq!(l.on_durable(19), None, "not on disk yet");
        assert_eq!(l.on_durable(20), Some(5));
        assert_eq!(l.ack_sent, Some(5));
        // The same ack due again on the same session: not repeated.
        l.ack_due = Some((5, 21));
        assert_eq!(l.on_durable(21), None);
        assert_eq!(l.ack_due, None, "consumed");
    }

    #[test]
    fn no_session_no_ack() {
        let mut l = Link {
            ack_due: Some((3, 1)),
            ..Link::default()
        };
        assert_eq!(l.on_durable(1), None);
        assert_eq!(l.ack_sent, None, "the next session sends its own");
    }

    #[test]
    fn chat_waits_for_the_first_sync_to_be_saved() {
        let mut l = Link {
            sync_change: Some(7),
            ..Link::default()
        };
        l.on_durable(6);
        assert_eq!(l.sync_change, Some(7));
        l.on_durable(7);
        assert_eq!(l.sync_change, None);
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
}
