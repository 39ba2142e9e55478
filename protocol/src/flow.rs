//! The application-level rules of the contact flow (PROTOCOL.md §6.6–§6.8,
//! §8) as pure functions, so that the engine and the verdict vectors
//! (`tests/vectors/flow-rules.json`) use the same decision: which messages
//! a session may carry, what the end of an intake session means for a
//! request sent on it, which of two sessions survives, and what a
//! CONTACT_ACCEPT does to what is on file.

use crate::address::OnionId;
use crate::error::CloseCause;
use crate::message::{CloseReason, Message};

/// What a session is for, seen from our side (PROTOCOL.md §6.7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionRole {
    /// We dialled a stranger's intake to send a request.
    IntakeRequester,
    /// A stranger dialled our intake.
    IntakeResponder,
    /// A session between endpoints, whoever dialled.
    Endpoint,
}

/// Whether `m` may arrive on a session of `role` (PROTOCOL.md §6.7 and §8
/// step 3). `request_received`: a CONTACT_REQUEST already came on this
/// (intake) session. `awaiting_answer`: the peer is a contact we asked and
/// whose answer has not come, so its first message must be that answer.
/// A message that is not allowed is a protocol violation (CLOSE 1).
pub fn allowed(
    role: SessionRole,
    request_received: bool,
    awaiting_answer: bool,
    m: &Message,
) -> bool {
    match (role, m) {
        (_, Message::Keepalive | Message::Close(_)) => true,
        (SessionRole::IntakeResponder, Message::ContactRequest(_)) => !request_received,
        (SessionRole::IntakeRequester, Message::ContactAccept(_) | Message::ContactReject) => true,
        (SessionRole::IntakeRequester | SessionRole::IntakeResponder, _) => false,
        (SessionRole::Endpoint, Message::ContactAccept(_) | Message::ContactReject) => true,
        (SessionRole::Endpoint, _) if awaiting_answer => false,
        (SessionRole::Endpoint, Message::ContactRequest(_)) => false,
        (SessionRole::Endpoint, _) => true,
    }
}

/// What the end of the intake session we sent a request on tells us
/// (PROTOCOL.md §8 step 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// The responder stored the request: do not send it again.
    Received,
    /// Send it again on a new session later.
    NotReceived,
}

/// A CLOSE 0 after the request was sent, or a CLOSE with a code this
/// version does not know (§6.6: treated as 0), is a receipt; any other end
/// (another code, a REFUSE, an error, the stream ending without a CLOSE,
/// our own timeout) is not. `request_sent`: the request went out on this
/// session after the handshake.
pub fn receipt(request_sent: bool, cause: &CloseCause) -> Receipt {
    match cause {
        CloseCause::Peer(CloseReason::Normal | CloseReason::Other(_)) if request_sent => {
            Receipt::Received
        }
        _ => Receipt::NotReceived,
    }
}

/// Who dialled a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialler {
    /// We did.
    Us,
    /// The contact did.
    Them,
}

/// Of two endpoint sessions with one contact, which one survives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Survivor {
    /// The session that was up first.
    Existing,
    /// The session that came up second.
    New,
}

/// PROTOCOL.md §6.8: the session dialled by the side with the lower intake
/// id survives; if one side dialled both, the newer one. Both sides compute
/// the same answer, whatever the sessions' ages.
pub fn survivor(
    our_intake: &OnionId,
    their_intake: &OnionId,
    existing: Dialler,
    new: Dialler,
) -> Survivor {
    if existing == new {
        return Survivor::New;
    }
    let lower = if our_intake.as_bytes() < their_intake.as_bytes() {
        Dialler::Us
    } else {
        Dialler::Them
    };
    if new == lower {
        Survivor::New
    } else {
        Survivor::Existing
    }
}

/// What a CONTACT_ACCEPT does (PROTOCOL.md §8 steps 3 and 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcceptVerdict {
    /// The answer to our request: keep its endpoint and key.
    First,
    /// The same endpoint and key again: nothing changes.
    Repeat,
    /// The same endpoint with a new discovery key: keep the key.
    Reissue,
    /// A protocol violation (CLOSE 1); nothing changes.
    Violation,
}

