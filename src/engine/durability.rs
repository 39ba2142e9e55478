//! What is on disk, and what waits for it (issue 14: the engine's rules
//! without its I/O).
//!
//! Owns the change counter (every change to the profile gets the next
//! number), what the last successful save covered, whether a save is under
//! way, the last save error, and the intake receipts that wait for the
//! disk. Decides when a save may start (at most once per interval, however
//! fast peers make changes: review finding M4) and when a receipt may go
//! out (PROTOCOL.md §8 step 2). It never saves, spawns or reads the clock:
//! the caller passes `now` in and does the work.

use std::time::Duration;

use allium_protocol::CloseReason;
use std::time::Instant;

use super::conn::ConnId;
use super::store::SaveError;

/// The result of a finished save, as the person should hear of it.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum SaveReport {
    /// Saved; nothing to say.
    Saved,
    /// Saved after earlier failures: the problem is gone.
    Recovered,
    /// Failed with a message not reported before.
    NewProblem(SaveError),
    /// Failed as the last one did: already reported.
    SameProblem,
}

pub(super) struct Durability {
    change: u64,
    durable: u64,
    saving: bool,
    last_save_at: Option<Instant>,
    error: Option<SaveError>,
    /// Intake sessions waiting for their receipt: the connection, the
    /// change that holds what was decided, and when the request came.
    receipts: Vec<(ConnId, u64, Instant)>,
}

impl Durability {
    /// `change` above 0: something is unsaved from the start.
    pub(super) fn new(change: u64) -> Self {
        Durability {
            change,
            durable: 0,
            saving: false,
            last_save_at: None,
            error: None,
            receipts: Vec::new(),
        }
    }

    /// Records that the profile changed; returns the change's number.
    pub(super) fn changed(&mut self) -> u64 {
        self.change += 1;
        self.change
    }

    /// The latest change.
    pub(super) fn change(&self) -> u64 {
        self.change
    }

    /// Every change up to this one is on disk.
    pub(super) fn durable(&self) -> u64 {
        self.durable
    }

    /// The last save error, while saves fail.
    pub(super) fn error(&self) -> Option<&SaveError> {
        self.error.as_ref()
    }

    /// Nothing more will reach the disk by waiting: everything is saved,
    /// or saving failed and no retry is under way.
    pub(super) fn settled(&self) -> bool {
        self.durable == self.change || (self.error.is_some() && !self.saving)
    }

    /// Starts a save if one is due at `now`: returns the change it will
    /// cover.
    pub(super) fn begin_save(&mut self, now: Instant, min_interval: Duration) -> Option<u64> {
        if self.saving || self.durable == self.change {
            return None;
        }
        if self
            .last_save_at
            .is_some_and(|at| now.saturating_duration_since(at) < min_interval)
        {
            return None;
        }
        self.last_save_at = Some(now);
        self.saving = true;
        Some(self.change)
    }

    /// A save that covered `generation` finished. After a failure the save
    /// stays "under way" until [`Durability::retry`], so nothing that needs
    /// the disk goes out meanwhile.
    pub(super) fn finished(
        &mut self,
        generation: u64,
        result: Result<(), SaveError>,
    ) -> SaveReport {
        match result {
            Ok(()) => {
                self.saving = false;
                self.durable = self.durable.max(generation);
                if self.error.take().is_some() {
                    SaveReport::Recovered
                } else {
                    SaveReport::Saved
                }
            }
            Err(e) => {
                let report = if self.error.as_ref() == Some(&e) {
                    SaveReport::SameProblem
                } else {
                    SaveReport::NewProblem(e.clone())
                };
                self.error = Some(e);
                report
            }
        }
    }

    /// After a failed save's pause: a save may start again.
    pub(super) fn retry(&mut self) {
        self.saving = false;
    }

    /// How long the caller may sleep before a save becomes due, if one is
    /// waiting for its interval.
    pub(super) fn wake_in(&self, now: Instant, min_interval: Duration) -> Option<Duration> {
        match self.last_save_at {
            Some(at) if !self.saving && self.durable != self.change => {
                Some(min_interval.saturating_sub(now.saturating_duration_since(at)))
            }
            _ => None,
        }
    }

    /// A request on `conn` whose outcome is in `change` (0: nothing to
    /// save) waits for its receipt from `now`.
    pub(super) fn receipt(&mut self, conn: ConnId, change: u64, now: Instant) {
        self.receipts.push((conn, change, now));
    }

    /// The connection ended: its receipt has nowhere to go. Keeps the list
    /// no longer than the connections open, however fast a peer opens and
    /// drops them.
    pub(super) fn forget_receipt(&mut self, conn: ConnId) {
        self.receipts.retain(|&(c, _, _)| c != conn);
    }

