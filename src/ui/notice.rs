//! Desktop notifications for a new message or contact request.
//!
//! By default a notification says only that something arrived ("New
//! message"): no name, no text, because notification daemons keep a
//! history and show it on the lock screen. Only when the person switched
//! on `Settings::notification_content` does it name the contact and quote
//! the text, escaped so that a daemon that understands markup shows it as
//! written. Showing one must never fail the window: without a notification
//! daemon (CI, Xvfb) nothing happens.

use std::sync::Arc;

use super::state::Alert;

/// What a desktop notification says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// The first line.
    pub title: String,
    /// The text under it.
    pub body: String,
}

/// Shows a notice somewhere. Called on the UI thread; it must return at
/// once (the desktop one hands the work to a blocking task).
pub type Notifier = Arc<dyn Fn(Notice) + Send + Sync>;

/// Longest quote of a message in a notification.
const MAX_QUOTE: usize = 200;

/// The notice for an alert: with content only if the person asked for it.
pub(crate) fn notice_for(alert: &Alert, contact_name: &str, with_content: bool) -> Notice {
    match (alert, with_content) {
        (Alert::Message { .. }, false) => Notice {
            title: "Allium".into(),
            body: "New message".into(),
        },
        (Alert::Request { .. }, false) => Notice {
            title: "Allium".into(),
            body: "New contact request".into(),
        },
        (Alert::Message { text, .. }, true) => Notice {
            title: contact_name.to_owned(),
            body: escape_markup(&quote(text)),
        },
        (
            Alert::Request {
                suggested,
                greeting,
            },
            true,
        ) => Notice {
            title: if suggested.is_empty() {
                "New contact request".into()
            } else {
                format!("Contact request from \"{suggested}\"")
            },
            body: escape_markup(&quote(greeting)),
        },
    }
}

fn quote(text: &str) -> String {
    let mut q: String = text.chars().take(MAX_QUOTE).collect();
    if q.len() < text.len() {
        q.push('…');
    }
    q
}

/// The freedesktop notification spec lets a daemon read the body as
/// markup (links, images by URL): peer text must reach it as text.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Notifications on the desktop, sent from a blocking task on `runtime`
/// so that a slow or missing D-Bus never holds up the window. Errors are
/// dropped: a missing daemon is not the person's problem.
pub fn desktop(runtime: tokio::runtime::Handle) -> Notifier {
    Arc::new(move |n: Notice| {
        runtime.spawn_blocking(move || {
            let _ = notify_rust::Notification::new()
                .appname("Allium")
                .summary(&n.title)
                .body(&n.body)
                .show();
        });
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use allium_vault::ContactId;

    #[test]
    fn by_default_nothing_of_the_content_is_shown() {
        let m = Alert::Message {
            contact: ContactId(1),
            text: "meet at the station".into(),
        };
        let n = notice_for(&m, "Bea", false);
        assert_eq!(n.title, "Allium");
        assert_eq!(n.body, "New message");
        let r = Alert::Request {
            suggested: "Bea".into(),
            greeting: "hello".into(),
        };
        let n = notice_for(&r, "Bea", false);
        assert_eq!(
            (n.title.as_str(), n.body.as_str()),
            ("Allium", "New contact request")
        );
    }

    #[test]
    fn content_when_asked_for_is_escaped_and_short() {
        let m = Alert::Message {
            contact: ContactId(1),
            text: "<a href=\"http://x\">click</a> & <img src=\"http://y\">".into(),
        };
        let n = notice_for(&m, "Bea", true);
        assert_eq!(n.title, "Bea");
        assert_eq!(
            n.body,
            "&lt;a href=\"http://x\"&gt;click&lt;/a&gt; &amp; &lt;img src=\"http://y\"&gt;"
        );
        let long = Alert::Message {
            contact: ContactId(1),
            text: "x".repeat(500),
        };
        assert_eq!(notice_for(&long, "Bea", true).body.chars().count(), 201);
    }
}
