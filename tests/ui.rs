//! The window, driven like a person would through AccessKit (egui_kittest),
//! over the in-memory network: the real `App`, the real engine, and other
//! peers on the same network driven from the test through their engines.
//!
//! The engines work on runtime threads while the test steps frames, so
//! every wait steps the window and sleeps a little until what it waits
//! for is on screen; the bound only turns a hang into a failure.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};

use allium::app::{
    AppError, Backend, BoxFuture, MemoryBackend, Passphrase, ProfileControl, Running, TorState,
};
use allium::engine::{EngineConfig, EngineHandle, Event};
use allium::ui::{App, Notice};
use allium_onion::MemoryNetwork;
use allium_vault::ContactId;
use eframe::egui::accesskit::Role;
use eframe::egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use tokio::sync::mpsc::Receiver;
use tokio::sync::watch;
use zeroize::Zeroizing;

/// A passphrase the floor accepts.
const STRONG: &str = "vivid unpaved frisbee tycoon";

/// Only a failing test waits this long.
const PATIENCE: Duration = Duration::from_secs(30);

fn config() -> EngineConfig {
    EngineConfig {
        backoff_initial: Duration::from_millis(50),
        backoff_max: Duration::from_millis(500),
        ..EngineConfig::default()
    }
}

/// A runtime, the window's backend, and the notifications it showed.
struct World {
    rt: tokio::runtime::Runtime,
    backend: MemoryBackend,
    config: EngineConfig,
    notices: Arc<Mutex<Vec<Notice>>>,
}

impl World {
    fn new() -> World {
        World::with_config(config())
    }

    fn with_config(config: EngineConfig) -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        World {
            rt,
            backend: MemoryBackend::new(MemoryNetwork::new(), config.clone()),
            config,
            notices: Arc::default(),
        }
    }

    fn window(&self) -> Harness<'static, App> {
        self.window_over(Arc::new(self.backend.clone()))
    }

    fn window_over(&self, backend: Arc<dyn Backend>) -> Harness<'static, App> {
        let runtime = self.rt.handle().clone();
        let notices = self.notices.clone();
        Harness::builder()
            .with_size([1100.0, 760.0])
            .build_eframe(move |cc| {
                App::new(backend, runtime, cc.egui_ctx.clone()).with_notifier(Arc::new(
                    move |n: Notice| notices.lock().expect("notices").push(n),
                ))
            })
    }

    /// Another person on the same network, in an amnesic session.
    fn peer(&self, name: &str) -> Peer {
        let other = MemoryBackend::new(self.backend.network().clone(), self.config.clone());
        let Running { engine, .. } = self.rt.block_on(other.amnesic()).expect("peer");
        let peer = Peer {
            handle: engine.handle,
            events: engine.events,
            address: engine.address.to_address(),
        };
        self.rt
            .block_on(peer.handle.set_display_name(name))
            .expect("display name");
        // Amnesic sessions start with no public address; this one has one
        // so the window can send it a request.
        self.rt
            .block_on(peer.handle.set_intake(true))
            .expect("intake on");
        peer
    }

    fn wait(&self, peer: &mut Peer, what: &str, f: impl Fn(&Event) -> bool) -> Event {
        self.rt.block_on(async {
            let deadline = tokio::time::Instant::now() + PATIENCE;
            loop {
                match tokio::time::timeout_at(deadline, peer.events.recv()).await {
                    Ok(Some(e)) if f(&e) => return e,
                    Ok(Some(_)) => {}
                    Ok(None) => panic!("peer stopped while waiting for {what}"),
                    Err(_) => panic!("timed out waiting for {what}"),
                }
            }
        })
    }

    /// Waits for the request the window sent, and returns its id at the peer.
    fn request_at(&self, peer: &mut Peer) -> (ContactId, String) {
        let e = self.wait(peer, "the request", |e| {
            matches!(e, Event::RequestReceived { .. })
        });
        let Event::RequestReceived { contact } = e else {
            unreachable!()
        };
        (contact.id, contact.greeting)
    }
}

struct Peer {
    handle: EngineHandle,
    events: Receiver<Event>,
    address: String,
}

/// Steps the window until `cond` holds.
#[track_caller]
fn step_until(h: &mut Harness<'_, App>, what: &str, cond: impl Fn(&Harness<'_, App>) -> bool) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        h.step();
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether something on screen is labelled exactly `label` (once or more).
fn shows(h: &Harness<'_, App>, label: &str) -> bool {
    h.query_all_by_label(label).next().is_some()
}

/// Whether something on screen has `part` in its label.
fn shows_part(h: &Harness<'_, App>, part: &str) -> bool {
    h.query_all_by_label_contains(part).next().is_some()
}

fn click(h: &mut Harness<'_, App>, label: &str) {
    // A pointer click lands where the widget is on screen: one scrolled
    // out of view (the settings page is taller than the window) is
    // clicked through AccessKit, as a screen reader does.
    let node = h.get_by_label(label);
    if h.ctx.content_rect().contains_rect(node.rect()) {
        node.click();
    } else {
        node.click_accesskit();
    }
    h.step();
    h.step();
}

/// Types into an empty field.
fn fill(h: &mut Harness<'_, App>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
    h.step();
}

/// Replaces what a field holds.
fn replace(h: &mut Harness<'_, App>, label: &str, text: &str) {
    h.get_by_label(label).focus();
    h.step();
    h.key_press_modifiers(Modifiers::COMMAND, Key::A);
    h.step();
    h.get_by_label(label).type_text(text);
    h.step();
    h.step();
}

/// The address the window shows as ours.
fn shown_address(h: &Harness<'_, App>) -> String {
    let is_address = |t: &str| t.starts_with("allium:") && t.len() == 63;
    let node = h.get_by(move |n| n.value().is_some_and(|v| is_address(&v)));
    node.accesskit_node().value().expect("text")
}

