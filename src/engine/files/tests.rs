//! The transfers on their own, driven through a fake [`Host`]: no core,
//! no connection, no disk (file work is only looked at, and its results
//! are made up).

use std::path::PathBuf;
use std::time::Instant;

use allium_protocol::{CancelReason, FileOffer, Message, TransferId};
use allium_vault::{ContactId, ContactState};
use tokio::sync::oneshot;

use super::super::Event;
use super::{FileDone, FileJob, Host, Limits, Transfers};

const BOB: ContactId = ContactId(7);

struct Fake {
    now: Instant,
    room: bool,
    sent: Vec<(ContactId, Message)>,
    events: Vec<Event>,
    jobs: Vec<FileJob>,
    ids: u8,
}

impl Host for Fake {
    fn now(&self) -> Instant {
        self.now
    }
    fn contact_state(&self, contact: ContactId) -> Option<ContactState> {
        (contact == BOB).then_some(ContactState::Accepted)
    }
    fn has_room(&self, _: ContactId) -> bool {
        self.room
    }
    fn send(&mut self, contact: ContactId, m: Message) -> bool {
        self.sent.push((contact, m));
        true
    }
    fn emit(&mut self, e: Event) {
        self.events.push(e);
    }
    fn job(&mut self, job: FileJob) {
        self.jobs.push(job);
    }
    fn new_transfer(&mut self) -> TransferId {
        self.ids += 1;
        TransferId([self.ids; 16])
    }
    fn limits(&self) -> Limits {
        Limits {
            max_outgoing: 1 << 20,
            max_incoming: 1 << 20,
            max_pending_offers: 2,
        }
    }
}

/// How many of `items` match.
fn count<T>(items: &[T], f: impl Fn(&T) -> bool) -> usize {
    items.iter().filter(|x| f(x)).count()
}

fn fake() -> Fake {
    Fake {
        now: Instant::now(),
        room: true,
        sent: Vec::new(),
        events: Vec::new(),
        jobs: Vec::new(),
        ids: 0,
    }
}

/// Offers a 1,000-byte file to Bob, through inspection and hashing, and
/// returns its id with the offer that went out.
fn offered(t: &mut Transfers, h: &mut Fake) -> (TransferId, FileOffer) {
    let (answer, mut rx) = oneshot::channel();
    t.offer_file(h, BOB, PathBuf::from("/nowhere/report.pdf"), answer);
    let Some(FileJob::Inspect { transfer, .. }) = h.jobs.pop() else {
        panic!("no inspection asked for");
    };
    t.on_file_done(
        h,
        FileDone::Inspected {
            transfer,
            result: Ok(1000),
        },
    );
    assert!(matches!(rx.try_recv(), Ok(Ok(_))), "the offer was answered");
    assert!(matches!(h.jobs.pop(), Some(FileJob::Hash { .. })));
    t.on_file_done(
        h,
        FileDone::Hashed {
            transfer,
            result: Ok([9; 32]),
        },
    );
    match h.sent.pop() {
        Some((BOB, Message::FileOffer(o))) => (transfer, o),
        other => panic!("no offer sent: {other:?}"),
    }
}

#[test]
fn a_repeated_accept_opens_the_file_once() {
    let (mut t, mut h) = (Transfers::default(), fake());
    let (transfer, offer) = offered(&mut t, &mut h);
    assert_eq!(offer.size, 1000);
    assert_eq!(offer.name, "report.pdf");
    for _ in 0..1000 {
        let m = Message::FileAccept {
            transfer,
            offset: 0,
        };
        t.on_message(&mut h, BOB, m);
    }
    let opens = count(&h.jobs, |j| matches!(j, FileJob::Open { .. }));
    assert_eq!(opens, 1, "review finding M1: one accept counts per offer");
}

#[test]
fn an_accept_from_someone_else_or_past_the_end_is_not_honoured() {
    let (mut t, mut h) = (Transfers::default(), fake());
    let (transfer, _) = offered(&mut t, &mut h);
    let stranger = ContactId(8);
    t.on_message(
        &mut h,
        stranger,
        Message::FileAccept {
            transfer,
            offset: 0,
        },
    );
    assert!(h.jobs.is_empty(), "only Bob's accept counts");
    t.on_message(
        &mut h,
        BOB,
        Message::FileAccept {
            transfer,
            offset: 1001,
        },
    );
    assert!(h.jobs.is_empty(), "nothing opened past the end");
    assert!(matches!(
        h.sent.as_slice(),
        [(
            BOB,
            Message::FileCancel {
                reason: CancelReason::Protocol,
                ..
            }
        )]
    ));
    assert!(matches!(
        h.events.as_slice(),
        [Event::FileCancelled { cancelled, .. }] if cancelled.by_peer
    ));
    assert!(t.transfer_views().is_empty(), "the transfer is gone");
}

#[test]
fn offers_past_the_waiting_cap_are_refused_and_reported_at_a_bounded_rate() {
    let (mut t, mut h) = (Transfers::default(), fake());
    for n in 0..40u8 {
        let offer = FileOffer {
            transfer: TransferId([100 + n; 16]),
            size: 10,
            sha256: [0; 32],
            name: format!("f{n}.txt"),
        };
        t.on_message(&mut h, BOB, Message::FileOffer(offer));
    }
    let offered = count(&h.events, |e| matches!(e, Event::FileOffered { .. }));
    let refused = count(&h.sent, |(_, m)| matches!(m, Message::FileCancel { .. }));
    assert_eq!(offered, 2, "Limits::max_pending_offers");
    assert_eq!(refused, 38, "every other offer is refused");
    let reported = h.events.len() - offered;
    assert_eq!(reported, 10, "refusals shown per contact and minute");
}
