//! The file work that blocks: opening, reading, writing, syncing,
//! hashing, placing and removing files. The core asks for it as
//! [`FileJob`]s; the shell (or the simulator) runs them off the engine's
//! task and hands back a [`FileDone`]. Nothing here knows about contacts
//! or sessions.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use allium_protocol::{CancelReason, TransferId};
use allium_vault::ContactId;
use sha2::{Digest, Sha256};

use super::super::{Event, TransferView};
use super::hex_id;

/// File work for the shell to run on a blocking thread.
pub(crate) enum FileJob {
    /// The size of a file the person wants to send (and that it is one).
    Inspect { transfer: TransferId, path: PathBuf },
    /// Hash a file we are about to offer.
    Hash { transfer: TransferId, path: PathBuf },
    /// Open a file we offered, at the byte the receiver asked for.
    Open {
        transfer: TransferId,
        io: u64,
        path: PathBuf,
        offset: u64,
    },
    /// Read the next `len` bytes of it.
    Read {
        transfer: TransferId,
        io: u64,
        file: File,
        len: usize,
    },
    /// Create the hidden partial file for a file we accepted.
    Create {
        transfer: TransferId,
        io: u64,
        folder: PathBuf,
    },
    /// Append received bytes to the partial file.
    Write {
        transfer: TransferId,
        io: u64,
        file: File,
        data: Vec<u8>,
    },
    /// Sync a received file, check what reached the disk and give it its
    /// final name.
    Place {
        transfer: TransferId,
        contact: ContactId,
        view: TransferView,
        file: File,
        partial: PathBuf,
        folder: PathBuf,
        name: String,
        digest: [u8; 32],
    },
    /// Remove a partial file that will not be finished, then tell the
    /// sender and the person (if given): the data is gone before anyone
    /// hears that the transfer ended.
    Remove {
        path: PathBuf,
        then: Option<Cancel>,
        event: Option<Box<Event>>,
    },
}

/// What file work found, back to the core. `io` ties a result to the
/// reader or writer that asked: one reset since (a new session, a resume)
/// makes the result stale, and the core drops it.
pub(crate) enum FileDone {
    Inspected {
        transfer: TransferId,
        result: Result<u64, String>,
    },
    Hashed {
        transfer: TransferId,
        result: Result<[u8; 32], String>,
    },
    Opened {
        transfer: TransferId,
        io: u64,
        result: Result<File, String>,
    },
    Read {
        transfer: TransferId,
        io: u64,
        result: Result<(File, Vec<u8>), String>,
    },
    Created {
        transfer: TransferId,
        io: u64,
        folder: PathBuf,
        result: Result<(PathBuf, File), String>,
    },
    Written {
        transfer: TransferId,
        io: u64,
        len: u64,
        result: Result<File, String>,
    },
    Placed {
        transfer: TransferId,
        contact: ContactId,
        view: TransferView,
        result: Result<PathBuf, (CancelReason, String)>,
    },
    Removed {
        then: Option<Cancel>,
        event: Option<Box<Event>>,
    },
}

/// A FILE_CANCEL to send once its partial file is removed.
pub(crate) struct Cancel {
    pub(crate) contact: ContactId,
    pub(crate) transfer: TransferId,
    pub(crate) reason: CancelReason,
}

