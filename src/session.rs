//! The MQTT client state machine, sans-IO: bytes and `now` in; bytes, events and deadlines out.
//!
//! Shaped like quinn-proto: the worker feeds [`Session::handle_input`] with plaintext from the
//! socket, takes [`Session::pending_output`], asks [`Session::poll_timeout`] when to wake it,
//! calls [`Session::handle_timeout`] then, and drains [`Session::poll_event`]. It never reads the
//! clock or touches a socket, so tests drive it on virtual time.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::mqtt::{self, ConnectReturnCode, FixedPacket, Packet, Publish, QoS, ReasonCode};

mod error;
mod v5;
#[cfg(test)]
mod v5_tests;

pub use error::{OVER_BROKER_MAXIMUM, SUBSCRIBE_REFUSED, SessionError, refusal_text};
pub use v5::Mqtt5Options;

/// What every session of a run shares.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Keep alive announced in CONNECT; a PINGREQ goes out after this much silence.
    pub keep_alive: Duration,
    /// CONNECT's clean session flag.
    pub clean_session: bool,
    /// Optional MQTT user name.
    pub username: Option<String>,
    /// Optional MQTT password.
    pub password: Option<String>,
    /// Most QoS 1/2 publishes awaiting their ack at once.
    pub max_inflight: u16,
    /// A publish or PINGREQ unanswered for this long fails the session.
    pub ack_timeout: Duration,
    /// Largest packet accepted from the broker.
    pub max_packet_size: usize,
    /// MQTT 5 and its options; `None` speaks MQTT 3.1.1.
    pub mqtt5: Option<Arc<Mqtt5Options>>,
}

/// Something the engine should know about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// CONNACK accepted.
    Connected {
        /// The broker kept state from an earlier session.
        session_present: bool,
        /// When the CONNACK arrived.
        at: Instant,
    },
    /// A QoS 1/2 publish completed (PUBACK or PUBCOMP).
    Acked(Completed),
    /// MQTT 5: the broker answered a QoS 1/2 publish with a failure reason code (PUBACK,
    /// PUBREC or PUBCOMP 0x80 and above); the message is not delivered.
    Rejected {
        /// The publish, as [`Event::Acked`] would have reported it.
        done: Completed,
        /// The failure's name, e.g. "PUBACK 0x87 not authorized".
        reason: &'static str,
    },
    /// A QoS 1/2 publish of an earlier connection that the broker no longer holds (it answered
    /// session present 0), so it will never be acknowledged: count it as failed.
    Lost {
        /// When the message was due by the plan.
        due: Instant,
    },
    /// The broker delivered a message to us (subscriptions). A QoS 2 message is delivered
    /// once even when the broker sends it again before PUBREL.
    Received {
        /// Its QoS.
        qos: QoS,
        /// Payload bytes.
        payload_len: usize,
        /// Where its first bytes (up to the configured head length) are in
        /// [`Session::received_head`]: start and length.
        head: (u32, u32),
        /// When it arrived.
        at: Instant,
    },
    /// The broker answered our SUBSCRIBE.
    Subscribed {
        /// Granted QoS; `None` when refused (0x80).
        granted: Option<QoS>,
        /// MQTT 5: the refusal's reason code (`None` when granted or under 3.1.1).
        refusal: Option<ReasonCode>,
        /// When the SUBSCRIBE was queued.
        sent: Instant,
        /// When the SUBACK arrived.
        at: Instant,
    },
}

/// A publish that the broker acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// When the message was due by the plan (latency is measured from here).
    pub due: Instant,
    /// When the ack arrived.
    pub acked: Instant,
    /// Payload bytes.
    pub payload_len: u32,
}

#[derive(Debug, Clone)]
struct InFlight {
    packet_id: u16,
    qos: QoS,
    /// QoS 2: PUBREC arrived and PUBREL went out.
    released: bool,
    due: Instant,
    sent: Instant,
    payload_len: u32,
    /// The PUBLISH as encoded, kept for a resend with DUP when clean session is off (empty
    /// otherwise).
    copy: Vec<u8>,
}

