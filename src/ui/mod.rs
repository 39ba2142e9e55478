//! The desktop window (eframe/egui).
//!
//! It owns what the person sees and the translation of their clicks into
//! commands: [`App`] drives a [`Backend`] (open a profile) and then the
//! profile's engine through its [`EngineHandle`]. Every backend or engine
//! call runs as a task on the tokio runtime; its result, the engine's
//! events and the Tor state come back over one channel that
//! [`eframe::App::logic`] drains into a plain state before each frame, and
//! [`eframe::App::ui`] only draws that state.
//!
//! ```text
//!  ui() ──Action──▶ task on the runtime ──▶ Backend / EngineHandle
//!   ▲                                            │
//!   └── logic() ◀── Msg channel ◀── forwarder ◀──┘ (events, Tor state)
//! ```
//!
//! This file (about 700 lines: the actions and the messages are two long
//! flat enums and their two flat matches) holds the [`App`], what a click
//! asks for and where results land, and opening and locking. What the
//! open profile is asked is `session.rs`; what is shown is `state/`
//! (`apply.rs` folds results and events into it); how, `view/`.
//!
//! It must never block the UI thread on Tor, the vault or the disk (no
//! `block_on`, no file access, no waiting for a reply in `logic` or `ui`),
//! and never show text that came from a peer as anything but plain text:
//! no markup, no links, nothing fetched or loaded because of it.

mod notice;
mod peer_text;
mod session;
mod state;
mod view;
mod words;

use std::future::{Future, Ready, ready};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use allium_onion::CustomNetwork;
use allium_vault::ContactId;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::app::{AppError, Backend, Passphrase, ProfileControl, Running, TorState};
use crate::engine::{Engine, EngineError, EngineHandle};

pub use notice::{Notice, Notifier};
use state::{MainState, Screen, SessionMsg, Snapshot, UiState};

/// The window's title.
pub const TITLE: &str = "Allium";

/// The smallest the window may be made, in points.
pub const MIN_WINDOW: [f32; 2] = [760.0, 520.0];

/// Opens the window and runs it until it is closed. Call it on the main
/// thread, outside the runtime (not from inside `block_on`); every piece
/// of work runs on `runtime`. When the window closes, the open profile is
/// shut down (and saved) before this returns, for at most ten seconds.
pub fn run(backend: Arc<dyn Backend>, runtime: Handle) -> Result<(), eframe::Error> {
    let options = eframe::NativeOptions {
        viewport: eframe::egui::ViewportBuilder::default()
            .with_title(TITLE)
            .with_app_id("allium")
            .with_inner_size([980.0, 680.0])
            // Below this the contact list and a conversation no longer fit
            // side by side.
            .with_min_inner_size(MIN_WINDOW),
        ..Default::default()
    };
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let result = eframe::run_native(
        TITLE,
        options,
        Box::new(move |cc| {
            let mut app = App::new(backend, runtime, cc.egui_ctx.clone());
            app.on_shutdown = Some(done_tx);
            Ok(Box::new(app))
        }),
    );
    // The engine saves on shutdown; give it a moment, but never hang a
    // closing app on a stuck disk.
    let _ = done_rx.recv_timeout(Duration::from_secs(10));
    result
}

/// Background results, tagged with the session they belong to so that
/// nothing from a locked profile reaches the next one.
enum Msg {
    /// The profile names, and whether to hide them.
    Profiles(Result<(Vec<String>, bool), AppError>),
    OpenFailed(AppError),
    Opened(Box<Opened>),
    Deleted(String, Result<(), AppError>),
    Session(u64, SessionMsg),
}

/// A profile the backend opened, with what the window needs to drive it.
struct Opened {
    generation: u64,
    handle: EngineHandle,
    control: Arc<dyn ProfileControl>,
    /// Dropping it stops the task that forwards events and Tor states.
    stop: oneshot::Sender<()>,
    snapshot: Snapshot,
}