    /// The receipts due at `now`: CLOSE 0 once what was decided is on disk
    /// and `delay` has passed (every outcome waits at least that long, so
    /// the wait does not tell a requester what was decided, §7.7); CLOSE 3
    /// ("try again", never "received") when the disk took `step` longer
    /// than that.
    pub(super) fn due_receipts(
        &mut self,
        now: Instant,
        delay: Duration,
        step: Duration,
    ) -> Vec<(ConnId, CloseReason)> {
        let durable = self.durable;
        let mut due = Vec::new();
        self.receipts.retain(|&(conn, change, at)| {
            let waited = now.saturating_duration_since(at);
            if change <= durable && waited >= delay {
                due.push((conn, CloseReason::Normal));
                false
            } else if waited > delay.saturating_add(step) {
                due.push((conn, CloseReason::Shutdown));
                false
            } else {
                true
            }
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(100);

    #[test]
    fn saves_start_at_most_once_per_interval() {
        let t0 = Instant::now();
        let mut d = Durability::new(0);
        assert_eq!(d.begin_save(t0, INTERVAL), None, "nothing to save");
        let c = d.changed();
        assert_eq!(d.begin_save(t0, INTERVAL), Some(c));
        d.changed();
        assert_eq!(d.begin_save(t0, INTERVAL), None, "one at a time");
        assert_eq!(d.finished(c, Ok(())), SaveReport::Saved);
        assert_eq!(d.durable(), c);
        assert_eq!(d.begin_save(t0 + INTERVAL / 2, INTERVAL), None, "too soon");
        assert_eq!(d.wake_in(t0 + INTERVAL / 2, INTERVAL), Some(INTERVAL / 2));
        assert_eq!(d.begin_save(t0 + INTERVAL, INTERVAL), Some(d.change()));
    }

    #[test]
    fn a_failing_disk_is_reported_once_and_holds_everything_back() {
        let t0 = Instant::now();
        let mut d = Durability::new(0);
        let c = d.changed();
        let g = d.begin_save(t0, INTERVAL).expect("due");
        assert_eq!(
            d.finished(g, Err(SaveError::DiskFull)),
            SaveReport::NewProblem(SaveError::DiskFull)
        );
        assert_eq!(d.durable(), 0);
        assert!(!d.settled(), "a retry is under way");
        assert_eq!(d.begin_save(t0 + INTERVAL, INTERVAL), None, "until retry");
        d.retry();
        assert!(d.settled(), "failed, and no save under way");
        let g = d.begin_save(t0 + INTERVAL, INTERVAL).expect("due again");
        assert_eq!(
            d.finished(g, Err(SaveError::DiskFull)),
            SaveReport::SameProblem
        );
        d.retry();
        let g = d
            .begin_save(t0 + 2 * INTERVAL, INTERVAL)
            .expect("due again");
        assert_eq!(d.finished(g, Ok(())), SaveReport::Recovered);
        assert_eq!((d.durable(), d.error()), (c, None));
    }

    #[test]
    fn a_receipt_waits_for_the_disk_and_for_the_delay() {
        let (delay, step) = (Duration::from_secs(1), Duration::from_secs(15));
        let t0 = Instant::now();
        let mut d = Durability::new(0);
        let stored = d.changed();
        d.receipt(1, stored, t0);
        // Nothing stored: a blocked requester's receipt.
        d.receipt(2, 0, t0);
        assert_eq!(d.due_receipts(t0, delay, step), vec![], "before the delay");
        assert_eq!(
            d.due_receipts(t0 + delay, delay, step),
            vec![(2, CloseReason::Normal)],
            "the stored one still waits for the disk"
        );
        let g = d.begin_save(t0, INTERVAL).expect("due");
        d.finished(g, Ok(()));
        assert_eq!(
            d.due_receipts(t0 + delay, delay, step),
            vec![(1, CloseReason::Normal)]
        );
    }

    #[test]
    fn a_receipt_goes_with_its_connection() {
        let (delay, step) = (Duration::from_secs(1), Duration::from_secs(15));
        let t0 = Instant::now();
        let mut d = Durability::new(0);
        d.receipt(3, 0, t0);
        d.receipt(4, 0, t0);
        d.forget_receipt(3);
        assert_eq!(
            d.due_receipts(t0 + delay, delay, step),
            vec![(4, CloseReason::Normal)]
        );
    }

    #[test]
    fn a_disk_too_slow_for_a_receipt_says_try_again() {
        let (delay, step) = (Duration::from_secs(1), Duration::from_secs(15));
        let t0 = Instant::now();
        let mut d = Durability::new(0);
        let c = d.changed();
        d.receipt(7, c, t0);
        assert_eq!(d.due_receipts(t0 + delay + step, delay, step), vec![]);
        assert_eq!(
            d.due_receipts(t0 + delay + step + Duration::from_millis(1), delay, step),
            vec![(7, CloseReason::Shutdown)]
        );
        // Once answered, never again.
        let g = d.begin_save(t0, INTERVAL).expect("due");
        d.finished(g, Ok(()));
        assert_eq!(d.due_receipts(t0 + 2 * step, delay, step), vec![]);
    }
}
