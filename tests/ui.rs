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
    notices: Arc<Mutex<Vec<Notice>>>,
}

impl World {
    fn new() -> World {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        World {
            rt,
            backend: MemoryBackend::new(MemoryNetwork::new(), config()),
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
        let other = MemoryBackend::new(self.backend.network().clone(), config());
        let Running { engine, .. } = self.rt.block_on(other.amnesic()).expect("peer");
        let peer = Peer {
            handle: engine.handle,
            events: engine.events,
            address: engine.address.to_address(),
        };
        self.rt
            .block_on(peer.handle.set_display_name(name))
            .expect("display name");
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

fn shows(h: &Harness<'_, App>, label: &str) -> bool {
    h.query_by_label(label).is_some()
}

fn shows_part(h: &Harness<'_, App>, part: &str) -> bool {
    h.query_by_label_contains(part).is_some()
}

fn click(h: &mut Harness<'_, App>, label: &str) {
    h.get_by_label(label).click();
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
    fill(h, "Passphrase", "correct horse battery staple");
    fill(h, "Repeat the passphrase", "correct horse battery staple");
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
fn onboarding_checks_the_confirmation_and_opens_the_profile() {
    let w = World::new();
    let mut h = w.window();
    step_until(&mut h, "the welcome screen", |h| shows(h, "Create profile"));
    // With no profile yet, both first choices are offered.
    assert!(shows(&h, "Start amnesic session"));
    fill(&mut h, "Profile name", "work");
    fill(&mut h, "Passphrase", "correct horse battery");
    assert!(shows_part(&h, "Strength: "), "a strength hint");
    fill(&mut h, "Repeat the passphrase", "correct horse batterie");
    click(&mut h, "Create profile");
    step_until(&mut h, "the mismatch error", |h| {
        shows(h, "The two passphrases differ; type them again")
    });
    assert!(!shows(&h, "My address"));
    assert!(w.backend.profiles().expect("profiles").is_empty());

    fill(&mut h, "Repeat the passphrase", "correct horse battery");
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
    click(&mut h, "Allium");
    assert!(shows(&h, "End session (erases everything)"));
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
    click(&mut h, "Allium");
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
    click(&mut h, "Allium");
    click(&mut h, "Lock");
    step_until(&mut h, "the unlock screen again", |h| {
        shows(h, "Unlock your profile")
    });
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

    let window_at_bea = befriend(&w, &mut h, &mut bea, "Bea");

    // Adding opened the contact's page; leave it. A message that arrives
    // while the chat is closed is counted and notified, without its content.
    click(&mut h, "Allium");
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
    click(&mut h, "Allium");
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
    click(&mut h, "Block");
    step_until(&mut h, "Dee's card to go", |h| {
        !shows(h, "Request from Dee")
    });
    assert!(!shows_part(&h, "Requests waiting"));
    assert!(!shows_part(&h, "Dee"));
    assert!(!shows_part(&h, "Cee"));
}

/// Writes `docs/screenshot.png`: the main window in the middle of a
/// conversation. Ignored by default because it needs a graphics adapter
/// (Mesa's software Vulkan, lavapipe, is enough): run it with
/// `cargo test --test ui -- --ignored screenshot`.
#[test]
#[ignore = "renders with wgpu; run by hand to refresh docs/screenshot.png"]
fn screenshot_of_a_conversation() {
    let w = World::new();
    let backend: Arc<dyn Backend> = Arc::new(w.backend.clone());
    let runtime = w.rt.handle().clone();
    let mut h = Harness::builder()
        .with_size([1100.0, 700.0])
        .with_pixels_per_point(1.5)
        .with_theme(eframe::egui::Theme::Light)
        .with_render_cursor(false)
        .wgpu()
        .build_eframe(move |cc| App::new(backend, runtime, cc.egui_ctx.clone()));
    create_profile(&mut h);
    let mut bea = w.peer("Bea");
    let window_at_bea = befriend(&w, &mut h, &mut bea, "Bea");
    let say = |h: &mut Harness<'_, App>, text: &str| {
        fill(h, "Message", text);
        click(h, "Send");
        step_until(h, "delivery", |h| shows(h, text));
    };
    w.rt.block_on(bea.handle.send_message(
        window_at_bea,
        "Hi, it is Bea. I have the documents we talked about.",
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
    // Let hover effects and the like settle before the picture.
    h.step();
    let image = h.render().expect("render");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/screenshot.png");
    image.save(path).expect("save the screenshot");
}
