//! Which strings a peer may send, field by field.
//!
//! Peer text is hostile. Every text field is valid UTF-8 and within a byte
//! and a character cap. Nicknames are the strictest (they are shown beside
//! our own UI, so they must not be able to reorder, hide or impersonate it);
//! message text may hold anything a person can type, and the UI shows it as
//! inert plain text.

use crate::error::DecodeError;

/// The kinds of text on the wire, each with its own rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextField {
    /// A nickname a requester suggests for itself: 0–30 characters.
    Nickname,
    /// The greeting in a contact request: 0–1,000 characters.
    Greeting,
    /// A chat message: 1–4,000 characters.
    ChatText,
    /// A file name in an offer: 1–255 bytes, one path component.
    FileName,
}

/// Limits, in characters (Unicode scalar values) and in UTF-8 bytes.
pub const NICKNAME_MAX_CHARS: usize = 30;
/// Greeting limit in characters.
pub const GREETING_MAX_CHARS: usize = 1_000;
/// Chat text limit in characters.
pub const CHAT_MAX_CHARS: usize = 4_000;
/// File name limit in bytes (the common file-system limit).
pub const FILE_NAME_MAX_BYTES: usize = 255;

impl TextField {
    pub(crate) fn name(self) -> &'static str {
        match self {
            TextField::Nickname => "nickname",
            TextField::Greeting => "greeting",
            TextField::ChatText => "message text",
            TextField::FileName => "file name",
        }
    }

    /// Byte cap applied to the length prefix before anything is read.
    pub fn max_bytes(self) -> usize {
        match self {
            TextField::Nickname => NICKNAME_MAX_CHARS * 4,
            TextField::Greeting => GREETING_MAX_CHARS * 4,
            TextField::ChatText => CHAT_MAX_CHARS * 4,
            TextField::FileName => FILE_NAME_MAX_BYTES,
        }
    }

    fn max_chars(self) -> usize {
        match self {
            TextField::Nickname => NICKNAME_MAX_CHARS,
            TextField::Greeting => GREETING_MAX_CHARS,
            TextField::ChatText => CHAT_MAX_CHARS,
            TextField::FileName => FILE_NAME_MAX_BYTES,
        }
    }

    fn may_be_empty(self) -> bool {
        matches!(self, TextField::Nickname | TextField::Greeting)
    }

    /// Validates already-decoded text against this field's rules.
    pub fn validate(self, s: &str) -> Result<(), DecodeError> {
        let field = self.name();
        if s.len() > self.max_bytes() {
            return Err(DecodeError::TooLong {
                field,
                len: s.len(),
                max: self.max_bytes(),
            });
        }
        let chars = s.chars().count();
        if chars > self.max_chars() {
            return Err(DecodeError::TooLong {
                field,
                len: chars,
                max: self.max_chars(),
            });
        }
        if s.is_empty() && !self.may_be_empty() {
            return Err(DecodeError::Empty(field));
        }
        if let Some(c) = s.chars().find(|&c| !self.allows(c)) {
            return Err(DecodeError::ForbiddenCharacter {
                field,
                code: u32::from(c),
            });
        }
        if self == TextField::FileName && (s == "." || s == "..") {
            return Err(DecodeError::InvalidValue(field));
        }
        Ok(())
    }

    /// Decodes a field's bytes as a receiver must (PROTOCOL.md §6.2): the
    /// byte cap first, then UTF-8, then this field's rules.
    pub fn decode(self, bytes: &[u8]) -> Result<String, DecodeError> {
        if bytes.len() > self.max_bytes() {
            return Err(DecodeError::TooLong {
                field: self.name(),
                len: bytes.len(),
                max: self.max_bytes(),
            });
        }
        let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8(self.name()))?;
        self.validate(s)?;
        Ok(s.to_owned())
    }

    fn allows(self, c: char) -> bool {
        if is_noncharacter(c) {
            return false;
        }
        match self {
            // As Ricochet: no markup characters, no controls, no format
            // characters (bidi overrides, zero-width), no line breaks.
            TextField::Nickname => {
                !c.is_control()
                    && !is_format(c)
                    && !matches!(c, '"' | '<' | '>' | '&' | '\u{2028}' | '\u{2029}')
            }
            TextField::Greeting | TextField::ChatText => !c.is_control() || c == '\n' || c == '\t',
            TextField::FileName => {
                !c.is_control()
                    && !is_format(c)
                    && !matches!(c, '/' | '\\' | '\u{2028}' | '\u{2029}')
            }
        }
    }
}

