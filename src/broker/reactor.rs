//! One broker thread: a mio loop over its share of the connections, the shared listener,
//! and its mailbox. Reads big batches, decodes every complete packet in place, and flushes
//! each connection once per wakeup.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;

use super::conn::{Close, Conn, MAX_OUTGOING};
use super::hub::{ConnRef, Delivery, Hub, Mail, Message};
use super::session::{Event, put_connack, put_suback};
use crate::mqtt::{self, QoS};

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const FIRST_CONN: usize = 2;
/// Bytes read from a socket per system call.
const READ_CHUNK: usize = 64 * 1024;
/// A connection that has not completed CONNECT by then is closed.
const CONNECT_DEADLINE: Duration = Duration::from_secs(10);
/// Longest sleep: the stop flag and the once-a-second chores are checked this often.
const TICK: Duration = Duration::from_millis(100);
/// Bad packets each thread describes on stderr (the rest are only counted).
const REPORTED_BAD_PACKETS: u64 = 10;
/// The `$SYS` topic with the count of PUBLISH packets received (as mosquitto names it).
pub const SYS_RECEIVED: &str = "$SYS/broker/publish/messages/received";

/// What a worker thread needs, made before it starts.
pub struct WorkerSetup {
    /// Thread index.
    pub index: usize,
    /// Its poll (the waker is registered in it already).
    pub poll: Poll,
    /// Its clone of the listening socket.
    pub listener: TcpListener,
    /// Its mailbox.
    pub mailbox: Receiver<Mail>,
    /// TLS configuration, or plain TCP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Largest packet accepted.
    pub max_packet: usize,
}

/// Counters this thread has not published to the hub yet.
#[derive(Default)]
struct Local {
    accepted: u64,
    bad_packets: u64,
    received: u64,
    sent: u64,
    dropped: u64,
    slow: u64,
    expired: u64,
    taken_over: u64,
    open: u64,
}

/// The state handlers need besides the connection itself.
struct Ctx {
    thread: usize,
    hub: Arc<Hub>,
    /// Deliveries to this thread's connections, applied after the current read.
    local: Vec<Delivery>,
    /// Connections of this thread to close (taken over).
    kicks: Vec<ConnRef>,
    /// Threads that got mail during this wakeup.
    to_wake: Vec<bool>,
    counts: Local,
    max_packet: usize,
}

struct Worker {
    setup: WorkerSetup,
    /// The broker is shutting down: connections close without their wills.
    stopping: bool,
    /// An accept failed with connections possibly still waiting: try again next wakeup.
    accept_again: bool,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    next_generation: u64,
    dirty: Vec<usize>,
    net: Box<[u8]>,
    plain: Box<[u8]>,
    ctx: Ctx,
}

/// Runs one broker thread until `stop` is set.
pub fn run(setup: WorkerSetup, hub: Arc<Hub>, stop: &AtomicBool) {
    let threads = hub.threads();
    let mut worker = Worker {
        ctx: Ctx {
            thread: setup.index,
            hub,
            local: Vec::new(),
            kicks: Vec::new(),
            to_wake: vec![false; threads],
            counts: Local::default(),
            max_packet: setup.max_packet,
        },
        setup,
        stopping: false,
        accept_again: false,
        conns: Vec::new(),
        free: Vec::new(),
        next_generation: 1,
        dirty: Vec::new(),
        net: vec![0; READ_CHUNK].into_boxed_slice(),
        plain: vec![0; READ_CHUNK].into_boxed_slice(),
    };
    if worker
        .setup
        .poll
        .registry()
        .register(&mut worker.setup.listener, LISTENER, Interest::READABLE)
        .is_err()
    {
        return;
    }
    let mut events = Events::with_capacity(1024);
    let mut next_chores = Instant::now() + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = worker.setup.poll.poll(&mut events, Some(TICK))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
        let now = Instant::now();
        for event in events.iter() {
            match event.token() {
                LISTENER => worker.accept(now),
                WAKER => worker.read_mailbox(),
                Token(token) => {
                    let readable =
                        event.is_readable() || event.is_read_closed() || event.is_error();
                    worker.on_ready(token - FIRST_CONN, readable, now);
                }
            }
        }
        if worker.accept_again {
            // The last accept failed (out of file descriptors?): the edge will not come back.
            worker.accept(now);
        }
        worker.settle();
        if now >= next_chores {
            next_chores = now + Duration::from_secs(1);
            worker.expire(now);
            if worker.ctx.thread == 0 {
                worker.publish_sys();
            }
            worker.settle();
        }
        worker.publish_counts();
    }
    worker.stopping = true;
    for slot in 0..worker.conns.len() {
        worker.close(slot, None);
    }
    worker.publish_counts();
}

