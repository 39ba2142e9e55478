//! The first screens: creating a profile (with the passphrase meter), unlocking one, and starting an amnesic session.

use super::*;

pub(super) fn amnesic_card(ui: &mut Ui, actions: &mut Vec<Action>) {
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
pub(super) const STRENGTH_HEIGHT: f32 = 58.0;

/// The strength of `passphrase`, estimated again only when it changed:
/// `zxcvbn` is too slow to run on every frame. Only a keyed hash of the
/// text is kept (in the window's memory), not the text.
pub(super) fn cached_strength(
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
pub(super) fn new_passphrase_fields(
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

pub(super) fn create(ui: &mut Ui, state: &mut UiState, actions: &mut Vec<Action>) {
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

pub(super) fn unlock(ui: &mut Ui, state: &mut UiState, actions: &mut Vec<Action>) {
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
