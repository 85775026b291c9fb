//! The MQTT 5 side of a server session, sans IO: CONNECT with properties and CONNACK with the
//! broker's limits, inbound topic aliases, acks with reason codes, the client's Receive
//! Maximum on deliveries, session expiry, and a DISCONNECT with a reason before the broker
//! closes a connection.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::message::Message;
use super::session::{Event, MAX_QOS2_PENDING, ServerSession, Violation, Will};
use crate::mqtt::v5::{self, Ack, ConnAck, Disconnect, Packet, Properties, ReasonCode, SubAck};
use crate::mqtt::{DecodeError, EncodeError, ProtocolVersion, Publish, QoS};

/// Topic aliases a client may set (CONNACK's Topic Alias Maximum).
pub const TOPIC_ALIAS_MAXIMUM: u16 = 64;
/// Unacknowledged QoS 2 publishes a client may have (CONNACK's Receive Maximum).
pub const RECEIVE_MAXIMUM: u16 = MAX_QOS2_PENDING as u16;

/// A received message's topic: from the packet, or from a topic alias set before.
#[derive(Debug, Clone)]
pub enum TopicName<'a> {
    /// Written in the PUBLISH.
    Wire(&'a str),
    /// Named by a topic alias (one shared copy, no allocation per message).
    Alias(Arc<str>),
}

impl TopicName<'_> {
    /// The topic.
    pub fn as_str(&self) -> &str {
        match self {
            TopicName::Wire(topic) => topic,
            TopicName::Alias(topic) => topic,
        }
    }
}

/// A PUBLISH from a client, in either MQTT, ready to route.
#[derive(Debug)]
pub struct Incoming<'a> {
    /// Topic (aliases resolved).
    pub topic: TopicName<'a>,
    /// Payload.
    pub payload: &'a [u8],
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// MQTT 5 properties (`None` from a 3.1.1 client).
    pub properties: Option<Properties<'a>>,
}