fn create_profile(h: &mut Harness<'_, App>) {
    step_until(h, "the welcome screen", |h| shows(h, "Create profile"));
    fill(h, "Profile name", "work");
    fill(h, "Passphrase", STRONG);
    fill(h, "Repeat the passphrase", STRONG);
    click(h, "Create profile");
    step_until(h, "the main window", |h| shows(h, "My address"));
}

/// Adds `peer` from the window and has it accept; returns the window's
/// id at the peer.
fn befriend(w: &World, h: &mut Harness<'_, App>, peer: &mut Peer, name: &str) -> ContactId {
    click(h, "Add contact");
    fill(h, "Their address", &peer.address);
    step_until(h, "the address to be accepted", |h| {
        shows(h, "This address looks right.")
    });
    fill(h, "Name for them", name);
    fill(h, "Message with your request", "hi, it is me");
    click(h, "Send request");
    let (id, greeting) = w.request_at(peer);
    assert_eq!(greeting, "hi, it is me");
    w.rt.block_on(peer.handle.accept(id, Some("work")))
        .expect("accept");
    let online = format!("{name} — online");
    step_until(h, "the contact to be online", |h| shows(h, &online));
    id
}

#[test]
fn onboarding_refuses_a_guessable_passphrase_and_checks_the_confirmation() {
    let w = World::new();
    let mut h = w.window();
    step_until(&mut h, "the welcome screen", |h| shows(h, "Create profile"));
    // With no profile yet, both first choices are offered.
    assert!(shows(&h, "Start amnesic session"));
    // A name is asked for first, and the error goes once one is typed.
    click(&mut h, "Create profile");
    assert!(shows(&h, "Choose a name for the profile."));
    fill(&mut h, "Profile name", "work");
    assert!(!shows(&h, "Choose a name for the profile."));

    // The floor: "abc" creates nothing, and says why in plain words.
    fill(&mut h, "Passphrase", "abc");
    assert!(shows(&h, "Strength: very weak"), "a strength hint");
    fill(&mut h, "Repeat the passphrase", "abc");
    click(&mut h, "Create profile");
    step_until(&mut h, "the floor's refusal", |h| {
        shows_part(
            h,
            "This passphrase is too easy to guess: someone who takes this computer",
        )
    });
    assert!(!shows(&h, "My address"));
    assert!(w.backend.profiles().expect("profiles").is_empty());
    // So does a famous example passphrase.
    replace(&mut h, "Passphrase", "correct horse battery staple");
    assert!(shows_part(&h, "This is a famous example passphrase."));

    // A suggested one: six words, shown in clear, and accepted.
    click(&mut h, "Suggest a passphrase");
    let suggested = h
        .get_by(|n| {
            n.role() == Role::Label
                && n.value().is_some_and(|v| {
                    v.split(' ').count() == 6
                        && v.chars()
                            .all(|c| c.is_ascii_lowercase() || c == ' ' || c == '-')
                })
        })
        .accesskit_node()
        .value()
        .expect("the suggestion");
    assert!(shows(&h, "Strength: strong"));
    // A mistyped confirmation is caught.
    replace(&mut h, "Repeat the passphrase", &format!("{suggested}x"));
    click(&mut h, "Create profile");
    step_until(&mut h, "the mismatch error", |h| {
        shows(h, "The two passphrases differ; type them again")
    });
    assert!(w.backend.profiles().expect("profiles").is_empty());

    fill(&mut h, "Repeat the passphrase", &suggested);
    click(&mut h, "Create profile");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    assert_eq!(w.backend.profiles().expect("profiles"), vec!["work"]);
    let address = shown_address(&h);
    assert!(
        allium_protocol::OnionId::parse(&address).is_ok(),
        "{address}"
    );
    assert!(shows(&h, "Copy address"));
    assert!(shows(&h, "Accept new contact requests"));
    assert!(shows_part(&h, "nobody new can send you a request"));
    click(&mut h, "Show QR code");
    assert!(shows(&h, "QR code of your address"));
    // A profile is not amnesic, and says so by not showing the banner.
    assert!(!shows(&h, "Amnesic session — nothing is saved"));
    // Lock and Quit are in sight, not in a menu.
    assert!(shows(&h, "Lock") && shows(&h, "Quit") && shows(&h, "Settings"));
    h.check_accessibility();
}

#[test]
fn an_amnesic_session_says_that_nothing_is_saved() {
    let w = World::new();
    let mut h = w.window();
    step_until(&mut h, "the welcome screen", |h| {
        shows(h, "Start amnesic session")
    });
    click(&mut h, "Start amnesic session");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    assert!(shows(&h, "Amnesic session — nothing is saved"));
    assert!(w.backend.profiles().expect("profiles").is_empty());
    // A source needs no public address: it is off, and says so.
    let intake = h.get_by_label("Accept new contact requests");
    assert_eq!(
        intake.accesskit_node().toggled(),
        Some(eframe::egui::accesskit::Toggled::False)
    );
    assert!(shows_part(&h, "Requests are off"));
    assert!(shows(&h, "Quit"));
    // The request form warns a source, and does not ask who they are.
    click(&mut h, "Add contact");
    assert!(shows(
        &h,
        "Don't include your name or anything that identifies you unless you mean to."
    ));
    assert!(!shows_part(&h, "say who you are"));
    click(&mut h, "Cancel");
    click(&mut h, "End session (erases everything)");
    step_until(&mut h, "the welcome screen again", |h| {
        shows(h, "Create profile")
    });
}

