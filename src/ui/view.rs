//! Drawing: turns [`UiState`] into widgets and clicks into [`Action`]s.
//!
//! Nothing here waits, reads a file or talks to the engine. Text from a
//! peer (greetings, suggested names, messages, file names) is only ever
//! put in a plain [`Label`]: never markup, never a link, never an image.
//! Every input and button has a visible label that is also its accessible
//! name, so screen readers (and the kittest tests) can find it.

use std::path::PathBuf;
use std::time::Duration;

use allium_protocol::OnionId;
use allium_vault::{ContactId, ContactState};
use eframe::egui::{
    self, Button, Color32, Frame, Id, Key, Label, Modal, Panel, ProgressBar, RichText, ScrollArea,
    Sense, TextEdit, Ui, Vec2,
};
use qrcode::{Color as QrColor, QrCode};
use zeroize::Zeroize;

use super::state::{
    ContactDialog, MainState, Screen, TransferEntry, TransferOutcome, UiState, View, capitalize,
    incoming,
};
use super::{Action, peer_text, take_passphrase, words};
use crate::app::passphrase;
use crate::app::{TorState, check_new_passphrase};
use crate::engine::{MessageView, TransferDirection};

/// The amnesic banner, shown on every screen of such a session.
pub(crate) const AMNESIC_BANNER: &str = "Amnesic session — nothing is saved";

/// The sentence under the intake switch.
const INTAKE_SENTENCE: &str = "When this is off, nobody new can send you a request. \
                               Your contacts can still reach you.";

/// What the button that ends an amnesic session says.
pub(crate) const END_SESSION: &str = "End session (erases everything)";

/// What locking does, where the Lock button is and on the unlock screen.
pub(crate) const LOCK_WORDS: &str = "Locking closes the profile: you go offline, your \
    contacts cannot reach you, and nothing can be read without your passphrase until you \
    unlock it again.";

/// The auto-lock choices: minutes without use, 0 for never.
const AUTO_LOCK_CHOICES: &[(u32, &str)] = &[
    (0, "Never"),
    (5, "After 5 minutes"),
    (15, "After 15 minutes"),
    (30, "After 30 minutes"),
    (60, "After 1 hour"),
];

/// Under the request's message: a source must not give themselves away.
pub(crate) const GREETING_HINT: &str =
    "Don't include your name or anything that identifies you unless you mean to.";

const FORM_WIDTH: f32 = 460.0;

/// Draws the whole window.
pub(crate) fn draw(
    ui: &mut Ui,
    frame: &eframe::Frame,
    state: &mut UiState,
    actions: &mut Vec<Action>,
) {
    match state.screen.clone() {
        Screen::Loading => waiting(ui, "Starting Allium…"),
        Screen::Opening(what) => waiting(ui, what),
        Screen::Unlock => unlock(ui, state, actions),
        Screen::Create => create(ui, state, actions),
        Screen::Main => main_window(ui, frame, state, actions),
    }
}

fn error_color(ui: &Ui) -> Color32 {
    ui.visuals().error_fg_color
}

fn good_color(ui: &Ui) -> Color32 {
    if ui.visuals().dark_mode {
        Color32::from_rgb(120, 200, 120)
    } else {
        Color32::from_rgb(20, 120, 40)
    }
}

fn error_line(ui: &mut Ui, error: Option<&str>) {
    if let Some(e) = error {
        let c = error_color(ui);
        ui.add(Label::new(RichText::new(e).color(c)).wrap());
    }
}

fn outcome_line(ui: &mut Ui, outcome: &super::state::Outcome) {
    match outcome {
        Some(Ok(text)) => {
            let c = good_color(ui);
            ui.add(Label::new(RichText::new(text).color(c)).wrap());
        }
        Some(Err(text)) => error_line(ui, Some(text)),
        None => {}
    }
}

/// A labelled one-line text field; the label is its accessible name.
fn field(
    ui: &mut Ui,
    label: &str,
    text: &mut String,
    hint: &str,
    password: bool,
) -> egui::Response {
    let l = ui.label(label);
    ui.add(
        TextEdit::singleline(text)
            .hint_text(hint.to_owned())
            .password(password)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(l.id)
}

fn submitted(ui: &Ui, r: &egui::Response) -> bool {
    r.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter))
}

/// A column of forms in the middle of the window.
fn centered_page(ui: &mut Ui, add: impl FnOnce(&mut Ui)) {
    egui::CentralPanel::default_margins().show(ui, |ui| {
        ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
            let margin = ((ui.available_width() - FORM_WIDTH) / 2.0).max(0.0);
            ui.horizontal(|ui| {
                ui.add_space(margin);
                ui.vertical(|ui| {
                    ui.set_max_width(FORM_WIDTH);
                    ui.add_space(24.0);
                    add(ui);
                });
            });
        });
    });
}

fn card(ui: &mut Ui, add: impl FnOnce(&mut Ui)) {
    Frame::group(ui.style()).inner_margin(12.0).show(ui, |ui| {
        ui.set_width(ui.available_width());
        add(ui);
    });
}

fn waiting(ui: &mut Ui, what: &str) {
    centered_page(ui, |ui| {
        ui.horizontal(|ui| {
            ui.spinner();
            ui.label(what);
        });
        ui.label("This can take a few seconds.");
    });
}

fn amnesic_card(ui: &mut Ui, actions: &mut Vec<Action>) {
    card(ui, |ui| {
        ui.label(RichText::new("Amnesic session").strong().size(17.0));
        ui.add(
            Label::new(
                "Nothing is saved. When you close Allium, your address, contacts and \
                 messages are gone for good. Good for a one-off conversation.",
            )
            .wrap(),
        );
        if ui.button("Start amnesic session").clicked() {
            actions.push(Action::Amnesic);
        }
    });
}

/// The height kept for the strength bar and its advice, whether or not
/// there is any, so the fields below never move under the pointer.
const STRENGTH_HEIGHT: f32 = 58.0;

/// The strength of `passphrase`, estimated again only when it changed:
/// `zxcvbn` is too slow to run on every frame. Only a keyed hash of the
/// text is kept (in the window's memory), not the text.
fn cached_strength(
    ui: &Ui,
    field: &str,
    passphrase: &str,
    context: &[&str],
) -> passphrase::Strength {
    use std::hash::BuildHasher;
    // One key per process, so the hash says nothing outside it.
    static KEY: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let digest = KEY
        .get_or_init(Default::default)
        .hash_one((passphrase, context));
    let id = Id::unique(("strength", field));
    if let Some((d, s)) = ui.data(|d| d.get_temp::<(u64, passphrase::Strength)>(id))
        && d == digest
    {
        return s;
    }
    let s = passphrase::strength(passphrase, context);
    ui.data_mut(|d| d.insert_temp(id, (digest, s.clone())));
    s
}