impl<'a> Incoming<'a> {
    /// A 3.1.1 PUBLISH.
    pub fn from_v311(publish: Publish<'a>) -> Incoming<'a> {
        Incoming {
            topic: TopicName::Wire(publish.topic),
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: None,
        }
    }
}

/// What an MQTT 5 connection adds to the session.
#[derive(Debug)]
pub struct V5State {
    /// The client's Receive Maximum: its unacknowledged QoS 1/2 deliveries at most.
    client_receive_max: u16,
    /// The client's Maximum Packet Size.
    client_max_packet: u32,
    /// Topic aliases the client set, by alias - 1.
    aliases: Vec<Option<Arc<str>>>,
    /// Deliveries held back by the Receive Maximum, oldest first.
    pub waiting: VecDeque<(Arc<Message>, QoS, bool)>,
    /// Session Expiry Interval in seconds (0: the session ends with the connection).
    pub session_expiry: u32,
    /// The broker assigned the client id (CONNACK says which).
    assigned_id: bool,
}

impl Default for V5State {
    fn default() -> Self {
        V5State {
            client_receive_max: u16::MAX,
            client_max_packet: u32::MAX,
            aliases: Vec::new(),
            waiting: VecDeque::new(),
            session_expiry: 0,
            assigned_id: false,
        }
    }
}

/// The reason code a DISCONNECT gives for a violation.
fn reason_for(violation: &Violation) -> ReasonCode {
    match violation {
        Violation::Decode(DecodeError::PacketTooLarge { .. }) => ReasonCode::PacketTooLarge,
        Violation::Decode(_) => ReasonCode::MalformedPacket,
        Violation::TopicAliasInvalid => ReasonCode::TopicAliasInvalid,
        Violation::ReceiveMaximumExceeded | Violation::TooManyQos2 => {
            ReasonCode::ReceiveMaximumExceeded
        }
        Violation::Unsupported(_) => ReasonCode::ImplementationSpecificError,
        _ => ReasonCode::ProtocolError,
    }
}

fn put_disconnect(reason: ReasonCode, out: &mut Vec<u8>) {
    // A reason code without properties always encodes.
    let _ = Packet::Disconnect(Disconnect::with_reason(reason)).encode(out);
}

fn put_ack(
    packet: fn(Ack<'static>) -> Packet<'static>,
    id: u16,
    reason: ReasonCode,
    out: &mut Vec<u8>,
) {
    let ack = Ack {
        packet_id: id,
        reason,
        properties: Properties::default(),
    };
    // Ids come from decoded packets (never 0) and the reasons are the ack's own.
    let _ = packet(ack).encode(out);
}

impl V5State {
    /// Whether one more QoS 1/2 delivery may go out with `inflight` unacknowledged.
    pub fn may_send(&self, inflight: usize) -> bool {
        inflight < usize::from(self.client_receive_max)
    }

    /// Whether `message` would pass the client's Maximum Packet Size (estimated from its
    /// topic, payload and forwarded properties, plus headers).
    fn fits(&self, message: &Message) -> bool {
        let extra = message.extra.as_ref().map_or(0, |e| {
            e.user
                .iter()
                .map(|(k, v)| k.len() + v.len() + 5)
                .sum::<usize>()
                + e.content_type.as_ref().map_or(0, |t| t.len() + 3)
                + e.response_topic.as_ref().map_or(0, |t| t.len() + 3)
                + e.correlation_data.as_ref().map_or(0, |t| t.len() + 3)
                + 16
        });
        let len = message.topic.len() + message.payload.len() + extra + 16;
        u32::try_from(len).is_ok_and(|len| len <= self.client_max_packet)
    }

    /// Appends an MQTT 5 PUBLISH of `message` with its forwarded properties (expiry as
    /// what is left at `now`); `false` when it does not encode. One too large for the client
    /// is skipped (`true`, nothing appended), as MQTT-3.1.2-25 asks.
    #[allow(clippy::too_many_arguments)]
    pub fn encode_publish(
        &self,
        message: &Message,
        qos: QoS,
        retain: bool,
        dup: bool,
        packet_id: u16,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> bool {
        if !self.fits(message) {
            return true;
        }
        let extra = message.extra.as_deref();
        // Empty (no allocation) unless the publisher sent user properties.
        let pairs: Vec<(&str, &str)> = extra.map_or_else(Vec::new, |e| {
            e.user.iter().map(|(k, v)| (&**k, &**v)).collect()
        });
        let properties = extra.map_or_else(Properties::default, |e| e.properties(now, &pairs));
        let publish = v5::Publish {
            dup,
            qos,
            retain,
            topic: &message.topic,
            packet_id,
            properties,
            payload: &message.payload,
        };
        v5::encode_publish_into(&publish, out).is_ok()
    }

    /// Answers bytes that did not decode: CONNACK 0x81 before CONNECT, else DISCONNECT with
    /// 0x81 (malformed) or 0x95 (packet too large).
    pub fn on_decode_error(&self, error: &DecodeError, connected: bool, out: &mut Vec<u8>) {
        let reason = reason_for(&Violation::Decode(error.clone()));
        if connected {
            put_disconnect(reason, out);
        } else {
            put_connack(false, reason, Properties::default(), out);
        }
    }

    /// CONNACK accepting the connection, with the broker's limits.
    pub fn put_connack(&self, session_present: bool, client_id: &str, out: &mut Vec<u8>) {
        let properties = Properties {
            receive_maximum: Some(RECEIVE_MAXIMUM),
            topic_alias_maximum: Some(TOPIC_ALIAS_MAXIMUM),
            subscription_identifier_available: Some(0),
            shared_subscription_available: Some(1),
            assigned_client_identifier: self.assigned_id.then_some(client_id),
            ..Properties::default()
        };
        put_connack(session_present, ReasonCode::Success, properties, out);
    }

    /// SUBACK: the granted QoS per filter, 0x97 (quota exceeded) for one past the cap.
    pub fn put_suback(
        packet_id: u16,
        granted: &[Option<QoS>],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let reasons = granted
            .iter()
            .map(|g| match g {
                Some(QoS::AtMostOnce) => ReasonCode::Success,
                Some(QoS::AtLeastOnce) => ReasonCode::GrantedQoS1,
                Some(QoS::ExactlyOnce) => ReasonCode::GrantedQoS2,
                None => ReasonCode::QuotaExceeded,
            })
            .collect();
        let suback = SubAck {
            packet_id,
            properties: Properties::default(),
            reasons,
        };
        Packet::SubAck(suback).encode(out)
    }

    /// UNSUBACK: 0x00 per filter that had a subscription, 0x11 per one that had none.
    pub fn put_unsuback(
        packet_id: u16,
        existed: &[bool],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let reasons = existed
            .iter()
            .map(|&e| match e {
                true => ReasonCode::Success,
                false => ReasonCode::NoSubscriptionExisted,
            })
            .collect();
        let unsuback = SubAck {
            packet_id,
            properties: Properties::default(),
            reasons,
        };
        Packet::UnsubAck(unsuback).encode(out)
    }

    /// The topic of a PUBLISH, setting or reading a topic alias.
    fn resolve<'a>(
        &mut self,
        topic: &'a str,
        alias: Option<u16>,
    ) -> Result<TopicName<'a>, Violation> {
        let Some(alias) = alias else {
            return Ok(TopicName::Wire(topic));
        };
        if alias == 0 || alias > TOPIC_ALIAS_MAXIMUM {
            return Err(Violation::TopicAliasInvalid);
        }
        let slot = usize::from(alias - 1);
        if self.aliases.len() <= slot {
            self.aliases.resize(slot + 1, None);
        }
        if topic.is_empty() {
            return match &self.aliases[slot] {
                Some(known) => Ok(TopicName::Alias(Arc::clone(known))),
                None => Err(Violation::TopicAliasInvalid),
            };
        }
        if self.aliases[slot].as_deref() != Some(topic) {
            self.aliases[slot] = Some(topic.into());
        }
        Ok(TopicName::Wire(topic))
    }
}

fn put_connack(
    session_present: bool,
    reason: ReasonCode,
    properties: Properties<'_>,
    out: &mut Vec<u8>,
) {
    let connack = ConnAck {
        session_present,
        reason,
        properties,
    };
    // The broker's own limits and an id it made: always valid.
    let _ = Packet::ConnAck(connack).encode(out);
}

impl ServerSession {
    /// Handles one decoded MQTT 5 packet; replies go to `out`. On a violation after CONNECT,
    /// a DISCONNECT with its reason code is written first.
    pub fn on_packet_v5<'a>(
        &mut self,
        packet: Packet<'a>,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> Result<Event<'a>, Violation> {
        let connected = self.is_connected();
        let result = self.handle_v5(packet, out, now);
        if let Err(violation) = &result
            && connected
        {
            put_disconnect(reason_for(violation), out);
        }
        result
    }

