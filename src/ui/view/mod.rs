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

mod chat;
mod dialogs;
mod onboarding;
mod settings;
mod sidebar;

use chat::*;
use dialogs::*;
use onboarding::*;
use settings::*;
use sidebar::*;

/// The amnesic banner, shown on every screen of such a session.
pub(crate) const AMNESIC_BANNER: &str = "Amnesic session — nothing is saved";

/// What the button that ends an amnesic session says.
pub(crate) const END_SESSION: &str = "End session (erases everything)";

/// What locking does, where the Lock button is and on the unlock screen.
pub(crate) const LOCK_WORDS: &str = "Locking closes the profile: you go offline, your \
    contacts cannot reach you, and nothing can be read without your passphrase until you \
    unlock it again.";

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

/// A button that shows or hides something, labelled for what a click
/// does.
fn show_hide(ui: &mut Ui, shown: &mut bool, hide: &str, show: &str) {
    if ui.button(if *shown { hide } else { show }).clicked() {
        *shown = !*shown;
    }
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

fn section(ui: &mut Ui, title: &str) {
    ui.add_space(14.0);
    ui.label(RichText::new(title).strong().size(17.0));
    ui.separator();
}