impl Worker {
    fn accept(&mut self, now: Instant) {
        self.accept_again = false;
        loop {
            let (mut tcp, _) = match self.setup.listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Out of file descriptors and the like: try again on the next wakeup.
                Err(_) => {
                    self.accept_again = true;
                    return;
                }
            };
            let _ = tcp.set_nodelay(true);
            let slot = self.free.pop().unwrap_or_else(|| {
                self.conns.push(None);
                self.conns.len() - 1
            });
            let token = Token(slot + FIRST_CONN);
            if self
                .setup
                .poll
                .registry()
                .register(&mut tcp, token, Interest::READABLE | Interest::WRITABLE)
                .is_err()
            {
                self.free.push(slot);
                continue;
            }
            let generation = self.next_generation;
            self.next_generation += 1;
            match Conn::new(tcp, self.setup.tls.as_ref(), generation, now) {
                Ok(conn) => {
                    self.conns[slot] = Some(conn);
                    self.ctx.counts.accepted += 1;
                    self.ctx.counts.open += 1;
                }
                Err(_) => self.free.push(slot),
            }
        }
    }

    fn read_mailbox(&mut self) {
        while let Ok(mail) = self.setup.mailbox.try_recv() {
            match mail {
                Mail::Deliver(delivery) => self.ctx.local.push(delivery),
                Mail::Kick(conn) => self.ctx.kicks.push(conn),
            }
        }
    }

    /// A connection's socket is ready: read when readable, then flush either way.
    fn on_ready(&mut self, slot: usize, readable: bool, now: Instant) {
        let Worker {
            conns,
            net,
            plain,
            ctx,
            ..
        } = self;
        let Some(Some(conn)) = conns.get_mut(slot) else {
            return;
        };
        let me = ConnRef {
            thread: ctx.thread,
            slot,
            generation: conn.generation,
        };
        if !readable {
            self.mark_dirty(slot);
            return;
        }
        let result = conn.read(net, plain, |conn, data| {
            conn.last_heard = now;
            ingest(conn, data, ctx, me)
        });
        match result {
            Ok(()) => self.mark_dirty(slot),
            Err(why) => self.close(slot, Some(why)),
        }
    }

    fn mark_dirty(&mut self, slot: usize) {
        if let Some(Some(conn)) = self.conns.get_mut(slot)
            && !conn.dirty
        {
            conn.dirty = true;
            self.dirty.push(slot);
        }
    }

    /// Applies deliveries and kicks, flushes every touched connection, wakes other threads.
    /// Repeats while a flush closes a connection whose will has somewhere to go.
    fn settle(&mut self) {
        loop {
            while !self.ctx.local.is_empty() || !self.ctx.kicks.is_empty() {
                for conn in std::mem::take(&mut self.ctx.kicks) {
                    if self.is_current(conn) {
                        self.ctx.counts.taken_over += 1;
                        self.close(conn.slot, None);
                    }
                }
                for delivery in std::mem::take(&mut self.ctx.local) {
                    self.deliver(delivery);
                }
            }
            if self.dirty.is_empty() {
                break;
            }
            while let Some(slot) = self.dirty.pop() {
                self.flush(slot);
            }
        }
        for thread in 0..self.ctx.to_wake.len() {
            if std::mem::take(&mut self.ctx.to_wake[thread]) {
                self.ctx.hub.wake(thread);
            }
        }
    }

    fn flush(&mut self, slot: usize) {
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        conn.dirty = false;
        match conn.flush() {
            // A client that publishes QoS 1/2 but never reads its acks.
            Ok(false) if conn.out.len() > 2 * MAX_OUTGOING => {
                self.ctx.counts.slow += 1;
                self.close(slot, Some(Close::Slow));
            }
            Ok(_) => {}
            Err(why) => self.close(slot, Some(why)),
        }
    }

    fn is_current(&self, conn: ConnRef) -> bool {
        matches!(self.conns.get(conn.slot), Some(Some(c)) if c.generation == conn.generation)
    }

    fn deliver(&mut self, delivery: Delivery) {
        if !self.is_current(delivery.to) {
            return;
        }
        let slot = delivery.to.slot;
        let Some(Some(conn)) = self.conns.get_mut(slot) else {
            return;
        };
        if conn.out.len() > MAX_OUTGOING {
            if delivery.qos == QoS::AtMostOnce {
                self.ctx.counts.dropped += 1;
            } else {
                self.ctx.counts.slow += 1;
                self.close(slot, Some(Close::Slow));
            }
            return;
        }
        let delivered = conn.session.deliver(
            &delivery.message,
            delivery.qos,
            delivery.retain,
            &mut conn.out,
        );
        if !delivered {
            // MAX_INFLIGHT unacknowledged: it reads but does not acknowledge.
            self.ctx.counts.slow += 1;
            self.close(slot, Some(Close::Slow));
            return;
        }
        self.ctx.counts.sent += 1;
        self.mark_dirty(slot);
    }

    /// Closes connections silent past 1.5 x keep alive, or without CONNECT in time.
    fn expire(&mut self, now: Instant) {
        for slot in 0..self.conns.len() {
            let Some(Some(conn)) = self.conns.get(slot) else {
                continue;
            };
            let silent = now.saturating_duration_since(conn.last_heard);
            let keep_alive = u64::from(conn.session.keep_alive);
            let expired = if conn.session.is_connected() {
                keep_alive > 0 && silent.as_millis() > u128::from(keep_alive) * 1500
            } else {
                now.saturating_duration_since(conn.opened) > CONNECT_DEADLINE
            };
            if expired {
                self.ctx.counts.expired += 1;
                self.close(slot, None);
            }
        }
    }

    /// Thread 0, once a second: the received count as a retained `$SYS` message.
    fn publish_sys(&mut self) {
        let hub = Arc::clone(&self.ctx.hub);
        let received = hub.total(|c| &c.received) + self.ctx.counts.received
            - hub.counters[0].received.load(Ordering::Relaxed);
        let text = received.to_string();
        route(
            &mut self.ctx,
            SYS_RECEIVED,
            text.as_bytes(),
            QoS::AtMostOnce,
            true,
        );
    }

    fn publish_counts(&self) {
        let c = &self.ctx.counts;
        let shared = &self.ctx.hub.counters[self.ctx.thread];
        for (atomic, value) in [
            (&shared.accepted, c.accepted),
            (&shared.bad_packets, c.bad_packets),
            (&shared.received, c.received),
            (&shared.sent, c.sent),
            (&shared.dropped, c.dropped),
            (&shared.slow_disconnects, c.slow),
            (&shared.expired, c.expired),
            (&shared.taken_over, c.taken_over),
            (&shared.open, c.open),
        ] {
            atomic.store(value, Ordering::Relaxed);
        }
    }

    /// Removes a connection; `why` says whether it counts as a bad packet.
    fn close(&mut self, slot: usize, why: Option<Close>) {
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        let Some(mut conn) = entry.take() else {
            return;
        };
        if let Some(Close::Bad(reason)) = &why {
            self.ctx.counts.bad_packets += 1;
            if self.ctx.counts.bad_packets <= REPORTED_BAD_PACKETS {
                eprintln!("mqload broker: closing a connection: {reason}");
            }
        }
        let me = ConnRef {
            thread: self.ctx.thread,
            slot,
            generation: conn.generation,
        };
        if conn.session.is_connected() {
            let suspended = (!conn.session.clean_session).then(|| conn.session.suspend());
            self.ctx
                .hub
                .disconnect(&conn.session.client_id, me, suspended);
        }
        // Gone without DISCONNECT (a DISCONNECT discarded it): publish the will, unless the
        // whole broker is stopping.
        if let Some(will) = conn.session.will.take()
            && !self.stopping
        {
            route(
                &mut self.ctx,
                &will.topic,
                &will.payload,
                will.qos,
                will.retain,
            );
        }
        conn.shutdown();
        let _ = self.setup.poll.registry().deregister(&mut conn.tcp);
        self.ctx.counts.open = self.ctx.counts.open.saturating_sub(1);
        self.free.push(slot);
    }
}

