//! One broker thread: a mio loop over its share of the connections, the shared listener,
//! and its mailbox. Reads big batches, decodes every complete packet in place, and flushes
//! each connection once per wakeup.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;

use super::conn::{Close, Conn, MAX_BACKLOG, MAX_OUTGOING};
use super::hub::{ConnRef, Delivery, Hub, Mail};
use super::ingest::{Ctx, Local, Outgoing, ingest, ingest_wire, route};
use super::throttle::Throttle;
use super::ws::WsLink;
use crate::mqtt::QoS;
use crate::mqtt::v5::ReasonCode;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
const WS_LISTENER: Token = Token(2);
const FIRST_CONN: usize = 3;
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
    /// Its clone of the WebSocket listening socket (`--ws-port`), if any.
    pub ws_listener: Option<TcpListener>,
    /// Its mailbox.
    pub mailbox: Receiver<Mail>,
    /// TLS configuration, or plain TCP.
    pub tls: Option<Arc<ServerConfig>>,
    /// Largest packet accepted.
    pub max_packet: usize,
    /// The broker-wide publish rate limit (`--max-msg-rate`), if any.
    pub throttle: Option<Arc<Throttle>>,
    /// The broker-wide connect rate limit (`--max-connect-rate`), if any.
    pub connect_throttle: Option<Arc<Throttle>>,
}

