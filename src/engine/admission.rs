//! Who may put a request into the profile, and who makes room when the
//! unfinished connections fill their slots: pure decisions on a clock and
//! an RNG the caller passes in (issue 14: the engine's rules without its
//! I/O).
//!
//! Owns the intake's token buckets: one shared by every requester that is
//! not yet a contact (so that strangers together cannot make us write
//! faster than `per_minute`), and a small one per proven identity in front
//! of it (so that one requester asking again and again, blocked, rejected
//! or pending, cannot keep the shared one empty for everyone else: review
//! findings H3, M4). Never reads the clock, the profile or the network.

use std::collections::HashMap;
use std::time::Duration;

use allium_vault::Public32;
use rand_core::RngCore;

use super::conn::ConnId;
// The engine's clock type (it can be paused in tests); a value, never read
// here.
use std::time::Instant;

/// Each proven identity's own burst, then one request a minute.
pub(super) const REQUESTS_PER_IDENTITY: f64 = 3.0;
pub(super) const IDENTITY_REFILL: Duration = Duration::from_secs(60);
/// Identities remembered for that (the oldest is forgotten first): the
/// memory is bounded whoever floods the intake.
pub(super) const REQUESTERS_REMEMBERED: usize = 1024;

/// The intake's request buckets.
pub(super) struct RequestGate {
    per_minute: u32,
    tokens: f64,
    filled_at: Instant,
    requesters: HashMap<Public32, (f64, Instant)>,
}

impl RequestGate {
    /// A full shared bucket of `per_minute` tokens (its burst).
    pub(super) fn new(per_minute: u32, now: Instant) -> Self {
        RequestGate {
            per_minute,
            tokens: f64::from(per_minute),
            filled_at: now,
            requesters: HashMap::new(),
        }
    }

    /// Takes one token for `requester` at `now` if its own bucket and the
    /// shared one both have one and the pending list has room
    /// (`room_for_more`); takes nothing otherwise.
    pub(super) fn take(&mut self, now: Instant, requester: Public32, room_for_more: bool) -> bool {
        let own = self
            .requesters
            .get(&requester)
            .map(|&(tokens, at)| {
                let refill =
                    now.saturating_duration_since(at).as_secs_f64() / IDENTITY_REFILL.as_secs_f64();
                (tokens + refill).min(REQUESTS_PER_IDENTITY)
            })
            .unwrap_or(REQUESTS_PER_IDENTITY);
        if own < 1.0 {
            return false;
        }
        let per_sec = f64::from(self.per_minute) / 60.0;
        let burst = f64::from(self.per_minute.max(1));
        let since = now.saturating_duration_since(self.filled_at).as_secs_f64();
        self.tokens = (self.tokens + since * per_sec).min(burst);
        self.filled_at = now;
        if self.tokens < 1.0 || !room_for_more {
            return false;
        }
        self.tokens -= 1.0;
        if self.requesters.len() >= REQUESTERS_REMEMBERED
            && !self.requesters.contains_key(&requester)
            && let Some(oldest) = self
                .requesters
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(k, _)| *k)
        {
            self.requesters.remove(&oldest);
        }
        self.requesters.insert(requester, (own - 1.0, now));
        true
    }

    /// Identities remembered now.
    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.requesters.len()
    }
}

/// How far an unfinished incoming connection got, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Stage {
    Opened,
    Hello,
    Handshake,
}

/// An unfinished connection this long without a step is no live peer
/// mid-handshake: it makes room first. Younger ones are chosen at random,
/// so that opening streams fast cannot push out a requester in order.
pub(super) const CLEARLY_STALLED: Duration = Duration::from_secs(2);