/// Decodes and handles every complete packet of `data` (after what `conn` buffered).
fn ingest(conn: &mut Conn, data: &[u8], ctx: &mut Ctx, me: ConnRef) -> Result<(), Close> {
    if conn.inbuf.is_empty() {
        let used = handle_packets(conn, data, ctx, me)?;
        conn.inbuf.extend_from_slice(&data[used..]);
        return Ok(());
    }
    conn.inbuf.extend_from_slice(data);
    let buffered = std::mem::take(&mut conn.inbuf);
    let result = handle_packets(conn, &buffered, ctx, me);
    conn.inbuf = buffered;
    let used = result?;
    conn.inbuf.drain(..used);
    Ok(())
}

/// Handles the packets at the front of `buf`; returns the bytes they took.
fn handle_packets(conn: &mut Conn, buf: &[u8], ctx: &mut Ctx, me: ConnRef) -> Result<usize, Close> {
    let mut pos = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let (packet, used) = match mqtt::decode(rest, ctx.max_packet) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Ok(pos),
            Err(e) => {
                let why = conn.session.on_decode_error(e, &mut conn.out);
                return Err(Close::Bad(why.to_string()));
            }
        };
        pos += used;
        let event = conn
            .session
            .on_packet(packet, &mut conn.out)
            .map_err(|why| Close::Bad(why.to_string()))?;
        match event {
            Event::Nothing => {}
            Event::Publish(publish) => {
                ctx.counts.received += 1;
                if publish.retain {
                    ctx.hub.retain(publish.topic, publish.payload, publish.qos);
                }
                if ctx.hub.has_subscribers() {
                    route(ctx, publish.topic, publish.payload, publish.qos, false);
                }
            }
            Event::Connected => {
                let session = &mut conn.session;
                let outcome = ctx
                    .hub
                    .connect(&session.client_id, me, session.clean_session);
                put_connack(outcome.session_present, &mut conn.out);
                if let Some(suspended) = outcome.resumed {
                    session.resume(suspended, &mut conn.out);
                }
                for (message, qos) in &outcome.queued {
                    match session.deliver(message, *qos, false, &mut conn.out) {
                        true => ctx.counts.sent += 1,
                        false => ctx.counts.dropped += 1,
                    }
                }
                if let Some(old) = outcome.took_over {
                    kick(ctx, old);
                }
            }
            Event::Subscribe { packet_id, filters } => {
                let granted = ctx.hub.subscribe(me, &filters);
                put_suback(packet_id, &granted, &mut conn.out)
                    .map_err(|e| Close::Bad(format!("SUBACK: {e}")))?;
                for ((filter, _), granted) in filters.iter().zip(&granted) {
                    let Some(granted) = granted else { continue };
                    for message in ctx.hub.retained_matching(filter) {
                        let qos = message.qos.min(*granted);
                        match conn.session.deliver(&message, qos, true, &mut conn.out) {
                            true => ctx.counts.sent += 1,
                            false => ctx.counts.dropped += 1,
                        }
                    }
                }
            }
            Event::Unsubscribe(filters) => ctx.hub.unsubscribe(me, Some(&filters)),
            Event::Disconnect => return Err(Close::Goodbye),
        }
    }
}