#[test]
fn wrong_passphrase_is_explained_and_the_right_one_unlocks() {
    let w = World::new();
    let running =
        w.rt.block_on(
            w.backend
                .create("home".into(), Zeroizing::new("river lamp stone".into())),
        )
        .expect("create");
    w.rt.block_on(running.engine.handle.shutdown())
        .expect("shutdown");
    let address = running.engine.address.to_address();

    let mut h = w.window();
    step_until(&mut h, "the unlock screen", |h| {
        shows(h, "Unlock your profile")
    });
    assert!(shows(&h, "Profile: home"));
    fill(&mut h, "Passphrase", "river lamp stones");
    click(&mut h, "Unlock");
    step_until(&mut h, "the wrong-passphrase message", |h| {
        shows(h, "Wrong passphrase; check it and try again (Caps Lock?)")
    });
    assert!(!shows(&h, "My address"));

    fill(&mut h, "Passphrase", "river lamp stone");
    click(&mut h, "Unlock");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    assert_eq!(shown_address(&h), address);

    // A new passphrase from the settings, then lock: only it opens now.
    click(&mut h, "Settings");
    fill(&mut h, "Current passphrase", "river lamp stone");
    fill(&mut h, "New passphrase", "seven quiet owls at dawn");
    fill(
        &mut h,
        "Repeat the new passphrase",
        "seven quiet owls at dawn",
    );
    click(&mut h, "Change passphrase");
    step_until(&mut h, "the change", |h| {
        shows(
            h,
            "Your passphrase is changed. Use the new one from now on.",
        )
    });
    click(&mut h, "Lock");
    step_until(&mut h, "the unlock screen again", |h| {
        shows(h, "Unlock your profile")
    });
    // The lock screen says what being locked means.
    assert!(shows_part(
        &h,
        "While your profile is locked you are offline"
    ));
    assert!(!shows(&h, "My address"));
    fill(&mut h, "Passphrase", "river lamp stone");
    click(&mut h, "Unlock");
    step_until(&mut h, "the old passphrase to fail", |h| {
        shows(h, "Wrong passphrase; check it and try again (Caps Lock?)")
    });
    fill(&mut h, "Passphrase", "seven quiet owls at dawn");
    click(&mut h, "Unlock");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    assert_eq!(shown_address(&h), address);
}

/// The in-memory backend with a Tor connection the test controls.
struct TorControlled {
    inner: MemoryBackend,
    tor: watch::Receiver<TorState>,
    retries: Arc<AtomicUsize>,
}

impl TorControlled {
    fn wrap(
        &self,
        opening: BoxFuture<Result<Running, AppError>>,
    ) -> BoxFuture<Result<Running, AppError>> {
        let tor = self.tor.clone();
        let retries = self.retries.clone();
        Box::pin(async move {
            let mut running = opening.await?;
            running.tor = tor;
            running.control = Box::new(CountingRetries {
                inner: running.control,
                retries,
            });
            Ok(running)
        })
    }
}

impl Backend for TorControlled {
    fn profiles(&self) -> Result<Vec<String>, AppError> {
        self.inner.profiles()
    }
    fn create(&self, name: String, p: Passphrase) -> BoxFuture<Result<Running, AppError>> {
        self.wrap(self.inner.create(name, p))
    }
    fn unlock(&self, name: String, p: Passphrase) -> BoxFuture<Result<Running, AppError>> {
        self.wrap(self.inner.unlock(name, p))
    }
    fn amnesic(&self) -> BoxFuture<Result<Running, AppError>> {
        self.wrap(self.inner.amnesic())
    }
    fn delete(&self, name: String) -> BoxFuture<Result<(), AppError>> {
        self.inner.delete(name)
    }
    fn names_hidden(&self) -> bool {
        self.inner.names_hidden()
    }
    fn hide_names(&self, hidden: bool) -> Result<(), AppError> {
        self.inner.hide_names(hidden)
    }
}

struct CountingRetries {
    inner: Box<dyn ProfileControl>,
    retries: Arc<AtomicUsize>,
}