/// A new passphrase, its strength, a "Suggest a passphrase" button and the
/// confirmation field. `context` holds words an attacker would try first.
/// Returns the confirmation field (Enter there submits).
fn new_passphrase_fields(
    ui: &mut Ui,
    labels: (&str, &str),
    passphrase: &mut zeroize::Zeroizing<String>,
    confirm: &mut zeroize::Zeroizing<String>,
    suggested: &mut Option<zeroize::Zeroizing<String>>,
    context: &[&str],
) -> egui::Response {
    let p = field(ui, labels.0, passphrase, "several words are best", true);
    if p.changed() && suggested.as_ref().is_some_and(|s| **s != **passphrase) {
        *suggested = None;
    }
    ui.horizontal(|ui| {
        if ui.button("Suggest a passphrase").clicked() {
            let s = passphrase::suggest();
            // In place: replacing the String would drop the old text
            // without wiping it.
            passphrase.zeroize();
            passphrase.push_str(&s);
            confirm.zeroize();
            *suggested = Some(s);
        }
    });
    if let Some(s) = suggested.as_ref() {
        card(ui, |ui| {
            ui.label(RichText::new(s.as_str()).monospace().strong());
            ui.add(
                Label::new(
                    "Six random words. Write them down and keep the paper safe, or learn                      them by heart: nobody can recover a forgotten passphrase. Type them                      again below.",
                )
                .wrap(),
            );
        });
    }
    ui.allocate_ui_with_layout(
        Vec2::new(ui.available_width(), STRENGTH_HEIGHT),
        egui::Layout::top_down(egui::Align::Min),
        |ui| {
            ui.set_min_height(STRENGTH_HEIGHT);
            if passphrase.is_empty() {
                return;
            }
            let s = cached_strength(ui, labels.0, passphrase, context);
            ui.add(
                ProgressBar::new(f32::from(s.level) / 4.0)
                    .desired_width(FORM_WIDTH / 2.0)
                    .text(format!("Strength: {}", s.label)),
            );
            if !s.advice.is_empty() {
                ui.add(Label::new(RichText::new(s.advice).small()).wrap());
            }
        },
    );
    field(ui, labels.1, confirm, "type it again", true)
}

fn create(ui: &mut Ui, state: &mut UiState, actions: &mut Vec<Action>) {
    let has_profiles = !state.profiles.is_empty();
    let start_error = state.start_error.clone();
    let notice = state.notice.clone();
    let mut go_unlock = false;
    centered_page(ui, |ui| {
        ui.heading("Welcome to Allium");
        ui.add(
            Label::new(
                "Chat with people without an account, a phone number or a server. \
                 Everything goes through Tor.",
            )
            .wrap(),
        );
        error_line(ui, start_error.as_deref());
        outcome_line(ui, &notice);
        ui.add_space(12.0);
        let f = &mut state.create;
        card(ui, |ui| {
            ui.label(RichText::new("Create a profile").strong().size(17.0));
            ui.add(
                Label::new(
                    "A profile keeps your address and contacts on this computer, locked \
                     with a passphrase. Nobody can recover a forgotten passphrase.",
                )
                .wrap(),
            );
            let name = field(ui, "Profile name", &mut f.name, "for example: work", false);
            let r = new_passphrase_fields(
                ui,
                ("Passphrase", "Repeat the passphrase"),
                &mut f.passphrase,
                &mut f.confirm,
                &mut f.suggested,
                &[f.name.trim()],
            );
            // An error is about what was submitted; once the person types
            // again it no longer applies.
            if name.changed() || r.changed() {
                f.error = None;
            }
            error_line(ui, f.error.as_deref());
            let enter = submitted(ui, &r);
            if ui.button("Create profile").clicked() || enter {
                if f.name.trim().is_empty() {
                    f.error = Some("Choose a name for the profile.".into());
                } else if let Err(e) =
                    check_new_passphrase(&f.passphrase, &f.confirm, &[f.name.trim()])
                {
                    f.error = Some(capitalize(&e.to_string()));
                    f.confirm = Default::default();
                } else {
                    f.error = None;
                    f.confirm = Default::default();
                    f.suggested = None;
                    actions.push(Action::Create {
                        name: f.name.trim().to_owned(),
                        passphrase: take_passphrase(&mut f.passphrase),
                    });
                }
            }
        });
        ui.add_space(12.0);
        amnesic_card(ui, actions);
        if has_profiles {
            ui.add_space(12.0);
            go_unlock = ui.button("Back to unlocking a profile").clicked();
        }
    });
    if go_unlock {
        state.screen = Screen::Unlock;
    }
}

fn unlock(ui: &mut Ui, state: &mut UiState, actions: &mut Vec<Action>) {
    let profiles = state.profiles.clone();
    let mut go_create = false;
    centered_page(ui, |ui| {
        ui.heading("Unlock your profile");
        outcome_line(ui, &state.notice);
        let f = &mut state.unlock;
        if let Some(n) = &f.notice {
            ui.add(Label::new(RichText::new(n).strong()).wrap());
        }
        ui.add(
            Label::new(
                "While your profile is locked you are offline: your contacts cannot reach \
                 you, and what they send waits on their side until you unlock it.",
            )
            .wrap(),
        );
        ui.add_space(6.0);
        let hidden = state.names_hidden;
        card(ui, |ui| {
            if hidden {
                ui.add(
                    Label::new("Type your passphrase: Allium opens the profile it belongs to.")
                        .wrap(),
                );
            } else if profiles.len() > 1 {
                ui.label("Profile");
                for p in &profiles {
                    ui.radio_value(&mut f.profile, Some(p.clone()), p.as_str());
                }
            } else if let Some(p) = profiles.first() {
                ui.label(format!("Profile: {p}"));
            }
            let r = field(ui, "Passphrase", &mut f.passphrase, "", true);
            error_line(ui, f.error.as_deref());
            let enter = submitted(ui, &r);
            let go = ui.button("Unlock").clicked() || enter;
            if go && hidden {
                if f.passphrase.is_empty() {
                    f.error = Some("Type the profile's passphrase.".into());
                } else {
                    f.error = None;
                    actions.push(Action::UnlockAny(take_passphrase(&mut f.passphrase)));
                }
            } else if go {
                match f.profile.clone() {
                    None => f.error = Some("Choose a profile.".into()),
                    Some(_) if f.passphrase.is_empty() => {
                        f.error = Some("Type the profile's passphrase.".into());
                    }
                    Some(name) => {
                        f.error = None;
                        actions.push(Action::Unlock {
                            name,
                            passphrase: take_passphrase(&mut f.passphrase),
                        });
                    }
                }
            }
        });
        ui.add_space(16.0);
        ui.label(RichText::new("Or").strong());
        go_create = ui.button("Create a new profile").clicked();
        ui.add_space(8.0);
        amnesic_card(ui, actions);
    });
    if go_create {
        state.create.error = None;
        state.screen = Screen::Create;
    }
}