/// Unicode non-characters: U+FDD0..U+FDEF and the last two code points of
/// every plane.
fn is_noncharacter(c: char) -> bool {
    let v = u32::from(c);
    (0xFDD0..=0xFDEF).contains(&v) || (v & 0xFFFE) == 0xFFFE
}

/// Unicode general category Cf (format characters), Unicode 15.1: soft
/// hyphen, Arabic number signs, zero-width and joiner characters, the bidi
/// embeddings, overrides and isolates, the BOM, interlinear annotation
/// controls, and the tag characters.
fn is_format(c: char) -> bool {
    matches!(u32::from(c),
        0x00AD
        | 0x0600..=0x0605
        | 0x061C
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x200B..=0x200F
        | 0x202A..=0x202E
        | 0x2060..=0x2064
        | 0x2066..=0x206F
        | 0xFEFF
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(field: TextField, c: char) -> Result<(), DecodeError> {
        Err(DecodeError::ForbiddenCharacter {
            field: field.name(),
            code: u32::from(c),
        })
    }

    #[test]
    fn nicknames() {
        let n = TextField::Nickname;
        assert_eq!(n.validate("Ana María 🌱"), Ok(()));
        assert_eq!(n.validate(""), Ok(()));
        assert_eq!(n.validate(&"x".repeat(30)), Ok(()));
        assert_eq!(
            n.validate(&"x".repeat(31)),
            Err(DecodeError::TooLong {
                field: "nickname",
                len: 31,
                max: 30
            })
        );
        // 30 four-byte characters fit the byte cap exactly.
        assert_eq!(n.validate(&"🌱".repeat(30)), Ok(()));
        for c in [
            '\u{202E}',
            '\u{200B}',
            '\u{2066}',
            '\u{FEFF}',
            '\n',
            '\0',
            '\u{7F}',
            '\u{9B}',
            '<',
            '>',
            '&',
            '"',
            '\u{2028}',
            '\u{FFFE}',
            '\u{FDD0}',
            '\u{10FFFF}',
            '\u{E0041}',
        ] {
            assert_eq!(
                n.validate(&format!("a{c}b")),
                forbidden(n, c),
                "{:#x}",
                u32::from(c)
            );
        }
        // The 2014 Ricochet finding: markup in a nickname.
        assert_eq!(n.validate("<img src=x>"), forbidden(n, '<'));
    }

    #[test]
    fn chat_text() {
        let t = TextField::ChatText;
        assert_eq!(
            t.validate("line one\n\tline two <b>not bold</b> https://x.invalid"),
            Ok(())
        );
        // Bidi controls and joiners are typed by real people (emoji, RTL
        // scripts): allowed, and shown inert by the UI.
        assert_eq!(t.validate("👩\u{200D}💻 \u{202E}abc"), Ok(()));
        assert_eq!(t.validate(""), Err(DecodeError::Empty("message text")));
        assert_eq!(t.validate("a\rb"), forbidden(t, '\r'));
        assert_eq!(t.validate("a\0b"), forbidden(t, '\0'));
        assert_eq!(t.validate("\u{FFFF}"), forbidden(t, '\u{FFFF}'));
        assert_eq!(
            t.validate(&"a".repeat(4001)),
            Err(DecodeError::TooLong {
                field: "message text",
                len: 4001,
                max: 4000
            })
        );
    }

    #[test]
    fn file_names() {
        let f = TextField::FileName;
        assert_eq!(f.validate("report (final).pdf"), Ok(()));
        assert_eq!(f.validate("../etc/passwd"), forbidden(f, '/'));
        assert_eq!(f.validate("..\\boot.ini"), forbidden(f, '\\'));
        assert_eq!(
            f.validate(".."),
            Err(DecodeError::InvalidValue("file name"))
        );
        assert_eq!(f.validate("."), Err(DecodeError::InvalidValue("file name")));
        assert_eq!(f.validate("a\0b"), forbidden(f, '\0'));
        assert_eq!(f.validate("cod\u{202E}fdp.exe"), forbidden(f, '\u{202E}'));
        assert_eq!(f.validate(""), Err(DecodeError::Empty("file name")));
        assert_eq!(
            f.validate(&"é".repeat(128)),
            Err(DecodeError::TooLong {
                field: "file name",
                len: 256,
                max: 255
            })
        );
    }

    #[test]
    fn invalid_utf8() {
        assert_eq!(
            TextField::ChatText.decode(&[0x61, 0xC3]),
            Err(DecodeError::InvalidUtf8("message text"))
        );
        assert_eq!(
            TextField::Nickname.decode(&[0xED, 0xA0, 0x80]),
            Err(DecodeError::InvalidUtf8("nickname"))
        );
    }
}
