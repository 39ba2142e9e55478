//! New passphrases: a floor below which no profile is created, a strength
//! hint in words, and random word passphrases to suggest.
//!
//! A stolen laptop's profile can be attacked offline for as long as the
//! thief likes, so the floor is set against that attacker: `zxcvbn` must
//! estimate at least 10¹³ guesses. At a thousand Argon2id guesses a
//! second (a well-equipped attacker against our parameters) that is over
//! three centuries; four random words from the EFF list (51.7 bits) clear
//! it, "abc", a saying or a famous example passphrase do not.
//!
//! `zxcvbn` rates a phrase with spaces far higher than the same words
//! run together ("to be or not to be": 10¹⁷·⁵ against 10¹²·¹), and
//! attackers try phrases, so both forms are estimated and the lower
//! counts.

use rand_core::{OsRng, RngCore};
use zxcvbn::Score;

use super::AppError;

/// The fewest guesses (log₁₀) `zxcvbn` may estimate for a new passphrase.
const FLOOR_LOG10: f64 = 13.0;

/// Passphrases made famous as examples: no estimator knows them as
/// weak, every attacker tries them first. Compared in lower case, with
/// white space collapsed.
const FAMOUS: &[&str] = &["correct horse battery staple"];

/// `zxcvbn`'s cost grows faster than linearly with the length; what lies
/// beyond this many characters is not estimated (it can only add
/// strength, and a prefix strong enough already clears the floor).
const ESTIMATED_CHARS: usize = 100;

/// How many words [`suggest`] draws: 6 × 12.9 = 77.5 bits.
pub const SUGGESTED_WORDS: usize = 6;

/// What the estimator thinks of a passphrase.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Strength {
    /// 0 (guessed at once) to 4 (clears the floor).
    pub level: u8,
    /// One word: "very weak" … "strong".
    pub label: &'static str,
    /// Whether a profile may be created with it.
    pub acceptable: bool,
    /// Why it is weak and what to do, briefly; empty when it clears the
    /// floor.
    pub advice: String,
}

/// Estimates a new passphrase. `context` holds words an attacker would try
/// first (the profile's name).
pub fn strength(passphrase: &str, context: &[&str]) -> Strength {
    let prefix: String = passphrase.chars().take(ESTIMATED_CHARS).collect();
    let joined: String = prefix.split_whitespace().collect();
    let spaced = zxcvbn::zxcvbn(&prefix, context);
    let estimate = if joined.is_empty() || joined == prefix {
        spaced
    } else {
        let together = zxcvbn::zxcvbn(&joined, context);
        if together.guesses_log10() < spaced.guesses_log10() {
            together
        } else {
            spaced
        }
    };
    let normal = prefix
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase();
    let famous = FAMOUS.contains(&normal.as_str());
    let log10 = if famous {
        0.0
    } else {
        estimate.guesses_log10()
    };
    let level = match log10 {
        g if g < 6.0 => 0,
        g if g < 9.0 => 1,
        g if g < 11.0 => 2,
        g if g < FLOOR_LOG10 => 3,
        _ => 4,
    };
    let label = match level {
        0 => "very weak",
        1 => "weak",
        2 => "fair",
        3 => "almost",
        _ => "strong",
    };
    let acceptable = level == 4;
    let mut advice = String::new();
    if famous {
        advice.push_str("This is a famous example passphrase. ");
    } else if !acceptable
        && estimate.score() < Score::Four
        && let Some(w) = estimate.feedback().and_then(|f| f.warning())
    {
        advice.push_str(&w.to_string());
        advice.push(' ');
    }
    if !acceptable {
        advice.push_str("Add more words that are not a saying, a quote or a name.");
    }
    Strength {
        level,
        label,
        acceptable,
        advice,
    }
}

/// Refuses a new passphrase that is empty, below the floor, or differs
/// from its confirmation, saying why.
pub fn check_new_passphrase(p: &str, confirmation: &str, context: &[&str]) -> Result<(), AppError> {
    if p.is_empty() {
        return Err(AppError::WeakPassphrase("choose a passphrase".into()));
    }
    let s = strength(p, context);
    if !s.acceptable {
        return Err(AppError::WeakPassphrase(
            "this passphrase is too easy to guess: someone who takes this computer could \
             find it. Use four or more words that are not a saying, a quote or a name, or \
             press \"Suggest a passphrase\"."
                .into(),
        ));
    }
    if p != confirmation {
        return Err(AppError::WeakPassphrase(
            "the two passphrases differ; type them again".into(),
        ));
    }
    Ok(())
}

/// A passphrase of [`SUGGESTED_WORDS`] words drawn uniformly from the EFF
/// large word list (7,776 words, published for exactly this) with the
/// operating system's random numbers.
pub fn suggest() -> zeroize::Zeroizing<String> {
    let n = crate::wordlist::LEN as u32;
    // Rejection sampling: the largest multiple of n below 2³² keeps every
    // word equally likely.
    let zone = u32::MAX - (u32::MAX % n);
    let mut out = zeroize::Zeroizing::new(String::new());
    for i in 0..SUGGESTED_WORDS {
        let word = loop {
            let r = OsRng.next_u32();
            if r < zone {
                break crate::wordlist::word((r % n) as usize);
            }
        };
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trivial_and_famous_passphrases_are_refused() {
        for weak in [
            "abc",
            "password",
            "Tr0ub4dor&3",
            "correct horse battery staple",
            "Correct  Horse Battery Staple",
            "the quick brown fox",
            "to be or not to be",
            "I love you so much",
            "qwertyuiop",
            "work",
            // Three random words are not quite enough.
            "mango radar tulip",
        ] {
            let e = check_new_passphrase(weak, weak, &["work"]).unwrap_err();
            let AppError::WeakPassphrase(why) = e else {
                panic!("{weak}: {e:?}")
            };
            assert!(
                why.starts_with("this passphrase is too easy to guess:"),
                "{why}"
            );
        }
    }

    #[test]
    fn random_words_clear_the_floor() {
        assert!(strength("vivid unpaved frisbee tycoon", &[]).acceptable);
        for _ in 0..20 {
            let s = suggest();
            assert_eq!(s.split(' ').count(), SUGGESTED_WORDS);
            assert!(strength(&s, &[]).acceptable, "{}", s.as_str());
        }
        assert_ne!(*suggest(), *suggest());
    }

    #[test]
    fn the_confirmation_must_match() {
        assert_eq!(
            check_new_passphrase("", "", &[]),
            Err(AppError::WeakPassphrase("choose a passphrase".into()))
        );
        assert_eq!(
            check_new_passphrase("vivid unpaved frisbee tycoon", "vivid unpaved frisbee", &[]),
            Err(AppError::WeakPassphrase(
                "the two passphrases differ; type them again".into()
            ))
        );
        assert_eq!(
            check_new_passphrase(
                "vivid unpaved frisbee tycoon",
                "vivid unpaved frisbee tycoon",
                &[]
            ),
            Ok(())
        );
    }
}
