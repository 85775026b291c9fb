//! What the broker's threads share: subscriptions, retained messages, the client-id registry
//! (for takeover), stored sessions (clean session off), a mailbox per thread, and counters.
//!
//! The ingest path touches only an atomic subscription count when nobody subscribed; the
//! locks here are taken on CONNECT, SUBSCRIBE, close, and when a message has somewhere to go.
//! Lock order, everywhere: clients, then subscriptions, then sessions.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};
use mio::Waker;

pub use super::message::Message;
use super::session::Suspended;
use crate::mqtt::v5::SubscriptionOptions;
use crate::mqtt::{QoS, topic};

/// Most retained topics kept; a new retained topic beyond this is not stored.
pub const MAX_RETAINED: usize = 100_000;
/// Most payload bytes the retained store holds; beyond, new retained messages are not stored.
pub const MAX_RETAINED_BYTES: usize = 256 << 20;
/// Most subscriptions one connection may hold; more filters get SUBACK failure (0x80).
pub const MAX_SUBSCRIPTIONS_PER_CONN: usize = 1_000;
/// Most QoS 1/2 messages kept for one offline client with a stored session; more are dropped.
pub const MAX_OFFLINE_QUEUE: usize = 1_000;
/// Most stored sessions; past this, a client with clean session off is served as if it had
/// asked for a clean one (nothing is stored for it).
pub const MAX_STORED_SESSIONS: usize = 100_000;
/// Most messages waiting in one thread's mailbox; beyond, cross-thread deliveries are dropped.
pub const MAILBOX_CAPACITY: usize = 65_536;

/// One connection anywhere in the broker: its thread, its slot there, and the slot's
/// generation (so a reused slot is never mistaken for the connection that left it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnRef {
    /// Worker thread index.
    pub thread: usize,
    /// Slot in that thread's connection table.
    pub slot: usize,
    /// Generation of the slot.
    pub generation: u64,
}

/// A message for one connection.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Who gets it.
    pub to: ConnRef,
    /// QoS to deliver at (the lower of publish and subscription QoS).
    pub qos: QoS,
    /// Retain flag (set only for retained messages sent on SUBSCRIBE).
    pub retain: bool,
    /// The message.
    pub message: Arc<Message>,
}

/// What one thread asks of another.
#[derive(Debug)]
pub enum Mail {
    /// Send this to one of your connections.
    Deliver(Delivery),
    /// Close this connection: its client id connected again elsewhere.
    Kick(ConnRef),
}

#[derive(Default)]
struct Retained {
    by_topic: HashMap<Box<str>, Arc<Message>>,
    bytes: usize,
}

/// Who a subscription belongs to: a connection, or a stored session whose client is away.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Online(ConnRef),
    Offline(Arc<str>),
}

struct Subscription {
    /// The filter as given (`$share/group/filter` for a shared one).
    filter: Box<str>,
    /// Where the filter topics are matched against starts in `filter` (after
    /// `$share/group/`; 0 for an ordinary one).
    matched_from: usize,
    /// The share group's name, for a shared subscription.
    group: Option<Box<str>>,
    to: Target,
    options: SubscriptionOptions,
}

impl Subscription {
    fn matcher(&self) -> &str {
        self.filter.get(self.matched_from..).unwrap_or_default()
    }
}

/// What a client leaves behind when its session outlives its connection (3.1.1: clean
/// session off; MQTT 5: a Session Expiry Interval).
#[derive(Default)]
struct StoredSession {
    /// QoS 1/2 messages that matched while it was away.
    queue: VecDeque<(Arc<Message>, QoS)>,
    /// What its last connection had in flight.
    suspended: Option<Suspended>,
    /// When it is dropped, its client being away; `None` while it is connected.
    expires_at: Option<Instant>,
}

/// What routing one message did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routed {
    /// Some subscription matched (even one of the publisher's own, left out by No Local).
    pub matched: bool,
    /// Copies dropped because an absent client's queue was full.
    pub dropped: u64,
}

/// What SUBSCRIBE got for one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    /// The QoS granted, `None` when refused (past [`MAX_SUBSCRIPTIONS_PER_CONN`]).
    pub qos: Option<QoS>,
    /// The connection had this filter already (MQTT 5 retain handling 1).
    pub existed: bool,
}

