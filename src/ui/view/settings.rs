//! The settings page, one function per section.

use super::*;

/// The auto-lock choices: minutes without use, 0 for never.
pub(super) const AUTO_LOCK_CHOICES: &[(u32, &str)] = &[
    (0, "Never"),
    (5, "After 5 minutes"),
    (15, "After 15 minutes"),
    (30, "After 30 minutes"),
    (60, "After 1 hour"),
];

pub(super) fn settings_page(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
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
        passphrase_section(ui, m, actions, amnesic, &profile_name);
        your_name_section(ui, m, actions);
        auto_lock_section(ui, m, actions, amnesic);
        blocked_section(ui, m, actions);
        notifications_section(ui, m, actions);
        received_files_section(ui, m, actions);
        network_section(ui, m, actions, amnesic);
        delete_section(ui, m, actions, amnesic, &profile_name);
        about_section(ui);
    });
}

/// Changing the passphrase (none in an amnesic session), and hiding the
/// profile names on the unlock screen.
fn passphrase_section(
    ui: &mut Ui,
    m: &mut MainState,
    actions: &mut Vec<Action>,
    amnesic: bool,
    profile_name: &str,
) {
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
            &[profile_name],
        );
        if ui
            .add_enabled(!f.passphrase_busy, Button::new("Change passphrase"))
            .clicked()
        {
            if f.old.is_empty() {
                f.passphrase_outcome = Some(Err("Type your current passphrase.".into()));
            } else if let Err(e) = check_new_passphrase(&f.new, &f.confirm, &[profile_name]) {
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
}

/// The name suggested to people we send requests to.
fn your_name_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    let f = &mut m.settings_form;
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
}

/// Locking after a while without use (not in an amnesic session).
fn auto_lock_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>, amnesic: bool) {
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
}

/// The block list, with a way to unblock each.
fn blocked_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
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
}

/// What a desktop notification may show.
fn notifications_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
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
}

/// Where received files go, kept with the profile.
fn received_files_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    let f = &mut m.settings_form;
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
}

/// Which Tor network the next unlock uses.
fn network_section(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>, amnesic: bool) {
    let f = &mut m.settings_form;
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
                RichText::new("Allium uses it from the next time you unlock this profile.").small(),
            )
            .wrap(),
        );
        outcome_line(ui, &f.network_outcome);
    }
}

/// Deleting the profile, once its name is typed.
fn delete_section(
    ui: &mut Ui,
    m: &mut MainState,
    actions: &mut Vec<Action>,
    amnesic: bool,
    profile_name: &str,
) {
    let f = &mut m.settings_form;
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
            actions.push(Action::DeleteProfile(profile_name.to_owned()));
        }
    }
}

/// Versions, and what Allium is.
fn about_section(ui: &mut Ui) {
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
}
