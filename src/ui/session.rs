//! The open profile, seen from the window: each thing the person asks of
//! it becomes one engine call whose outcome comes back as a
//! [`SessionMsg`] (`App::engine_call`), and `opened` forwards what the
//! engine and Tor say until the profile is closed. It must never block
//! the UI thread: every call runs as a task on the runtime.

use super::*;

impl App {
    /// What the person asked of the open profile: mostly one engine call
    /// each, whose outcome goes back to the window (`engine_call`).
    pub(super) fn dispatch_session(&mut self, action: Action) {
        match action {
            Action::RetryTor => self.retry_tor(),
            Action::SetIntake(on) => {
                self.engine_call(move |h| async move { h.set_intake(on).await }, failed)
            }
            Action::AddContact {
                address,
                nickname,
                greeting,
            } => self.engine_call(
                move |h| async move { h.add_contact(&address, &nickname, &greeting).await },
                |_, r| {
                    ready(Some(match r {
                        Ok(id) => SessionMsg::ContactAdded(id),
                        Err(e) => SessionMsg::AddFailed(e.to_string()),
                    }))
                },
            ),
            Action::Accept(id, name) => {
                let name = (!name.trim().is_empty()).then(|| name.trim().to_owned());
                self.engine_call(
                    move |h| async move { h.accept(id, name.as_deref()).await },
                    failed,
                )
            }
            Action::Reject(id) => {
                self.engine_call(move |h| async move { h.reject(id).await }, failed)
            }
            // The list in the settings shows the change.
            Action::Block(id) => {
                self.engine_call(move |h| async move { h.block(id).await }, then_blocked)
            }
            Action::Unblock(address) => self.engine_call(
                move |h| async move { h.unblock(&address).await },
                then_blocked,
            ),
            Action::Rename(id, name) => self.engine_call(
                move |h| async move { h.rename(id, &name).await },
                |_, r| {
                    ready(
                        r.err()
                            .map(|e| SessionMsg::Failed(format!("the name was not changed: {e}"))),
                    )
                },
            ),
            Action::SetVerified(id, on) => {
                self.engine_call(move |h| async move { h.set_verified(id, on).await }, failed)
            }
            Action::Remove(id) => {
                self.engine_call(move |h| async move { h.remove(id).await }, failed)
            }
            Action::SendMessage(contact, text) => self.send_message(contact, text),
            Action::SetHistory(contact, on) => self.set_history(contact, on),
            Action::SendFile(contact, file) => self.send_file(contact, file),
            Action::AcceptFile(transfer, folder) => self.accept_file(transfer, folder),
            Action::CancelFile(transfer) => self.engine_call(
                {
                    let transfer = transfer.clone();
                    move |h| async move { h.cancel_file(&transfer).await }
                },
                move |_, r| ready(r.err().map(|e| transfer_failed(transfer, e))),
            ),
            Action::ChangePassphrase { old, new } => self.change_passphrase(old, new),
            Action::SetNetwork(file) => self.set_network(file),
            Action::SetNotificationContent(on) => self.engine_call(
                move |h| async move { h.set_notification_content(on).await },
                then_settings,
            ),
            Action::SetDisplayName(name) => self.engine_call(
                {
                    let name = name.clone();
                    move |h| async move { h.set_display_name(&name).await }
                },
                move |_, r| {
                    let r = r
                        .map(|()| name)
                        .map_err(|e| state::capitalize(&e.to_string()));
                    ready(Some(SessionMsg::DisplayNameSaved(r)))
                },
            ),
            Action::SetAutoLock(minutes) => self.engine_call(
                move |h| async move { h.set_auto_lock(minutes).await },
                then_settings,
            ),
            Action::SetDownloadFolder(folder) => {
                let folder = (!folder.is_empty()).then_some(folder);
                let kept = folder.clone();
                self.engine_call(
                    move |h| async move { h.set_download_folder(folder.as_deref()).await },
                    move |_, r| {
                        let r = r
                            .map(|()| kept)
                            .map_err(|e| state::capitalize(&e.to_string()));
                        ready(Some(SessionMsg::DownloadFolderSaved(r)))
                    },
                )
            }
            Action::Create { .. }
            | Action::Unlock { .. }
            | Action::UnlockAny(_)
            | Action::HideNames(_)
            | Action::Amnesic
            | Action::Lock
            | Action::DeleteProfile(_)
            | Action::Quit
            | Action::OpenFolder(_) => {}
        }
    }