fn main_window(ui: &mut Ui, frame: &eframe::Frame, state: &mut UiState, actions: &mut Vec<Action>) {
    let Some(m) = state.main.as_mut() else {
        return;
    };
    Panel::top("menu").show(ui, |ui| {
        ui.horizontal(|ui| {
            match &m.name {
                Some(n) => ui.weak(format!("Profile: {n}")),
                None => ui.weak("Amnesic session"),
            };
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                if ui
                    .button("Quit")
                    .on_hover_text(if m.is_amnesic() {
                        "Close Allium and erase this session"
                    } else {
                        "Close Allium; your contacts can no longer reach you"
                    })
                    .clicked()
                {
                    actions.push(Action::Quit);
                }
                if m.is_amnesic() {
                    if ui
                        .button(END_SESSION)
                        .on_hover_text("Erase this session and go back to the start")
                        .clicked()
                    {
                        actions.push(Action::Lock);
                    }
                } else if ui.button("Lock").on_hover_text(LOCK_WORDS).clicked() {
                    actions.push(Action::Lock);
                }
                // On the settings page its own "Back" leads out.
                if m.view != View::Settings && ui.button("Settings").clicked() {
                    m.view = View::Settings;
                }
            });
        });
    });
    if m.is_amnesic() {
        Panel::top("amnesic")
            .frame(
                Frame::new()
                    .fill(Color32::from_rgb(250, 215, 90))
                    .inner_margin(8.0),
            )
            .show(ui, |ui| {
                ui.label(
                    RichText::new(AMNESIC_BANNER)
                        .strong()
                        .size(16.0)
                        .color(Color32::BLACK),
                );
                ui.label(
                    RichText::new("Closing Allium erases your address, contacts and messages.")
                        .color(Color32::BLACK),
                );
            });
    }
    if m.tor != TorState::Ready {
        Panel::top("tor").show(ui, |ui| tor_status(ui, m, actions));
    }
    if m.error.is_some() || m.notice.is_some() || m.save_problem.is_some() || m.stopped {
        Panel::top("alerts").show(ui, |ui| alerts(ui, m));
    }
    // The list never takes more than 40 % of the window: the conversation
    // is what is read.
    let list_max = (ui.available_width() * 0.4).max(240.0);
    Panel::left("contacts")
        .default_size(280.0_f32.min(list_max))
        .min_size(240.0)
        .max_size(list_max)
        .show(ui, |ui| {
            ScrollArea::vertical().show(ui, |ui| sidebar(ui, m, actions));
        });
    egui::CentralPanel::default_margins().show(ui, |ui| match m.view {
        View::Home => home(ui, m),
        View::Contact(id) => contact_page(ui, frame, m, id, actions),
        View::Settings => settings_page(ui, m, actions),
    });
    if m.add.is_some() {
        add_dialog(ui.ctx(), m, actions);
    }
    if m.dialog.is_some() {
        contact_dialog(ui.ctx(), m, actions);
    }
    // "5 min ago" must move on even when nothing happens.
    ui.ctx().request_repaint_after(Duration::from_secs(30));
}

fn tor_status(ui: &mut Ui, m: &MainState, actions: &mut Vec<Action>) {
    match &m.tor {
        TorState::Connecting { fraction, phase } => {
            ui.add(
                ProgressBar::new(*fraction)
                    .desired_width(ui.available_width())
                    .text(format!("Connecting to Tor: {phase}")),
            );
            ui.horizontal_wrapped(|ui| {
                ui.small("Your contacts can be reached once this is done. It can take a minute.");
                if ui.small_button("Start again").clicked() {
                    actions.push(Action::RetryTor);
                }
            });
        }
        TorState::Stuck { fraction, advice } => {
            let c = error_color(ui);
            ui.add(
                Label::new(
                    RichText::new(format!(
                        "Connecting to Tor is stuck at {:.0}%. {advice}",
                        fraction * 100.0
                    ))
                    .color(c),
                )
                .wrap(),
            );
            if ui.button("Try again").clicked() {
                actions.push(Action::RetryTor);
            }
        }
        TorState::Failed { message } => {
            let c = error_color(ui);
            ui.add(
                Label::new(
                    RichText::new(format!("Allium could not connect to Tor: {message}")).color(c),
                )
                .wrap(),
            );
            if ui.button("Try again").clicked() {
                actions.push(Action::RetryTor);
            }
        }
        TorState::Ready => {}
    }
}

fn alerts(ui: &mut Ui, m: &mut MainState) {
    if m.stopped {
        error_line(
            ui,
            Some("Allium stopped working for this profile. Lock it and unlock it again."),
        );
    }
    if let Some(p) = &m.save_problem {
        error_line(ui, Some(&save_problem_words(p)));
    }
    let mut dismiss = false;
    if let Some(e) = &m.error {
        ui.horizontal_wrapped(|ui| {
            let c = error_color(ui);
            ui.label(RichText::new(e).color(c));
            dismiss |= ui.button("Dismiss").clicked();
        });
    }
    if let Some(n) = &m.notice {
        ui.horizontal_wrapped(|ui| {
            ui.label(n);
            dismiss |= ui.button("OK").clicked();
        });
    }
    if dismiss {
        m.error = None;
        m.notice = None;
    }
}

fn sidebar(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    ui.heading("My address");
    address_in_groups(ui, &m.address);
    ui.horizontal(|ui| {
        if ui.button("Copy address").clicked() {
            ui.ctx().copy_text(m.address.clone());
            m.copied = true;
        }
        let qr = if m.show_qr {
            "Hide QR code"
        } else {
            "Show QR code"
        };
        if ui.button(qr).clicked() {
            m.show_qr = !m.show_qr;
        }
    });
    if m.copied {
        ui.small("Copied. Give it only to people you want to hear from.");
    }
    if m.show_qr {
        qr_code(ui, &m.address);
    }
    ui.add_space(6.0);
    let mut on = m.status.intake_enabled;
    if ui
        .checkbox(&mut on, "Accept new contact requests")
        .changed()
    {
        m.status.intake_enabled = on;
        m.status.intake = None;
        actions.push(Action::SetIntake(on));
    }
    ui.add(Label::new(RichText::new(INTAKE_SENTENCE).small()).wrap());
    ui.add(Label::new(RichText::new(words::intake(m.status.intake)).small().weak()).wrap());
    ui.separator();
    ui.horizontal(|ui| {
        ui.heading("Contacts");
        if ui.button("Add contact").clicked() {
            m.add = Some(Default::default());
        }
    });
    let requests: Vec<(ContactId, String)> = m
        .contacts
        .values()
        .filter(|c| c.summary.state == ContactState::IncomingPending)
        .map(|c| (c.summary.id, c.display_name()))
        .collect();
    if !requests.is_empty() {
        ui.label(RichText::new(format!("Requests waiting: {}", requests.len())).strong());
        for (id, name) in requests {
            let selected = m.view == View::Contact(id);
            if ui
                .add(Button::selectable(selected, format!("Request from {name}")))
                .clicked()
            {
                m.open_contact(id);
            }
        }
        ui.add_space(6.0);
    }
    let rows: Vec<(ContactId, String)> = m
        .contacts
        .values()
        .filter(|c| c.summary.state != ContactState::IncomingPending)
        .map(|c| {
            let state = match (c.summary.state, c.summary.online) {
                (ContactState::OutgoingPending, _) => "waiting for them to accept",
                (_, true) => "online",
                (_, false) => "offline",
            };
            let unread = match c.unread {
                0 => String::new(),
                1 => ", 1 new message".to_owned(),
                n => format!(", {n} new messages"),
            };
            let offers = m
                .transfers_with(c.summary.id)
                .filter(|t| {
                    incoming(&t.view) && !t.view.accepted && t.outcome == TransferOutcome::Active
                })
                .count();
            let offers = match offers {
                0 => String::new(),
                1 => ", offers a file".to_owned(),
                n => format!(", offers {n} files"),
            };
            (
                c.summary.id,
                format!("{} — {state}{unread}{offers}", c.display_name()),
            )
        })
        .collect();
    if rows.is_empty() && m.contacts.is_empty() {
        ui.add(
            Label::new(
                RichText::new("No contacts yet. Add someone's address, or give them yours.").weak(),
            )
            .wrap(),
        );
    }
    for (id, text) in rows {
        let selected = m.view == View::Contact(id);
        let b = Button::selectable(selected, text).min_size(Vec2::new(ui.available_width(), 0.0));
        if ui.add(b).clicked() {
            m.open_contact(id);
        }
    }
}