impl ProfileControl for CountingRetries {
    fn change_passphrase(
        &self,
        old: Passphrase,
        new: Passphrase,
    ) -> BoxFuture<Result<(), AppError>> {
        self.inner.change_passphrase(old, new)
    }
    fn retry_tor(&self) {
        self.retries.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn tor_progress_and_failure_are_told_in_words_with_a_retry() {
    let w = World::new();
    let (tor, rx) = watch::channel(TorState::Connecting {
        fraction: 0.3,
        phase: "loading the list of relays".into(),
    });
    let retries = Arc::new(AtomicUsize::new(0));
    let mut h = w.window_over(Arc::new(TorControlled {
        inner: w.backend.clone(),
        tor: rx,
        retries: retries.clone(),
    }));
    step_until(&mut h, "the welcome screen", |h| {
        shows(h, "Start amnesic session")
    });
    click(&mut h, "Start amnesic session");
    step_until(&mut h, "the progress bar", |h| {
        shows_part(h, "Connecting to Tor: loading the list of relays")
    });
    tor.send_replace(TorState::Failed {
        message: "no connection to the internet; check the cable or Wi-Fi".into(),
    });
    step_until(&mut h, "the failure", |h| {
        shows(
            h,
            "Allium could not connect to Tor: no connection to the internet; check the \
             cable or Wi-Fi",
        )
    });
    assert!(!shows_part(&h, "Connecting to Tor"));
    click(&mut h, "Try again");
    step_until(&mut h, "the retry", |_| retries.load(Ordering::SeqCst) == 1);
    assert!(shows_part(&h, "Connecting to Tor"));
    // Stuck (offline, filtered, a wrong clock): said in words, with a way
    // out, not an endless 0 %.
    tor.send_replace(TorState::Stuck {
        fraction: 0.0,
        advice: "Tor cannot reach the internet. Check that this computer is online.".into(),
    });
    step_until(&mut h, "the stuck state", |h| {
        shows(
            h,
            "Connecting to Tor is stuck at 0%. Tor cannot reach the internet. Check that \
             this computer is online.",
        )
    });
    click(&mut h, "Try again");
    step_until(&mut h, "the second retry", |_| {
        retries.load(Ordering::SeqCst) == 2
    });
    tor.send_replace(TorState::Ready);
    step_until(&mut h, "the bar to go", |h| {
        !shows_part(h, "Connecting to Tor") && !shows(h, "Try again")
    });
}

#[test]
fn add_a_contact_chat_and_see_delivery() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let mut bea = w.peer("Bea");

    // The address is checked as it is typed, in the parser's words.
    click(&mut h, "Add contact");
    fill(&mut h, "Their address", "allium:abc");
    assert!(
        shows(
            &h,
            "Not a valid address: an Allium address has 56 characters after \"allium:\", \
             this one has 3."
        ),
        "the parser's error"
    );
    assert!(
        h.get_by_label("Send request")
            .accesskit_node()
            .is_disabled()
    );
    let own = shown_address(&h);
    replace(&mut h, "Their address", &own);
    assert!(shows(&h, "That is your own address."));
    click(&mut h, "Cancel");

    // An address written in groups and over two lines, as on a card.
    click(&mut h, "Add contact");
    let grouped = {
        let (head, tail) = bea.address.split_at(30);
        let spaced: String = head
            .chars()
            .enumerate()
            .flat_map(|(i, c)| (i > 7 && i % 8 == 0).then_some(' ').into_iter().chain([c]))
            .collect();
        format!("{spaced}\n{tail}")
    };
    fill(&mut h, "Their address", &grouped);
    assert!(shows(&h, "This address looks right."));
    click(&mut h, "Cancel");

    let window_at_bea = befriend(&w, &mut h, &mut bea, "Bea");

    // Adding opened the contact's page; leave it. A message that arrives
    // while the chat is closed is counted and notified, without its content.
    click(&mut h, "Settings");
    let hostile = "<b>hi</b> see https://example.com/x.png [link](http://y) **now**";
    w.rt.block_on(bea.handle.send_message(window_at_bea, hostile))
        .expect("send");
    step_until(&mut h, "the unread count", |h| {
        shows(h, "Bea — online, 1 new message")
    });
    assert_eq!(
        *w.notices.lock().expect("notices"),
        vec![Notice {
            title: "Allium".into(),
            body: "New message".into()
        }]
    );

    click(&mut h, "Bea — online, 1 new message");
    step_until(&mut h, "the chat", |h| shows(h, "Keep history"));
    assert!(shows(&h, "Bea — online"), "opening the chat reads it");
    // What came while the chat was closed starts under a divider, after
    // the day's.
    assert!(shows(&h, "New messages") && shows(&h, "Today"));
    // Shown exactly as typed, and nothing in it became a link.
    assert!(shows(&h, hostile));
    assert!(h.query_by_role(Role::Link).is_none());

    fill(&mut h, "Message", "see you at noon");
    click(&mut h, "Send");
    step_until(&mut h, "the message to be delivered", |h| {
        shows(h, "see you at noon") && shows(h, "Delivered")
    });
    let e = w.wait(&mut bea, "the message", |e| {
        matches!(e, Event::MessageReceived { .. })
    });
    let Event::MessageReceived { message, .. } = e else {
        unreachable!()
    };
    assert_eq!(message.text, "see you at noon");

    // Several lines in one message: Shift+Enter breaks the line, Enter sends.
    fill(&mut h, "Message", "first line");
    h.key_press_modifiers(Modifiers::SHIFT, Key::Enter);
    h.step();
    h.get_by_label("Message").type_text("second line");
    h.step();
    h.key_press(Key::Enter);
    h.step();
    h.step();
    let e = w.wait(&mut bea, "the two-line message", |e| {
        matches!(e, Event::MessageReceived { .. })
    });
    let Event::MessageReceived { message, .. } = e else {
        unreachable!()
    };
    assert_eq!(message.text, "first line\nsecond line");

    // Emoji as people send them, with presentation selectors: every
    // character shown has a glyph (no empty boxes).
    // The last four are newer than egui's own emoji set: the bundled font
    // has them, skin tone included.
    let emoji = "thanks \u{2764}\u{FE0F} \u{1F44D} \u{1F600} \u{1F389} \u{1F64F} \u{2705} \
                 \u{26A0}\u{FE0F} \u{1F642} \u{1F972} \u{1FAE0} \u{1F44D}\u{1F3FD}";
    w.rt.block_on(bea.handle.send_message(window_at_bea, emoji))
        .expect("send");
    let shown = "thanks \u{2764} \u{1F44D} \u{1F600} \u{1F389} \u{1F64F} \u{2705} \u{26A0} \
                 \u{1F642} \u{1F972} \u{1FAE0} \u{1F44D}\u{1F3FD}";
    step_until(&mut h, "the emoji", |h| shows(h, shown));
    let font = eframe::egui::FontId::proportional(14.0);
    assert!(h.ctx.fonts_mut(|f| f.has_glyphs(&font, shown)));
    h.check_accessibility();
}

#[test]
fn a_file_offer_is_accepted_into_the_chosen_folder() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let mut bea = w.peer("Bea");
    let window_at_bea = befriend(&w, &mut h, &mut bea, "Bea");

    let downloads = tempfile::tempdir().expect("tempdir");
    click(&mut h, "Settings");
    fill(
        &mut h,
        "Save received files in",
        &downloads.path().display().to_string(),
    );
    assert!(shows(&h, "Arti 0.47.0 (Tor, built in)"));
    click(&mut h, "Back");