/// The open profile's handles. Dropping it stops forwarding its events.
struct OpenProfile {
    generation: u64,
    handle: EngineHandle,
    control: Arc<dyn ProfileControl>,
    _stop: oneshot::Sender<()>,
}

/// Sends results to the window and wakes it.
#[derive(Clone)]
struct UiSender {
    tx: mpsc::UnboundedSender<Msg>,
    ctx: eframe::egui::Context,
}

impl UiSender {
    /// Whether the window is still there to receive it.
    fn send(&self, msg: Msg) -> bool {
        let ok = self.tx.send(msg).is_ok();
        self.ctx.request_repaint();
        ok
    }

    fn session(&self, generation: u64, msg: SessionMsg) -> bool {
        self.send(Msg::Session(generation, msg))
    }
}

/// What the person asked for, collected while drawing and carried out
/// after it.
pub(crate) enum Action {
    Create {
        name: String,
        passphrase: Passphrase,
    },
    Unlock {
        name: String,
        passphrase: Passphrase,
    },
    /// Profile names are hidden: open whichever profile the passphrase
    /// opens.
    UnlockAny(Passphrase),
    /// Hide (or show again) profile names on the unlock screen.
    HideNames(bool),
    Amnesic,
    Lock,
    /// Close the window (the profile is saved and shut down on the way).
    Quit,
    /// Lock the open profile, then delete it for good.
    DeleteProfile(String),
    RetryTor,
    SetIntake(bool),
    AddContact {
        address: String,
        nickname: String,
        greeting: String,
    },
    Accept(ContactId, String),
    Reject(ContactId),
    Block(ContactId),
    Remove(ContactId),
    Rename(ContactId, String),
    SetVerified(ContactId, bool),
    Unblock(String),
    SendMessage(ContactId, String),
    SetHistory(ContactId, bool),
    /// Offer this file, or pick one with the system dialog first.
    SendFile(ContactId, Result<PathBuf, rfd::AsyncFileDialog>),
    /// Accept into this folder, or ask with the dialog.
    AcceptFile(String, Result<PathBuf, rfd::AsyncFileDialog>),
    CancelFile(String),
    OpenFolder(PathBuf),
    ChangePassphrase {
        old: Passphrase,
        new: Passphrase,
    },
    SetNetwork(Option<String>),
    SetNotificationContent(bool),
    SetDisplayName(String),
    SetAutoLock(u32),
    /// Where accepted files go without asking (empty: ask each time).
    SetDownloadFolder(String),
}

/// The Allium window.
pub struct App {
    backend: Arc<dyn Backend>,
    runtime: Handle,
    sender: UiSender,
    rx: mpsc::UnboundedReceiver<Msg>,
    state: UiState,
    session: Option<OpenProfile>,
    /// Counts opened sessions; messages from older ones are dropped.
    generation: u64,
    /// The screen to go back to if opening a profile fails.
    back_to: Screen,
    notifier: Notifier,
    throttle: notice::Throttle,
    /// Told when the engine finished shutting down after the window closed.
    on_shutdown: Option<std::sync::mpsc::Sender<()>>,
    /// What the auto-lock reads the time from.
    clock: Clock,
    /// The last time the person touched the window, by `clock` and by
    /// the wall clock.
    last_activity: std::time::Instant,
    last_activity_wall: std::time::SystemTime,
    /// The notice on screen and since when (see `expire_notice`).
    notice_since: Option<(String, std::time::Instant)>,
}

/// How long a notice stays before it goes by itself.
pub const NOTICE_SHOWN: Duration = Duration::from_secs(20);

/// A source of the current time (tests move it forward).
pub type Clock = Arc<dyn Fn() -> std::time::Instant + Send + Sync>;

