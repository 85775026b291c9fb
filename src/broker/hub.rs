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
mod tests;
