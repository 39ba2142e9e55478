//! A contact's page: a request card, or the conversation with its
//! messages, the composer and file transfers.

use super::*;

pub(super) fn contact_page(
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

pub(super) fn request_card(
    ui: &mut Ui,
    m: &mut MainState,
    id: ContactId,
    actions: &mut Vec<Action>,
) {
    let mut block_request = false;
    request_card_body(ui, m, id, actions, &mut block_request);
    if block_request {
        m.dialog = Some(ContactDialog::Block(id));
    }
}

pub(super) fn request_card_body(
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

pub(super) fn chat(
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
        chat_head(ui, &summary, name, amnesic, &mut open_dialog, actions);
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
        transfers_of(ui, frame, m, id, name, actions);
        composer(ui, m, id, actions);
        file_sender(ui, frame, m, id, actions);
        ui.add_space(4.0);
    });
    ScrollArea::vertical()
        .stick_to_bottom(true)
        .auto_shrink(false)
        .show(ui, |ui| conversation(ui, m, id, name));
}

/// The name, whether they are online and verified, what can be done with
/// the contact, and who keeps a history.
fn chat_head(
    ui: &mut Ui,
    summary: &crate::engine::ContactSummary,
    name: &str,
    amnesic: bool,
    open_dialog: &mut Option<ContactDialog>,
    actions: &mut Vec<Action>,
) {
    let id = summary.id;
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
            *open_dialog = Some(ContactDialog::Rename(id, summary.nickname.clone()));
        }
        let verify = if summary.verified {
            "Safety words"
        } else {
            "Verify contact"
        };
        if ui.button(verify).clicked() {
            *open_dialog = Some(ContactDialog::Verify(id));
        }
        if ui.button("Remove contact").clicked() {
            *open_dialog = Some(ContactDialog::Remove(id));
        }
        if ui.button("Block contact").clicked() {
            *open_dialog = Some(ContactDialog::Block(id));
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
}

/// The transfers with this contact, each with what can be done with it.
fn transfers_of(
    ui: &mut Ui,
    frame: &eframe::Frame,
    m: &mut MainState,
    id: ContactId,
    name: &str,
    actions: &mut Vec<Action>,
) {
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
}

/// Sending a file: by the file dialog, or by its path.
fn file_sender(
    ui: &mut Ui,
    frame: &eframe::Frame,
    m: &mut MainState,
    id: ContactId,
    actions: &mut Vec<Action>,
) {
    let f = m.send_file.entry(id).or_default();
    ui.horizontal_wrapped(|ui| {
        if ui.button("Send a file…").clicked() {
            f.message = None;
            let dialog = rfd::AsyncFileDialog::new()
                .set_title("Choose a file to send")
                .set_parent(frame);
            actions.push(Action::SendFile(id, Err(dialog)));
        }
        show_hide(
            ui,
            &mut f.open,
            "Hide the path field",
            "Send a file by its path",
        );
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
}

/// The messages, with day lines, notes and where the new ones start.
fn conversation(ui: &mut Ui, m: &MainState, id: ContactId, name: &str) {
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
}

/// A centred line between messages: a day, or where the new ones start.
pub(super) fn divider(ui: &mut Ui, text: &str, strong: bool) {
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
pub(super) fn message_bubble(ui: &mut Ui, msg: &MessageView, name: &str) {
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
pub(super) fn composer(ui: &mut Ui, m: &mut MainState, id: ContactId, actions: &mut Vec<Action>) {
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

pub(super) fn transfer_row(
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
                offered_file(ui, frame, v, &file, name, save_in, actions);
            }
            TransferOutcome::Active => file_progress(ui, t, &file, name, actions),
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

/// An offer waiting for the person: what it is, the warning, where to
/// save it, accept or decline.
fn offered_file(
    ui: &mut Ui,
    frame: &eframe::Frame,
    v: &crate::engine::TransferView,
    file: &str,
    name: &str,
    save_in: &mut String,
    actions: &mut Vec<Action>,
) {
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

/// A transfer under way: how far, how fast, and cancelling it.
fn file_progress(
    ui: &mut Ui,
    t: &TransferEntry,
    file: &str,
    name: &str,
    actions: &mut Vec<Action>,
) {
    let v = &t.view;
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