/// Publishes a dropped connection left unacknowledged, carried to the next connection of the
/// same client (clean session off), where they are re-sent with DUP set if the broker kept the
/// session, or reported [`Event::Lost`] if it did not (MQTT 3.1.1 section 4.4).
///
/// Bounded by the in-flight window: at most `--max-inflight` packets per client.
#[derive(Debug, Default)]
pub struct Unacked {
    inflight: VecDeque<InFlight>,
    /// Emptied copy buffers, reused so that keeping copies does not allocate per message.
    spare: Vec<Vec<u8>>,
}

impl Unacked {
    /// Publishes carried.
    pub fn len(&self) -> usize {
        self.inflight.len()
    }

    /// Nothing carried.
    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Gives up on them (the device stops for good); yields their due times.
    pub fn into_dues(self) -> impl Iterator<Item = Instant> {
        self.inflight.into_iter().map(|f| f.due)
    }
}

/// The DUP flag in a PUBLISH's first byte.
const DUP_FLAG: u8 = 0x08;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    AwaitingConnAck,
    Connected,
    Closed,
}

/// One MQTT connection's protocol state.
#[derive(Debug)]
pub struct Session {
    state: State,
    keep_alive: Duration,
    ack_timeout: Duration,
    max_inflight: usize,
    max_packet_size: usize,
    /// Clean session off: keep each QoS 1/2 PUBLISH's bytes until its ack, for a resend.
    keep_copies: bool,
    out: Vec<u8>,
    rx: Vec<u8>,
    inflight: VecDeque<InFlight>,
    /// Emptied copy buffers for reuse.
    spare: Vec<Vec<u8>>,
    /// Publishes re-sent with DUP (or released again) when the CONNACK arrived.
    resent: usize,
    next_packet_id: u16,
    last_sent: Instant,
    ping_sent: Option<Instant>,
    events: VecDeque<Event>,
    /// First bytes of received payloads, for [`Event::Received`]; cleared when a new read
    /// starts with no events pending, so it stays as large as one read's messages.
    inbox: Vec<u8>,
    /// Payload bytes per received message kept in `inbox` (0: none).
    head_len: usize,
    /// QoS 2 messages received and PUBREC'd, awaiting PUBREL: a resend is not delivered twice.
    awaiting_rel: Vec<u16>,
    /// Packet id and send time of a SUBSCRIBE awaiting its SUBACK.
    pending_subscribe: Option<(u16, Instant)>,
    /// MQTT 5 state (options, the broker's limits, topic alias); `None` under 3.1.1.
    v5: Option<Box<v5::V5State>>,
}

impl Session {
    /// A session whose CONNECT is already queued in the output.
    pub fn new(
        config: &SessionConfig,
        client_id: &str,
        now: Instant,
    ) -> Result<Session, SessionError> {
        Session::with_mqtt5(config, config.mqtt5.as_ref(), client_id, now)
    }

    /// As [`Session::new`], with this device's own MQTT 5 options (its templates expanded,
    /// see [`Mqtt5Options::for_device`]) in place of the run's.
    pub fn with_mqtt5(
        config: &SessionConfig,
        mqtt5: Option<&Arc<Mqtt5Options>>,
        client_id: &str,
        now: Instant,
    ) -> Result<Session, SessionError> {
        let mut out = Vec::with_capacity(64);
        let keep_alive_s = config.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16;
        let v5 = match mqtt5 {
            Some(options) => Some(v5::connect(config, options, client_id, &mut out)?),
            None => {
                Packet::Connect(mqtt::Connect {
                    client_id,
                    keep_alive: keep_alive_s,
                    clean_session: config.clean_session,
                    username: config.username.as_deref(),
                    password: config.password.as_deref().map(str::as_bytes),
                    will: None,
                })
                .encode(&mut out)
                .map_err(SessionError::Encode)?;
                None
            }
        };
        let max_packet_size = match &v5 {
            Some(state) => state.max_incoming(config.max_packet_size),
            None => config.max_packet_size,
        };
        Ok(Session {
            state: State::AwaitingConnAck,
            keep_alive: config.keep_alive,
            ack_timeout: config.ack_timeout,
            max_inflight: usize::from(config.max_inflight.max(1)),
            max_packet_size,
            keep_copies: !config.clean_session,
            out,
            rx: Vec::new(),
            inflight: VecDeque::new(),
            spare: Vec::new(),
            resent: 0,
            next_packet_id: 1,
            last_sent: now,
            ping_sent: None,
            events: VecDeque::new(),
            inbox: Vec::new(),
            head_len: 0,
            awaiting_rel: Vec::new(),
            pending_subscribe: None,
            v5,
        })
    }