/// An address in groups of eight characters, as on a printed card, so a
/// person can read it out or compare it. The groups are not selectable
/// text (a copy would hold the spaces); "Copy address" copies it whole,
/// and the screen reader reads it whole.
fn address_in_groups(ui: &mut Ui, address: &str) {
    let grouped = grouped_address(address);
    let r = ui.add(Label::new(RichText::new(grouped).monospace()).wrap());
    let whole = address.to_owned();
    r.widget_info(move || egui::WidgetInfo::labeled(egui::Role::Label, true, &whole));
}

/// "allium:abcdefgh ijklmnop …": groups of eight after the scheme.
pub(crate) fn grouped_address(address: &str) -> String {
    let (scheme, rest) = match address.split_once(':') {
        Some((s, r)) => (format!("{s}:"), r),
        None => (String::new(), address),
    };
    let chars: Vec<char> = rest.chars().collect();
    let groups: Vec<String> = chars.chunks(8).map(|c| c.iter().collect()).collect();
    format!("{scheme}\n{}", groups.join(" "))
}

/// The address as a QR code, drawn square by square.
fn qr_code(ui: &mut Ui, address: &str) {
    let Ok(code) = QrCode::new(address.as_bytes()) else {
        return;
    };
    let modules = code.width();
    let colors = code.to_colors();
    // A quiet zone of four modules, as scanners expect.
    let cells = modules + 8;
    let side = ui.available_width().min(220.0);
    let cell = side / cells as f32;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    response.widget_info(|| {
        egui::WidgetInfo::labeled(egui::Role::Image, true, "QR code of your address")
    });
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::WHITE);
    for (i, c) in colors.iter().enumerate() {
        if *c == QrColor::Dark {
            let x = (i % modules + 4) as f32 * cell;
            let y = (i / modules + 4) as f32 * cell;
            let min = rect.min + Vec2::new(x, y);
            painter.rect_filled(
                egui::Rect::from_min_size(min, Vec2::splat(cell)),
                0.0,
                Color32::BLACK,
            );
        }
    }
}

fn home(ui: &mut Ui, m: &MainState) {
    ui.heading("Welcome");
    let text = if m.contacts.is_empty() {
        "To start, give your address to someone you trust (\"Copy address\"), or add \
         theirs with \"Add contact\"."
    } else {
        "Choose a contact on the left."
    };
    ui.add(Label::new(text).wrap());
}

fn contact_page(
    ui: &mut Ui,
    frame: &eframe::Frame,
    m: &mut MainState,
    id: ContactId,
    actions: &mut Vec<Action>,
) {
    let Some(entry) = m.contacts.get(&id) else {
        m.view = View::Home;
        return;
    };
    let summary = entry.summary.clone();
    let name = entry.display_name();
    match summary.state {
        ContactState::IncomingPending => request_card(ui, m, id, actions),
        ContactState::OutgoingPending => {
            ui.heading(&name);
            ui.add(Label::new(format!("Waiting for {name} to accept your request.")).wrap());
            let text = if summary.request_delivered {
                "Your request reached them."
            } else {
                "Your request has not reached them yet. Allium keeps trying while you are \
                 both online."
            };
            ui.add(Label::new(text).wrap());
            if !summary.greeting.is_empty() {
                ui.label("Your message:");
                card(ui, |ui| {
                    ui.add(
                        Label::new(RichText::new(peer_text::isolated(&summary.greeting))).wrap(),
                    );
                });
            }
            if ui.button("Cancel request").clicked() {
                actions.push(Action::Remove(id));
            }
        }
        ContactState::Accepted => chat(ui, frame, m, id, &name, actions),
    }
}

fn request_card(ui: &mut Ui, m: &mut MainState, id: ContactId, actions: &mut Vec<Action>) {
    let mut block_request = false;
    request_card_body(ui, m, id, actions, &mut block_request);
    if block_request {
        m.dialog = Some(ContactDialog::Block(id));
    }
}

fn request_card_body(
    ui: &mut Ui,
    m: &mut MainState,
    id: ContactId,
    actions: &mut Vec<Action>,
    block_request: &mut bool,
) {
    let Some(entry) = m.contacts.get_mut(&id) else {
        return;
    };
    let s = entry.summary.clone();
    ui.heading("Contact request");
    ScrollArea::vertical().show(ui, |ui| {
        ui.label("Someone with this address wants to become your contact:");
        ui.add(
            Label::new(RichText::new(&s.address).monospace())
                .wrap()
                .selectable(true),
        );
        if !s.suggested_nickname.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label("They call themselves:");
                ui.add(Label::new(
                    RichText::new(peer_text::isolated(&s.suggested_nickname)).strong(),
                ));
            });
        }
        ui.label("Their message:");
        card(ui, |ui| {
            if s.greeting.is_empty() {
                ui.weak("(no message)");
            } else {
                ui.add(
                    Label::new(RichText::new(peer_text::isolated(&s.greeting)))
                        .wrap()
                        .selectable(true),
                );
            }
        });
        ui.add(
            Label::new(
                "Accept only people you expect. A contact can see when you are online and \
                 send you messages and files.",
            )
            .wrap(),
        );
        field(
            ui,
            "Name for this contact",
            &mut entry.accept_name,
            "only you see this",
            false,
        );
        ui.horizontal(|ui| {
            if ui.button("Accept").clicked() {
                actions.push(Action::Accept(id, entry.accept_name.clone()));
            }
            if ui.button("Reject").clicked() {
                actions.push(Action::Reject(id));
            }
            if ui.button("Block").clicked() {
                *block_request = true;
            }
        });
        ui.add(
            Label::new(
                RichText::new(
                    "Reject: the request disappears, and Allium ignores it if they ask \
                     again. Block: Allium refuses everything from this address from now on.",
                )
                .small(),
            )
            .wrap(),
        );
    });
}