/// Whether a peer may give us `endpoint` as its own, in a CONTACT_REQUEST
/// or a CONTACT_ACCEPT (PROTOCOL.md §8 step 3): not one of our ids
/// (`ours`: intake and endpoint), and not the intake it speaks from.
pub fn endpoint_is_theirs(
    endpoint: &OnionId,
    ours: (&OnionId, &OnionId),
    their_intake: &OnionId,
) -> bool {
    endpoint != ours.0 && endpoint != ours.1 && endpoint != their_intake
}

/// `on_file`: the contact's endpoint and discovery key once accepted
/// (`None` while our request is pending); `ours`: our intake and endpoint
/// ids; `their_intake`: the sender's. Discovery keys are compared as bytes:
/// a re-issue in another encoding of the same key is still a re-issue
/// (harmless: it is the same key).
pub fn accept_verdict(
    on_file: Option<(&OnionId, &[u8; 32])>,
    endpoint: &OnionId,
    discovery_key: &[u8; 32],
    ours: (&OnionId, &OnionId),
    their_intake: &OnionId,
) -> AcceptVerdict {
    if !endpoint_is_theirs(endpoint, ours, their_intake) {
        return AcceptVerdict::Violation;
    }
    match on_file {
        None => AcceptVerdict::First,
        Some((e, _)) if e != endpoint => AcceptVerdict::Violation,
        Some((_, k)) if k == discovery_key => AcceptVerdict::Repeat,
        Some(_) => AcceptVerdict::Reissue,
    }
}

/// When to dial a contact again after its endpoint session ended
/// (PROTOCOL.md §8 step 5, §9). Messages not acknowledged are kept in every
/// case: nothing tells a removal (CLOSE 5, REFUSE 5) apart from a contact
/// restoring an older profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Redial {
    /// The session ended in order (a CLOSE from either side, whatever its
    /// code): dial again after the first, shortest wait.
    Soon,
    /// It failed (a REFUSE, an error, the stream ending without a CLOSE):
    /// wait twice as long as last time, up to the cap.
    Backoff,
}

/// See [`Redial`].
pub fn redial_after(cause: &CloseCause) -> Redial {
    match cause {
        CloseCause::Peer(_) | CloseCause::Local(_) => Redial::Soon,
        _ => Redial::Backoff,
    }
}

/// Whether a message received on a session that lost to another (§6.8)
/// is still handled: CONTACT_ACCEPT, CONTACT_REJECT, ACK and HISTORY state
/// facts that do not depend on the session (an ACK covers only what was
/// written, §6.3); a CHAT is neither delivered nor acknowledged, and SYNC
/// and file messages belong to the session that lost.
pub fn kept_from_a_lost_session(m: &Message) -> bool {
    matches!(
        m,
        Message::ContactAccept(_)
            | Message::ContactReject
            | Message::Ack { .. }
            | Message::History { .. }
            | Message::Keepalive
            | Message::Close(_)
    )
}

/// Keys an endpoint's authorized set is padded to a multiple of (PROTOCOL.md
/// §8 step 1), as C tor pads the `auth-client` lines of a descriptor.
pub const AUTHORIZED_PADDING_BUCKET: usize = 16;

/// How many keys an endpoint lists for `real` authorized keys (contacts,
/// pending requests and spares), when its Tor allows at most `limit`:
/// `real` rounded up to a multiple of [`AUTHORIZED_PADDING_BUCKET`], at
/// least one bucket (an endpoint never runs unrestricted), at most
/// `limit`. `None` when `real` leaves no room below the limit (the
/// reference refuses a new contact then).
pub fn authorized_set_size(real: usize, limit: usize) -> Option<usize> {
    if real >= limit {
        return None;
    }
    Some(
        real.max(1)
            .div_ceil(AUTHORIZED_PADDING_BUCKET)
            .saturating_mul(AUTHORIZED_PADDING_BUCKET)
            .min(limit),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::IdentityKey;

    #[test]
    fn both_sides_agree_on_the_survivor() {
        let a = IdentityKey::from_seed(&[1; 32]).onion_id();
        let b = IdentityKey::from_seed(&[2; 32]).onion_id();
        let flip = |d: Dialler| match d {
            Dialler::Us => Dialler::Them,
            Dialler::Them => Dialler::Us,
        };
        for existing in [Dialler::Us, Dialler::Them] {
            for new in [Dialler::Us, Dialler::Them] {
                // What a sees and what b sees of the same two sessions.
                assert_eq!(
                    survivor(&a, &b, existing, new),
                    survivor(&b, &a, flip(existing), flip(new)),
                    "{existing:?} {new:?}"
                );
            }
        }
    }
}
