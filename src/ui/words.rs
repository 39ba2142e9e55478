//! Numbers and states in short words a person reads at a glance.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::engine::{DeliveryState, ServiceState};

/// A size: "512 bytes", "3.4 KB", "12.0 MB".
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A speed: "1.2 MB/s".
pub(crate) fn speed(bytes_per_second: u64) -> String {
    format!("{}/s", size(bytes_per_second))
}

/// The local time zone's offset now, for [`day_of`]: looked up once per
/// frame, not once per message.
pub(crate) fn local_offset() -> chrono::FixedOffset {
    use chrono::Offset;
    chrono::Local::now().offset().fix()
}

/// The local calendar day of a time (Unix seconds), for the dividers
/// between days of a conversation. Today's offset is used for every day:
/// across a daylight-saving change a message within an hour of midnight
/// may count as the neighbouring day.
pub(crate) fn day_of(at: u64, offset: chrono::FixedOffset) -> Option<chrono::NaiveDate> {
    let at = i64::try_from(at).ok()?;
    let t = chrono::DateTime::from_timestamp(at, 0)?;
    Some(t.with_timezone(&offset).date_naive())
}

/// A day as a divider says it: "Today", "Yesterday", "Thursday 3
/// December 2026".
pub(crate) fn day_name(day: chrono::NaiveDate) -> String {
    let today = chrono::Local::now().date_naive();
    if day == today {
        "Today".to_owned()
    } else if today.pred_opt() == Some(day) {
        "Yesterday".to_owned()
    } else {
        day.format("%A %-d %B %Y").to_string()
    }
}

/// A number of minutes: "1 minute", "15 minutes", "1 hour", "2 hours".
pub(crate) fn minutes(m: u32) -> String {
    match m {
        1 => "1 minute".to_owned(),
        60 => "1 hour".to_owned(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} minutes"),
    }
}

/// How long ago, from our own clock: "just now", "5 min ago", "3 h ago",
/// "2 days ago". Relative, so it needs no time zone.
pub(crate) fn ago(at: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(at);
    let s = now.saturating_sub(at);
    match s {
        0..60 => "just now".to_owned(),
        60..3600 => format!("{} min ago", s / 60),
        3600..86_400 => format!("{} h ago", s / 3600),
        86_400..172_800 => "yesterday".to_owned(),
        _ => format!("{} days ago", s / 86_400),
    }
}

/// Unix seconds now, our clock.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A message's delivery state, as a word (what tests and screen readers
/// find) and an explanation (its tooltip).
pub(crate) fn delivery(state: DeliveryState) -> (&'static str, &'static str) {
    match state {
        DeliveryState::Queued => (
            "Waiting",
            "Not sent yet: waiting for them to be online. Allium keeps it and sends it then.",
        ),
        DeliveryState::Sent => ("Sent", "Sent; waiting for their device to confirm."),
        DeliveryState::Delivered => ("Delivered", "Their device confirmed it arrived."),
    }
}

/// Whether our address can be reached, in a sentence.
pub(crate) fn intake(state: Option<ServiceState>) -> &'static str {
    match state {
        None | Some(ServiceState::Off) => {
            "Requests are off: nobody new can reach you. Your contacts still can."
        }
        Some(ServiceState::Starting) => "Publishing your address on Tor…",
        Some(ServiceState::Reachable) => "Your address is reachable.",
        Some(ServiceState::Unreachable) => {
            "Your address cannot be reached right now; Tor keeps trying."
        }
        Some(ServiceState::Broken) => {
            "Your address stopped working. Switch requests off and on again."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        assert_eq!(size(999), "999 bytes");
        assert_eq!(size(3_400), "3.4 KB");
        assert_eq!(size(12_000_000), "12.0 MB");
        assert_eq!(speed(1_240_000), "1.2 MB/s");
    }

    #[test]
    fn ages_are_relative() {
        assert_eq!(ago(now()), "just now");
        assert_eq!(ago(now() - 300), "5 min ago");
        assert_eq!(ago(now() - 3 * 86_400), "3 days ago");
    }
}