    /// Runs `call` on the open profile's engine in the background; what
    /// `report` makes of its result (if anything) goes to the window,
    /// tagged with this profile so that a later one never sees it.
    fn engine_call<T, C, CF, R, RF, M>(&self, call: C, report: R)
    where
        T: Send + 'static,
        C: FnOnce(EngineHandle) -> CF + Send + 'static,
        CF: Future<Output = Result<T, EngineError>> + Send,
        R: FnOnce(EngineHandle, Result<T, EngineError>) -> RF + Send + 'static,
        RF: Future<Output = M> + Send,
        M: IntoIterator<Item = SessionMsg>,
    {
        let Some(session) = &self.session else {
            return;
        };
        let (h, g, tx) = (
            session.handle.clone(),
            session.generation,
            self.sender.clone(),
        );
        self.runtime.spawn(async move {
            let result = call(h.clone()).await;
            for msg in report(h, result).await {
                tx.session(g, msg);
            }
        });
    }

    fn retry_tor(&mut self) {
        let Some(session) = &self.session else {
            return;
        };
        let control = session.control.clone();
        if let Some(main) = &mut self.state.main {
            main.tor = TorState::Connecting {
                fraction: 0.0,
                phase: "starting again".into(),
            };
        }
        self.runtime.spawn_blocking(move || control.retry_tor());
    }

    fn send_message(&mut self, contact: ContactId, text: String) {
        let queued = text.clone();
        self.engine_call(
            move |h| async move { h.send_message(contact, &queued).await },
            move |_, r| {
                ready(Some(match r {
                    Ok(id) => SessionMsg::Sent {
                        contact,
                        id,
                        text,
                        at: words::now(),
                    },
                    Err(e) => SessionMsg::SendFailed {
                        contact,
                        text,
                        error: e.to_string(),
                    },
                }))
            },
        );
    }

    fn set_history(&mut self, contact: ContactId, on: bool) {
        if let Some(main) = &mut self.state.main {
            let name = main.contact_name(contact);
            main.note(
                contact,
                if on {
                    format!(
                        "You turned history on: this conversation is kept in your \
                         profile. Allium tells {name}, if their Allium is recent enough to hear it."
                    )
                } else {
                    format!("You turned history off: nothing of it is kept. Allium tells {name}.")
                },
            );
        }
        self.engine_call(
            move |h| async move { h.set_history(contact, on).await },
            failed,
        );
    }

    fn send_file(&mut self, contact: ContactId, file: Result<PathBuf, rfd::AsyncFileDialog>) {
        self.engine_call(
            move |h| async move {
                let path = match file {
                    Ok(path) => path,
                    Err(dialog) => match dialog.pick_file().await {
                        Some(f) => f.path().to_owned(),
                        // Cancelled, or no dialog could be shown on this
                        // desktop: the path field still works.
                        None => return Ok(None),
                    },
                };
                let sent = h.send_file(contact, &path).await;
                Ok(Some((path, sent)))
            },
            move |h, r: Result<_, EngineError>| async move {
                match r {
                    Ok(None) => vec![SessionMsg::FilePickerClosed(contact)],
                    Ok(Some((_, Ok(_)))) => {
                        let mut said = vec![SessionMsg::FileOffered(contact)];
                        said.extend(h.transfers().await.ok().map(SessionMsg::Transfers));
                        said
                    }
                    Ok(Some((path, Err(e)))) => vec![SessionMsg::FileNotSent {
                        contact,
                        error: format!("{} was not sent: {e}", path.display()),
                    }],
                    Err(e) => vec![SessionMsg::Failed(e.to_string())],
                }
            },
        );
    }

    fn accept_file(&mut self, transfer: String, folder: Result<PathBuf, rfd::AsyncFileDialog>) {
        let id = transfer.clone();
        self.engine_call(
            move |h| async move {
                let folder = match folder {
                    Ok(folder) => folder,
                    Err(dialog) => match dialog.pick_folder().await {
                        Some(f) => f.path().to_owned(),
                        None => return Ok(None),
                    },
                };
                h.accept_file(&id, folder).await.map(Some)
            },
            move |_, r| {
                ready(match r {
                    Ok(Some(())) => None,
                    // Cancelled, or no dialog could be shown on this
                    // desktop: either way, say what else works.
                    Ok(None) => Some(SessionMsg::TransferFailed {
                        transfer,
                        error: "no folder was chosen. Type the folder's path in \"Save in\", \
                                or set one for every file in Settings."
                            .into(),
                    }),
                    Err(e) => Some(transfer_failed(transfer, e)),
                })
            },
        );
    }

    fn change_passphrase(&mut self, old: Passphrase, new: Passphrase) {
        let Some(session) = &self.session else {
            return;
        };
        let (g, tx) = (session.generation, self.sender.clone());
        let fut = session.control.change_passphrase(old, new);
        self.runtime.spawn(async move {
            tx.session(g, SessionMsg::PassphraseChanged(fut.await));
        });
    }

