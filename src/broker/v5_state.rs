//! What an MQTT 5 connection adds to the broker's session, sans IO: the client's limits,
//! its topic aliases, deliveries held back by its Receive Maximum, and the MQTT 5 answers
//! (CONNACK with the broker's limits, SUBACK/UNSUBACK/ack reason codes, DISCONNECT).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::message::Message;
use super::violation::{MAX_QOS2_PENDING, Violation};
use crate::mqtt::v5::{self, Ack, ConnAck, Disconnect, Packet, Properties, ReasonCode, SubAck};
use crate::mqtt::{DecodeError, EncodeError, Publish, QoS};

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
    /// MQTT 5 QoS 1/2: the packet id to acknowledge once routed (PUBACK or PUBREC, with
    /// 0x10 when nobody matched); 3.1.1 acks are written before routing.
    pub ack_after_routing: Option<u16>,
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
            ack_after_routing: None,
        }
    }
}

/// What became of one PUBLISH the broker tried to write for a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoded {
    /// Appended to the output.
    Written,
    /// Larger than the client's Maximum Packet Size: skipped, nothing appended
    /// (MQTT-3.1.2-25), so it must not wait for an acknowledgement either.
    TooLargeForClient,
    /// Does not encode (no valid PUBLISH could have brought it in); nothing appended.
    Invalid,
}

/// What an MQTT 5 connection adds to the session.
#[derive(Debug)]
pub struct V5State {
    /// The client's Receive Maximum: its unacknowledged QoS 1/2 deliveries at most.
    pub(super) client_receive_max: u16,
    /// The client's Maximum Packet Size.
    pub(super) client_max_packet: u32,
    /// Topic aliases the client set, by alias - 1.
    aliases: Vec<Option<Arc<str>>>,
    /// Deliveries held back by the Receive Maximum, oldest first.
    pub waiting: VecDeque<(Arc<Message>, QoS, bool)>,
    /// Session Expiry Interval in seconds (0: the session ends with the connection).
    pub session_expiry: u32,
    /// The broker assigned the client id (CONNACK says which).
    pub(super) assigned_id: bool,
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
pub(super) fn reason_for(violation: &Violation) -> ReasonCode {
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

pub(super) fn put_disconnect(reason: ReasonCode, out: &mut Vec<u8>) {
    // A reason code without properties always encodes.
    let _ = Packet::Disconnect(Disconnect::with_reason(reason)).encode(out);
}

pub(super) fn put_ack(
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
            e.user.len()
                + e.content_type.as_ref().map_or(0, |t| t.len() + 3)
                + e.response_topic.as_ref().map_or(0, |t| t.len() + 3)
                + e.correlation_data.as_ref().map_or(0, |t| t.len() + 3)
                + 16
        });
        let len = message.topic.len() + message.payload.len() + extra + 16;
        u32::try_from(len).is_ok_and(|len| len <= self.client_max_packet)
    }

    /// Appends an MQTT 5 PUBLISH of `message` with its forwarded properties (expiry as
    /// what is left at `now`). One too large for the client is skipped, as MQTT-3.1.2-25 asks.
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
    ) -> Encoded {
        if !self.fits(message) {
            return Encoded::TooLargeForClient;
        }
        let properties = message
            .extra
            .as_deref()
            .map_or_else(Properties::default, |e| e.properties(now));
        let publish = v5::Publish {
            dup,
            qos,
            retain,
            topic: &message.topic,
            packet_id,
            properties,
            payload: &message.payload,
        };
        match v5::encode_publish_into(&publish, out) {
            Ok(()) => Encoded::Written,
            Err(_) => Encoded::Invalid,
        }
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

    /// PUBACK (QoS 1) or PUBREC (QoS 2) for a routed PUBLISH: 0x10 when no subscription
    /// matched it, as MQTT 5 lets a server say.
    pub fn put_publish_ack(id: u16, qos: QoS, matched: bool, out: &mut Vec<u8>) {
        let reason = match matched {
            true => ReasonCode::Success,
            false => ReasonCode::NoMatchingSubscribers,
        };
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => put_ack(Packet::PubAck, id, reason, out),
            QoS::ExactlyOnce => put_ack(Packet::PubRec, id, reason, out),
        }
    }

    /// The topic of a PUBLISH, setting or reading a topic alias.
    pub(super) fn resolve<'a>(
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

pub(super) fn put_connack(
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
