//! One tor child process: spawning it, watching it, reading its log, and
//! ending it.
//!
//! Every tor this crate starts is a `TorProcess`, and a `TorProcess` never
//! outlives its handle: dropping it stops the process (SIGTERM, then SIGKILL
//! after a short wait) and reaps it. Its torrc names our pid as
//! `__OwningControllerProcess`, so tor also exits by itself if we die
//! without running any destructor. This module never signals a process it
//! did not start.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::Error;

/// How long tor gets to exit after SIGTERM before it is killed. Tor exits
/// at once on SIGTERM; this is only a bound.
const GRACE: Duration = Duration::from_secs(5);

/// Where a node keeps its files: everything under one directory.
#[derive(Clone, Debug)]
pub(crate) struct NodeLayout {
    dir: PathBuf,
}

impl NodeLayout {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
    pub(crate) fn torrc(&self) -> PathBuf {
        self.dir.join("torrc")
    }
    /// Tor's `DataDirectory` (keys, cached consensus, state).
    pub(crate) fn data(&self) -> PathBuf {
        self.dir.join("data")
    }
    /// The notice-level log.
    pub(crate) fn log(&self) -> PathBuf {
        self.dir.join("notice.log")
    }
    /// The onion-service log of a client hosting a service (the `rend`
    /// domain at info level: it says when a descriptor was uploaded).
    pub(crate) fn service_log(&self) -> PathBuf {
        self.dir.join("service.log")
    }
    /// Tor's `PidFile`, used by `down` to find nodes an owner left behind.
    pub(crate) fn pid_file(&self) -> PathBuf {
        self.dir.join("tor.pid")
    }
    /// What tor prints before it opens its log (for example a bad option).
    pub(crate) fn stdout_log(&self) -> PathBuf {
        self.dir.join("stdout.log")
    }

    /// Creates the node directory and a data directory that only we can
    /// read (tor insists on mode 0700).
    pub(crate) fn create(&self) -> Result<(), Error> {
        let data = self.data();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&data)
            .map_err(Error::io(format!("creating {}", data.display())))
    }
}

/// A running tor, owned by us.
#[derive(Debug)]
pub(crate) struct TorProcess {
    name: String,
    child: Child,
    layout: NodeLayout,
    exited: Option<ExitStatus>,
}

impl TorProcess {
    /// Starts `tor -f TORRC` from `layout` as a child in its own process
    /// group (so a Ctrl-C in a terminal reaches only us, and we stop tor in
    /// order), with stdout and stderr in the layout's `stdout.log`.
    pub(crate) fn spawn(tor: &Path, name: &str, layout: &NodeLayout) -> Result<Self, Error> {
        let stdout_log = layout.stdout_log();
        let out = File::create(&stdout_log)
            .map_err(Error::io(format!("creating {}", stdout_log.display())))?;
        let err = out
            .try_clone()
            .map_err(Error::io(format!("opening {}", stdout_log.display())))?;
        let child = Command::new(tor)
            // No system-wide defaults: the torrc says everything.
            .args(["--defaults-torrc", "/dev/null", "-f"])
            .arg(layout.torrc())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(Error::io(format!(
                "starting {} for node {name}",
                tor.display()
            )))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            layout: layout.clone(),
            exited: None,
        })
    }

    pub(crate) fn layout(&self) -> &NodeLayout {
        &self.layout
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn log_path(&self) -> PathBuf {
        self.layout.log()
    }

    /// How the process ended, if it has (reaping it).
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited
    }

    /// The error to report when the process ended by itself.
    pub(crate) fn exited_error(&self, status: ExitStatus) -> Error {
        Error::NodeExited {
            node: self.name.clone(),
            status: status.to_string(),
            log: self.layout.log(),
            tail: self.log_tail(),
        }
    }

    /// The last lines of the notice log, or of stdout if tor failed before
    /// it opened its log.
    pub(crate) fn log_tail(&self) -> String {
        tail_of(&self.layout.log(), 15)
            .or_else(|| tail_of(&self.layout.stdout_log(), 15))
            .unwrap_or_else(|| "(nothing logged yet)".to_owned())
    }

    /// Whether either log contains `needle`.
    pub(crate) fn log_contains(&self, needle: &str) -> bool {
        [self.layout.log(), self.layout.stdout_log()]
            .iter()
            .any(|path| {
                fs::read_to_string(path)
                    .map(|text| text.contains(needle))
                    .unwrap_or(false)
            })
    }
}

impl Drop for TorProcess {
    fn drop(&mut self) {
        stop_all(std::slice::from_mut(self));
    }
}

/// Stops every process in `processes` at once: SIGTERM to all, up to
/// [`GRACE`] for them to exit, then SIGKILL to the rest; every child is
/// reaped before this returns.
pub(crate) fn stop_all(processes: &mut [TorProcess]) {
    for process in processes.iter_mut() {
        if process.exit_status().is_none() {
            // Our own child, not yet reaped, so the pid is still ours.
            let _ = kill_process(Pid::from_child(&process.child), Signal::TERM);
        }
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline
        && processes
            .iter_mut()
            .any(|process| process.exit_status().is_none())
    {
        thread::sleep(Duration::from_millis(20));
    }
    for process in processes.iter_mut() {
        if process.exit_status().is_none() {
            let _ = process.child.kill();
            process.exited = process.child.wait().ok();
        }
    }
}

/// The last `lines` lines of a text file (looking at most at its last
/// 64 KiB), or `None` if it cannot be read or is empty.
pub(crate) fn tail_of(path: &Path, lines: usize) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))
        .ok()?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    let tail = all[all.len().saturating_sub(lines)..].join("\n");
    (!tail.trim().is_empty()).then_some(tail)
}
