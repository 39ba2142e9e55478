//! Where a passphrase comes from: a file, or a file descriptor the client
//! left open for us. Never from the request itself or the command line
//! (both end up in logs, shell history and `ps`). The passphrase is read
//! into memory that is wiped when dropped, and never logged.

use std::io::{self, Read};
use std::path::PathBuf;

use zeroize::{Zeroize, Zeroizing};

use super::wire::{ErrorCode, Params, RpcError};
use crate::app::Passphrase;

/// Longest passphrase file: it should hold the passphrase only.
pub const MAX_PASSPHRASE_FILE: usize = 4096;

/// Where to read the passphrase.
pub(crate) enum Source {
    File(PathBuf),
    Fd(u32),
}

impl Source {
    /// Reads `passphrase_file` or `passphrase_fd` (exactly one).
    pub fn from_params(p: &mut Params) -> Result<Source, RpcError> {
        let file = p.opt_string("passphrase_file")?;
        let fd = p.opt_u64("passphrase_fd")?;
        match (file, fd) {
            (Some(_), Some(_)) => Err(RpcError::invalid_param(
                "passphrase_fd",
                "give either \"passphrase_file\" or \"passphrase_fd\", not both".into(),
            )),
            (None, None) => Err(RpcError::invalid_param(
                "passphrase_file",
                "missing param \"passphrase_file\" (or \"passphrase_fd\"): the passphrase is \
                 read from a file or an open file descriptor, never sent in a request"
                    .into(),
            )),
            (Some(f), None) if f.is_empty() => Err(RpcError::invalid_param(
                "passphrase_file",
                "\"passphrase_file\" is empty; give the path of a file".into(),
            )),
            (Some(f), None) => Ok(Source::File(f.into())),
            // 0, 1 and 2 carry the JSON-RPC streams themselves.
            (None, Some(fd @ 3..=0x7fff_ffff)) => Ok(Source::Fd(fd as u32)),
            (None, Some(_)) => Err(RpcError::invalid_param(
                "passphrase_fd",
                "\"passphrase_fd\" must be an open file descriptor of 3 or more (0, 1 and 2 \
                 carry JSON-RPC)"
                    .into(),
            )),
        }
    }

    /// Reads the passphrase (to end of file), without one trailing line
    /// break.
    pub async fn read(self) -> Result<Passphrase, RpcError> {
        // A pipe blocks until its writer closes it; keep that off the
        // runtime's threads.
        tokio::task::spawn_blocking(move || self.read_blocking())
            .await
            .map_err(|_| RpcError::new(ErrorCode::Internal, "reading the passphrase failed"))?
    }

    fn describe(&self) -> String {
        match self {
            Source::File(path) => format!("the passphrase file {}", path.display()),
            Source::Fd(fd) => format!("file descriptor {fd}"),
        }
    }

    fn read_blocking(&self) -> Result<Passphrase, RpcError> {
        let unreadable = |what: String| RpcError::new(ErrorCode::PassphraseUnreadable, what);
        let path = match self {
            Source::File(path) => path.clone(),
            // Opening /proc/self/fd/N gives the file or pipe behind an
            // inherited descriptor without unsafe code (from_raw_fd).
            Source::Fd(fd) if cfg!(target_os = "linux") => format!("/proc/self/fd/{fd}").into(),
            Source::Fd(_) => {
                return Err(unreadable(
                    "\"passphrase_fd\" works on Linux only; use \"passphrase_file\"".into(),
                ));
            }
        };
        let mut file = std::fs::File::open(&path).map_err(|e| {
            unreadable(match (self, e.kind()) {
                (Source::Fd(fd), io::ErrorKind::NotFound) => format!(
                    "file descriptor {fd} is not open in this process; start allium with it \
                     open (for example `allium headless {fd}< passphrase.txt`)"
                ),
                _ => format!("cannot open {}: {e}", self.describe()),
            })
        })?;
        // A fixed buffer, never grown: growing would leave copies of the
        // passphrase in freed memory.
        let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE_FILE + 1]);
        let mut len = 0;
        loop {
            match file.read(&mut buf[len..]) {
                Ok(0) => break,
                Ok(n) => {
                    len += n;
                    if len > MAX_PASSPHRASE_FILE {
                        return Err(unreadable(format!(
                            "{} holds more than {MAX_PASSPHRASE_FILE} bytes; it should hold \
                             only the passphrase",
                            self.describe()
                        )));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(unreadable(format!("cannot read {}: {e}", self.describe())));
                }
            }
        }
        let mut end = len;
        if buf[..end].ends_with(b"\n") {
            end -= 1;
            if buf[..end].ends_with(b"\r") {
                end -= 1;
            }
        }
        if end == 0 {
            return Err(unreadable(format!(
                "{} is empty; put the passphrase in it",
                self.describe()
            )));
        }
        let mut bytes = std::mem::take(&mut *buf);
        bytes[end..].zeroize();
        bytes.truncate(end);
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(e) => {
                e.into_bytes().zeroize();
                Err(unreadable(format!("{} is not UTF-8 text", self.describe())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn source(params: serde_json::Value) -> Result<Source, RpcError> {
        let line = json!({"jsonrpc": "2.0", "method": "m", "params": params}).to_string();
        let mut req = super::super::wire::parse(line.as_bytes()).ok().unwrap();
        Source::from_params(&mut req.params)
    }

    #[tokio::test]
    async fn one_trailing_line_break_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        for (content, want) in [
            ("pass word\n", "pass word"),
            ("pass word\r\n", "pass word"),
            ("pass word\n\n", "pass word\n"),
            ("pass word", "pass word"),
        ] {
            let path = dir.path().join("p");
            std::fs::write(&path, content).unwrap();
            let p = Source::File(path).read().await.unwrap();
            assert_eq!(p.as_str(), want);
        }
    }

    #[tokio::test]
    async fn unusable_files_are_explained() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").unwrap();
        let e = Source::File(empty).read().await.unwrap_err();
        assert_eq!(e.code, ErrorCode::PassphraseUnreadable);
        assert!(e.message.contains("is empty"), "{}", e.message);
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_PASSPHRASE_FILE + 1]).unwrap();
        let e = Source::File(big).read().await.unwrap_err();
        assert!(e.message.contains("more than"), "{}", e.message);
        let e = Source::File(dir.path().join("missing"))
            .read()
            .await
            .unwrap_err();
        assert!(e.message.contains("cannot open"), "{}", e.message);
        let e = Source::Fd(999_999).read().await.unwrap_err();
        assert!(e.message.contains("is not open"), "{}", e.message);
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn an_inherited_descriptor_is_read() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        std::fs::write(&path, "through a descriptor\n").unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let fd = u32::try_from(file.as_raw_fd()).unwrap();
        let p = Source::Fd(fd).read().await.unwrap();
        assert_eq!(p.as_str(), "through a descriptor");
    }

    #[test]
    fn exactly_one_source_and_never_the_rpc_streams() {
        assert!(source(json!({})).is_err());
        assert!(source(json!({"passphrase_file": "a", "passphrase_fd": 3})).is_err());
        assert!(source(json!({"passphrase_fd": 0})).is_err());
        assert!(source(json!({"passphrase_fd": 2})).is_err());
        assert!(source(json!({"passphrase_fd": "3"})).is_err());
        assert!(matches!(
            source(json!({"passphrase_fd": 3})),
            Ok(Source::Fd(3))
        ));
    }
}