impl App {
    /// A window over `backend`; all work runs on `runtime`, and `ctx` is
    /// woken whenever a result or an event arrives. Starts by listing the
    /// profiles (in the background).
    pub fn new(backend: Arc<dyn Backend>, runtime: Handle, ctx: eframe::egui::Context) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = UiSender { tx, ctx };
        install_emoji_font(&sender.ctx);
        let notifier = notice::desktop(runtime.clone());
        let clock: Clock = Arc::new(std::time::Instant::now);
        let last_activity = clock();
        let mut app = App {
            backend,
            runtime,
            sender,
            rx,
            state: UiState::default(),
            session: None,
            generation: 0,
            back_to: Screen::Create,
            notifier,
            throttle: notice::Throttle::default(),
            on_shutdown: None,
            clock,
            last_activity,
            last_activity_wall: std::time::SystemTime::now(),
            notice_since: None,
        };
        app.list_profiles();
        app
    }

    /// Replaces the desktop notifications (tests record them instead).
    pub fn with_notifier(mut self, notifier: Notifier) -> Self {
        self.notifier = notifier;
        self
    }

    /// Replaces the clock the auto-lock reads (tests move it forward
    /// instead of waiting minutes).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.last_activity = clock();
        self.last_activity_wall = std::time::SystemTime::now();
        self.clock = clock;
        self
    }

    /// Locks the profile once the window has gone unused for the time set
    /// in the settings; otherwise asks to be woken when that time comes.
    fn auto_lock(&mut self, ctx: &eframe::egui::Context) {
        let now = (self.clock)();
        let wall = std::time::SystemTime::now();
        let touched = ctx.input(|i| !i.events.is_empty() || i.pointer.is_moving());
        // How long nobody touched the window, measured before this frame's
        // input counts: the click that wakes a window after a long gap
        // (a laptop that slept, a minimized window that got no frames) must
        // find it locked, not reset the timer. The monotonic clock stops
        // during suspend on Linux and macOS; the wall clock does not.
        let idle = now.saturating_duration_since(self.last_activity).max(
            wall.duration_since(self.last_activity_wall)
                .unwrap_or_default(),
        );
        if touched {
            self.last_activity = now;
            self.last_activity_wall = wall;
        }
        let Some(main) = &self.state.main else {
            return;
        };
        let minutes = main.settings.auto_lock_minutes;
        // An amnesic session is never locked: that would erase it.
        if minutes == 0 || main.is_amnesic() {
            return;
        }
        let limit = Duration::from_secs(u64::from(minutes) * 60);
        if idle >= limit {
            self.lock();
            self.state.unlock.notice = Some(format!(
                "Allium locked your profile after {} without use.",
                words::minutes(minutes)
            ));
        } else if touched {
            ctx.request_repaint_after(limit);
        } else {
            ctx.request_repaint_after(limit - idle);
        }
    }

    /// A notice that is not an error ("Bea accepted your request") goes
    /// by itself after [`NOTICE_SHOWN`]; errors stay until dismissed.
    fn expire_notice(&mut self, ctx: &eframe::egui::Context) {
        let now = (self.clock)();
        let Some(main) = &mut self.state.main else {
            self.notice_since = None;
            return;
        };
        match (&main.notice, &self.notice_since) {
            (None, _) => self.notice_since = None,
            (Some(text), Some((seen, since))) if text == seen => {
                let shown = now.saturating_duration_since(*since);
                if shown >= NOTICE_SHOWN {
                    main.notice = None;
                    self.notice_since = None;
                } else {
                    ctx.request_repaint_after(NOTICE_SHOWN - shown);
                }
            }
            (Some(text), _) => {
                self.notice_since = Some((text.clone(), now));
                ctx.request_repaint_after(NOTICE_SHOWN);
            }
        }
    }

    fn list_profiles(&mut self) {
        self.state.screen = Screen::Loading;
        let backend = self.backend.clone();
        let sender = self.sender.clone();
        // The real backend reads a directory: not on the UI thread.
        self.runtime.spawn_blocking(move || {
            let listed = backend.profiles().map(|p| (p, backend.names_hidden()));
            sender.send(Msg::Profiles(listed));
        });
    }

    /// Folds one background result into the state.
    fn receive(&mut self, msg: Msg, focused: bool) {
        match msg {
            Msg::Profiles(Ok((names, hidden))) => {
                self.state.start_error = None;
                self.state.names_hidden = hidden;
                if self.state.unlock.profile.is_none() {
                    self.state.unlock.profile = names.first().cloned();
                }
                self.state.screen = if names.is_empty() {
                    Screen::Create
                } else {
                    Screen::Unlock
                };
                self.state.profiles = names;
            }
            Msg::Profiles(Err(e)) => {
                self.state.start_error = Some(state::capitalize(&e.to_string()));
                self.state.screen = Screen::Create;
            }
            Msg::Deleted(name, r) => {
                // Where names are hidden, the notice does not show one.
                let what = if self.state.names_hidden {
                    "The profile".to_owned()
                } else {
                    format!("The profile \"{name}\"")
                };
                self.state.notice = Some(match r {
                    Ok(()) => Ok(format!("{what} is deleted from this computer.")),
                    Err(e) => Err(format!("{what} could not be deleted: {e}.")),
                });
                self.list_profiles();
            }
            Msg::OpenFailed(e) => {
                // Back to the form the person came from, with the reason.
                let text = Some(state::capitalize(&e.to_string()));
                if self.back_to == Screen::Unlock {
                    self.state.unlock.error = text;
                } else {
                    self.state.create.error = text;
                }
                self.state.screen = self.back_to.clone();
            }
            Msg::Opened(o) => {
                let o = *o;
                if o.generation != self.generation {
                    return;
                }
                let mut main = MainState::new(o.snapshot);
                main.names_hidden = self.state.names_hidden;
                self.state.main = Some(main);
                self.state.screen = Screen::Main;
                self.state.create = Default::default();
                self.state.unlock.passphrase = Default::default();
                self.state.unlock.error = None;
                self.state.unlock.notice = None;
                self.state.notice = None;
                self.session = Some(OpenProfile {
                    generation: o.generation,
                    handle: o.handle,
                    control: o.control,
                    _stop: o.stop,
                });
            }
            Msg::Session(generation, msg) => {
                let current = self.session.as_ref().map(|s| s.generation);
                let Some(main) = self.state.main.as_mut() else {
                    return;
                };
                if current != Some(generation) {
                    return;
                }
                if let Some(alert) = main.apply(msg, focused) {
                    let name = match &alert {
                        state::Alert::Message { contact, .. } => main.contact_name(*contact),
                        state::Alert::Request { .. } => String::new(),
                    };
                    if let Some(held) = self.throttle.admit(std::time::Instant::now()) {
                        let n =
                            notice::notice_for(&alert, &name, main.settings.notification_content);
                        (self.notifier)(notice::with_held(n, held));
                    }
                }
            }
        }
    }

    /// Starts the work the person asked for.
    fn dispatch(&mut self, action: Action) {
        match action {
            Action::Create { name, passphrase } => {
                self.back_to = Screen::Create;
                self.state.screen = Screen::Opening("Creating your profile…");
                let fut = self.backend.create(name, passphrase);
                self.open(fut);
            }
            Action::Unlock { name, passphrase } => {
                self.back_to = Screen::Unlock;
                self.state.screen = Screen::Opening("Unlocking your profile…");
                let fut = self.backend.unlock(name, passphrase);
                self.open(fut);
            }
            Action::UnlockAny(passphrase) => {
                self.back_to = Screen::Unlock;
                self.state.screen = Screen::Opening("Unlocking your profile…");
                let backend = self.backend.clone();
                // One key derivation per profile tried, in name order; the
                // first the passphrase opens is the one. The list is read
                // again: a profile may have been made since it was shown.
                self.open(Box::pin(async move {
                    let lister = backend.clone();
                    let names = tokio::task::spawn_blocking(move || lister.profiles())
                        .await
                        .map_err(|e| AppError::Storage(e.to_string()))??;
                    // A profile that cannot be tried (open elsewhere,
                    // unreadable) must not stop the others from being
                    // tried; it is told only if none opens.
                    let mut untried = None;
                    for name in names {
                        match backend.unlock(name, passphrase.clone()).await {
                            Ok(running) => return Ok(running),
                            Err(AppError::WrongPassphrase) => {}
                            Err(e) => {
                                untried.get_or_insert(e);
                            }
                        }
                    }
                    Err(match untried {
                        None => AppError::WrongPassphrase,
                        Some(e) => AppError::Storage(format!(
                            "no profile opened with this passphrase, and one could not be \
                             tried: {e}"
                        )),
                    })
                }));
            }
            Action::HideNames(hidden) => {
                let backend = self.backend.clone();
                let sender = self.sender.clone();
                let generation = self.generation;
                if let Some(main) = &mut self.state.main {
                    main.names_hidden = hidden;
                }
                self.state.names_hidden = hidden;
                self.runtime.spawn_blocking(move || {
                    if let Err(e) = backend.hide_names(hidden) {
                        sender.session(
                            generation,
                            SessionMsg::Failed(format!("the choice was not saved: {e}")),
                        );
                    }
                });
            }
            Action::Amnesic => {
                self.back_to = self.state.screen.clone();
                self.state.screen = Screen::Opening("Starting an amnesic session…");
                let fut = self.backend.amnesic();
                self.open(fut);
            }
            Action::Lock => self.lock(),
            Action::DeleteProfile(name) => {
                self.generation += 1;
                self.state.main = None;
                self.state.screen = Screen::Opening("Deleting the profile…");
                let handle = self.session.take().map(|s| s.handle);
                let backend = self.backend.clone();
                let sender = self.sender.clone();
                self.runtime.spawn(async move {
                    if let Some(h) = handle {
                        let _ = h.shutdown().await;
                    }
                    let r = backend.delete(name.clone()).await;
                    sender.send(Msg::Deleted(name, r));
                });
            }
            Action::Quit => {
                self.sender
                    .ctx
                    .send_viewport_cmd(eframe::egui::ViewportCommand::Close);
            }
            Action::OpenFolder(folder) => {
                let sender = self.sender.clone();
                let generation = self.generation;
                self.runtime.spawn_blocking(move || {
                    if let Err(e) = open_folder(&folder) {
                        let why = if e.kind() == std::io::ErrorKind::NotFound {
                            format!(
                                "this computer has no program to open folders ({} is not \
                                 installed)",
                                FOLDER_OPENER
                            )
                        } else {
                            e.to_string()
                        };
                        sender.session(
                            generation,
                            SessionMsg::Failed(format!(
                                "the folder could not be opened: {why}. The file is in {}",
                                folder.display()
                            )),
                        );
                    }
                });
            }
            other => self.dispatch_session(other),
        }
    }

    fn open(&mut self, fut: crate::app::BoxFuture<Result<Running, AppError>>) {
        self.state.unlock.error = None;
        self.state.create.error = None;
        self.generation += 1;
        let generation = self.generation;
        let sender = self.sender.clone();
        self.runtime.spawn(async move {
            match fut.await {
                Ok(running) => session::opened(generation, running, sender).await,
                Err(e) => {
                    sender.send(Msg::OpenFailed(e));
                }
            }
        });
    }

    /// Closes the profile: the engine saves and stops in the background,
    /// and the window goes back to the unlock screen at once.
    fn lock(&mut self) {
        self.generation += 1;
        self.state.main = None;
        self.state.unlock = Default::default();
        let Some(s) = self.session.take() else {
            self.list_profiles();
            return;
        };
        // The unlock screen comes once the profile is saved and closed:
        // unlocking it sooner would find it still open (or, in memory,
        // miss its last changes).
        self.state.screen = Screen::Opening("Locking your profile…");
        let (backend, sender) = (self.backend.clone(), self.sender.clone());
        // Its events stop reaching the window now (dropping `s`).
        let handle = s.handle.clone();
        drop(s);
        self.runtime.spawn(async move {
            let _ = handle.shutdown().await;
            let listed = tokio::task::spawn_blocking(move || {
                backend.profiles().map(|p| (p, backend.names_hidden()))
            })
            .await;
            if let Ok(listed) = listed {
                sender.send(Msg::Profiles(listed));
            }
        });
    }
}