fn chat(
    ui: &mut Ui,
    frame: &eframe::Frame,
    m: &mut MainState,
    id: ContactId,
    name: &str,
    actions: &mut Vec<Action>,
) {
    let Some(summary) = m.contacts.get(&id).map(|c| c.summary.clone()) else {
        return;
    };
    let amnesic = m.is_amnesic();
    let mut open_dialog = None;
    Panel::top("chat-head").show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            ui.heading(name);
            if summary.online {
                let c = good_color(ui);
                ui.label(RichText::new("online").color(c));
            } else {
                ui.weak("offline: messages wait until you are both online");
            }
            if summary.verified {
                let c = good_color(ui);
                ui.label(RichText::new("verified").color(c))
                    .on_hover_text("You compared safety words with them.");
            }
        });
        ui.horizontal_wrapped(|ui| {
            if ui.button("Rename contact").clicked() {
                open_dialog = Some(ContactDialog::Rename(id, summary.nickname.clone()));
            }
            let verify = if summary.verified {
                "Safety words"
            } else {
                "Verify contact"
            };
            if ui.button(verify).clicked() {
                open_dialog = Some(ContactDialog::Verify(id));
            }
            if ui.button("Remove contact").clicked() {
                open_dialog = Some(ContactDialog::Remove(id));
            }
            if ui.button("Block contact").clicked() {
                open_dialog = Some(ContactDialog::Block(id));
            }
        });
        let theirs = match summary.peer_keeps_history {
            Some(true) => format!("{name} keeps a history of this conversation on their computer."),
            Some(false) => format!("{name} keeps no history of this conversation."),
            None => format!("{name} has not said whether they keep a history."),
        };
        ui.add(Label::new(RichText::new(theirs).small()).wrap());
        if amnesic {
            // Nothing can be kept, so there is nothing to switch.
            ui.add(
                Label::new(
                    RichText::new(
                        "Amnesic session: messages are never saved, and disappear when the \
                         session ends.",
                    )
                    .small(),
                )
                .wrap(),
            );
        } else {
            let mut keep = summary.history_enabled;
            if ui.checkbox(&mut keep, "Keep history").changed() {
                actions.push(Action::SetHistory(id, keep));
            }
            let text = if keep {
                "Messages are kept, encrypted, in your profile. Switching this off deletes them."
            } else {
                "Messages disappear when you lock or close Allium."
            };
            ui.add(Label::new(RichText::new(text).small()).wrap());
        }
    });
    if open_dialog.is_some() {
        m.dialog = open_dialog;
    }
    // A file dropped anywhere on the window while this chat is open is
    // offered to this contact.
    let (hovering, dropped) = ui.ctx().input(|i| {
        let dropped: Vec<PathBuf> = i
            .raw
            .dropped_files
            .iter()
            .map(|f| f.path().to_path_buf())
            .filter(|p| !p.as_os_str().is_empty())
            .collect();
        (!i.raw.hovered_files.is_empty(), dropped)
    });
    for path in dropped {
        actions.push(Action::SendFile(id, Ok(path)));
    }
    Panel::bottom("chat-input").show(ui, |ui| {
        ui.add_space(4.0);
        if hovering {
            let c = good_color(ui);
            ui.label(RichText::new(format!("Drop the file to offer it to {name}.")).color(c));
        }
        let folder = m.settings_form.download_folder.trim().to_owned();
        let mut dismiss = Vec::new();
        // Fields, not `transfers_with`: the "Save in" texts change meanwhile.
        for t in m.transfers.iter().filter(|t| t.view.contact == id) {
            let save_in = m
                .save_in
                .entry(t.view.id.clone())
                .or_insert_with(|| folder.clone());
            transfer_row(ui, frame, t, name, save_in, actions, &mut dismiss);
        }
        for d in dismiss {
            m.dismiss_transfer(&d);
        }
        // Only transfers still listed keep a "Save in" text.
        let listed: std::collections::HashSet<&str> =
            m.transfers.iter().map(|t| t.view.id.as_str()).collect();
        m.save_in.retain(|k, _| listed.contains(k.as_str()));
        composer(ui, m, id, actions);
        let f = m.send_file.entry(id).or_default();
        ui.horizontal_wrapped(|ui| {
            if ui.button("Send a file…").clicked() {
                f.message = None;
                let dialog = rfd::AsyncFileDialog::new()
                    .set_title("Choose a file to send")
                    .set_parent(frame);
                actions.push(Action::SendFile(id, Err(dialog)));
            }
            let toggle = if f.open {
                "Hide the path field"
            } else {
                "Send a file by its path"
            };
            if ui.button(toggle).clicked() {
                f.open = !f.open;
            }
            ui.weak("or drag a file here");
        });
        if f.open {
            ui.horizontal(|ui| {
                let l = ui.label("File to send");
                let r = ui
                    .add(
                        TextEdit::singleline(&mut f.path)
                            .hint_text("/home/you/Documents/file.pdf")
                            .desired_width((ui.available_width() - 90.0).max(120.0)),
                    )
                    .labelled_by(l.id);
                if r.changed() {
                    f.message = None;
                }
                let path = f.path.trim().to_owned();
                let enter = submitted(ui, &r);
                if (ui
                    .add_enabled(!path.is_empty(), Button::new("Send file"))
                    .clicked()
                    || enter)
                    && !path.is_empty()
                {
                    f.message = None;
                    actions.push(Action::SendFile(id, Ok(PathBuf::from(path))));
                }
            });
        }
        outcome_line(ui, &f.message);
        ui.add_space(4.0);
    });
    ScrollArea::vertical()
        .stick_to_bottom(true)
        .auto_shrink(false)
        .show(ui, |ui| {
            let Some(list) = m.conversations.get(&id) else {
                ui.weak("No messages yet.");
                for (_, n) in m.notes.get(&id).map(Vec::as_slice).unwrap_or_default() {
                    divider(ui, n, true);
                }
                return;
            };
            let new_from = m.new_from.filter(|(c, _)| *c == id).map(|(_, i)| i);
            let notes = m.notes.get(&id).map(Vec::as_slice).unwrap_or_default();
            // Notes are kept in the order of their index: one pass over
            // both lists, not a search of the notes for every message.
            let mut notes = notes.iter().peekable();
            // The time zone's offset once per frame, not once per message.
            let offset = words::local_offset();
            let mut last_day = None;
            for (i, msg) in list.iter().enumerate() {
                while let Some((_, n)) = notes.next_if(|(at, _)| *at <= i) {
                    divider(ui, n, true);
                }
                let day = words::day_of(msg.at, offset);
                if day.is_some() && day != last_day {
                    last_day = day;
                    if let Some(d) = day {
                        divider(ui, &words::day_name(d), false);
                    }
                }
                if new_from == Some(i) {
                    divider(ui, "New messages", true);
                }
                message_bubble(ui, msg, name);
                ui.add_space(6.0);
            }
            for (_, n) in notes {
                divider(ui, n, true);
            }
        });
}

/// A centred line between messages: a day, or where the new ones start.
fn divider(ui: &mut Ui, text: &str, strong: bool) {
    ui.add_space(4.0);
    ui.vertical_centered(|ui| {
        let t = RichText::new(text).small();
        let t = if strong {
            t.strong().color(ui.visuals().hyperlink_color)
        } else {
            t.weak()
        };
        ui.label(t);
    });
    ui.add_space(4.0);
}

/// One line of a conversation. Ours and theirs differ in side, colour and
/// label, so a contact calling itself "You" still cannot pass for us.
fn message_bubble(ui: &mut Ui, msg: &MessageView, name: &str) {
    const BUBBLE_WIDTH: f32 = 520.0;
    let outgoing = msg.direction == allium_vault::Direction::Outgoing;
    let layout = if outgoing {
        egui::Layout::right_to_left(egui::Align::Min)
    } else {
        egui::Layout::left_to_right(egui::Align::Min)
    };
    let visuals = ui.visuals().clone();
    let fill = if outgoing {
        visuals.selection.bg_fill.gamma_multiply(0.35)
    } else {
        visuals.faint_bg_color
    };
    ui.with_layout(layout, |ui| {
        Frame::new()
            .fill(fill)
            .corner_radius(8.0)
            .inner_margin(egui::Margin::symmetric(10, 6))
            .show(ui, |ui| {
                ui.set_max_width(BUBBLE_WIDTH.min(ui.available_width() * 0.8));
                ui.with_layout(egui::Layout::top_down(egui::Align::Min), |ui| {
                    ui.horizontal(|ui| {
                        ui.label(RichText::new(if outgoing { "You" } else { name }).strong());
                        ui.weak(words::ago(msg.at));
                        if let Some(s) = msg.state {
                            let (word, tip) = words::delivery(s);
                            ui.label(RichText::new(word).small()).on_hover_text(tip);
                        }
                    });
                    // Plain text only: whatever it contains, it is shown as
                    // typed, as one bidi isolate.
                    let text = peer_text::isolated(&msg.text);
                    ui.add(Label::new(RichText::new(text)).wrap().selectable(true));
                });
            });
    });
}

