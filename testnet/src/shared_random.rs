//! A shared-random state for the authorities to start with.
//!
//! Onion services publish for the next time period ahead of time only when
//! the consensus carries a shared random value (SRV) covering that period's
//! start. A new network has none until its authorities have run the
//! commit-and-reveal protocol: up to an hour here (24 votes of 75 s per
//! run, and two runs for a previous and a current value). Until then, when
//! a time period ends (every 30 minutes) a client with the newer consensus
//! asks for a descriptor that services publish only after they too have
//! fetched that consensus and waited out their one-a-minute upload limit:
//! minutes in which every onion service looks absent (HSDirs answer 404).
//!
//! So each authority starts with the same previous and current SRV in its
//! `sr-state` file, valid until the end of the current protocol run. The
//! first consensus carries both, and services publish for the next period
//! in advance, as on the public network. At the end of that run the
//! authorities compute the next value themselves. The values need not be
//! secret or random: this network only runs tests.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use crate::Error;
use crate::torrc::VOTING_INTERVAL_SECS;

/// Votes per shared-random protocol run (12 commit + 12 reveal rounds).
const ROUNDS_PER_RUN: u64 = 24;

/// The two values; any 32 bytes will do.
const PREVIOUS_SRV: [u8; 32] = *b"allium-testnet previous srv 0001";
const CURRENT_SRV: [u8; 32] = *b"allium-testnet current srv  0002";

/// The `sr-state` file for an authority starting at `now`, or `None` when
/// the current protocol run ends too soon for the file to be read in it.
pub(crate) fn sr_state(now: SystemTime) -> Option<String> {
    let secs = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    let round = u64::from(VOTING_INTERVAL_SECS);
    let run = round * ROUNDS_PER_RUN;
    // Tor ignores a state whose ValidUntil has passed when it reads it, a
    // few seconds after this: leave that run alone.
    let valid_until = (secs / run + 1) * run;
    if valid_until - secs < 2 * round {
        return None;
    }
    let valid_after = secs / round * round;
    let time = |s: u64| {
        // "YYYY-MM-DDTHH:MM:SSZ" -> Tor's "YYYY-MM-DD HH:MM:SS".
        humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(s))
            .to_string()
            .replace('T', " ")
            .replace('Z', "")
    };
    let value = |v: &[u8; 32]| base64::engine::general_purpose::STANDARD.encode(v);
    Some(format!(
        "# Written by allium-testnet before this authority started.\n\
         Version 1\n\
         ValidAfter {}\n\
         ValidUntil {}\n\
         SharedRandPreviousValue 3 {}\n\
         SharedRandCurrentValue 3 {}\n",
        time(valid_after),
        time(valid_until),
        value(&PREVIOUS_SRV),
        value(&CURRENT_SRV),
    ))
}

/// Writes the state into an authority's data directory, if there is time.
pub(crate) fn seed(data_dir: &Path, now: SystemTime) -> Result<(), Error> {
    let Some(state) = sr_state(now) else {
        return Ok(());
    };
    let path = data_dir.join("sr-state");
    std::fs::write(&path, state).map_err(Error::io(format!("writing {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn state_is_valid_until_the_end_of_the_current_run() {
        // 2026-11-27 10:11:40 UTC; runs end at :00 and :30.
        let state = sr_state(at(1_795_774_300)).expect("time left in the run");
        assert_eq!(
            state,
            "# Written by allium-testnet before this authority started.\n\
             Version 1\n\
             ValidAfter 2026-11-27 10:11:15\n\
             ValidUntil 2026-11-27 10:30:00\n\
             SharedRandPreviousValue 3 YWxsaXVtLXRlc3RuZXQgcHJldmlvdXMgc3J2IDAwMDE=\n\
             SharedRandCurrentValue 3 YWxsaXVtLXRlc3RuZXQgY3VycmVudCBzcnYgIDAwMDI=\n"
        );
    }

    #[test]
    fn no_state_in_the_last_two_rounds_of_a_run() {
        // 10:27:31 leaves 149 s: less than two 75 s rounds.
        assert_eq!(sr_state(at(1_795_775_251)), None);
        // 10:27:30 leaves exactly two rounds.
        assert!(sr_state(at(1_795_775_250)).is_some());
    }
}