    /// CONNACK accepted and not closed.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// The packet id the next QoS 1/2 publish will take.
    pub fn next_packet_id(&self) -> u16 {
        self.next_packet_id
    }

    /// Continues packet ids where an earlier connection of the same client stopped, so a broker
    /// that kept that session (clean session off) never sees an id reused while it may still
    /// hold it. Ignores 0.
    pub fn resume_packet_ids(&mut self, next: u16) {
        if next != 0 {
            self.next_packet_id = next;
        }
    }

    /// Bytes of an incomplete packet held until the rest arrives (at most a maximum-size
    /// packet and its header).
    pub fn buffered_input(&self) -> usize {
        self.rx.len()
    }

    /// Publishes of an earlier connection re-sent (DUP PUBLISH or PUBREL) on this one's CONNACK.
    pub fn resent_on_connect(&self) -> usize {
        self.resent
    }

    /// Publishes awaiting their acknowledgement.
    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// Whether a publish of `qos` may go out now (connected, window and packet ids free).
    pub fn can_publish(&self, qos: QoS) -> bool {
        if self.state != State::Connected {
            return false;
        }
        if qos == QoS::AtMostOnce {
            return true;
        }
        self.inflight.len() < self.max_inflight
            && self
                .inflight
                .front()
                .is_none_or(|oldest| oldest.packet_id != self.next_packet_id)
    }

