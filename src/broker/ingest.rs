//! What a broker thread does with the bytes a client sent: decode every complete packet in
//! place, let the session answer, and act on its events (route, subscribe, connect), with
//! `--max-msg-rate` holding a PUBLISH (and all that follows it) until its turn.

use std::sync::Arc;
use std::time::Instant;

use super::conn::{Close, Conn};
use super::hub::{ConnRef, Delivery, Hub, Mail, Message};
use super::session::{Event, put_connack, put_suback};
use super::throttle::Throttle;
use super::ws::WsEnd;
use crate::mqtt::{self, Packet, QoS};

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
        Err(WsEnd::BadUpgrade(why) | WsEnd::BadFrame(why)) => {
            result.and(Err(Close::Bad(format!("WebSocket: {why}"))))
        }
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

/// Handles the packets at the front of `buf`; returns the bytes they took. Stops before a
/// PUBLISH the throttle has no turn for, marking the connection held.
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
        if matches!(packet, Packet::Publish(_))
            && conn.session.is_connected()
            && ctx.throttle.as_ref().is_some_and(|t| !t.try_take(ctx.now))
        {
            conn.held = true;
            return Ok(pos);
        }
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

pub fn kick(ctx: &mut Ctx, old: ConnRef) {
    if old.thread == ctx.thread {
        ctx.kicks.push(old);
    } else if ctx.hub.post(old.thread, Mail::Kick(old)) {
        ctx.to_wake[old.thread] = true;
    }
}

/// Sends a message to every matching subscription (one shared copy of it, made only when
/// somebody matches); cross-thread deliveries go through mailboxes.
pub fn route(ctx: &mut Ctx, topic: &str, payload: &[u8], qos: QoS, retain_store: bool) {
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
