//! The main window's frame: the top bar, Tor's state and the alerts, the
//! contact list with our address (and its QR code), and the home page.

use super::*;
use crate::engine::ServiceState;

/// The sentence under the intake switch.
pub(super) const INTAKE_SENTENCE: &str = "When this is off, nobody new can send you a request. \
                               Your contacts can still reach you.";

pub(super) fn main_window(
    ui: &mut Ui,
    frame: &eframe::Frame,
    state: &mut UiState,
    actions: &mut Vec<Action>,
) {
    let Some(m) = state.main.as_mut() else {
        return;
    };
    Panel::top("menu").show(ui, |ui| menu_bar(ui, m, actions));
    if m.is_amnesic() {
        Panel::top("amnesic")
            .frame(
                Frame::new()
                    .fill(Color32::from_rgb(250, 215, 90))
                    .inner_margin(8.0),
            )
            .show(ui, amnesic_banner);
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

/// Which profile, and quitting, locking and the settings.
fn menu_bar(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
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
}

/// What an amnesic session is, on every screen of it.
fn amnesic_banner(ui: &mut Ui) {
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
}

pub(super) fn tor_status(ui: &mut Ui, m: &MainState, actions: &mut Vec<Action>) {
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

pub(super) fn alerts(ui: &mut Ui, m: &mut MainState) {
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

/// What the window says while saves fail: what to do depends on why.
pub(super) fn save_problem_words(p: &crate::engine::SaveError) -> String {
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

pub(super) fn sidebar(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    own_address(ui, m, actions);
    ui.separator();
    contact_list(ui, m);
}

/// Our address, copying it, its QR code, and the intake switch.
fn own_address(ui: &mut Ui, m: &mut MainState, actions: &mut Vec<Action>) {
    ui.heading("My address");
    address_in_groups(ui, &m.address);
    ui.horizontal(|ui| {
        if ui.button("Copy address").clicked() {
            ui.ctx().copy_text(m.address.clone());
            m.copied = true;
        }
        show_hide(ui, &mut m.show_qr, "Hide QR code", "Show QR code");
    });
    if m.copied {
        ui.small("Copied. Give it only to people you want to hear from.");
    }
    if m.show_qr {
        qr_code(ui, &m.address);
    }
    ui.add_space(6.0);
    let mut on = m.status.intake.is_some();
    if ui
        .checkbox(&mut on, "Accept new contact requests")
        .changed()
    {
        // Shown at once; the engine's events say how it goes.
        m.status.intake = on.then_some(ServiceState::Starting);
        actions.push(Action::SetIntake(on));
    }
    ui.add(Label::new(RichText::new(INTAKE_SENTENCE).small()).wrap());
    ui.add(Label::new(RichText::new(words::intake(m.status.intake)).small().weak()).wrap());
}

/// Requests waiting, then every other contact with what is new.
fn contact_list(ui: &mut Ui, m: &mut MainState) {
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
        .map(|c| (c.summary.id, contact_row(m, c)))
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

/// A contact's line: name, online or not, new messages, files offered.
fn contact_row(m: &MainState, c: &crate::ui::state::ContactEntry) -> String {
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
        .filter(|t| incoming(&t.view) && !t.view.accepted && t.outcome == TransferOutcome::Active)
        .count();
    let offers = match offers {
        0 => String::new(),
        1 => ", offers a file".to_owned(),
        n => format!(", offers {n} files"),
    };
    format!("{} — {state}{unread}{offers}", c.display_name())
}

/// An address in groups of eight characters, as on a printed card, so a
/// person can read it out or compare it. The groups are not selectable
/// text (a copy would hold the spaces); "Copy address" copies it whole,
/// and the screen reader reads it whole.
pub(super) fn address_in_groups(ui: &mut Ui, address: &str) {
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
pub(super) fn qr_code(ui: &mut Ui, address: &str) {
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

pub(super) fn home(ui: &mut Ui, m: &MainState) {
    ui.heading("Welcome");
    let text = if m.contacts.is_empty() {
        "To start, give your address to someone you trust (\"Copy address\"), or add \
         theirs with \"Add contact\"."
    } else {
        "Choose a contact on the left."
    };
    ui.add(Label::new(text).wrap());
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
