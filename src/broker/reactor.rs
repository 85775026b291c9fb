//! One broker thread: a mio loop over its share of the connections, the shared listener,
//! and its mailbox. Reads big batches, decodes every complete packet in place, and flushes
//! each connection once per wakeup. Its parts: `accept` (listeners), `pacing` (throttled
//! connections), `close` (deadlines, closing), `counts` (counters, `$SYS`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use rustls::ServerConfig;

mod accept;
mod close;
mod counts;
mod pacing;

use super::conn::{Close, Conn, MAX_BACKLOG, MAX_OUTGOING};
use super::hub::{ConnRef, Delivery, Hub, Mail};
use super::ingest::{Ctx, Local, ingest, ingest_wire};
use super::throttle::Throttle;
use crate::mqtt::QoS;
use pacing::Pace;

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

impl Worker {
    /// A worker with no connections yet, over `setup`.
    fn new(setup: WorkerSetup, hub: Arc<Hub>) -> Worker {
        let threads = hub.threads();
        Worker {
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
        }
    }
}

/// Runs one broker thread until `stop` is set.
pub fn run(setup: WorkerSetup, hub: Arc<Hub>, stop: &AtomicBool) {
    let mut worker = Worker::new(setup, hub);
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
            if !conn.has_backlog() || conn.pending() > MAX_OUTGOING {
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
        if conn.has_backlog() && conn.backlog.len() < MAX_BACKLOG {
            // Behind what a resumed session brought: it waits its turn, in order.
            conn.backlog
                .push_back((delivery.message, delivery.qos, delivery.retain));
            return self.mark_dirty(slot);
        }
        if conn.pending() > MAX_OUTGOING || conn.has_backlog() {
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
}