    let outbox = tempfile::tempdir().expect("tempdir");
    let file = outbox.path().join("report.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&file, &content).expect("write");
    w.rt.block_on(bea.handle.send_file(window_at_bea, &file))
        .expect("offer");

    step_until(&mut h, "the offer in the list", |h| {
        shows(h, "Bea — online, offers a file")
    });
    click(&mut h, "Bea — online, offers a file");
    step_until(&mut h, "the offer", |h| shows(h, "Accept file"));
    assert!(shows_part(&h, "Bea offers a file: report.bin (300.0 KB)"));
    click(&mut h, "Accept file");
    step_until(&mut h, "the transfer to complete", |h| {
        shows(h, "Open folder")
    });
    assert!(shows(&h, "Received report.bin."));
    let received = std::fs::read(downloads.path().join("report.bin")).expect("the file");
    assert_eq!(received, content);
    w.wait(&mut bea, "completion at the sender", |e| {
        matches!(e, Event::FileCompleted { .. })
    });
    assert_file_only(downloads.path(), "report.bin");
}

/// The folder for received files is the profile's, not the form's: it is
/// there again after the profile is locked and unlocked.
#[test]
fn the_folder_for_received_files_is_kept_with_the_profile() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let downloads = tempfile::tempdir().expect("tempdir");
    let folder = downloads.path().display().to_string();
    click(&mut h, "Settings");
    fill(&mut h, "Save received files in", &folder);
    click(&mut h, "Keep this folder");
    step_until(&mut h, "the folder kept", |h| {
        shows_part(h, "Kept: received files go to")
    });
    click(&mut h, "Back");
    click(&mut h, "Lock");
    step_until(&mut h, "the unlock screen", |h| {
        shows(h, "Unlock your profile")
    });
    fill(&mut h, "Passphrase", STRONG);
    click(&mut h, "Unlock");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    click(&mut h, "Settings");
    let shown = h.get_by_label("Save received files in").value();
    assert_eq!(shown.as_deref(), Some(folder.as_str()));
}

fn assert_file_only(dir: &Path, name: &str) {
    let names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![name.to_owned()]);
}

#[test]
fn request_cards_accept_reject_and_block() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let me = shown_address(&h);
    let greeting = "<b>hello</b> ![img](http://x/y.png) https://example.com";
    let mut peers = Vec::new();
    for name in ["Bee", "Cee", "Dee"] {
        let p = w.peer(name);
        w.rt.block_on(p.handle.add_contact(&me, "work", greeting))
            .expect("request");
        peers.push(p);
    }
    step_until(&mut h, "three requests", |h| {
        shows(h, "Requests waiting: 3")
    });
    assert_eq!(
        w.notices.lock().expect("notices").first(),
        Some(&Notice {
            title: "Allium".into(),
            body: "New contact request".into()
        })
    );

    click(&mut h, "Request from Bee");
    step_until(&mut h, "the card", |h| shows(h, "Contact request"));
    assert!(shows(&h, greeting), "the greeting, as plain text");
    assert!(h.query_by_role(Role::Link).is_none());
    assert!(shows(&h, "Bee"), "the name they suggest");
    click(&mut h, "Accept");
    step_until(&mut h, "Bee to be a contact", |h| shows(h, "Bee — online"));
    w.wait(&mut peers[0], "acceptance", |e| {
        matches!(e, Event::RequestAccepted { .. })
    });

    click(&mut h, "Request from Cee");
    click(&mut h, "Reject");
    step_until(&mut h, "Cee's card to go", |h| {
        !shows(h, "Request from Cee")
    });

    click(&mut h, "Request from Dee");
    // Blocking asks first, and Cancel changes nothing.
    click(&mut h, "Block");
    assert!(shows(&h, "Block Dee?"));
    click(&mut h, "Cancel");
    assert!(shows(&h, "Request from Dee") && !shows(&h, "Block Dee?"));
    click(&mut h, "Block");
    click(&mut h, "Yes, block");
    step_until(&mut h, "Dee's card to go", |h| {
        !shows(h, "Request from Dee")
    });
    assert!(!shows_part(&h, "Requests waiting"));
    assert!(!shows_part(&h, "Cee"));
    // Dee is on the block list in the settings, and only there.
    click(&mut h, "Settings");
    step_until(&mut h, "the block list", |h| shows(h, "Dee"));
    assert!(shows(&h, "Unblock"));
}