/// The message box: several lines; Enter sends, Shift+Enter starts a new
/// line.
fn composer(ui: &mut Ui, m: &mut MainState, id: ContactId, actions: &mut Vec<Action>) {
    let editor = ui.make_persistent_id(("composer", id));
    let draft = m.drafts.entry(id).or_default();
    // Enter is taken before the editor sees it (it would insert a line
    // break); Shift+Enter is left to the editor.
    let focused = ui.memory(|mem| mem.has_focus(editor));
    let enter = focused
        && ui.input_mut(|i| !i.modifiers.shift && i.consume_key(egui::Modifiers::NONE, Key::Enter));
    ui.horizontal(|ui| {
        let l = ui.label("Message");
        let width = (ui.available_width() - 70.0).max(120.0);
        let r = ScrollArea::vertical()
            .id_salt(("composer-scroll", id))
            .max_height(120.0)
            .show(ui, |ui| {
                ui.add(
                    TextEdit::multiline(draft)
                        .id(editor)
                        .hint_text("Write a message (Shift+Enter for a new line)")
                        .desired_rows(2)
                        .desired_width(width),
                )
                .labelled_by(l.id)
            })
            .inner;
        let ready = !draft.trim().is_empty();
        let send = ui.add_enabled(ready, Button::new("Send")).clicked();
        if (send || enter) && ready {
            // Trailing line breaks are a slip of the finger, not content.
            let text = draft.trim_end().to_owned();
            draft.clear();
            actions.push(Action::SendMessage(id, text));
            r.request_focus();
        }
    });
}

fn transfer_row(
    ui: &mut Ui,
    frame: &eframe::Frame,
    t: &TransferEntry,
    name: &str,
    save_in: &mut String,
    actions: &mut Vec<Action>,
    dismiss: &mut Vec<String>,
) {
    let v = &t.view;
    let file = peer_text::isolated(&v.name);
    card(ui, |ui| {
        match &t.outcome {
            TransferOutcome::Active if incoming(v) && !v.accepted => {
                ui.add(
                    Label::new(format!(
                        "{name} offers a file: {} ({})",
                        file,
                        words::size(v.size)
                    ))
                    .wrap(),
                );
                ui.add(
                    Label::new(
                        RichText::new(
                            "Open only files you expected: a file can harm your computer \
                             or reveal who you are when opened.",
                        )
                        .small(),
                    )
                    .wrap(),
                );
                ui.horizontal(|ui| {
                    let l = ui.label("Save in");
                    ui.add(
                        TextEdit::singleline(save_in)
                            .hint_text("a folder; empty: choose one")
                            .desired_width(f32::INFINITY),
                    )
                    .labelled_by(l.id);
                });
                ui.horizontal(|ui| {
                    if ui.button("Accept file").clicked() {
                        let folder = save_in.trim();
                        let target = if folder.is_empty() {
                            Err(rfd::AsyncFileDialog::new()
                                .set_title("Choose where to save the file")
                                .set_parent(frame))
                        } else {
                            Ok(PathBuf::from(folder))
                        };
                        actions.push(Action::AcceptFile(v.id.clone(), target));
                    }
                    if ui.button("Decline").clicked() {
                        actions.push(Action::CancelFile(v.id.clone()));
                    }
                });
            }
            TransferOutcome::Active => {
                let fraction = if v.size == 0 {
                    0.0
                } else {
                    v.done as f32 / v.size as f32
                };
                let way = match v.direction {
                    TransferDirection::Incoming => "Receiving",
                    TransferDirection::Outgoing => "Sending",
                };
                let waiting = v.direction == TransferDirection::Outgoing && v.done == 0;
                let text = if waiting {
                    format!("{way} {}: waiting for {name} to accept", file)
                } else {
                    format!(
                        "{way} {}: {:.0}% at {}",
                        file,
                        fraction * 100.0,
                        words::speed(t.bytes_per_second)
                    )
                };
                ui.add(ProgressBar::new(fraction).text(text));
                if ui.button("Cancel transfer").clicked() {
                    actions.push(Action::CancelFile(v.id.clone()));
                }
            }
            TransferOutcome::Completed(path) => {
                ui.horizontal_wrapped(|ui| {
                    if incoming(v) {
                        ui.label(format!("Received {}.", file));
                        if let Some(dir) = path.as_ref().and_then(|p| p.parent())
                            && ui.button("Open folder").clicked()
                        {
                            actions.push(Action::OpenFolder(dir.to_owned()));
                        }
                    } else {
                        ui.label(format!("{} was delivered.", file));
                    }
                    if ui.button("Dismiss").clicked() {
                        dismiss.push(v.id.clone());
                    }
                });
            }
            TransferOutcome::Cancelled(c) => {
                ui.horizontal_wrapped(|ui| {
                    let who = if c.by_peer { name } else { "you" };
                    ui.label(format!("{} was cancelled by {who}: {}", file, c.reason));
                    if ui.button("Dismiss").clicked() {
                        dismiss.push(v.id.clone());
                    }
                });
            }
        }
        error_line(ui, t.error.as_deref());
    });
}