/// The program that opens a folder in the system's file manager.
#[cfg(target_os = "windows")]
const FOLDER_OPENER: &str = "explorer";
#[cfg(target_os = "macos")]
const FOLDER_OPENER: &str = "open";
#[cfg(not(any(target_os = "windows", target_os = "macos")))]
const FOLDER_OPENER: &str = "xdg-open";

/// Opens a folder in the system's file manager.
fn open_folder(folder: &std::path::Path) -> std::io::Result<()> {
    // The child is not waited for beyond its start: file managers keep
    // running.
    std::process::Command::new(FOLDER_OPENER)
        .arg(folder)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map(drop)
}

impl eframe::App for App {
    fn logic(&mut self, ctx: &eframe::egui::Context, _frame: &mut eframe::Frame) {
        let focused = ctx.input(|i| i.viewport().focused.unwrap_or(true));
        while let Ok(msg) = self.rx.try_recv() {
            self.receive(msg, focused);
        }
        self.auto_lock(ctx);
        self.expire_notice(ctx);
        // Notices held back by the throttle are told once its interval is
        // over, even if nothing else arrives.
        let now = std::time::Instant::now();
        match self.throttle.held_due(now) {
            Some(held) => (self.notifier)(notice::held_notice(held)),
            None => {
                if let Some(wait) = self.throttle.next_due(now) {
                    ctx.request_repaint_after(wait);
                }
            }
        }
    }