/// The outcome of a CONNECT for the hub.
#[derive(Debug, Default)]
pub struct Connected {
    /// The connection it took over (to be closed), if the id was connected.
    pub took_over: Option<ConnRef>,
    /// A stored session was resumed (CONNACK's session present).
    pub session_present: bool,
    /// What its last connection had in flight, to send again first.
    pub resumed: Option<Suspended>,
    /// Messages kept while it was away, to send now.
    pub queued: Vec<(Arc<Message>, QoS)>,
}

/// Counters of one worker thread (written by it alone, read by anyone).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ThreadCounters {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections closed for a protocol violation (bad packet) or a failed TLS handshake.
    pub bad_packets: AtomicU64,
    /// PUBLISH packets received.
    pub received: AtomicU64,
    /// PUBLISH packets sent to subscribers.
    pub sent: AtomicU64,
    /// QoS 0 messages dropped because the subscriber's buffer was full, or its mailbox.
    pub dropped: AtomicU64,
    /// Subscribers disconnected because their buffer was full of QoS 1/2 messages.
    pub slow_disconnects: AtomicU64,
    /// Connections closed for silence past 1.5 x keep alive, or no CONNECT in time.
    pub expired: AtomicU64,
    /// Connections closed because their client id connected again.
    pub taken_over: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// State shared by every thread of one broker.
pub struct Hub {
    subscriptions: RwLock<Vec<Subscription>>,
    subscription_count: AtomicUsize,
    retained: Mutex<Retained>,
    clients: Mutex<HashMap<String, ConnRef>>,
    sessions: Mutex<HashMap<Arc<str>, StoredSession>>,
    /// Whose turn it is in share groups (one counter for all: fair enough over time).
    share_turn: AtomicUsize,
    mailboxes: Vec<(Sender<Mail>, Arc<Waker>)>,
    /// One entry per thread.
    pub counters: Vec<ThreadCounters>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("threads", &self.mailboxes.len())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panicking thread cannot leave these maps half-updated in a way that matters more
    // than stopping the whole broker would.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Hub {
    /// A hub for threads whose mailboxes are given in thread order.
    pub fn new(mailboxes: Vec<(Sender<Mail>, Arc<Waker>)>) -> Hub {
        let counters = mailboxes
            .iter()
            .map(|_| ThreadCounters::default())
            .collect();
        Hub {
            subscriptions: RwLock::new(Vec::new()),
            subscription_count: AtomicUsize::new(0),
            retained: Mutex::new(Retained::default()),
            clients: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            share_turn: AtomicUsize::new(0),
            mailboxes,
            counters,
        }
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.mailboxes.len()
    }