/// Remove, block, rename and verify, each in a dialog that says what it
/// does before it is done.
fn contact_dialog(ctx: &egui::Context, m: &mut MainState, actions: &mut Vec<Action>) {
    let Some(dialog) = m.dialog.clone() else {
        return;
    };
    let id = match &dialog {
        ContactDialog::Remove(id)
        | ContactDialog::Block(id)
        | ContactDialog::Rename(id, _)
        | ContactDialog::Verify(id) => *id,
    };
    let Some(entry) = m.contacts.get(&id) else {
        m.dialog = None;
        return;
    };
    let name = entry.display_name();
    let their_address = entry.summary.address.clone();
    let verified = entry.summary.verified;
    let own = m.address.clone();
    let mut close = false;
    let mut next = None;
    let modal = Modal::new(Id::unique("contact-dialog")).show(ctx, |ui| {
        ui.set_width(FORM_WIDTH);
        match &dialog {
            ContactDialog::Remove(_) => {
                ui.heading(format!("Remove {name}?"));
                ui.add(
                    Label::new(
                        "They are cut off at once: the conversation closes, your address for \
                         them stops working, and what was kept of it is deleted. They can \
                         still send you a new request while your public address is on.",
                    )
                    .wrap(),
                );
                ui.horizontal(|ui| {
                    if ui.button("Yes, remove").clicked() {
                        actions.push(Action::Remove(id));
                        close = true;
                    }
                    close |= ui.button("Cancel").clicked();
                });
            }
            ContactDialog::Block(_) => {
                ui.heading(format!("Block {name}?"));
                ui.add(
                    Label::new(
                        "They are cut off at once, and Allium refuses everything from their \
                         address from now on, requests included. You can unblock them in \
                         Settings.",
                    )
                    .wrap(),
                );
                ui.horizontal(|ui| {
                    if ui.button("Yes, block").clicked() {
                        actions.push(Action::Block(id));
                        close = true;
                    }
                    close |= ui.button("Cancel").clicked();
                });
            }
            ContactDialog::Rename(_, text) => {
                ui.heading(format!("Rename {name}"));
                let mut text = text.clone();
                let r = field(ui, "New name", &mut text, "only you see this", false);
                let enter = submitted(ui, &r);
                ui.horizontal(|ui| {
                    let ok = !text.trim().is_empty();
                    if ui.add_enabled(ok, Button::new("Save name")).clicked() || (ok && enter) {
                        actions.push(Action::Rename(id, text.trim().to_owned()));
                        close = true;
                    }
                    close |= ui.button("Cancel").clicked();
                });
                if !close {
                    next = Some(ContactDialog::Rename(id, text));
                }
            }
            ContactDialog::Verify(_) => {
                ui.heading(format!("Verify {name}"));
                let words = match (OnionId::parse(&own), OnionId::parse(&their_address)) {
                    (Ok(a), Ok(b)) => crate::engine::safety_words(&a, &b).join(" "),
                    _ => String::new(),
                };
                ui.add(
                    Label::new(format!(
                        "Ask {name} to open \"Verify contact\" too, and compare these words \
                         by voice or in person, not by a message here:"
                    ))
                    .wrap(),
                );
                card(ui, |ui| {
                    ui.add(
                        Label::new(RichText::new(&words).monospace().strong().size(18.0))
                            .wrap()
                            .selectable(true),
                    );
                });
                ui.add(
                    Label::new(
                        "The words come from both your addresses. If they match, the address \
                         you have is really theirs. If they differ, someone gave one of you a \
                         wrong address: remove this contact and get the address from them \
                         directly. An address cannot change, so this needs doing only once.",
                    )
                    .wrap(),
                );
                ui.horizontal(|ui| {
                    if verified {
                        if ui.button("Mark as not verified").clicked() {
                            actions.push(Action::SetVerified(id, false));
                            close = true;
                        }
                    } else if ui.button("The words match: mark as verified").clicked() {
                        actions.push(Action::SetVerified(id, true));
                        close = true;
                    }
                    close |= ui.button("Close").clicked();
                });
            }
        }
    });
    if close || modal.should_close() {
        m.dialog = None;
    } else if let Some(n) = next {
        m.dialog = Some(n);
    }
}

fn add_dialog(ctx: &egui::Context, m: &mut MainState, actions: &mut Vec<Action>) {
    let own = OnionId::parse(&m.address).ok();
    let Some(form) = m.add.as_mut() else {
        return;
    };
    let mut cancel = false;
    let modal = Modal::new(Id::unique("add-contact")).show(ctx, |ui| {
        ui.set_width(FORM_WIDTH);
        ui.heading("Add a contact");
        ui.add(
            Label::new(
                "Paste the address the other person gave you. They see your request and \
                 your message, and decide whether to accept.",
            )
            .wrap(),
        );
        field(ui, "Their address", &mut form.address, "allium:…", false);
        // Written in groups or over several lines, as on a printed card.
        let address = crate::engine::normalize_address(&form.address);
        let valid = if address.is_empty() {
            ui.small("It starts with \"allium:\".");
            false
        } else {
            match OnionId::parse(&address) {
                Ok(id) if Some(id) == own => {
                    error_line(ui, Some("That is your own address."));
                    false
                }
                Ok(_) => {
                    let c = good_color(ui);
                    ui.label(RichText::new("This address looks right.").color(c));
                    true
                }
                Err(e) => {
                    error_line(ui, Some(&format!("Not a valid address: {e}.")));
                    false
                }
            }
        };
        field(
            ui,
            "Name for them",
            &mut form.nickname,
            "only you see this",
            false,
        );
        field(
            ui,
            "Message with your request",
            &mut form.greeting,
            "optional",
            false,
        );
        ui.add(Label::new(RichText::new(GREETING_HINT).small()).wrap());
        error_line(ui, form.error.as_deref());
        ui.horizontal(|ui| {
            let ready = valid && !form.busy;
            if ui.add_enabled(ready, Button::new("Send request")).clicked() {
                form.busy = true;
                form.error = None;
                actions.push(Action::AddContact {
                    address,
                    nickname: form.nickname.trim().to_owned(),
                    greeting: form.greeting.trim().to_owned(),
                });
            }
            cancel = ui.button("Cancel").clicked();
        });
    });
    if cancel || modal.should_close() {
        m.add = None;
    }
}