#[test]
fn accepted_contacts_are_renamed_removed_blocked_and_unblocked() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let mut bea = w.peer("Bea");
    let mut cee = w.peer("Cee");
    befriend(&w, &mut h, &mut bea, "Bea");
    let window_at_cee = befriend(&w, &mut h, &mut cee, "Cee");

    click(&mut h, "Bea — online");
    click(&mut h, "Rename contact");
    replace(&mut h, "New name", "Bea from the paper");
    click(&mut h, "Save name");
    step_until(&mut h, "the new name", |h| {
        shows(h, "Bea from the paper — online")
    });

    // Removing asks first, then cuts her off: her side sees us go.
    click(&mut h, "Remove contact");
    assert!(shows(&h, "Remove Bea from the paper?"));
    click(&mut h, "Yes, remove");
    step_until(&mut h, "Bea to go", |h| {
        !shows_part(h, "Bea from the paper")
    });
    w.wait(&mut bea, "the session to end", |e| {
        matches!(e, Event::Presence { online: false, .. })
    });

    click(&mut h, "Cee — online");
    click(&mut h, "Block contact");
    assert!(shows(&h, "Block Cee?"));
    assert!(shows_part(&h, "You can unblock them in Settings."));
    click(&mut h, "Yes, block");
    step_until(&mut h, "Cee to go", |h| !shows(h, "Cee — online"));
    w.wait(&mut cee, "the session to end", |e| {
        matches!(e, Event::Presence { online: false, .. })
    });
    // Blocked: a new request from Cee is refused unheard.
    let me = shown_address(&h);
    w.rt.block_on(cee.handle.remove(window_at_cee))
        .expect("remove");
    w.rt.block_on(cee.handle.add_contact(&me, "work", "again"))
        .expect("request");

    click(&mut h, "Settings");
    step_until(&mut h, "the block list", |h| shows(h, "Cee"));
    // Cee asks again and again (its backoff is 50–500 ms here); nothing
    // of it reaches the window while Cee is blocked.
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(20));
        h.step();
    }
    assert!(!shows_part(&h, "Requests waiting"));
    click(&mut h, "Unblock");
    step_until(&mut h, "the empty block list", |h| {
        shows(h, "You have blocked nobody.")
    });
    // Unblocked, a new request from Cee gets through.
    w.rt.block_on(async {
        for c in cee.handle.contacts().await.expect("contacts") {
            cee.handle.remove(c.id).await.expect("remove");
        }
        cee.handle.add_contact(&me, "work", "once more").await
    })
    .expect("request");
    step_until(&mut h, "Cee's request", |h| shows(h, "Request from Cee"));
}

/// A journalist's profile and a source's amnesic session, each in a
/// window of its own, made contacts through the windows alone. Returns
/// both windows, their addresses, and the journalist's row at the source
/// ("… — online").
#[allow(clippy::type_complexity)]
fn journalist_and_source(
    w: &World,
) -> (
    Harness<'static, App>,
    Harness<'static, App>,
    [String; 2],
    String,
) {
    let mut journalist = w.window();
    create_profile(&mut journalist);
    let mut source = w.window();
    step_until(&mut source, "the first screen", |h| {
        shows(h, "Start amnesic session")
    });
    click(&mut source, "Start amnesic session");
    step_until(&mut source, "the amnesic window", |h| {
        shows(h, "My address")
    });
    // The source publishes an address for once, so the journalist can ask.
    click(&mut source, "Accept new contact requests");
    let source_address = shown_address(&source);
    let journalist_address = shown_address(&journalist);
    click(&mut journalist, "Add contact");
    fill(&mut journalist, "Their address", &source_address);
    fill(&mut journalist, "Name for them", "Source");
    click(&mut journalist, "Send request");
    step_until(&mut source, "the request", |h| {
        shows_part(h, "Request from")
    });
    let request = source
        .get_by(|n| n.label().is_some_and(|l| l.starts_with("Request from")))
        .accesskit_node()
        .label()
        .expect("label");
    click(&mut source, &request);
    click(&mut source, "Accept");
    step_until(&mut journalist, "the accepted contact", |h| {
        shows(h, "Source — online")
    });
    step_until(&mut source, "the contact", |h| shows_part(h, "— online"));
    let at_source = source
        .get_by(|n| n.label().is_some_and(|l| l.ends_with("— online")))
        .accesskit_node()
        .label()
        .expect("label");
    (
        journalist,
        source,
        [journalist_address, source_address],
        at_source,
    )
}

#[test]
fn both_sides_see_the_same_safety_words_and_can_mark_verified() {
    let w = World::new();
    let (mut journalist, mut source, [journalist_address, source_address], at_source) =
        journalist_and_source(&w);
    let both = [&mut journalist, &mut source];
    let expected = allium::engine::safety_words(
        &allium_protocol::OnionId::parse(&journalist_address).expect("address"),
        &allium_protocol::OnionId::parse(&source_address).expect("address"),
    )
    .join(" ");
    let words_in = |h: &mut Harness<'_, App>, contact: &str| {
        click(h, contact);
        click(h, "Verify contact");
        step_until(h, "the safety words", |h| {
            shows_part(h, "compare these words")
        });
        shows(h, &expected)
    };
    assert!(
        words_in(both[0], "Source — online"),
        "the journalist's words"
    );
    assert!(words_in(both[1], &at_source), "the source's words");
    // The same words on both sides, and different for another pair.
    let other = allium::engine::safety_words(
        &allium_protocol::OnionId::parse(&journalist_address).expect("address"),
        &allium_protocol::IdentityKey::from_seed(&[9; 32]).onion_id(),
    );
    assert_ne!(other.join(" "), expected);

    click(both[0], "The words match: mark as verified");
    step_until(both[0], "the verified mark", |h| shows(h, "verified"));
    assert!(shows(both[0], "Safety words"));
}

#[test]
fn keeping_history_is_told_to_the_other_side_and_shown_in_both_chats() {
    let w = World::new();
    let (mut journalist, mut source, _, at_source) = journalist_and_source(&w);
    click(&mut journalist, "Source — online");
    click(&mut source, &at_source);
    // Each side has heard the other's setting: off, on both.
    step_until(&mut source, "the journalist's setting", |h| {
        shows_part(h, "keeps no history of this conversation.")
    });
    step_until(&mut journalist, "the source's setting", |h| {
        shows(h, "Source keeps no history of this conversation.")
    });
    // An amnesic session has nothing to switch.
    assert!(!shows(&source, "Keep history"));
    assert!(shows_part(
        &source,
        "Amnesic session: messages are never saved"
    ));

    click(&mut journalist, "Keep history");
    assert!(shows_part(
        &journalist,
        "You turned history on: this conversation is kept in your profile."
    ));
    step_until(&mut source, "the notice in the source's chat", |h| {
        shows_part(
            h,
            "turned history on: their Allium now keeps this conversation",
        )
    });
    assert!(shows_part(
        &source,
        "keeps a history of this conversation on their computer."
    ));

    click(&mut journalist, "Keep history");
    assert!(shows_part(&journalist, "You turned history off"));
    step_until(&mut source, "the second notice", |h| {
        shows_part(
            h,
            "turned history off: their Allium keeps nothing of it now.",
        )
    });
}