    fn subs_write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<Subscription>> {
        self.subscriptions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records `conn` as the owner of `client_id` after its CONNECT. With `discard_old`
    /// (clean session / clean start) any stored session is discarded; otherwise a stored one
    /// is resumed (its subscriptions move to `conn`, its queue is returned). Without one, a
    /// new one is stored when `keep_for` says the session outlives the connection.
    pub fn connect(
        &self,
        client_id: &str,
        conn: ConnRef,
        discard_old: bool,
        keep_for: Option<Duration>,
    ) -> Connected {
        let mut clients = lock(&self.clients);
        let took_over = clients.insert(client_id.to_string(), conn);
        let mut subs = self.subs_write();
        let mut sessions = lock(&self.sessions);
        let offline = |t: &Target| matches!(t, Target::Offline(id) if &**id == client_id);
        let mut outcome = Connected {
            took_over,
            ..Connected::default()
        };
        if discard_old {
            sessions.remove(client_id);
            subs.retain(|s| !offline(&s.to));
        }
        if let Some(stored) = sessions.get_mut(client_id) {
            outcome.session_present = true;
            outcome.queued = stored.queue.drain(..).collect();
            outcome.resumed = stored.suspended.take();
            stored.expires_at = None;
            for sub in subs.iter_mut() {
                if offline(&sub.to) || took_over.is_some_and(|old| sub.to == Target::Online(old)) {
                    sub.to = Target::Online(conn);
                }
            }
        } else if keep_for.is_some() && sessions.len() < MAX_STORED_SESSIONS {
            sessions.insert(client_id.into(), StoredSession::default());
        }
        self.subscription_count.store(subs.len(), Ordering::Release);
        outcome
    }

    /// A connection that had connected as `client_id` is gone: if it still owned the id and
    /// its session is kept (`keep_for`, counted from `now`), its subscriptions wait offline
    /// (keeping what it had in flight, `suspended`); otherwise they go, with the session.
    pub fn disconnect(
        &self,
        client_id: &str,
        conn: ConnRef,
        suspended: Option<Suspended>,
        keep_for: Option<Duration>,
        now: Instant,
    ) {
        let mut clients = lock(&self.clients);
        let owned = clients.get(client_id) == Some(&conn);
        if owned {
            clients.remove(client_id);
        }
        let mut subs = self.subs_write();
        let mut sessions = lock(&self.sessions);
        let stored = match (sessions.get_mut(client_id), keep_for) {
            (Some(session), Some(keep_for)) if owned => {
                session.suspended = suspended;
                session.expires_at = now.checked_add(keep_for);
                true
            }
            (Some(_), None) if owned => {
                sessions.remove(client_id);
                false
            }
            _ => false,
        };
        drop(sessions);
        if stored {
            let id: Arc<str> = client_id.into();
            for sub in subs.iter_mut().filter(|s| s.to == Target::Online(conn)) {
                sub.to = Target::Offline(Arc::clone(&id));
            }
        } else {
            subs.retain(|s| s.to != Target::Online(conn));
        }
        self.subscription_count.store(subs.len(), Ordering::Release);
    }

    /// Drops stored sessions whose expiry passed by `now`, with their subscriptions (once a
    /// second, from one thread).
    pub fn expire_sessions(&self, now: Instant) {
        let mut subs = self.subs_write();
        let mut sessions = lock(&self.sessions);
        let before = sessions.len();
        sessions.retain(|_, s| s.expires_at.is_none_or(|at| at > now));
        if sessions.len() == before {
            return;
        }
        subs.retain(|s| match &s.to {
            Target::Offline(id) => sessions.contains_key(id),
            Target::Online(_) => true,
        });
        self.subscription_count.store(subs.len(), Ordering::Release);
    }

    /// Adds (or re-grants) subscriptions of `conn`; returns what each filter got: the QoS
    /// granted, refused past [`MAX_SUBSCRIPTIONS_PER_CONN`], and whether it existed.
    pub fn subscribe(
        &self,
        conn: ConnRef,
        filters: &[(&str, SubscriptionOptions)],
    ) -> Vec<Granted> {
        let conn = Target::Online(conn);
        let mut subs = self.subs_write();
        let mut held = subs.iter().filter(|s| s.to == conn).count();
        let mut granted = Vec::with_capacity(filters.len());
        for (filter, options) in filters {
            let existing = subs
                .iter_mut()
                .find(|s| s.to == conn && &*s.filter == *filter);
            let existed = existing.is_some();
            match existing {
                Some(existing) => existing.options = *options,
                None if held >= MAX_SUBSCRIPTIONS_PER_CONN => {
                    granted.push(Granted { qos: None, existed });
                    continue;
                }
                None => {
                    let (group, matched_from) = match topic::shared_parts(filter) {
                        Some((group, inner)) => (Some(group.into()), filter.len() - inner.len()),
                        None => (None, 0),
                    };
                    subs.push(Subscription {
                        filter: (*filter).into(),
                        matched_from,
                        group,
                        to: conn.clone(),
                        options: *options,
                    });
                    held += 1;
                }
            }
            granted.push(Granted {
                qos: Some(options.qos),
                existed,
            });
        }
        self.subscription_count.store(subs.len(), Ordering::Release);
        granted
    }

    /// Removes subscriptions of `conn`: the given filters, or all of them with `None`;
    /// returns, per filter given, whether it had that subscription.
    pub fn unsubscribe(&self, conn: ConnRef, filters: Option<&[&str]>) -> Vec<bool> {
        let conn = Target::Online(conn);
        let mut subs = self.subs_write();
        let existed = filters.map_or_else(Vec::new, |filters| {
            filters
                .iter()
                .map(|f| subs.iter().any(|s| s.to == conn && &*s.filter == *f))
                .collect()
        });
        subs.retain(|s| s.to != conn || filters.is_some_and(|f| !f.contains(&&*s.filter)));
        self.subscription_count.store(subs.len(), Ordering::Release);
        existed
    }

    /// Whether anybody subscribed to anything (one atomic load: the ingest fast path).
    pub fn has_subscribers(&self) -> bool {
        self.subscription_count.load(Ordering::Acquire) > 0
    }

    /// Calls `each` (connection, granted QoS, retain as published) with every connected
    /// subscription matching `topic` (a connection with several matching filters gets a copy
    /// per filter, which MQTT allows), skipping `from`'s No Local ones; each shared group
    /// gets it once, at one member in turn. A stored session whose client is away keeps
    /// QoS 1/2 matches, made by `message`, in its queue. Returns whether anything matched,
    /// and how many it dropped because a queue was full.
    pub fn route(
        &self,
        topic: &str,
        from: Option<ConnRef>,
        mut message: impl FnMut() -> Arc<Message>,
        mut each: impl FnMut(ConnRef, QoS, bool),
    ) -> Routed {
        let subs = self
            .subscriptions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut routed = Routed::default();
        // Shared subscriptions (group and filter) already served: allocated only when one
        // matches.
        let mut shares_done: Vec<&str> = Vec::new();
        for (at, sub) in subs.iter().enumerate() {
            if !topic::matches(sub.matcher(), topic) {
                continue;
            }
            let sub = match &sub.group {
                None => sub,
                Some(_) if shares_done.contains(&&*sub.filter) => continue,
                Some(_) => {
                    shares_done.push(&sub.filter);
                    self.pick_member(&subs, at)
                }
            };
            routed.matched = true;
            match &sub.to {
                Target::Online(conn) if sub.options.no_local && from == Some(*conn) => {}
                Target::Online(conn) => {
                    each(*conn, sub.options.qos, sub.options.retain_as_published);
                }
                Target::Offline(id) => {
                    let message = message();
                    let qos = message.qos.min(sub.options.qos);
                    if qos == QoS::AtMostOnce {
                        continue;
                    }
                    let mut sessions = lock(&self.sessions);
                    match sessions.get_mut(id) {
                        Some(stored) if stored.queue.len() < MAX_OFFLINE_QUEUE => {
                            stored.queue.push_back((message, qos));
                        }
                        _ => routed.dropped += 1,
                    }
                }
            }
        }
        routed
    }

    /// The member of the shared subscription `subs[first]` (group and filter, its first
    /// match) that gets this message: connected members in turn, an absent one only when
    /// none is connected.
    fn pick_member<'s>(&self, subs: &'s [Subscription], first: usize) -> &'s Subscription {
        let shared = &subs[first].filter;
        let online = || {
            subs[first..]
                .iter()
                .filter(move |s| s.filter == *shared && matches!(s.to, Target::Online(_)))
        };
        match online().count() {
            0 => &subs[first],
            n => {
                let turn = self.share_turn.fetch_add(1, Ordering::Relaxed);
                online().nth(turn % n).unwrap_or(&subs[first])
            }
        }
    }

    /// Stores (or with `empty`, clears) the retained message of a topic, made by `message`;
    /// `false` when the store is full (topics or bytes) and it was not kept.
    pub fn retain(&self, topic: &str, empty: bool, message: impl FnOnce() -> Arc<Message>) -> bool {
        let mut retained = lock(&self.retained);
        let old_bytes = retained.by_topic.get(topic).map(|m| m.payload.len());
        let bytes_without = retained.bytes - old_bytes.unwrap_or(0);
        if empty {
            retained.by_topic.remove(topic);
            retained.bytes = bytes_without;
            return true;
        }
        let message = message();
        let full = old_bytes.is_none() && retained.by_topic.len() >= MAX_RETAINED;
        if full || bytes_without + message.payload.len() > MAX_RETAINED_BYTES {
            return false;
        }
        retained.bytes = bytes_without + message.payload.len();
        retained.by_topic.insert(topic.into(), message);
        true
    }

    /// Retained messages whose topic matches `filter`.
    pub fn retained_matching(&self, filter: &str) -> Vec<Arc<Message>> {
        lock(&self.retained)
            .by_topic
            .values()
            .filter(|m| topic::matches(filter, &m.topic))
            .cloned()
            .collect()
    }

    /// Puts mail in a thread's mailbox (the caller wakes it later); `false` when full.
    pub fn post(&self, thread: usize, mail: Mail) -> bool {
        match self.mailboxes.get(thread) {
            Some((tx, _)) => match tx.try_send(mail) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            },
            None => false,
        }
    }

    /// Wakes a thread so it reads its mailbox.
    pub fn wake(&self, thread: usize) {
        if let Some((_, waker)) = self.mailboxes.get(thread) {
            let _ = waker.wake();
        }
    }

    /// Wakes every thread (at stop).
    pub fn wake_all(&self) {
        for thread in 0..self.threads() {
            self.wake(thread);
        }
    }

    /// Sum of one counter over all threads.
    pub fn total(&self, counter: impl Fn(&ThreadCounters) -> &AtomicU64) -> u64 {
        self.counters
            .iter()
            .map(|c| counter(c).load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: ConnRef = ConnRef {
        thread: 0,
        slot: 3,
        generation: 7,
    };

    fn opts(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions::qos(qos)
    }

    fn granted(qos: QoS, existed: bool) -> Granted {
        Granted {
            qos: Some(qos),
            existed,
        }
    }

    #[test]
    fn subscriptions_route_replace_and_are_capped() {
        let hub = Hub::new(Vec::new());
        assert!(!hub.has_subscribers());
        assert_eq!(
            hub.subscribe(
                ME,
                &[
                    ("a/+", opts(QoS::AtLeastOnce)),
                    ("a/+", opts(QoS::ExactlyOnce))
                ]
            ),
            [
                granted(QoS::AtLeastOnce, false),
                granted(QoS::ExactlyOnce, true)
            ]
        );
        let mut seen = Vec::new();
        hub.route("a/b", None, message, |to, qos, _| seen.push((to, qos)));
        assert_eq!(seen, [(ME, QoS::ExactlyOnce)], "re-subscribing replaces");
        let names: Vec<String> = (0..MAX_SUBSCRIPTIONS_PER_CONN)
            .map(|i| format!("f/{i}"))
            .collect();
        let filters: Vec<(&str, SubscriptionOptions)> = names
            .iter()
            .map(|n| (n.as_str(), opts(QoS::AtMostOnce)))
            .collect();
        let got = hub.subscribe(ME, &filters);
        assert_eq!(got.iter().filter(|g| g.qos.is_none()).count(), 1);
        assert_eq!(hub.unsubscribe(ME, Some(&["a/+", "x"])), [true, false]);
        let mut seen = 0;
        hub.route("a/b", None, message, |_, _, _| seen += 1);
        assert_eq!(seen, 0);
        hub.unsubscribe(ME, None);
        assert!(!hub.has_subscribers());
    }

    #[test]
    fn a_share_group_gets_each_message_once_in_turn_and_no_local_is_kept() {
        let hub = Hub::new(Vec::new());
        let members: Vec<ConnRef> = (0..3).map(|slot| ConnRef { slot, ..ME }).collect();
        for member in &members {
            hub.subscribe(*member, &[("$share/g/a/+", opts(QoS::AtLeastOnce))]);
        }
        let plain = ConnRef { slot: 9, ..ME };
        let no_local = SubscriptionOptions {
            no_local: true,
            ..opts(QoS::AtMostOnce)
        };
        hub.subscribe(plain, &[("a/#", no_local)]);
        let mut got = [0; 10];
        for _ in 0..30 {
            hub.route("a/b", Some(plain), message, |to, _, _| got[to.slot] += 1);
        }
        assert_eq!(got[..3], [10, 10, 10], "one member per message, in turn");
        assert_eq!(got[9], 0, "no local: not its own messages");
        hub.route("a/b", Some(ME), message, |to, _, _| got[to.slot] += 1);
        assert_eq!(got[9], 1, "others' messages it gets");
        hub.route("b/c", None, message, |_, _, _| panic!("no match"));
        // The same group name on another filter is another shared subscription.
        hub.subscribe(plain, &[("$share/g/a/b", opts(QoS::AtLeastOnce))]);
        let mut copies = 0;
        hub.route("a/b", Some(ME), message, |_, _, _| copies += 1);
        assert_eq!(copies, 3, "one per shared subscription, one for a/#");
    }

    fn message() -> Arc<Message> {
        Arc::new(Message {
            topic: "a/b".into(),
            payload: Box::new([1]),
            qos: QoS::AtLeastOnce,
            extra: None,
        })
    }

    #[test]
    fn a_stored_session_keeps_subscriptions_and_queues_while_away() {
        let hub = Hub::new(Vec::new());
        let forever = Some(Duration::MAX);
        let first = hub.connect("dev", ME, false, forever);
        assert!(!first.session_present);
        hub.subscribe(ME, &[("a/#", opts(QoS::AtLeastOnce))]);
        let in_flight = Suspended {
            next_packet_id: 42,
            ..Suspended::default()
        };
        let now = Instant::now();
        hub.disconnect("dev", ME, Some(in_flight), forever, now);
        assert!(hub.has_subscribers(), "kept for the stored session");
        let mut online = 0;
        for _ in 0..MAX_OFFLINE_QUEUE + 5 {
            hub.route("a/b", None, message, |_, _, _| online += 1);
        }
        assert_eq!(online, 0);
        let next = ConnRef {
            generation: 8,
            ..ME
        };
        let back = hub.connect("dev", next, false, forever);
        assert!(back.session_present);
        assert_eq!(
            back.queued.len(),
            MAX_OFFLINE_QUEUE,
            "the rest were dropped"
        );
        assert_eq!(back.resumed.map(|s| s.next_packet_id), Some(42));
        let mut seen = Vec::new();
        hub.route("a/b", None, message, |to, _, _| seen.push(to));
        assert_eq!(seen, [next], "subscriptions moved to the new connection");
        // A clean session discards it all.
        hub.disconnect("dev", next, None, None, now);
        let clean = hub.connect("dev", ME, true, None);
        assert!(!clean.session_present && clean.queued.is_empty());
        assert!(!hub.has_subscribers());
    }

    #[test]
    fn a_session_with_an_expiry_is_dropped_when_it_passes() {
        let hub = Hub::new(Vec::new());
        let ten = Some(Duration::from_secs(10));
        hub.connect("v5", ME, true, ten);
        hub.subscribe(ME, &[("a/#", opts(QoS::AtLeastOnce))]);
        let now = Instant::now();
        hub.disconnect("v5", ME, None, ten, now);
        hub.expire_sessions(now + Duration::from_secs(9));
        assert!(hub.has_subscribers(), "not yet");
        hub.expire_sessions(now + Duration::from_secs(10));
        assert!(!hub.has_subscribers(), "expired with its subscriptions");
        assert!(!hub.connect("v5", ME, false, ten).session_present);
    }

    #[test]
    fn retained_store_is_bounded_in_bytes() {
        let hub = Hub::new(Vec::new());
        let sized = |n: usize| {
            move || {
                Arc::new(Message {
                    topic: "r".into(),
                    payload: vec![1u8; n].into(),
                    qos: QoS::AtMostOnce,
                    extra: None,
                })
            }
        };
        let half = MAX_RETAINED_BYTES / 2;
        assert!(hub.retain("r/1", false, sized(half)));
        assert!(
            hub.retain("r/1", false, sized(half)),
            "replacing frees the old bytes"
        );
        assert!(hub.retain("r/2", false, sized(half)));
        assert!(!hub.retain("r/3", false, sized(1)), "full");
        assert!(hub.retain("r/2", true, sized(0)), "an empty payload clears");
        assert!(hub.retain("r/3", false, sized(1)));
        assert_eq!(hub.retained_matching("r/#").len(), 2);
    }
}
