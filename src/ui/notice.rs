//! Desktop notifications for a new message or contact request.
//!
//! By default a notification says only that something arrived ("New
//! message"): no name, no text, because notification daemons keep a
//! history and show it on the lock screen. Only when the person switched
//! on `Settings::notification_content` does it name the contact and quote
//! the text, escaped so that a daemon that understands markup shows it as
//! written, and with every bidi control removed (daemons apply the bidi
//! algorithm, so a peer's override could reorder the notification). Showing
//! one must never fail the window: without a notification daemon (CI,
//! Xvfb) nothing happens. A contact writing fast does not get one
//! notification per message: [`Throttle`] lets one through per interval and
//! folds the rest into the next ("3 new messages").

use std::sync::Arc;

use std::time::{Duration, Instant};

use super::peer_text::without_bidi;
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
            title: without_bidi(contact_name),
            body: escape_markup(&quote(&without_bidi(text))),
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
                format!("Contact request from \"{}\"", without_bidi(suggested))
            },
            body: escape_markup(&quote(&without_bidi(greeting))),
        },
    }
}

/// At most one notification per interval; what arrives meanwhile is
/// counted and told with the next one.
#[derive(Default)]
pub(crate) struct Throttle {
    last: Option<Instant>,
    held: u32,
}

/// Shortest time between two notifications.
pub(crate) const NOTICE_INTERVAL: Duration = Duration::from_secs(10);

impl Throttle {
    /// Whether a notice may be shown at `now`; if so, how many were held
    /// back since the last one.
    pub(crate) fn admit(&mut self, now: Instant) -> Option<u32> {
        if self
            .last
            .is_some_and(|l| now.duration_since(l) < NOTICE_INTERVAL)
        {
            self.held = self.held.saturating_add(1);
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }
}

/// `n` with the count of notices held back before it folded in.
pub(crate) fn with_held(mut n: Notice, held: u32) -> Notice {
    if held > 0 {
        n = Notice {
            title: "Allium".into(),
            body: format!("{} new messages or requests", held + 1),
        };
    }
    n
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
    fn notifications_come_at_most_once_per_interval() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(t.admit(t0), Some(0));
        for i in 1..=50 {
            assert_eq!(t.admit(t0 + Duration::from_millis(i * 100)), None);
        }
        assert_eq!(t.admit(t0 + NOTICE_INTERVAL), Some(50));
        let n = with_held(
            Notice {
                title: "Bea".into(),
                body: "hi".into(),
            },
            50,
        );
        assert_eq!(n.body, "51 new messages or requests");
    }

    #[test]
    fn no_bidi_control_reaches_a_notification() {
        let m = Alert::Message {
            contact: ContactId(1),
            text: "pay \u{202E}01$ \u{2067}x".into(),
        };
        let n = notice_for(&m, "B\u{202E}ea", true);
        assert_eq!((n.title.as_str(), n.body.as_str()), ("Bea", "pay 01$ x"));
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