#[test]
fn a_vanished_peer_goes_offline_and_unacknowledged_messages_wait() {
    // Short timers, so the test does not wait the real 40 s.
    let w = World::with_config(EngineConfig {
        session: allium_protocol::SessionConfig {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_millis(1500),
            keepalive_interval: Duration::from_millis(300),
            ..allium_protocol::SessionConfig::default()
        },
        ..config()
    });
    let mut h = w.window();
    create_profile(&mut h);
    let mut bea = w.peer("Bea");
    befriend(&w, &mut h, &mut bea, "Bea");
    click(&mut h, "Bea — online");
    // Killed without a word, as `kill -9` behind Tor: nothing is closed.
    let bea_id = allium_protocol::OnionId::parse(&bea.address).expect("address");
    assert!(w.backend.network().vanish(&bea_id));
    fill(&mut h, "Message", "are you there?");
    click(&mut h, "Send");
    step_until(&mut h, "Bea to be offline", |h| shows(h, "Bea — offline"));
    step_until(&mut h, "the message to wait", |h| {
        shows(h, "are you there?") && shows(h, "Waiting")
    });
    assert!(
        !shows(&h, "Sent"),
        "not shown as sent once the session is gone"
    );
}

#[test]
fn files_go_by_path_or_by_drop_and_every_failure_is_told() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    let mut bea = w.peer("Bea");
    befriend(&w, &mut h, &mut bea, "Bea");
    click(&mut h, "Bea — online");
    click(&mut h, "Send a file by its path");
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("nothing-here.pdf");
    fill(&mut h, "File to send", &missing.display().to_string());
    click(&mut h, "Send file");
    step_until(&mut h, "the failure", |h| {
        shows_part(h, "nothing-here.pdf was not sent:")
    });
    // Typing again clears what no longer applies.
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"the notes").expect("write");
    replace(&mut h, "File to send", &file.display().to_string());
    assert!(!shows_part(&h, "was not sent"));
    click(&mut h, "Send file");
    let offered = |w: &World, bea: &mut Peer, name: &'static str| {
        let e = w.wait(bea, "the offer", |e| matches!(e, Event::FileOffered { .. }));
        let Event::FileOffered { transfer } = e else {
            unreachable!()
        };
        assert_eq!(transfer.name, name);
    };
    offered(&w, &mut bea, "notes.txt");

    // A file dropped on the window goes to the open chat.
    let dropped = dir.path().join("dropped.txt");
    std::fs::write(&dropped, b"dropped").expect("write");
    h.input_mut()
        .dropped_files
        .push(Arc::new(TestFile(dropped.clone())));
    h.step();
    offered(&w, &mut bea, "dropped.txt");
}

/// A file dropped on the window, as the desktop hands it over.
#[derive(Debug)]
struct TestFile(std::path::PathBuf);

impl eframe::egui::DroppedFile for TestFile {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn with_names_hidden_the_passphrase_alone_finds_the_profile() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    click(&mut h, "Settings");
    click(&mut h, "Hide profile names on the unlock screen");
    // Saved off the UI thread.
    step_until(&mut h, "the choice to be saved", |_| {
        w.backend.names_hidden()
    });
    click(&mut h, "Lock");
    // A second profile, made meanwhile.
    let other =
        w.rt.block_on(w.backend.create(
            "private notes".into(),
            Zeroizing::new("gravel orbit mustard lagoon".into()),
        ))
        .expect("create");
    w.rt.block_on(other.engine.handle.shutdown())
        .expect("shutdown");
    // The lock screen is the same whether it hides one name or many.
    step_until(&mut h, "the unlock screen", |h| {
        shows(h, "Unlock your profile")
    });
    assert!(!shows_part(&h, "work") && !shows_part(&h, "private notes"));
    assert!(shows_part(&h, "Allium opens the profile it belongs to."));
    fill(&mut h, "Passphrase", "not the right one");
    click(&mut h, "Unlock");
    step_until(&mut h, "the refusal", |h| {
        shows(h, "Wrong passphrase; check it and try again (Caps Lock?)")
    });
    fill(&mut h, "Passphrase", "gravel orbit mustard lagoon");
    click(&mut h, "Unlock");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));
    assert!(shows(&h, "Profile: private notes"));
}

#[test]
fn a_profile_is_deleted_only_once_its_name_is_typed() {
    let w = World::new();
    let mut h = w.window();
    create_profile(&mut h);
    click(&mut h, "Settings");
    fill(&mut h, "Profile name to delete", "wor");
    assert!(
        h.get_by_label("Delete profile for good")
            .accesskit_node()
            .is_disabled()
    );
    fill(&mut h, "Profile name to delete", "k");
    click(&mut h, "Delete profile for good");
    step_until(&mut h, "the first screen", |h| {
        shows(h, "The profile \"work\" is deleted from this computer.")
    });
    assert!(shows(&h, "Create profile"));
    assert!(w.backend.profiles().expect("profiles").is_empty());
}