impl FileJob {
    /// Does the work (blocking).
    pub(crate) fn run(self) -> FileDone {
        match self {
            FileJob::Inspect { transfer, path } => FileDone::Inspected {
                transfer,
                result: inspect(&path),
            },
            FileJob::Hash { transfer, path } => FileDone::Hashed {
                transfer,
                result: hash_file(&path),
            },
            FileJob::Open {
                transfer,
                io,
                path,
                offset,
            } => {
                let opened = File::open(&path).and_then(|mut f| {
                    f.seek(SeekFrom::Start(offset))?;
                    Ok(f)
                });
                FileDone::Opened {
                    transfer,
                    io,
                    result: opened.map_err(|e| format!("could not read the file: {e}")),
                }
            }
            FileJob::Read {
                transfer,
                io,
                mut file,
                len,
            } => {
                let mut data = vec![0u8; len];
                let read = file.read_exact(&mut data).map(|()| (file, data));
                FileDone::Read {
                    transfer,
                    io,
                    result: read.map_err(|e| format!("could not read the file: {e}")),
                }
            }
            FileJob::Create {
                transfer,
                io,
                folder,
            } => {
                let result = create_partial(&folder, &transfer, io);
                FileDone::Created {
                    transfer,
                    io,
                    folder,
                    result,
                }
            }
            FileJob::Write {
                transfer,
                io,
                mut file,
                data,
            } => {
                let written = file.write_all(&data).map(|()| file);
                FileDone::Written {
                    transfer,
                    io,
                    len: data.len() as u64,
                    result: written.map_err(|e| format!("could not write the file: {e}")),
                }
            }
            FileJob::Place {
                transfer,
                contact,
                view,
                file,
                partial,
                folder,
                name,
                digest,
            } => {
                let result = check_and_place(file, &partial, &folder, &name, digest);
                if result.is_err() {
                    let _ = std::fs::remove_file(&partial);
                }
                FileDone::Placed {
                    transfer,
                    contact,
                    view,
                    result,
                }
            }
            FileJob::Remove { path, then, event } => {
                let _ = std::fs::remove_file(&path);
                FileDone::Removed { then, event }
            }
        }
    }
}

/// The size of a file to send, or why it cannot be sent.
fn inspect(path: &Path) -> Result<u64, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("could not read {}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a file", path.display()));
    }
    Ok(meta.len())
}

/// The hidden partial file of `transfer` in `folder` for the accept
/// numbered `io`, created exclusively and readable by us alone. Its name
/// is this accept's own, so that removing the file of an earlier accept
/// (cancelled, and not yet cleaned up) can never remove this one. Earlier
/// partial files of the same transfer (a crash, an accept since cancelled)
/// are ours by name and go first.
fn create_partial(
    folder: &Path,
    transfer: &TransferId,
    io: u64,
) -> Result<(PathBuf, File), String> {
    if !folder.is_dir() {
        return Err(format!(
            "{} is not a folder; choose another",
            folder.display()
        ));
    }
    let prefix = format!(".allium-{}", hex_id(transfer));
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let ours = name
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".part"));
            if ours {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let partial = folder.join(format!("{prefix}-{io}.part"));
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let file = opts
        .open(&partial)
        .map_err(|e| format!("could not write into {}: {e}", folder.display()))?;
    Ok((partial, file))
}

/// A name safe to create in the chosen folder: one component, no leading
/// dots (no hidden or special files), no separators or control characters
/// (already refused by the protocol, checked again here), not empty.
pub(crate) fn sanitize_file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '/' | '\\' | ':' | '\0') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let trimmed = cleaned.trim_start_matches(['.', ' ']).trim_end();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 200 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() {
        "received file".to_owned()
    } else {
        out
    }
}

/// `name`, or `name (1).ext`, `name (2).ext`, … : the first that does not
/// exist. Creation itself is exclusive (hard link), so a race cannot
/// overwrite either.
fn candidate(folder: &Path, name: &str, n: u32) -> PathBuf {
    if n == 0 {
        return folder.join(name);
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => folder.join(format!("{stem} ({n}).{ext}")),
        _ => folder.join(format!("{name} ({n})")),
    }
}