    fn ui(&mut self, ui: &mut eframe::egui::Ui, frame: &mut eframe::Frame) {
        let mut actions = Vec::new();
        view::draw(ui, frame, &mut self.state, &mut actions);
        for a in actions {
            self.dispatch(a);
        }
        // Nothing drawn may open a link: peer text is never a link, and
        // this keeps a future mistake from opening a browser.
        ui.ctx().output_mut(|o| {
            o.commands
                .retain(|c| !matches!(c, eframe::egui::OutputCommand::OpenUrl(_)));
        });
    }

    fn on_exit(&mut self) {
        self.generation += 1;
        let done = self.on_shutdown.take();
        if let Some(s) = self.session.take() {
            let handle = s.handle;
            self.runtime.spawn(async move {
                let _ = handle.shutdown().await;
                if let Some(d) = done {
                    let _ = d.send(());
                }
            });
        }
    }
}

/// Adds the bundled emoji font (`assets/fonts/`) as the last fallback of
/// both families, so emoji in messages render on any desktop.
fn install_emoji_font(ctx: &eframe::egui::Context) {
    use eframe::egui::{FontData, FontFamily, FontInsert, FontPriority, InsertFontFamily};
    let families = [FontFamily::Proportional, FontFamily::Monospace]
        .into_iter()
        .map(|family| InsertFontFamily {
            family,
            priority: FontPriority::Lowest,
        })
        .collect();
    ctx.add_font(FontInsert::new(
        "Noto Emoji (bundled)",
        FontData::from_static(include_bytes!("../../assets/fonts/NotoEmoji-Regular.ttf")),
        families,
    ));
}

/// A passphrase typed into a form, moved out of it so that the form keeps
/// no copy.
pub(crate) fn take_passphrase(field: &mut Zeroizing<String>) -> Passphrase {
    Zeroizing::new(std::mem::take(&mut **field))
}
