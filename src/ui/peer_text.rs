//! How text that came from a peer is made safe to show beside our own UI.
//!
//! egui lays text out left to right without the Unicode bidi algorithm and
//! draws bidi controls as nothing, so inside the window no peer string can
//! reorder what surrounds it. The same text also leaves the window (copied
//! to the clipboard, pasted into a bidi-aware program): there every peer
//! string is an isolate (FSI … PDI, PROTOCOL.md §6.2) with its own controls
//! balanced, so it cannot spill into the text around it. Notifications go to
//! daemons that do apply bidi: there the controls are removed.
//!
//! It owns only these string rules; it never decides what is shown.

/// A peer string wrapped as one bidi isolate, with unmatched closers
/// dropped and unclosed openers closed inside it. Text with neither a bidi
/// control nor a right-to-left letter cannot move anything around it and is
/// returned as it is.
///
/// Emoji presentation selectors (U+FE0E, U+FE0F) are dropped: egui has no
/// glyph for them and would draw an empty box after "❤️" or "⚠️", and the
/// emoji font draws every emoji one way anyway.
pub(crate) fn isolated(s: &str) -> String {
    let stripped;
    let s = if s.contains(['\u{FE0E}', '\u{FE0F}']) {
        stripped = s.replace(['\u{FE0E}', '\u{FE0F}'], "");
        stripped.as_str()
    } else {
        s
    };
    if !s.chars().any(|c| is_bidi_control(c) || is_right_to_left(c)) {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len() + 8);
    out.push('\u{2068}');
    let (mut isolates, mut embeddings) = (0usize, 0usize);
    for c in s.chars() {
        match c {
            '\u{2066}' | '\u{2067}' | '\u{2068}' => isolates += 1,
            '\u{2069}' if isolates == 0 => continue,
            '\u{2069}' => isolates -= 1,
            '\u{202A}' | '\u{202B}' | '\u{202D}' | '\u{202E}' => embeddings += 1,
            '\u{202C}' if embeddings == 0 => continue,
            '\u{202C}' => embeddings -= 1,
            _ => {}
        }
        out.push(c);
    }
    out.extend(std::iter::repeat_n('\u{202C}', embeddings));
    out.extend(std::iter::repeat_n('\u{2069}', isolates));
    out.push('\u{2069}');
    out
}

/// Whether `c` changes the direction of the text around it.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Letters of the right-to-left scripts (Hebrew, Arabic, Syriac, Thaana,
/// N'Ko, Samaritan, Mandaic, their presentation forms, and the
/// right-to-left blocks of the supplementary planes).
fn is_right_to_left(c: char) -> bool {
    matches!(
        c,
        '\u{0590}'..='\u{08FF}'
            | '\u{FB1D}'..='\u{FDFF}'
            | '\u{FE70}'..='\u{FEFF}'
            | '\u{10800}'..='\u{10FFF}'
            | '\u{1E800}'..='\u{1EFFF}'
    )
}

/// Peer text for a notification: every bidi control removed.
pub(crate) fn without_bidi(s: &str) -> String {
    s.chars().filter(|c| !is_bidi_control(*c)).collect()
}

/// Names that read as our own UI when a contact takes them ("You" beside
/// our own lines): they are shown marked as a contact's name.
const RESERVED_NAMES: [&str; 4] = ["you", "me", "allium", "system"];

/// Whether a contact's name could pass for part of our own UI.
pub(crate) fn is_reserved_name(name: &str) -> bool {
    let folded: String = name
        .chars()
        .filter(|c| !c.is_whitespace() && !is_bidi_control(*c))
        .flat_map(char::to_lowercase)
        .collect();
    RESERVED_NAMES.contains(&folded.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_presentation_selectors_are_dropped() {
        assert_eq!(
            isolated("\u{2764}\u{FE0F} ok \u{26A0}\u{FE0E}"),
            "\u{2764} ok \u{26A0}"
        );
        assert_eq!(isolated("no selectors 👍"), "no selectors 👍");
    }

    #[test]
    fn every_peer_string_is_one_balanced_isolate() {
        // Nothing that can move text: as it is.
        assert_eq!(isolated("hi <b>"), "hi <b>");
        assert_eq!(isolated("a\u{2069}"), "\u{2068}a\u{2069}");
        // A stray PDI would close our isolate early: dropped.
        assert_eq!(isolated("a\u{2069}b"), "\u{2068}ab\u{2069}");
        // An override left open is closed inside the isolate.
        assert_eq!(
            isolated("\u{202E}evil"),
            "\u{2068}\u{202E}evil\u{202C}\u{2069}"
        );
        assert_eq!(
            isolated("\u{2067}\u{2067}x\u{2069}"),
            "\u{2068}\u{2067}\u{2067}x\u{2069}\u{2069}\u{2069}"
        );
        // Right-to-left text itself is kept as typed.
        assert_eq!(isolated("שלום"), "\u{2068}שלום\u{2069}");
    }

    #[test]
    fn notifications_lose_every_bidi_control() {
        assert_eq!(
            without_bidi("\u{202E}gnp.exe\u{202C} \u{2067}x\u{2069}\u{200F}"),
            "gnp.exe x"
        );
    }

    #[test]
    fn names_that_look_like_our_own_ui_are_caught() {
        for n in ["You", " you ", "YOU", "Y\u{200F}ou", "Me", "Allium"] {
            assert!(is_reserved_name(n), "{n:?}");
        }
        for n in ["Youssef", "Bea", "", "your friend"] {
            assert!(!is_reserved_name(n), "{n:?}");
        }
    }
}