    /// A DISCONNECT with `reason` before the broker closes an MQTT 5 connection (nothing
    /// for 3.1.1, which has no such packet).
    pub fn goodbye(&self, reason: ReasonCode, out: &mut Vec<u8>) {
        if self.version == ProtocolVersion::V5 && self.is_connected() {
            put_disconnect(reason, out);
        }
    }

    /// How long the hub keeps this client's session after the connection, `None`: not at
    /// all (3.1.1: clean session; MQTT 5: Session Expiry Interval 0).
    pub fn keep_for(&self) -> Option<Duration> {
        match self.version {
            ProtocolVersion::V311 => (!self.clean_session).then_some(Duration::MAX),
            ProtocolVersion::V5 => match self.v5.session_expiry {
                0 => None,
                u32::MAX => Some(Duration::MAX),
                secs => Some(Duration::from_secs(u64::from(secs))),
            },
        }
    }

    fn handle_v5<'a>(
        &mut self,
        packet: Packet<'a>,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> Result<Event<'a>, Violation> {
        if !self.is_connected() {
            let Packet::Connect(connect) = packet else {
                return Err(Violation::NotConnectFirst(packet.name()));
            };
            return self.connect_v5(connect, out);
        }
        match packet {
            Packet::Publish(publish) => self.publish_v5(publish, out),
            Packet::PubRel(ack) => {
                let known = self.qos2_pending.iter().position(|id| *id == ack.packet_id);
                let reason = match known {
                    Some(at) => {
                        self.qos2_pending.swap_remove(at);
                        ReasonCode::Success
                    }
                    None => ReasonCode::PacketIdentifierNotFound,
                };
                put_ack(Packet::PubComp, ack.packet_id, reason, out);
                Ok(Event::Nothing)
            }
            Packet::PubAck(ack) | Packet::PubComp(ack) => {
                self.acknowledged(ack.packet_id, out, now);
                Ok(Event::Nothing)
            }
            Packet::PubRec(ack) if ack.reason as u8 >= 0x80 => {
                // Refused: the exchange ends here (MQTT-4.3.3).
                self.acknowledged(ack.packet_id, out, now);
                Ok(Event::Nothing)
            }
            Packet::PubRec(ack) => {
                if let Some(sent) = self.inflight.iter_mut().find(|s| s.id == ack.packet_id) {
                    sent.received = true;
                }
                put_ack(Packet::PubRel, ack.packet_id, ReasonCode::Success, out);
                Ok(Event::Nothing)
            }
            Packet::Subscribe(subscribe) => Ok(Event::Subscribe {
                packet_id: subscribe.packet_id,
                filters: subscribe.filters,
            }),
            Packet::Unsubscribe(unsubscribe) => Ok(Event::Unsubscribe {
                packet_id: unsubscribe.packet_id,
                filters: unsubscribe.filters,
            }),
            Packet::PingReq => {
                let _ = Packet::PingResp.encode(out);
                Ok(Event::Nothing)
            }
            Packet::Disconnect(disconnect) => {
                if disconnect.reason != ReasonCode::DisconnectWithWill {
                    self.will = None;
                }
                if let Some(expiry) = disconnect.properties.session_expiry_interval {
                    self.v5.session_expiry = expiry;
                }
                Ok(Event::Disconnect)
            }
            Packet::Connect(_) => Err(Violation::SecondConnect),
            Packet::Auth(_) => Err(Violation::Unsupported("AUTH")),
            other => Err(Violation::ServerOnlyPacket(other.name())),
        }
    }