fn settings_page(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    let amnesic = m.is_amnesic();
    let profile_name = m.name.clone().unwrap_or_default();
    ui.horizontal(|ui| {
        ui.heading("Settings");
        if ui.button("Back").clicked() {
            m.view = View::Home;
        }
    });
    // Never wider than the space there is (the scroll bar included), so
    // that nothing is cut off in a narrow window.
    let width = (ui.available_width() - 20.0).clamp(200.0, 560.0);
    ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
        ui.set_max_width(width);
        let f = &mut m.settings_form;

        section(ui, "Passphrase");
        if amnesic {
            ui.label("An amnesic session has no passphrase: nothing is saved.");
        } else {
            field(ui, "Current passphrase", &mut f.old, "", true);
            new_passphrase_fields(
                ui,
                ("New passphrase", "Repeat the new passphrase"),
                &mut f.new,
                &mut f.confirm,
                &mut f.suggested,
                &[profile_name.as_str()],
            );
            if ui
                .add_enabled(!f.passphrase_busy, Button::new("Change passphrase"))
                .clicked()
            {
                if f.old.is_empty() {
                    f.passphrase_outcome = Some(Err("Type your current passphrase.".into()));
                } else if let Err(e) =
                    check_new_passphrase(&f.new, &f.confirm, &[profile_name.as_str()])
                {
                    f.passphrase_outcome = Some(Err(capitalize(&e.to_string())));
                } else {
                    f.passphrase_busy = true;
                    f.passphrase_outcome = None;
                    f.confirm = Default::default();
                    f.suggested = None;
                    actions.push(Action::ChangePassphrase {
                        old: take_passphrase(&mut f.old),
                        new: take_passphrase(&mut f.new),
                    });
                }
            }
            if f.passphrase_busy {
                ui.horizontal(|ui| {
                    ui.spinner();
                    ui.label("Changing the passphrase…");
                });
            }
            outcome_line(ui, &f.passphrase_outcome);
        }

        if !amnesic {
            let mut hide = m.names_hidden;
            if ui
                .checkbox(&mut hide, "Hide profile names on the unlock screen")
                .changed()
            {
                actions.push(Action::HideNames(hide));
            }
            ui.add(
                Label::new(
                    RichText::new(
                        "Then you unlock by passphrase alone, and someone looking at the \
                         screen does not learn what your profiles are called. The names are \
                         still readable on the disk, as folder names.",
                    )
                    .small(),
                )
                .wrap(),
            );
        }

        section(ui, "Your name");
        ui.add(
            Label::new(
                "The name people see when you send them a request. Leave it empty to stay \
                 unnamed.",
            )
            .wrap(),
        );
        field(ui, "Your name", &mut f.display_name, "", false);
        if ui.button("Save name").clicked() {
            actions.push(Action::SetDisplayName(f.display_name.trim().to_owned()));
        }
        outcome_line(ui, &f.display_name_outcome);

        if !amnesic {
            section(ui, "Lock automatically");
            ui.add(
                Label::new(
                    "Lock the profile when nobody has used this window for a while. \
                     Locking takes you offline until you unlock again.",
                )
                .wrap(),
            );
            let current = m.settings.auto_lock_minutes;
            ui.horizontal_wrapped(|ui| {
                for (minutes, label) in AUTO_LOCK_CHOICES {
                    if ui.radio(current == *minutes, *label).clicked() && current != *minutes {
                        m.settings.auto_lock_minutes = *minutes;
                        actions.push(Action::SetAutoLock(*minutes));
                    }
                }
            });
        }

        section(ui, "Blocked addresses");
        if m.blocked.is_empty() {
            ui.weak("You have blocked nobody.");
        } else {
            ui.add(
                Label::new(
                    RichText::new(
                        "Allium refuses everything from these addresses. Unblocking lets \
                         them send you a request again; it does not make them a contact.",
                    )
                    .small(),
                )
                .wrap(),
            );
        }
        for b in &m.blocked {
            ui.horizontal_wrapped(|ui| {
                if !b.nickname.is_empty() {
                    ui.label(RichText::new(peer_text::isolated(&b.nickname)).strong());
                }
                ui.label(RichText::new(&b.address).monospace().small());
                let who = if b.nickname.is_empty() {
                    b.address.clone()
                } else {
                    peer_text::isolated(&b.nickname)
                };
                if ui
                    .add(Button::new("Unblock"))
                    .on_hover_text(format!("Unblock {who}"))
                    .clicked()
                {
                    actions.push(Action::Unblock(b.address.clone()));
                }
            });
        }

        section(ui, "Notifications");
        let mut content = m.settings.notification_content;
        if ui
            .checkbox(&mut content, "Show who wrote and what in notifications")
            .changed()
        {
            m.settings.notification_content = content;
            actions.push(Action::SetNotificationContent(content));
        }
        ui.add(
            Label::new(
                RichText::new(
                    "Off: a notification only says \"New message\". On: anyone who can see \
                     your screen can read it.",
                )
                .small(),
            )
            .wrap(),
        );

        section(ui, "Received files");
        let folder = field(
            ui,
            "Save received files in",
            &mut f.download_folder,
            "empty: ask each time",
            false,
        );
        // Kept with the profile, on the button or Enter.
        let entered = folder.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
        if ui.button("Keep this folder").clicked() || entered {
            actions.push(Action::SetDownloadFolder(
                f.download_folder.trim().to_owned(),
            ));
        }
        outcome_line(ui, &f.download_folder_outcome);
        ui.add(
            Label::new(
                RichText::new(
                    "A folder on this computer, kept with this profile. Leave it empty to \
                     choose for each file.",
                )
                .small(),
            )
            .wrap(),
        );

        section(ui, "Network");
        ui.add(Label::new(format!("Allium is using {} now.", m.network.description)).wrap());
        if m.network.from_command_line {
            ui.add(
                Label::new(
                    RichText::new(
                        "It was chosen when Allium was started (--network), and overrides \
                         the choice below until Allium is started without it.",
                    )
                    .small(),
                )
                .wrap(),
            );
        }
        if amnesic {
            ui.add(
                Label::new(
                    "An amnesic session keeps no settings: its network is chosen when it starts.",
                )
                .wrap(),
            );
        } else {
            ui.label("For the next time you unlock this profile:");
            ui.radio_value(
                &mut f.custom_network,
                false,
                "Public Tor network (recommended)",
            );
            ui.radio_value(
                &mut f.custom_network,
                true,
                "A custom Tor network (experts)",
            );
            if f.custom_network {
                field(
                    ui,
                    "Network file",
                    &mut f.network_file,
                    "/path/to/network.json",
                    false,
                );
            }
            if ui.button("Save network choice").clicked() {
                let file = f.network_file.trim();
                if f.custom_network && file.is_empty() {
                    f.network_outcome = Some(Err("Choose the network file.".into()));
                } else {
                    f.network_outcome = None;
                    let choice = f.custom_network.then(|| file.to_owned());
                    actions.push(Action::SetNetwork(choice));
                }
            }
            ui.add(
                Label::new(
                    RichText::new("Allium uses it from the next time you unlock this profile.")
                        .small(),
                )
                .wrap(),
            );
            outcome_line(ui, &f.network_outcome);
        }

        if !amnesic {
            section(ui, "Delete this profile");
            ui.add(
                Label::new(
                    "Deletes your address, contacts, history and settings from this computer \
                     for good: the files are overwritten, then removed. Nobody can undo it, \
                     and your contacts can no longer reach you. Files you saved elsewhere \
                     stay. Type the profile's name to confirm.",
                )
                .wrap(),
            );
            field(
                ui,
                "Profile name to delete",
                &mut f.delete_confirm,
                "the profile's name",
                false,
            );
            let matches = f.delete_confirm.trim() == profile_name;
            if ui
                .add_enabled(matches, Button::new("Delete profile for good"))
                .clicked()
            {
                actions.push(Action::DeleteProfile(profile_name.clone()));
            }
        }

        section(ui, "About");
        ui.label(format!("Allium {}", env!("CARGO_PKG_VERSION")));
        ui.label(format!(
            "Arti {} (Tor, built in)",
            allium_onion::ARTI_VERSION
        ));
        ui.add(
            Label::new(
                "Allium has no servers. Messages go straight between you and your contacts, \
                 through Tor.",
            )
            .wrap(),
        );
    });
}

fn section(ui: &mut Ui, title: &str) {
    ui.add_space(14.0);
    ui.label(RichText::new(title).strong().size(17.0));
    ui.separator();
}

/// What the window says while saves fail: what to do depends on why.
fn save_problem_words(p: &crate::engine::SaveError) -> String {
    use crate::engine::SaveError;
    match p {
        SaveError::DiskFull => "Your latest changes are not saved: the disk is full. \
            Free some space and Allium saves them; your previous save is intact."
            .to_owned(),
        SaveError::NotWritable => "Your latest changes are not saved: the profile's folder \
            cannot be written (a read-only disk, or no permission). Your previous save is \
            intact; Allium keeps trying."
            .to_owned(),
        other => format!("Your latest changes are not saved yet: {other}. Allium keeps trying."),
    }
}

#[cfg(test)]
mod tests {
    use super::save_problem_words;
    use crate::engine::SaveError;

    #[test]
    fn a_full_disk_and_a_read_only_folder_get_their_own_advice() {
        assert!(save_problem_words(&SaveError::DiskFull).contains("Free some space"));
        assert!(save_problem_words(&SaveError::NotWritable).contains("cannot be written"));
        let other = save_problem_words(&SaveError::Other("the vault's lock is poisoned".into()));
        assert!(other.contains("the vault's lock is poisoned"), "{other}");
    }
}