fn place_without_overwriting(
    partial: &Path,
    folder: &Path,
    name: &str,
) -> std::io::Result<PathBuf> {
    for n in 0..1000 {
        let target = candidate(folder, name, n);
        let linked = std::fs::hard_link(partial, &target);
        let placed = match linked {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // FAT, exFAT and some network file systems have no hard links:
            // an exclusive create and a copy never replace a file either.
            Err(_) => copy_exclusive(partial, &target),
            ok => ok,
        };
        match placed {
            Ok(()) => {
                let _ = std::fs::remove_file(partial);
                return Ok(target);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::AlreadyExists,
        "too many files with this name in the folder",
    ))
}

fn copy_exclusive(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = File::open(from)?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(to)?;
    let copied = std::io::copy(&mut src, &mut dst).and_then(|_| dst.sync_all());
    if copied.is_err() {
        let _ = std::fs::remove_file(to);
    }
    copied
}

/// Syncs the received file, checks the digest of what is on disk (not only
/// of what we meant to write), and gives it its final name.
fn check_and_place(
    file: File,
    partial: &Path,
    folder: &Path,
    name: &str,
    digest: [u8; 32],
) -> Result<PathBuf, (CancelReason, String)> {
    let io = |e: std::io::Error| (CancelReason::Io, format!("could not save the file: {e}"));
    file.sync_all().map_err(io)?;
    drop(file);
    let on_disk = hash_file(partial).map_err(|e| (CancelReason::Io, e))?;
    if on_disk != digest {
        return Err((
            CancelReason::DigestMismatch,
            reason_words(CancelReason::DigestMismatch).into(),
        ));
    }
    place_without_overwriting(partial, folder, name).map_err(io)
}

fn hash_file(path: &Path) -> Result<[u8; 32], String> {
    let mut f = File::open(path).map_err(|e| format!("could not read the file: {e}"))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("could not read the file: {e}"))?;
        if n == 0 {
            break;
        }
        h.update(buf.get(..n).unwrap_or_default());
    }
    Ok(h.finalize().into())
}

pub(super) fn reason_words(r: CancelReason) -> &'static str {
    match r {
        CancelReason::ByUser => "declined or cancelled",
        CancelReason::DigestMismatch => "the file arrived damaged (its digest did not match)",
        CancelReason::TooLarge => "the file is larger than the receiver accepts",
        CancelReason::Io => "the file could not be read or written",
        CancelReason::Protocol => "the other side broke the transfer rules",
        _ => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(sanitize_file_name("report.pdf"), "report.pdf");
        assert_eq!(sanitize_file_name("..bashrc"), "bashrc");
        assert_eq!(sanitize_file_name(".hidden"), "hidden");
        assert_eq!(sanitize_file_name("a/b\\c"), "a_b_c");
        assert_eq!(sanitize_file_name("x\u{7}y"), "x_y");
        assert_eq!(sanitize_file_name("..."), "received file");
        assert_eq!(sanitize_file_name("C:evil"), "C_evil");
        assert!(sanitize_file_name(&"é".repeat(200)).len() <= 200);
    }

    /// Where the folder cannot take a hard link of the partial file (FAT,
    /// exFAT, some network file systems; here: a different file system),
    /// the file is still placed, by an exclusive copy, without replacing
    /// anything (review finding L3).
    #[test]
    fn placing_falls_back_to_a_copy_where_hard_links_fail() {
        use std::os::unix::fs::MetadataExt;
        let shm = tempfile::tempdir_in("/dev/shm").expect("a directory in /dev/shm");
        let disk = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).expect("tempdir");
        let dev = |p: &Path| std::fs::metadata(p).expect("metadata").dev();
        assert_ne!(
            dev(shm.path()),
            dev(disk.path()),
            "the test needs /dev/shm on another file system than the source tree"
        );
        let partial = shm.path().join(".part");
        std::fs::write(&partial, b"new").expect("write");
        assert!(std::fs::hard_link(&partial, disk.path().join("probe")).is_err());
        std::fs::write(disk.path().join("a.txt"), b"old").expect("write");
        let placed = place_without_overwriting(&partial, disk.path(), "a.txt").expect("placed");
        assert_eq!(placed, disk.path().join("a (1).txt"));
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert_eq!(
            std::fs::read(disk.path().join("a.txt")).expect("read"),
            b"old"
        );
        assert!(!partial.exists());
    }

    #[test]
    fn existing_files_are_never_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), b"old").expect("write");
        std::fs::write(dir.path().join("a (1).txt"), b"old").expect("write");
        let partial = dir.path().join(".part");
        std::fs::write(&partial, b"new").expect("write");
        let placed = place_without_overwriting(&partial, dir.path(), "a.txt").expect("placed");
        assert_eq!(placed, dir.path().join("a (2).txt"));
        assert_eq!(
            std::fs::read(dir.path().join("a.txt")).expect("read"),
            b"old"
        );
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert!(!partial.exists());
    }
}