    /// Queues a PUBLISH; check [`Session::can_publish`] first for QoS 1/2.
    pub fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        due: Instant,
        now: Instant,
    ) -> Result<(), SessionError> {
        if !self.can_publish(qos) {
            return Err(SessionError::NotReady);
        }
        if let Some(state) = self.v5.as_ref() {
            state.check_size(topic.len(), payload.len())?;
        }
        let packet_id = if qos == QoS::AtMostOnce {
            0
        } else {
            let id = self.next_packet_id;
            self.next_packet_id = if id == u16::MAX { 1 } else { id + 1 };
            id
        };
        let start = self.out.len();
        if let Some(state) = self.v5.as_mut() {
            state.publish(topic, payload, qos, packet_id, &mut self.out)?;
        } else {
            mqtt::encode_publish_into(
                &Publish {
                    dup: false,
                    qos,
                    retain: false,
                    topic,
                    packet_id,
                    payload,
                },
                &mut self.out,
            )
            .map_err(SessionError::Encode)?;
        }
        if qos != QoS::AtMostOnce {
            let mut copy = Vec::new();
            if self.keep_copies {
                copy = self.spare.pop().unwrap_or_default();
                copy.clear();
                match self.v5.as_ref() {
                    // A resend goes on a new connection: without this one's topic alias.
                    Some(state) => state.encode_copy(topic, payload, qos, packet_id, &mut copy)?,
                    None => copy.extend_from_slice(&self.out[start..]),
                }
            }
            self.inflight.push_back(InFlight {
                packet_id,
                qos,
                released: false,
                due,
                sent: now,
                payload_len: u32::try_from(payload.len()).unwrap_or(u32::MAX),
                copy,
            });
        }
        Ok(())
    }

    /// Keeps the first `len` payload bytes of every received message for
    /// [`Session::received_head`].
    pub fn keep_received_head(&mut self, len: usize) {
        self.head_len = len;
    }

    /// The bytes an [`Event::Received`]'s `head` points at (empty when out of range).
    pub fn received_head(&self, head: (u32, u32)) -> &[u8] {
        let start = head.0 as usize;
        self.inbox
            .get(start..start + head.1 as usize)
            .unwrap_or_default()
    }

    /// Queues a SUBSCRIBE to one filter; [`Event::Subscribed`] follows with the SUBACK.
    pub fn subscribe(&mut self, filter: &str, qos: QoS, now: Instant) -> Result<(), SessionError> {
        self.subscribe_with(filter, mqtt::v5::SubscriptionOptions::qos(qos), now)
    }

    /// As [`Session::subscribe`], with MQTT 5 subscription options (3.1.1 sends the QoS only).
    pub fn subscribe_with(
        &mut self,
        filter: &str,
        options: mqtt::v5::SubscriptionOptions,
        now: Instant,
    ) -> Result<(), SessionError> {
        let qos = options.qos;
        if self.state != State::Connected {
            return Err(SessionError::NotReady);
        }
        let packet_id = self.next_packet_id;
        self.next_packet_id = if packet_id == u16::MAX {
            1
        } else {
            packet_id + 1
        };
        match self.v5.as_ref() {
            Some(_) => v5::subscribe(packet_id, filter, options, &mut self.out)?,
            None => Packet::Subscribe {
                packet_id,
                filters: vec![(filter, qos)],
            }
            .encode(&mut self.out)
            .map_err(SessionError::Encode)?,
        }
        self.pending_subscribe = Some((packet_id, now));
        Ok(())
    }

    /// Queues a DISCONNECT; the session is closed afterwards.
    pub fn disconnect(&mut self) {
        if self.state == State::Connected {
            FixedPacket::Disconnect.encode(&mut self.out);
        }
        self.state = State::Closed;
    }

    /// Bytes to send. After queueing them on the socket call [`Session::output_sent`].
    pub fn pending_output(&self) -> &[u8] {
        &self.out
    }

    /// The pending output was handed to the transport at `now`.
    pub fn output_sent(&mut self, now: Instant) {
        if !self.out.is_empty() {
            self.out.clear();
            self.last_sent = now;
        }
    }

    /// Feeds plaintext the broker sent, received at `now`.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) -> Result<(), SessionError> {
        if self.events.is_empty() {
            self.inbox.clear();
        }
        if self.rx.is_empty() {
            let used = self.decode_all(data, now)?;
            self.rx.extend_from_slice(&data[used..]);
        } else {
            self.rx.extend_from_slice(data);
            let rx = std::mem::take(&mut self.rx);
            let result = self.decode_all(&rx, now);
            self.rx = rx;
            let used = result?;
            self.rx.drain(..used);
        }
        Ok(())
    }

    fn decode_all(&mut self, mut buf: &[u8], now: Instant) -> Result<usize, SessionError> {
        let mut used = 0;
        loop {
            let n = if self.v5.is_some() {
                match mqtt::v5::decode(buf, self.max_packet_size).map_err(SessionError::Decode)? {
                    Some((packet, n)) => {
                        self.handle_packet_v5(packet, now)?;
                        n
                    }
                    None => return Ok(used),
                }
            } else {
                match mqtt::decode(buf, self.max_packet_size).map_err(SessionError::Decode)? {
                    Some((packet, n)) => {
                        self.handle_packet(packet, now)?;
                        n
                    }
                    None => return Ok(used),
                }
            };
            used += n;
            buf = &buf[n..];
        }
    }

    fn handle_packet(&mut self, packet: Packet<'_>, now: Instant) -> Result<(), SessionError> {
        match packet {
            Packet::ConnAck {
                session_present,
                code,
            } => {
                if self.state != State::AwaitingConnAck {
                    return Err(SessionError::Unexpected("second CONNACK"));
                }
                if code != ConnectReturnCode::Accepted {
                    self.state = State::Closed;
                    return Err(SessionError::Refused(code));
                }
                self.on_connack(session_present, now);
            }
            _ if self.state == State::AwaitingConnAck => {
                return Err(SessionError::Unexpected("packet before CONNACK"));
            }
            Packet::PubAck(id) => self.complete(id, QoS::AtLeastOnce, now)?,
            Packet::PubRec(id) => self.on_pubrec(id)?,
            Packet::PubComp(id) => self.complete(id, QoS::ExactlyOnce, now)?,
            Packet::Publish(p) => self.on_publish(p.qos, p.packet_id, p.payload, now),
            Packet::PubRel(id) => self.on_pubrel(id),
            Packet::PingResp => self.ping_sent = None,
            Packet::SubAck {
                packet_id,
                return_codes,
            } => {
                let granted = return_codes.first().copied().flatten();
                self.on_suback(packet_id, granted, None, now)?;
            }
            Packet::UnsubAck(_) => {}
            Packet::Connect(_) => return Err(SessionError::Unexpected("CONNECT")),
            Packet::Subscribe { .. } => return Err(SessionError::Unexpected("SUBSCRIBE")),
            Packet::Unsubscribe { .. } => return Err(SessionError::Unexpected("UNSUBSCRIBE")),
            Packet::PingReq => return Err(SessionError::Unexpected("PINGREQ")),
            Packet::Disconnect => return Err(SessionError::Unexpected("DISCONNECT")),
        }
        Ok(())
    }

    /// An accepted CONNACK: connected, and what an earlier connection left is resumed.
    fn on_connack(&mut self, session_present: bool, now: Instant) {
        self.state = State::Connected;
        self.events.push_back(Event::Connected {
            session_present,
            at: now,
        });
        if !self.inflight.is_empty() {
            self.resume_inflight(session_present, now);
        }
    }

    /// A successful PUBREC: the QoS 2 publish is released.
    fn on_pubrec(&mut self, id: u16) -> Result<(), SessionError> {
        let entry = self
            .inflight
            .iter_mut()
            .find(|f| f.packet_id == id && f.qos == QoS::ExactlyOnce)
            .ok_or(SessionError::Unexpected(
                "PUBREC for no QoS 2 publish in flight",
            ))?;
        entry.released = true;
        FixedPacket::PubRel(id).encode(&mut self.out);
        Ok(())
    }

    /// A message the broker delivered: acknowledged, and reported once (QoS 2 resends are not).
    fn on_publish(&mut self, qos: QoS, packet_id: u16, payload: &[u8], now: Instant) {
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                FixedPacket::PubAck(packet_id).encode(&mut self.out);
            }
            QoS::ExactlyOnce => {
                FixedPacket::PubRec(packet_id).encode(&mut self.out);
                if self.awaiting_rel.contains(&packet_id) {
                    // The broker resent it before our PUBREC reached it: once only.
                    return;
                }
                self.awaiting_rel.push(packet_id);
            }
        }
        let head = &payload[..payload.len().min(self.head_len)];
        let start = u32::try_from(self.inbox.len()).unwrap_or(u32::MAX);
        self.inbox.extend_from_slice(head);
        self.events.push_back(Event::Received {
            qos,
            payload_len: payload.len(),
            head: (start, head.len() as u32),
            at: now,
        });
    }

    /// PUBREL: the QoS 2 message we received is complete.
    fn on_pubrel(&mut self, id: u16) {
        self.awaiting_rel.retain(|&waiting| waiting != id);
        FixedPacket::PubComp(id).encode(&mut self.out);
    }

    /// SUBACK for our SUBSCRIBE: granted QoS, or the refusal.
    fn on_suback(
        &mut self,
        packet_id: u16,
        granted: Option<QoS>,
        refusal: Option<ReasonCode>,
        now: Instant,
    ) -> Result<(), SessionError> {
        let sent = match self.pending_subscribe {
            Some((id, sent)) if id == packet_id => sent,
            _ => return Err(SessionError::Unexpected("SUBACK for no SUBSCRIBE")),
        };
        self.pending_subscribe = None;
        self.events.push_back(Event::Subscribed {
            granted,
            refusal,
            sent,
            at: now,
        });
        Ok(())
    }

    fn complete(&mut self, id: u16, qos: QoS, now: Instant) -> Result<(), SessionError> {
        self.finish(id, qos, now, None)
    }

    /// Ends a publish's exchange: acknowledged, or (MQTT 5) `rejected` with a failure.
    fn finish(
        &mut self,
        id: u16,
        qos: QoS,
        now: Instant,
        rejected: Option<&'static str>,
    ) -> Result<(), SessionError> {
        // Acks nearly always arrive in order: the front is checked first.
        let position = self
            .inflight
            .iter()
            .position(|f| f.packet_id == id && f.qos == qos)
            .ok_or(match qos {
                QoS::ExactlyOnce => SessionError::Unexpected("PUBCOMP for no publish in flight"),
                _ => SessionError::Unexpected("PUBACK for no publish in flight"),
            })?;
        // A refusing PUBREC (MQTT 5) ends a QoS 2 exchange before it is released.
        if qos == QoS::ExactlyOnce && !self.inflight[position].released && rejected.is_none() {
            return Err(SessionError::Unexpected("PUBCOMP before PUBREC"));
        }
        if let Some(done) = self.inflight.remove(position) {
            let completed = Completed {
                due: done.due,
                acked: now,
                payload_len: done.payload_len,
            };
            self.events.push_back(match rejected {
                Some(reason) => Event::Rejected {
                    done: completed,
                    reason,
                },
                None => Event::Acked(completed),
            });
            if done.copy.capacity() > 0 {
                self.spare.push(done.copy);
            }
        }
        Ok(())
    }

    /// Takes the unacknowledged publishes (with their copies) for the client's next connection;
    /// see [`Unacked`].
    pub fn carry_over(&mut self) -> Unacked {
        Unacked {
            inflight: std::mem::take(&mut self.inflight),
            spare: std::mem::take(&mut self.spare),
        }
    }

    /// Adopts what an earlier connection of this client left unacknowledged: after an accepted
    /// CONNACK they are re-sent with DUP set and their packet ids (PUBREL for QoS 2 publishes
    /// already PUBREC'd) when the broker kept the session, or reported [`Event::Lost`] when not.
    /// Their latency still counts from when they were due.
    pub fn adopt(&mut self, carried: Unacked) {
        let mut carried = carried;
        carried.inflight.append(&mut self.inflight);
        self.inflight = carried.inflight;
        self.spare.append(&mut carried.spare);
    }

    /// CONNACK accepted with publishes adopted from an earlier connection.
    fn resume_inflight(&mut self, session_present: bool, now: Instant) {
        let (out, events, spare) = (&mut self.out, &mut self.events, &mut self.spare);
        self.inflight.retain_mut(|f| {
            f.sent = now;
            if session_present && f.released {
                FixedPacket::PubRel(f.packet_id).encode(out);
                return true;
            }
            if session_present && let Some(first) = f.copy.first_mut() {
                *first |= DUP_FLAG;
                out.extend_from_slice(&f.copy);
                return true;
            }
            events.push_back(Event::Lost { due: f.due });
            if f.copy.capacity() > 0 {
                spare.push(std::mem::take(&mut f.copy));
            }
            false
        });
        self.resent = self.inflight.len();
    }

    /// The next instant [`Session::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state != State::Connected {
            return None;
        }
        let keep_alive = match self.ping_sent {
            Some(sent) => Some(sent + self.ack_timeout),
            None if self.keep_alive.is_zero() => None,
            None => Some(self.last_sent + self.keep_alive),
        };
        let ack = self
            .inflight
            .front()
            .map(|f| f.sent)
            .into_iter()
            .chain(self.pending_subscribe.map(|(_, sent)| sent))
            .min()
            .map(|sent| sent + self.ack_timeout);
        match (keep_alive, ack) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sends a PINGREQ when idle; fails when an ack or PINGRESP is overdue.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), SessionError> {
        if self.state != State::Connected {
            return Ok(());
        }
        if let Some(oldest) = self.inflight.front()
            && now >= oldest.sent + self.ack_timeout
        {
            return Err(SessionError::AckTimeout);
        }
        if let Some((_, sent)) = self.pending_subscribe
            && now >= sent + self.ack_timeout
        {
            return Err(SessionError::SubAckTimeout);
        }
        match self.ping_sent {
            Some(sent) if now >= sent + self.ack_timeout => return Err(SessionError::PingTimeout),
            Some(_) => {}
            None if !self.keep_alive.is_zero() && now >= self.last_sent + self.keep_alive => {
                FixedPacket::PingReq.encode(&mut self.out);
                self.ping_sent = Some(now);
            }
            None => {}
        }
        Ok(())
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Takes every publish still awaiting its ack (the connection is gone); yields their due times.
    pub fn take_unacked(&mut self) -> impl Iterator<Item = Instant> + '_ {
        self.inflight.drain(..).map(|f| f.due)
    }
}

#[cfg(test)]
mod tests;
