//! The EFF's large word list, for suggested passphrases and safety words.
//!
//! 7,776 words (five dice), chosen by the EFF to be memorable, easy to type
//! and unambiguous when read aloud: <https://www.eff.org/dice>. The file is
//! EFF's `eff_large_wordlist.txt` as published (CC BY 3.0 US; SHA-256
//! `addd35536511597a02fa0a9ff1e5284677b8883b83e986e43f15a3db996b903e`),
//! in `assets/wordlists/`.

use std::sync::OnceLock;

/// How many words the list has.
pub const LEN: usize = 7776;

const FILE: &str = include_str!("../assets/wordlists/eff_large_wordlist.txt");

/// The words, in the list's order (its dice order).
pub fn eff_large() -> &'static [&'static str] {
    static WORDS: OnceLock<Vec<&'static str>> = OnceLock::new();
    WORDS.get_or_init(|| {
        FILE.lines()
            .filter_map(|line| line.split_once('\t').map(|(_, word)| word))
            .collect()
    })
}

/// Word `i` of the list (`i` is taken modulo its length, so any index is
/// a word).
pub fn word(i: usize) -> &'static str {
    let words = eff_large();
    words.get(i % words.len().max(1)).copied().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_published_list_is_whole() {
        let words = eff_large();
        assert_eq!(words.len(), LEN);
        assert_eq!((words[0], words[LEN - 1]), ("abacus", "zoom"));
        // Every line is five dice and a word of lower-case letters (and the
        // list's few hyphens).
        for line in FILE.lines() {
            let (dice, w) = line.split_once('\t').expect("a tab");
            assert!(dice.len() == 5 && dice.chars().all(|c| ('1'..='6').contains(&c)));
            assert!(!w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
        let mut sorted = words.to_vec();
        sorted.dedup();
        assert_eq!(sorted.len(), LEN, "no word twice");
    }
}