fn kick(ctx: &mut Ctx, old: ConnRef) {
    if old.thread == ctx.thread {
        ctx.kicks.push(old);
    } else if ctx.hub.post(old.thread, Mail::Kick(old)) {
        ctx.to_wake[old.thread] = true;
    }
}

/// Sends a message to every matching subscription (one shared copy of it, made only when
/// somebody matches); cross-thread deliveries go through mailboxes.
fn route(ctx: &mut Ctx, topic: &str, payload: &[u8], qos: QoS, retain_store: bool) {
    if retain_store {
        ctx.hub.retain(topic, payload, qos);
    }
    let hub = Arc::clone(&ctx.hub);
    let shared: std::cell::OnceCell<Arc<Message>> = std::cell::OnceCell::new();
    let message = || {
        Arc::clone(shared.get_or_init(|| {
            Arc::new(Message {
                topic: topic.into(),
                payload: payload.into(),
                qos,
            })
        }))
    };
    let dropped = hub.route(topic, message, |to, granted| {
        let message = message();
        let delivery = Delivery {
            to,
            qos: qos.min(granted),
            retain: false,
            message,
        };
        if to.thread == ctx.thread {
            ctx.local.push(delivery);
        } else if hub.post(to.thread, Mail::Deliver(delivery)) {
            ctx.to_wake[to.thread] = true;
        } else {
            ctx.counts.dropped += 1;
        }
    });
    ctx.counts.dropped += dropped;
}
