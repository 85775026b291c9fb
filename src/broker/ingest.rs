//! What a broker thread does with the bytes a client sent: decode every complete packet in
//! place, let the session answer, and act on its events (route, subscribe, connect), with
//! `--max-msg-rate` holding a PUBLISH (and all that follows it) until its turn, and
//! `--max-connect-rate` a CONNECT.

use std::sync::Arc;
use std::time::Instant;

use super::conn::{Close, Conn, MAX_OUTGOING};
use super::hub::{ConnRef, Delivery, Hub, Mail, Message};
use super::message::Extra;
use super::session::{Event, V5State};
use super::throttle::Throttle;
use super::ws::WsEnd;
use crate::mqtt::v5::{self, Properties, RetainHandling};
use crate::mqtt::{self, DecodeError, Packet, ProtocolVersion, QoS};

/// Counters this thread has not published to the hub yet.
#[derive(Default)]
pub struct Local {
    pub(super) accepted: u64,
    pub(super) bad_packets: u64,
    pub(super) received: u64,
    pub(super) sent: u64,
    pub(super) dropped: u64,
    pub(super) slow: u64,
    pub(super) expired: u64,
    pub(super) taken_over: u64,
    pub(super) open: u64,
}

/// The state handlers need besides the connection itself.
pub struct Ctx {
    pub(super) thread: usize,
    pub(super) hub: Arc<Hub>,
    /// Deliveries to this thread's connections, applied after the current read.
    pub(super) local: Vec<Delivery>,
    /// Connections of this thread to close (taken over).
    pub(super) kicks: Vec<ConnRef>,
    /// Threads that got mail during this wakeup.
    pub(super) to_wake: Vec<bool>,
    pub(super) counts: Local,
    pub(super) max_packet: usize,
    /// The broker-wide publish rate limit, if any.
    pub(super) throttle: Option<Arc<Throttle>>,
    /// The broker-wide connect rate limit, if any.
    pub(super) connect_throttle: Option<Arc<Throttle>>,
    /// When the current wakeup began (the throttle's clock).
    pub(super) now: Instant,
    /// MQTT bytes unwrapped from a WebSocket read (reused).
    pub(super) unwrapped: Vec<u8>,
}

/// Takes bytes a client sent: unwraps WebSocket frames first on a WebSocket connection.
pub fn ingest_wire(conn: &mut Conn, data: &[u8], ctx: &mut Ctx, me: ConnRef) -> Result<(), Close> {
    let Some(ws) = conn.ws.as_mut() else {
        return ingest(conn, data, ctx, me);
    };
    let mut mqtt = std::mem::take(&mut ctx.unwrapped);
    let unwrapped = ws.unwrap(data, &mut mqtt);
    let result = ingest(conn, &mqtt, ctx, me);
    mqtt.clear();
    ctx.unwrapped = mqtt;
    match unwrapped {
        Ok(()) => result,
        Err(WsEnd::Closed) => result.and(Err(Close::Gone)),
        Err(WsEnd::BadUpgrade(why)) => result.and(Err(Close::Bad(format!("WebSocket: {why}")))),
        Err(WsEnd::BadFrame(why)) => result.and(Err(Close::Bad(format!("WebSocket: {why}")))),
    }
}