    fn set_network(&mut self, file: Option<String>) {
        let rt = self.runtime.clone();
        self.engine_call(
            move |h| async move {
                // Check the file now, while the person is here to fix it,
                // rather than at the next unlock.
                if let Some(path) = file.clone() {
                    let checked = rt
                        .spawn_blocking(move || {
                            CustomNetwork::load(std::path::Path::new(&path)).and_then(|n| n.check())
                        })
                        .await;
                    let problem = match checked {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(state::capitalize(&e.to_string())),
                        Err(_) => Some("The file could not be checked.".to_owned()),
                    };
                    if let Some(p) = problem {
                        return Ok(Err(p));
                    }
                }
                Ok(h.set_custom_network(file.clone())
                    .await
                    .map(|()| file)
                    .map_err(|e| state::capitalize(&e.to_string())))
            },
            |_, r: Result<_, EngineError>| {
                ready(Some(SessionMsg::NetworkSaved(
                    r.unwrap_or_else(|e| Err(state::capitalize(&e.to_string()))),
                )))
            },
        );
    }
}

/// The report of a call whose success needs no word: only a failure is
/// said.
fn failed<T>(_: EngineHandle, r: Result<T, EngineError>) -> Ready<Option<SessionMsg>> {
    ready(r.err().map(|e| SessionMsg::Failed(e.to_string())))
}

/// After a change of the person's settings: the settings as saved.
async fn then_settings(h: EngineHandle, r: Result<(), EngineError>) -> Option<SessionMsg> {
    match r {
        Ok(()) => h.settings().await.ok().map(SessionMsg::Settings),
        Err(e) => Some(SessionMsg::Failed(e.to_string())),
    }
}

/// After a change of the block list: the list.
async fn then_blocked(h: EngineHandle, r: Result<(), EngineError>) -> Option<SessionMsg> {
    match r {
        Ok(()) => h.blocked().await.ok().map(SessionMsg::Blocked),
        Err(e) => Some(SessionMsg::Failed(e.to_string())),
    }
}

fn transfer_failed(transfer: String, e: EngineError) -> SessionMsg {
    SessionMsg::TransferFailed {
        transfer,
        error: e.to_string(),
    }
}

/// Collects what the window shows first, tells the window, then forwards
/// events and Tor states until the engine stops or the session is closed.
/// The snapshot is sent before any event, so no event is overwritten by
/// an older snapshot.
pub(super) async fn opened(generation: u64, running: Running, sender: UiSender) {
    let Running {
        engine,
        mut tor,
        name,
        control,
        network,
    } = running;
    let Engine {
        handle,
        mut events,
        address,
        ..
    } = engine;
    let snapshot = match snapshot(&handle, name, address.to_address(), &mut tor, network).await {
        Ok(s) => s,
        Err(e) => {
            sender.send(Msg::OpenFailed(AppError::Storage(e.to_string())));
            return;
        }
    };
    let (stop, mut stopped) = oneshot::channel();
    let delivered = sender.send(Msg::Opened(Box::new(Opened {
        generation,
        handle: handle.clone(),
        control: Arc::from(control),
        stop,
        snapshot,
    })));
    if !delivered {
        let _ = handle.shutdown().await;
        return;
    }
    let mut tor_open = true;
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            e = events.recv() => match e {
                Some(e) => {
                    if !sender.session(generation, SessionMsg::Event(Box::new(e))) {
                        break;
                    }
                }
                None => {
                    sender.session(generation, SessionMsg::Stopped);
                    break;
                }
            },
            changed = tor.changed(), if tor_open => match changed {
                Ok(()) => {
                    let t = tor.borrow_and_update().clone();
                    sender.session(generation, SessionMsg::Tor(t));
                }
                // The backend no longer reports: the last state stands.
                Err(_) => tor_open = false,
            },
        }
    }
}

async fn snapshot(
    handle: &EngineHandle,
    name: Option<String>,
    address: String,
    tor: &mut tokio::sync::watch::Receiver<TorState>,
    network: crate::app::NetworkInUse,
) -> Result<Snapshot, crate::engine::EngineError> {
    let status = handle.status().await?;
    let settings = handle.settings().await?;
    let contacts = handle.contacts().await?;
    let transfers = handle.transfers().await?;
    let blocked = handle.blocked().await?;
    let mut conversations = Vec::new();
    for c in &contacts {
        let messages = handle.conversation(c.id).await?;
        if !messages.is_empty() {
            conversations.push((c.id, messages));
        }
    }
    let tor = tor.borrow_and_update().clone();
    Ok(Snapshot {
        name,
        address,
        tor,
        status,
        settings,
        contacts,
        transfers,
        conversations,
        blocked,
        network,
    })
}