/// Which unfinished connection is closed to make room for a newcomer
/// (review finding H3), given each one's stage and last step, when
/// `slots` are taken; `None` while there is room.
///
/// First the stalest of all, if it has gone [`CLEARLY_STALLED`] without a
/// step: whoever is really asking moves a step per round trip, so silent,
/// stalled or idle connections cannot keep a newcomer out (turning the
/// newcomer away instead would let them hold the service shut), and
/// holding a slot past a handshake costs a new handshake every 2 s.
/// Otherwise one drawn from `rng` (so that streams opened fast cannot push
/// a requester out in order) among those that got the least far, widened
/// step by step (opened, then hello, then handshake) until they are at
/// least three quarters of all. So silent streams, however fast they come
/// back, push out only each other once a requester has said its hello;
/// and however strangers spread over the steps, a requester's chance to be
/// chosen is at most 4/3 of what it would be among all (review of this
/// rule: with "the lowest step alone", strangers that all said a hello
/// made a requester whose own hello was on its way the only candidate).
pub(super) fn make_room(
    unfinished: &[(Stage, Instant, ConnId)],
    slots: usize,
    now: Instant,
    rng: &mut dyn RngCore,
) -> Option<ConnId> {
    if unfinished.len() < slots.max(1) {
        return None;
    }
    // The order the caller found them in must not matter: the stalest by
    // time then id, the pick from a list sorted by id.
    let &(_, at, stalest) = unfinished.iter().min_by_key(|&&(_, at, id)| (at, id))?;
    if now.saturating_duration_since(at) >= CLEARLY_STALLED {
        return Some(stalest);
    }
    let at_most = |s: Stage| unfinished.iter().filter(|&&(st, ..)| st <= s).count();
    let upto = [Stage::Opened, Stage::Hello]
        .into_iter()
        .find(|&s| 4 * at_most(s) >= 3 * unfinished.len())
        .unwrap_or(Stage::Handshake);
    let mut candidates: Vec<ConnId> = unfinished
        .iter()
        .filter(|&&(stage, ..)| stage <= upto)
        .map(|&(_, _, id)| id)
        .collect();
    candidates.sort_unstable();
    let pick = rng.next_u32() as usize % candidates.len().max(1);
    candidates.get(pick).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(n: u32) -> Public32 {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&n.to_be_bytes());
        Public32(b)
    }

    #[test]
    fn one_identity_gets_its_burst_then_one_a_minute() {
        let t0 = Instant::now();
        let mut g = RequestGate::new(6000, t0);
        for i in 0..3 {
            assert!(g.take(t0, who(1), true), "request {i} of the burst");
        }
        assert!(!g.take(t0, who(1), true), "past its burst");
        assert!(
            g.take(t0, who(2), true),
            "another identity is not held back"
        );
        assert!(!g.take(t0 + Duration::from_secs(59), who(1), true));
        assert!(g.take(t0 + Duration::from_secs(60), who(1), true));
        assert!(!g.take(t0 + Duration::from_secs(61), who(1), true));
    }

    #[test]
    fn the_shared_bucket_bounds_everyone_together() {
        let t0 = Instant::now();
        let mut g = RequestGate::new(10, t0);
        let taken = (0..100).filter(|i| g.take(t0, who(*i), true)).count();
        assert_eq!(taken, 10, "the burst is one minute's worth");
        // Six seconds refill one token at 10 a minute: five do not.
        assert!(!g.take(t0 + Duration::from_secs(5), who(200), true));
        assert!(g.take(t0 + Duration::from_secs(7), who(201), true));
        assert!(!g.take(t0 + Duration::from_secs(7), who(202), true));
    }

    #[test]
    fn a_full_pending_list_takes_no_token() {
        let t0 = Instant::now();
        let mut g = RequestGate::new(1, t0);
        assert!(!g.take(t0, who(1), false));
        assert!(g.take(t0, who(1), true), "the refusal cost nothing");
    }

    #[test]
    fn the_memory_of_identities_is_bounded() {
        let t0 = Instant::now();
        let mut g = RequestGate::new(u32::MAX, t0);
        for i in 0..(REQUESTERS_REMEMBERED as u32 + 500) {
            let now = t0 + Duration::from_millis(u64::from(i));
            assert!(g.take(now, who(i), true));
        }
        assert_eq!(g.remembered(), REQUESTERS_REMEMBERED);
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let t0 = Instant::now() + Duration::from_secs(3600);
        let mut g = RequestGate::new(1, t0);
        assert!(g.take(t0, who(1), true));
        assert!(!g.take(t0 - Duration::from_secs(120), who(2), true));
    }

    mod room {
        use super::super::{CLEARLY_STALLED, Stage, make_room};
        use rand_chacha::ChaCha8Rng;
        use rand_core::SeedableRng;
        use std::ops::RangeInclusive;
        use std::time::{Duration, Instant};

        #[test]
        fn there_is_room_below_the_slots() {
            let (now, mut rng) = (Instant::now(), ChaCha8Rng::seed_from_u64(1));
            let three = [
                (Stage::Opened, now, 1),
                (Stage::Opened, now, 2),
                (Stage::Hello, now, 3),
            ];
            assert_eq!(make_room(&three, 4, now, &mut rng), None);
            assert_eq!(make_room(&[], 0, now, &mut rng), None, "at least one slot");
        }

        #[test]
        fn a_requester_past_its_hello_is_never_chosen_while_silent_ones_hold_three_quarters() {
            let now = Instant::now();
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            let mut taken = vec![(Stage::Hello, now, 1), (Stage::Handshake, now, 2)];
            taken.extend((3..=8).map(|id| (Stage::Opened, now, id)));
            for _ in 0..10_000 {
                let victim = make_room(&taken, 8, now, &mut rng);
                assert!(matches!(victim, Some(3..=8)), "{victim:?}");
            }
            // With no silent one left, all share the risk.
            let past_hello = [(Stage::Hello, now, 1), (Stage::Handshake, now, 2)];
            let mut seen = [0u32; 3];
            for _ in 0..1000 {
                if let Some(id) = make_room(&past_hello, 2, now, &mut rng) {
                    seen[id as usize] += 1;
                }
            }
            assert!(seen[1] > 350 && seen[2] > 350, "{seen:?}");
        }

        /// Connections in groups: each group's step, last step and ids.
        fn crowd(groups: &[(Stage, Instant, RangeInclusive<u64>)]) -> Vec<(Stage, Instant, u64)> {
            groups
                .iter()
                .flat_map(|(stage, at, ids)| ids.clone().map(move |id| (*stage, *at, id)))
                .collect()
        }

        /// How often the requester (id 99) is chosen among `strangers` in
        /// 32,000 draws.
        fn hits(strangers: &[(Stage, Instant, u64)], requester: Stage, now: Instant) -> usize {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            let mut taken = strangers.to_vec();
            taken.push((requester, now, 99));
            (0..32_000)
                .filter(|_| make_room(&taken, taken.len(), now, &mut rng) == Some(99))
                .count()
        }

        #[test]
        fn idle_handshakes_beside_silent_streams_do_not_narrow_the_draw() {
            // The review's mix: 16 strangers through their handshake and
            // idle, 15 silent, and a requester at either early step. Among
            // all 32 it is chosen about 1,000 times in 32,000; "at least
            // half" made it 16 candidates (about 2,000).
            let now = Instant::now();
            let strangers = crowd(&[
                (Stage::Handshake, now, 1..=16),
                (Stage::Opened, now, 17..=31),
            ]);
            for step in [Stage::Opened, Stage::Hello] {
                let n = hits(&strangers, step, now);
                assert!((700..1300).contains(&n), "at {step:?}: chosen {n} times");
            }
        }

        #[test]
        fn strangers_that_all_say_a_hello_cannot_single_out_a_newcomer() {
            // 31 strangers past their hello, and a requester whose hello is
            // still on its way: it must not be the one chosen every time.
            let now = Instant::now();
            let n = hits(&crowd(&[(Stage::Hello, now, 1..=31)]), Stage::Opened, now);
            assert!((600..1400).contains(&n), "chosen {n} times in 32,000");
        }

        #[test]
        fn the_stalest_of_all_goes_once_stalled_and_otherwise_any_can() {
            let start = Instant::now();
            let now = start + CLEARLY_STALLED;
            let mut rng = ChaCha8Rng::seed_from_u64(3);
            let taken = [
                (Stage::Opened, now, 1),
                (Stage::Opened, start, 2),
                (Stage::Opened, now, 3),
            ];
            assert_eq!(make_room(&taken, 3, now, &mut rng), Some(2));
            // Whatever its step: idle handshakes that stalled go before any
            // draw among the silent ones.
            let idle = crowd(&[
                (Stage::Handshake, start, 1..=16),
                (Stage::Opened, now, 17..=31),
                (Stage::Opened, now, 99..=99),
            ]);
            assert_eq!(make_room(&idle, 32, now, &mut rng), Some(1));
            // Younger than that, each is chosen (none pushed out in order).
            let young = now - Duration::from_millis(1);
            let taken = [
                (Stage::Opened, now, 1),
                (Stage::Opened, young, 2),
                (Stage::Opened, now, 3),
            ];
            let mut seen = [0u32; 4];
            for _ in 0..3000 {
                if let Some(id) = make_room(&taken, 3, now, &mut rng) {
                    seen[id as usize] += 1;
                }
            }
            assert!(seen[1..].iter().all(|&n| n > 800), "{seen:?}");
        }
    }
}