    fn connect_v5<'a>(
        &mut self,
        connect: v5::Connect<'a>,
        out: &mut Vec<u8>,
    ) -> Result<Event<'a>, Violation> {
        if connect.properties.authentication_method.is_some() {
            let reason = ReasonCode::BadAuthenticationMethod;
            put_connack(false, reason, Properties::default(), out);
            return Err(Violation::RefusedV5(reason));
        }
        if connect.client_id.is_empty() {
            self.assign_client_id();
            self.v5.assigned_id = true;
        } else {
            self.client_id = connect.client_id.to_string();
        }
        let props = &connect.properties;
        self.v5.client_receive_max = props.receive_maximum.unwrap_or(u16::MAX);
        self.v5.client_max_packet = props.maximum_packet_size.unwrap_or(u32::MAX);
        self.v5.session_expiry = props.session_expiry_interval.unwrap_or(0);
        self.keep_alive = connect.keep_alive;
        self.clean_session = connect.clean_start;
        self.will = connect.will.map(|will| Will {
            topic: will.topic.to_string(),
            payload: will.message.to_vec(),
            qos: will.qos,
            retain: will.retain,
        });
        self.set_connected();
        Ok(Event::Connected)
    }

    fn publish_v5<'a>(
        &mut self,
        publish: v5::Publish<'a>,
        out: &mut Vec<u8>,
    ) -> Result<Event<'a>, Violation> {
        let topic = self
            .v5
            .resolve(publish.topic, publish.properties.topic_alias)?;
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => {
                put_ack(Packet::PubAck, publish.packet_id, ReasonCode::Success, out);
            }
            QoS::ExactlyOnce => {
                if self.qos2_pending.contains(&publish.packet_id) {
                    put_ack(Packet::PubRec, publish.packet_id, ReasonCode::Success, out);
                    return Ok(Event::Nothing);
                }
                if self.qos2_pending.len() >= MAX_QOS2_PENDING {
                    return Err(Violation::ReceiveMaximumExceeded);
                }
                put_ack(Packet::PubRec, publish.packet_id, ReasonCode::Success, out);
                self.qos2_pending.push(publish.packet_id);
            }
        }
        Ok(Event::Publish(Incoming {
            topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: Some(publish.properties),
        }))
    }

    /// An outbound QoS 1/2 exchange ended: frees its place, and sends what the Receive
    /// Maximum held back while there is room.
    fn acknowledged(&mut self, id: u16, out: &mut Vec<u8>, now: Instant) {
        if let Some(at) = self.inflight.iter().position(|s| s.id == id) {
            self.inflight.remove(at);
        }
        while self.v5.may_send(self.inflight.len()) {
            let Some((message, qos, retain)) = self.v5.waiting.pop_front() else {
                break;
            };
            self.deliver(&message, qos, retain, out, now);
        }
    }
}
