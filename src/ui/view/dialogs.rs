//! The modal dialogs: a contact's details (rename, verify, remove,
//! block) and adding a contact.

use super::*;

/// Remove, block, rename and verify, each in a dialog that says what it
/// does before it is done.
pub(super) fn contact_dialog(ctx: &egui::Context, m: &mut MainState, actions: &mut Vec<Action>) {
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
                let text = "They are cut off at once: the conversation closes, your address for \
                            them stops working, and what was kept of it is deleted. They can \
                            still send you a new request while your public address is on.";
                match confirm(ui, &format!("Remove {name}?"), text, "Yes, remove") {
                    Some(true) => {
                        actions.push(Action::Remove(id));
                        close = true;
                    }
                    Some(false) => close = true,
                    None => {}
                }
            }
            ContactDialog::Block(_) => {
                let text = "They are cut off at once, and Allium refuses everything from their \
                            address from now on, requests included. You can unblock them in \
                            Settings.";
                match confirm(ui, &format!("Block {name}?"), text, "Yes, block") {
                    Some(true) => {
                        actions.push(Action::Block(id));
                        close = true;
                    }
                    Some(false) => close = true,
                    None => {}
                }
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
                let verify = Verify {
                    id,
                    name: &name,
                    own: &own,
                    theirs: &their_address,
                    verified,
                };
                close |= verify_page(ui, &verify, actions);
            }
        }
    });
    if close || modal.should_close() {
        m.dialog = None;
    } else if let Some(n) = next {
        m.dialog = Some(n);
    }
}

/// A question with a yes and a cancel: `Some(true)` for yes,
/// `Some(false)` for cancel, `None` while neither was clicked.
fn confirm(ui: &mut Ui, heading: &str, text: &str, yes: &str) -> Option<bool> {
    ui.heading(heading);
    ui.add(Label::new(text).wrap());
    ui.horizontal(|ui| {
        let yes = ui.button(yes).clicked();
        let cancel = ui.button("Cancel").clicked();
        (yes || cancel).then_some(yes)
    })
    .inner
}

/// What the safety-words page shows.
struct Verify<'a> {
    id: ContactId,
    name: &'a str,
    own: &'a str,
    theirs: &'a str,
    verified: bool,
}

/// The safety words of both addresses, how to compare them, and marking
/// the contact verified or not. True when the dialog is to close.
fn verify_page(ui: &mut Ui, v: &Verify, actions: &mut Vec<Action>) -> bool {
    let (id, name, verified) = (v.id, v.name, v.verified);
    let (own, their_address) = (v.own, v.theirs);
    let mut close = false;
    ui.heading(format!("Verify {name}"));
    let words = match (OnionId::parse(own), OnionId::parse(their_address)) {
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
    close
}

pub(super) fn add_dialog(ctx: &egui::Context, m: &mut MainState, actions: &mut Vec<Action>) {
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