/// Which throttle holds a connection: a PUBLISH waits for the publish rate, a CONNECT for the
/// connect rate. Each has its own queue, in the order its connections were held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pace {
    Publish,
    Connect,
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
    /// Connections held by the publish throttle (slot, generation), in the order they were held.
    held: VecDeque<(usize, u64)>,
    /// Connections whose CONNECT the connect throttle holds, likewise.
    held_connects: VecDeque<(usize, u64)>,
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
            throttle: setup.throttle.clone(),
            connect_throttle: setup.connect_throttle.clone(),
            now: Instant::now(),
            unwrapped: Vec::new(),
        },
        setup,
        stopping: false,
        accept_again: false,
        conns: Vec::new(),
        free: Vec::new(),
        next_generation: 1,
        dirty: Vec::new(),
        held: VecDeque::new(),
        held_connects: VecDeque::new(),
        net: vec![0; READ_CHUNK].into_boxed_slice(),
        plain: vec![0; READ_CHUNK].into_boxed_slice(),
    };
    let registry = worker.setup.poll.registry();
    let registered = registry
        .register(&mut worker.setup.listener, LISTENER, Interest::READABLE)
        .and_then(|()| match &mut worker.setup.ws_listener {
            Some(ws) => registry.register(ws, WS_LISTENER, Interest::READABLE),
            None => Ok(()),
        });
    if registered.is_err() {
        return;
    }
    let mut events = Events::with_capacity(1024);
    let mut next_chores = Instant::now() + Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        if let Err(e) = worker.setup.poll.poll(&mut events, Some(worker.sleep()))
            && e.kind() != std::io::ErrorKind::Interrupted
        {
            break;
        }
        let now = Instant::now();
        worker.ctx.now = now;
        // Held connections first: they have waited longest for a turn.
        worker.release_held(now, Pace::Connect);
        worker.release_held(now, Pace::Publish);
        for event in events.iter() {
            match event.token() {
                LISTENER => worker.accept(now, false),
                WS_LISTENER => worker.accept(now, true),
                WAKER => worker.read_mailbox(),
                Token(token) => {
                    let closed = event.is_read_closed() || event.is_error();
                    let readable = event.is_readable() || closed;
                    worker.on_ready(token - FIRST_CONN, readable, now);
                    if closed {
                        worker.drop_unanswered(token - FIRST_CONN);
                    }
                }
            }
        }
        if std::mem::take(&mut worker.accept_again) {
            // The last accept failed (out of file descriptors?): the edge will not come back.
            worker.accept(now, false);
            worker.accept(now, true);
        }
        worker.settle();
        if now >= next_chores {
            next_chores = now + Duration::from_secs(1);
            worker.expire(now);
            if worker.ctx.thread == 0 {
                worker.publish_sys();
                worker.ctx.hub.expire_sessions(now);
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
    /// Accepts what waits on the MQTT listener, or on the WebSocket one with `websocket`.
    fn accept(&mut self, now: Instant, websocket: bool) {
        loop {
            let listener = match (websocket, &self.setup.ws_listener) {
                (false, _) => &self.setup.listener,
                (true, Some(ws)) => ws,
                (true, None) => return,
            };
            let (tcp, _) = match listener.accept() {
                Ok(pair) => pair,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // Out of file descriptors and the like: try again on the next wakeup.
                Err(_) => {
                    self.accept_again = true;
                    return;
                }
            };
            self.adopt(tcp, now, websocket);
        }
    }

    /// Takes an accepted socket into a free slot.
    fn adopt(&mut self, mut tcp: mio::net::TcpStream, now: Instant, websocket: bool) {
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
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        let ws = websocket.then(|| Box::new(WsLink::new(self.ctx.max_packet)));
        match Conn::new(tcp, self.setup.tls.as_ref(), ws, generation, now) {
            Ok(conn) => {
                self.conns[slot] = Some(conn);
                self.ctx.counts.accepted += 1;
                self.ctx.counts.open += 1;
            }
            Err(_) => self.free.push(slot),
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

    /// A connection's socket is ready: read when readable (and not held), then flush either way.
    fn on_ready(&mut self, slot: usize, readable: bool, now: Instant) {
        let held = match self.conns.get(slot) {
            Some(Some(conn)) => conn.held,
            _ => return,
        };
        if readable && !held {
            self.read(slot, now);
        } else {
            self.mark_dirty(slot);
        }
    }

    /// A client whose CONNECT waits for a turn hung up: it is gone and wants no CONNACK, so it
    /// leaves the queue without spending a turn meant for clients still waiting.
    fn drop_unanswered(&mut self, slot: usize) {
        if matches!(self.conns.get(slot), Some(Some(c)) if c.held && !c.session.is_connected()) {
            self.close(slot, Some(Close::Gone));
        }
    }

    /// Reads and handles what a connection sent until its socket would block, or until the
    /// throttle holds it (then it queues for a turn).
    fn read(&mut self, slot: usize, now: Instant) {
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
        let result = ingest(conn, &[], ctx, me).and_then(|()| {
            if conn.held {
                return Ok(());
            }
            conn.read(net, plain, |conn, data| {
                conn.last_heard = now;
                ingest_wire(conn, data, ctx, me)
            })
        });
        // Only a PUBLISH is held on a connected session, only a CONNECT before.
        let pace = match conn.session.is_connected() {
            true => Pace::Publish,
            false => Pace::Connect,
        };
        let held = conn.held.then_some((slot, conn.generation));
        match result {
            Ok(()) => self.mark_dirty(slot),
            Err(why) => return self.close(slot, Some(why)),
        }
        if let Some(entry) = held {
            self.queue(pace).push_back(entry);
        }
    }

    fn queue(&mut self, pace: Pace) -> &mut VecDeque<(usize, u64)> {
        match pace {
            Pace::Publish => &mut self.held,
            Pace::Connect => &mut self.held_connects,
        }
    }

    fn throttle(&self, pace: Pace) -> Option<&Arc<Throttle>> {
        match pace {
            Pace::Publish => self.ctx.throttle.as_ref(),
            Pace::Connect => self.ctx.connect_throttle.as_ref(),
        }
    }

    /// Takes up connections held for `pace` in order while its throttle gives turns.
    fn release_held(&mut self, now: Instant, pace: Pace) {
        let Some(throttle) = self.throttle(pace) else {
            return;
        };
        if throttle.wait(now) > Duration::ZERO {
            return;
        }
        let queued = self.queue(pace).len();
        for _ in 0..queued {
            let Some((slot, generation)) = self.queue(pace).pop_front() else {
                break;
            };
            let Some(Some(conn)) = self.conns.get_mut(slot) else {
                continue;
            };
            if conn.generation != generation {
                continue;
            }
            conn.held = false;
            conn.last_heard = now;
            self.read(slot, now);
            // Out of turns: it went back at the end of this queue; it goes first again and the
            // rest keep their places. (A CONNECT let through may be held at a PUBLISH that
            // followed it: that is the other queue, and this one goes on.)
            if self.queue(pace).back() == Some(&(slot, generation)) {
                if let Some(again) = self.queue(pace).pop_back() {
                    self.queue(pace).push_front(again);
                }
                break;
            }
        }
    }

    /// How long to sleep: until a throttle's next turn when a connection waits for it.
    fn sleep(&self) -> Duration {
        let wait = |queue: &VecDeque<(usize, u64)>, throttle: Option<&Arc<Throttle>>| match throttle
        {
            Some(throttle) if !queue.is_empty() => throttle.wait(self.ctx.now),
            _ => TICK,
        };
        let publish = wait(&self.held, self.ctx.throttle.as_ref());
        let connect = wait(&self.held_connects, self.ctx.connect_throttle.as_ref());
        publish.min(connect).min(TICK)
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
                        self.close(conn.slot, Some(Close::TakenOver));
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
        loop {
            match conn.flush() {
                // A client that publishes QoS 1/2 but never reads its acks.
                Ok(false) if conn.pending() > 2 * MAX_OUTGOING => {
                    self.ctx.counts.slow += 1;
                    return self.close(slot, Some(Close::Slow));
                }
                Ok(_) => {}
                Err(why) => return self.close(slot, Some(why)),
            }
            // The socket took some: what waited for room goes next (the writable edge that
            // follows a full socket brings the connection back here).
            if conn.backlog.is_empty() || conn.pending() > MAX_OUTGOING {
                return;
            }
            let refilled = conn.refill(self.ctx.now);
            self.ctx.counts.sent += refilled.sent;
            self.ctx.counts.dropped += refilled.refused;
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
        if !conn.backlog.is_empty() && conn.backlog.len() < MAX_BACKLOG {
            // Behind what a resumed session brought: it waits its turn, in order.
            conn.backlog
                .push_back((delivery.message, delivery.qos, delivery.retain));
            return self.mark_dirty(slot);
        }
        if conn.pending() > MAX_OUTGOING || !conn.backlog.is_empty() {
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
            self.ctx.now,
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
            let expired = if conn.held {
                // It talks; the broker is the one not listening.
                false
            } else if conn.session.is_connected() {
                keep_alive > 0 && silent.as_millis() > u128::from(keep_alive) * 1500
            } else {
                now.saturating_duration_since(conn.opened) > CONNECT_DEADLINE
            };
            if expired {
                self.ctx.counts.expired += 1;
                self.close(slot, Some(Close::KeepAlive));
            }
        }
    }

    /// Thread 0, once a second: the received count as a retained `$SYS` message.
    fn publish_sys(&mut self) {
        let hub = Arc::clone(&self.ctx.hub);
        let received = hub.total(|c| &c.received) + self.ctx.counts.received
            - hub.counters[0].received.load(Ordering::Relaxed);
        let text = received.to_string();
        let message = Outgoing {
            topic: SYS_RECEIVED,
            payload: text.as_bytes(),
            qos: QoS::AtMostOnce,
            retain: true,
            properties: None,
        };
        route(&mut self.ctx, &message, None);
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
        let goodbye = match &why {
            _ if self.stopping => Some(ReasonCode::ServerShuttingDown),
            Some(Close::Slow) => Some(ReasonCode::QuotaExceeded),
            Some(Close::TakenOver) => Some(ReasonCode::SessionTakenOver),
            Some(Close::KeepAlive) => Some(ReasonCode::KeepAliveTimeout),
            _ => None,
        };
        if let Some(reason) = goodbye {
            conn.session.goodbye(reason, &mut conn.out);
        }
        if conn.session.is_connected() {
            let keep_for = conn.session.keep_for();
            let suspended = keep_for.map(|_| {
                let mut suspended = conn.session.suspend();
                // Never sent: kept, in order, behind what the Receive Maximum held back.
                suspended.waiting.extend(conn.backlog.drain(..));
                suspended
            });
            let id = &conn.session.client_id;
            let now = self.ctx.now;
            self.ctx.hub.disconnect(id, me, suspended, keep_for, now);
        }
        // Gone without DISCONNECT (a DISCONNECT discarded it): publish the will, unless the
        // whole broker is stopping.
        if let Some(will) = conn.session.will.take()
            && !self.stopping
        {
            let message = Outgoing {
                topic: &will.topic,
                payload: &will.payload,
                qos: will.qos,
                retain: will.retain,
                properties: None,
            };
            route(&mut self.ctx, &message, None);
        }
        conn.shutdown();
        let _ = self.setup.poll.registry().deregister(&mut conn.tcp);
        self.ctx.counts.open = self.ctx.counts.open.saturating_sub(1);
        self.free.push(slot);
    }
}