#[test]
fn an_idle_window_locks_itself_after_the_time_set() {
    let w = World::new();
    let now = Arc::new(Mutex::new(Instant::now()));
    let clock_now = now.clone();
    let backend: Arc<dyn Backend> = Arc::new(w.backend.clone());
    let runtime = w.rt.handle().clone();
    let mut h = Harness::builder()
        .with_size([1100.0, 760.0])
        .build_eframe(move |cc| {
            App::new(backend, runtime, cc.egui_ctx.clone())
                .with_clock(Arc::new(move || *clock_now.lock().expect("clock")))
        });
    create_profile(&mut h);
    // A notice that is not an error goes by itself after a while.
    let mut bea = w.peer("Bea");
    befriend(&w, &mut h, &mut bea, "Bea");
    step_until(&mut h, "the notice", |h| {
        shows(h, "Bea accepted your request.")
    });
    *now.lock().expect("clock") += Duration::from_secs(10);
    h.step();
    assert!(shows(&h, "Bea accepted your request."));
    *now.lock().expect("clock") += Duration::from_secs(11);
    step_until(&mut h, "the notice to go", |h| {
        !shows(h, "Bea accepted your request.")
    });

    click(&mut h, "Settings");
    click(&mut h, "After 5 minutes");
    // Four minutes of nothing: still open.
    *now.lock().expect("clock") += Duration::from_secs(4 * 60);
    h.step();
    h.step();
    assert!(shows(&h, "Lock"));
    // Two more, and the first input after the gap (a laptop woken, a
    // window restored) finds it locked: it does not count as use.
    *now.lock().expect("clock") += Duration::from_secs(2 * 60);
    h.hover_at(eframe::egui::Pos2::new(300.0, 300.0));
    step_until(&mut h, "the lock", |h| shows(h, "Unlock your profile"));
    assert!(shows(
        &h,
        "Allium locked your profile after 5 minutes without use."
    ));
}

/// Draws the window offscreen, in light mode at 1.5× (as a laptop shows
/// it), for the pictures in `docs/`.
fn picture_window(w: &World, size: [f32; 2]) -> Harness<'static, App> {
    let backend: Arc<dyn Backend> = Arc::new(w.backend.clone());
    let runtime = w.rt.handle().clone();
    Harness::builder()
        .with_size(size)
        .with_pixels_per_point(1.5)
        .with_theme(eframe::egui::Theme::Light)
        .with_render_cursor(false)
        .wgpu()
        .build_eframe(move |cc| App::new(backend, runtime, cc.egui_ctx.clone()))
}

fn save_picture(h: &mut Harness<'_, App>, name: &str) {
    // Let hover effects and the like settle before the picture.
    h.step();
    h.step();
    let image = h.render().expect("render");
    let path = format!("{}/docs/{name}", env!("CARGO_MANIFEST_DIR"));
    image.save(&path).expect("save the picture");
}

/// Writes the pictures in `docs/`: onboarding (`docs/onboarding.png`), a
/// conversation (`docs/screenshot.png`), a request (`docs/request.png`),
/// verification (`docs/verify.png`) and the settings at 800 px
/// (`docs/settings.png`). Ignored by default because it needs a graphics
/// adapter (Mesa's software Vulkan, lavapipe, is enough): run it with
/// `cargo test --test ui -- --ignored screenshot`.
#[test]
#[ignore = "renders with wgpu; run by hand to refresh the pictures in docs/"]
fn screenshot_of_a_conversation() {
    let w = World::new();
    let mut h = picture_window(&w, [1100.0, 700.0]);
    step_until(&mut h, "the welcome screen", |h| shows(h, "Create profile"));
    fill(&mut h, "Profile name", "work");
    fill(&mut h, "Passphrase", "correct horse battery staple");
    save_picture(&mut h, "onboarding.png");
    replace(&mut h, "Passphrase", STRONG);
    fill(&mut h, "Repeat the passphrase", STRONG);
    click(&mut h, "Create profile");
    step_until(&mut h, "the main window", |h| shows(h, "My address"));

    let mut bea = w.peer("Bea");
    let window_at_bea = befriend(&w, &mut h, &mut bea, "Bea");
    let say = |h: &mut Harness<'_, App>, text: &str| {
        fill(h, "Message", text);
        click(h, "Send");
        step_until(h, "delivery", |h| shows(h, text));
    };
    w.rt.block_on(bea.handle.send_message(
        window_at_bea,
        "Hi, it is Bea. I have the documents we talked about 📄",
    ))
    .expect("send");
    step_until(&mut h, "Bea's message", |h| {
        shows_part(h, "I have the documents")
    });
    say(&mut h, "Thank you. Send them here, nothing else is needed.");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("minutes-2026-03.pdf");
    std::fs::write(&file, vec![0u8; 2_400_000]).expect("write");
    w.rt.block_on(bea.handle.send_file(window_at_bea, &file))
        .expect("offer");
    step_until(&mut h, "the offer", |h| shows(h, "Accept file"));
    let cee = w.peer("Cee");
    let me = shown_address(&h);
    w.rt.block_on(
        cee.handle
            .add_contact(&me, "work", "We met at the conference."),
    )
    .expect("request");
    step_until(&mut h, "the request", |h| shows(h, "Requests waiting: 1"));
    step_until(&mut h, "delivery of our message", |h| shows(h, "Delivered"));
    save_picture(&mut h, "screenshot.png");

    click(&mut h, "Verify contact");
    step_until(&mut h, "the safety words", |h| {
        shows_part(h, "compare these words")
    });
    save_picture(&mut h, "verify.png");
    click(&mut h, "Close");

    click(&mut h, "Request from Cee");
    step_until(&mut h, "the card", |h| shows(h, "Contact request"));
    save_picture(&mut h, "request.png");

    // Settings at 800 px wide, the narrowest a laptop window often gets.
    h.set_size(eframe::egui::Vec2::new(800.0, 700.0));
    h.step();
    h.step();
    click(&mut h, "Settings");
    step_until(&mut h, "the settings", |h| shows(h, "Back"));
    save_picture(&mut h, "settings.png");
}
