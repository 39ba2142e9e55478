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
    /// A dial is in flight.
    pub(super) dialing: bool,
    pub(super) next_dial: Option<Instant>,
    pub(super) backoff: Duration,
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
    /// The versions to offer this contact, after it refused ours; `None`:
    /// all we support.
    pub(super) versions: Option<Vec<u8>>,
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
}