/// Decodes and handles every complete packet of `data` (after what `conn` buffered); while
/// the connection is held, only buffers it. Call with no data to take up a held connection.
pub fn ingest(conn: &mut Conn, data: &[u8], ctx: &mut Ctx, me: ConnRef) -> Result<(), Close> {
    if conn.held {
        conn.inbuf.extend_from_slice(data);
        return Ok(());
    }
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

/// One decoded packet, in the MQTT its connection speaks (unboxed, as the codec's own
/// packets are: boxing would allocate per packet; it lives on the stack while handled).
#[allow(clippy::large_enum_variant)]
enum Decoded<'a> {
    V311(Packet<'a>),
    V5(v5::Packet<'a>),
}

/// Decodes the packet at the front of `buf` in the session's MQTT. A CONNECT for MQTT 5
/// switches the session to it (the 3.1.1 decoder names level 5; the bytes are read again).
fn decode<'a>(
    conn: &mut Conn,
    buf: &'a [u8],
    max: usize,
) -> Result<Option<(Decoded<'a>, usize)>, DecodeError> {
    if conn.session.version == ProtocolVersion::V5 {
        return Ok(v5::decode(buf, max)?.map(|(p, used)| (Decoded::V5(p), used)));
    }
    match mqtt::decode(buf, max) {
        Err(DecodeError::UnsupportedProtocolLevel(5)) if !conn.session.is_connected() => {
            conn.session.version = ProtocolVersion::V5;
            Ok(v5::decode(buf, max)?.map(|(p, used)| (Decoded::V5(p), used)))
        }
        decoded => Ok(decoded?.map(|(p, used)| (Decoded::V311(p), used))),
    }
}

/// Handles the packets at the front of `buf`; returns the bytes they took. Stops before a
/// PUBLISH (or a CONNECT) its throttle has no turn for, marking the connection held.
fn handle_packets(conn: &mut Conn, buf: &[u8], ctx: &mut Ctx, me: ConnRef) -> Result<usize, Close> {
    let mut pos = 0;
    loop {
        let rest = buf.get(pos..).unwrap_or_default();
        let (packet, used) = match decode(conn, rest, ctx.max_packet) {
            Ok(Some(decoded)) => decoded,
            Ok(None) => return Ok(pos),
            Err(e) => {
                let why = conn.session.on_decode_error(e, &mut conn.out);
                return Err(Close::Bad(why.to_string()));
            }
        };
        let publish = matches!(
            packet,
            Decoded::V311(Packet::Publish(_)) | Decoded::V5(v5::Packet::Publish(_))
        );
        let connect = matches!(
            packet,
            Decoded::V311(Packet::Connect(_)) | Decoded::V5(v5::Packet::Connect(_))
        );
        let throttle = match conn.session.is_connected() {
            true if publish => ctx.throttle.as_ref(),
            false if connect => ctx.connect_throttle.as_ref(),
            _ => None,
        };
        if throttle.is_some_and(|t| !t.try_take(ctx.now)) {
            conn.held = true;
            return Ok(pos);
        }
        pos += used;
        let event = match packet {
            Decoded::V311(packet) => conn.session.on_packet(packet, &mut conn.out),
            Decoded::V5(packet) => conn.session.on_packet_v5(packet, &mut conn.out),
        };
        let event = event.map_err(|why| Close::Bad(why.to_string()))?;
        act(conn, event, ctx, me)?;
    }
}

/// Does what a packet's event asks of the hub, and answers what needed the hub first.
fn act(conn: &mut Conn, event: Event<'_>, ctx: &mut Ctx, me: ConnRef) -> Result<(), Close> {
    match event {
        Event::Nothing => {}
        Event::Publish(publish) => {
            ctx.counts.received += 1;
            let topic = publish.topic.as_str();
            let message = Outgoing {
                topic,
                payload: publish.payload,
                qos: publish.qos,
                retain: publish.retain,
                properties: publish.properties.as_ref(),
            };
            let matched =
                (publish.retain || ctx.hub.has_subscribers()) && route(ctx, &message, Some(me));
            if let Some(id) = publish.ack_after_routing {
                V5State::put_publish_ack(id, publish.qos, matched, &mut conn.out);
            }
        }
        Event::Connected => connected(conn, ctx, me),
        Event::Subscribe { packet_id, filters } => {
            let granted = ctx.hub.subscribe(me, &filters);
            let codes: Vec<Option<QoS>> = granted.iter().map(|g| g.qos).collect();
            conn.session
                .put_suback(packet_id, &codes, &mut conn.out)
                .map_err(|e| Close::Bad(format!("SUBACK: {e}")))?;
            for ((filter, options), granted) in filters.iter().zip(&granted) {
                let Some(qos) = granted.qos else { continue };
                let send = match options.retain_handling {
                    RetainHandling::SendAtSubscribe => true,
                    RetainHandling::SendIfNew => !granted.existed,
                    RetainHandling::DoNotSend => false,
                };
                if send {
                    send_retained(conn, ctx, filter, qos);
                }
            }
        }
        Event::Unsubscribe { packet_id, filters } => {
            let existed = ctx.hub.unsubscribe(me, Some(&filters));
            conn.session
                .put_unsuback(packet_id, &existed, &mut conn.out)
                .map_err(|e| Close::Bad(format!("UNSUBACK: {e}")))?;
        }
        Event::Disconnect => return Err(Close::Goodbye),
    }
    Ok(())
}

/// CONNECT accepted: the hub registers the id (taking over, resuming a stored session), then
/// CONNACK, what was in flight, and what waited while the client was away.
fn connected(conn: &mut Conn, ctx: &mut Ctx, me: ConnRef) {
    let session = &mut conn.session;
    let outcome = ctx.hub.connect(
        &session.client_id,
        me,
        session.clean_session,
        session.keep_for(),
    );
    session.put_connack(outcome.session_present, &mut conn.out);
    if let Some(suspended) = outcome.resumed {
        // The unacknowledged ones go out again first (up to MAX_INFLIGHT of up to the
        // largest packet each); what was never sent yet queues behind them.
        let waiting = session.resume(suspended);
        conn.backlog.extend(waiting);
    }
    // Up to 1000 messages of up to the largest packet each: they go out as the client
    // reads, not all into `out` at once.
    let queued = outcome.queued.into_iter();
    conn.backlog
        .extend(queued.map(|(message, qos)| (message, qos, false)));
    let refilled = conn.refill(ctx.now);
    ctx.counts.sent += refilled.sent;
    ctx.counts.dropped += refilled.refused;
    if let Some(old) = outcome.took_over {
        kick(ctx, old);
    }
}

/// Retained messages matching a new subscription's `filter`, at most at `granted`. Bounded
/// like any delivery: past [`MAX_OUTGOING`] waiting bytes the rest are dropped and counted
/// (a `#` over a large store would otherwise queue all of it for one connection at once).
fn send_retained(conn: &mut Conn, ctx: &mut Ctx, filter: &str, granted: QoS) {
    for message in ctx.hub.retained_matching(filter) {
        if conn.pending() > MAX_OUTGOING {
            ctx.counts.dropped += 1;
            continue;
        }
        let qos = message.qos.min(granted);
        match conn
            .session
            .deliver(&message, qos, true, &mut conn.out, ctx.now)
        {
            true => ctx.counts.sent += 1,
            false => ctx.counts.dropped += 1,
        }
    }
}

pub fn kick(ctx: &mut Ctx, old: ConnRef) {
    if old.thread == ctx.thread {
        ctx.kicks.push(old);
    } else if ctx.hub.post(old.thread, Mail::Kick(old)) {
        ctx.to_wake[old.thread] = true;
    }
}

/// A message to route: a PUBLISH, a will or a `$SYS` count.
pub struct Outgoing<'a, 'p> {
    /// Topic.
    pub topic: &'a str,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS it was published with.
    pub qos: QoS,
    /// Retain flag: stored (or cleared) as the topic's retained message too.
    pub retain: bool,
    /// MQTT 5 properties to forward.
    pub properties: Option<&'p Properties<'a>>,
}

/// Sends a message to every matching subscription (one shared copy of it, made only when
/// somebody matches or it is retained); cross-thread deliveries go through mailboxes. `from`
/// is the publisher (for MQTT 5's No Local). Returns whether any subscription matched.
pub fn route(ctx: &mut Ctx, out: &Outgoing<'_, '_>, from: Option<ConnRef>) -> bool {
    let hub = Arc::clone(&ctx.hub);
    let now = ctx.now;
    let shared: std::cell::OnceCell<Arc<Message>> = std::cell::OnceCell::new();
    let message = || {
        Arc::clone(shared.get_or_init(|| {
            Arc::new(Message {
                topic: out.topic.into(),
                payload: out.payload.into(),
                qos: out.qos,
                extra: out.properties.and_then(|p| Extra::from_properties(p, now)),
            })
        }))
    };
    if out.retain {
        hub.retain(out.topic, out.payload.is_empty(), message);
    }
    if !hub.has_subscribers() {
        return false;
    }
    let routed = hub.route(out.topic, from, message, |to, granted, as_published| {
        let delivery = Delivery {
            to,
            qos: out.qos.min(granted),
            retain: as_published && out.retain,
            message: message(),
        };
        if to.thread == ctx.thread {
            ctx.local.push(delivery);
        } else if hub.post(to.thread, Mail::Deliver(delivery)) {
            ctx.to_wake[to.thread] = true;
        } else {
            ctx.counts.dropped += 1;
        }
    });
    ctx.counts.dropped += routed.dropped;
    routed.matched
}
