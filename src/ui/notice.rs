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

    /// Notices held back whose interval is over, to be told now (at most
    /// once per interval, like any other).
    pub(crate) fn held_due(&mut self, now: Instant) -> Option<u32> {
        let due = self.held > 0
            && self
                .last
                .is_none_or(|l| now.duration_since(l) >= NOTICE_INTERVAL);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.held))
    }

    /// How long until held notices are due, if any are held.
    pub(crate) fn next_due(&self, now: Instant) -> Option<Duration> {
        let last = self.last?;
        (self.held > 0).then(|| NOTICE_INTERVAL.saturating_sub(now.duration_since(last)))
    }
}

/// What held-back notices add up to: never who or what.
pub(crate) fn held_notice(held: u32) -> Notice {
    Notice {
        title: "Allium".into(),
        body: if held == 1 {
            "New message or request".into()
        } else {
            format!("{held} new messages or requests")
        },
    }
}

/// `n` with the count of notices held back before it folded in.
pub(crate) fn with_held(n: Notice, held: u32) -> Notice {
    if held > 0 { held_notice(held + 1) } else { n }
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
        // One held with nothing after it is still told, once its time comes.
        let mut t = Throttle::default();
        assert_eq!(t.admit(t0), Some(0));
        assert_eq!(t.admit(t0 + Duration::from_secs(1)), None);
        assert_eq!(t.held_due(t0 + Duration::from_secs(2)), None);
        assert_eq!(
            t.next_due(t0 + Duration::from_secs(2)),
            Some(NOTICE_INTERVAL - Duration::from_secs(2))
        );
        assert_eq!(t.held_due(t0 + NOTICE_INTERVAL), Some(1));
        assert_eq!(t.held_due(t0 + NOTICE_INTERVAL * 3), None, "told once");
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
