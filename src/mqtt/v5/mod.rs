//! MQTT 5 packets (protocol level 5): the same guarantees as the 3.1.1 codec beside it.
//!
//! Decoding borrows from the input (only SUBSCRIBE, SUBACK, UNSUBSCRIBE and UNSUBACK collect
//! their lists), every error is a typed [`DecodeError`], and [`decode_fixed_header`] refuses
//! an oversized packet before its body arrives. Properties are [`Properties`]; reason codes
//! are [`ReasonCode`]s, each checked against the packets that may carry it. The encoder
//! refuses whatever the decoder would refuse.
//!
//! A broker learns a client's version from CONNECT: the 3.1.1 decoder answers
//! [`DecodeError::UnsupportedProtocolLevel`]`(5)`, and the same bytes then go to [`decode`].

pub use super::properties::{Properties, SubscriptionIds, UserProperties, id as property};
pub use super::reason::ReasonCode;
pub use decode::{decode, decode_fixed_header};
pub use encode::encode_publish_into;

use super::{DecodeError, QoS};

mod decode;
mod encode;
#[cfg(test)]
mod tests;

/// The will message of a CONNECT, with its own properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will<'a> {
    /// Topic the will is published to.
    pub topic: &'a str,
    /// Will payload.
    pub message: &'a [u8],
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// Will properties (delay, expiry, content type, ...).
    pub properties: Properties<'a>,
}

/// CONNECT (client to server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Client identifier (may be empty: the server then assigns one).
    pub client_id: &'a str,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Clean start flag.
    pub clean_start: bool,
    /// Optional user name.
    pub username: Option<&'a str>,
    /// Optional password (MQTT 5 allows it without a user name).
    pub password: Option<&'a [u8]>,
    /// Optional will message.
    pub will: Option<Will<'a>>,
    /// CONNECT properties (session expiry, receive maximum, ...).
    pub properties: Properties<'a>,
}

/// CONNACK (server to client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck<'a> {
    /// Server holds state from an earlier session.
    pub session_present: bool,
    /// Outcome; 0x80 and above refuse the connection.
    pub reason: ReasonCode,
    /// The server's limits (receive maximum, topic alias maximum, ...).
    pub properties: Properties<'a>,
}

/// PUBLISH (both directions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish<'a> {
    /// Re-delivery flag.
    pub dup: bool,
    /// Delivery guarantee.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Topic name; empty when a topic alias names a topic sent before.
    pub topic: &'a str,
    /// Packet identifier; present exactly when qos > 0 (0 for QoS 0, never encoded).
    pub packet_id: u16,
    /// PUBLISH properties (topic alias, message expiry, user properties, ...).
    pub properties: Properties<'a>,
    /// Application payload.
    pub payload: &'a [u8],
}

/// PUBACK, PUBREC, PUBREL or PUBCOMP: a packet id, a reason code and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// Outcome (Success when the short form omitted it).
    pub reason: ReasonCode,
    /// Reason string and user properties.
    pub properties: Properties<'a>,
}

impl Ack<'_> {
    /// A successful ack without properties (the 2-byte short form).
    pub fn success(packet_id: u16) -> Ack<'static> {
        Ack {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }
    }
}

/// What the server does with retained messages when a subscription is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RetainHandling {
    /// 0: send retained messages at subscribe time.
    SendAtSubscribe = 0,
    /// 1: send them only if the subscription did not exist.
    SendIfNew = 1,
    /// 2: never send them at subscribe time.
    DoNotSend = 2,
}

/// A SUBSCRIBE entry's options byte (MQTT 5 section 3.8.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionOptions {
    /// Maximum QoS the subscriber accepts.
    pub qos: QoS,
    /// Do not send this client its own publishes.
    pub no_local: bool,
    /// Keep the retain flag as published when forwarding.
    pub retain_as_published: bool,
    /// Retained messages at subscribe time.
    pub retain_handling: RetainHandling,
}

impl SubscriptionOptions {
    /// Options with only a QoS: local messages, retain flag cleared, retained sent.
    pub fn qos(qos: QoS) -> Self {
        SubscriptionOptions {
            qos,
            no_local: false,
            retain_as_published: false,
            retain_handling: RetainHandling::SendAtSubscribe,
        }
    }

    /// The wire byte.
    pub(crate) fn to_byte(self) -> u8 {
        self.qos as u8
            | u8::from(self.no_local) << 2
            | u8::from(self.retain_as_published) << 3
            | (self.retain_handling as u8) << 4
    }

    /// Parses the wire byte; reserved bits and retain handling 3 are errors.
    pub(crate) fn from_byte(byte: u8) -> Result<Self, DecodeError> {
        let qos = QoS::from_u8(byte & 0b11).ok_or(DecodeError::InvalidQoS(byte & 0b11))?;
        let retain_handling = match (byte >> 4) & 0b11 {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::ProtocolViolation("retain handling 3")),
        };
        if byte & 0xC0 != 0 {
            return Err(DecodeError::ProtocolViolation(
                "subscription options reserved bits are set",
            ));
        }
        Ok(SubscriptionOptions {
            qos,
            no_local: byte & 0b100 != 0,
            retain_as_published: byte & 0b1000 != 0,
            retain_handling,
        })
    }
}

/// SUBSCRIBE (client to server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// Subscription identifier and user properties.
    pub properties: Properties<'a>,
    /// (filter, options) pairs; at least one.
    pub filters: Vec<(&'a str, SubscriptionOptions)>,
}

/// SUBACK or UNSUBACK: a packet id, properties and one reason code per filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// Reason string and user properties.
    pub properties: Properties<'a>,
    /// One entry per filter of the request.
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (client to server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// Packet identifier.
    pub packet_id: u16,
    /// User properties.
    pub properties: Properties<'a>,
    /// Filters; at least one.
    pub filters: Vec<&'a str>,
}

/// DISCONNECT or AUTH: a reason code and properties.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect<'a> {
    /// Why (Success: normal disconnection, or authentication success in AUTH).
    pub reason: ReasonCode,
    /// Session expiry, reason string, server reference, user properties.
    pub properties: Properties<'a>,
}

impl Disconnect<'_> {
    /// A DISCONNECT or AUTH with this reason and no properties.
    pub fn with_reason(reason: ReasonCode) -> Disconnect<'static> {
        Disconnect {
            reason,
            properties: Properties::default(),
        }
    }
}

/// One MQTT 5 control packet.
///
/// CONNECT is the largest variant (two property sets); it stays unboxed so that decoding
/// never allocates, and a packet lives on the stack only while it is handled.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Client asks to open a session.
    Connect(Connect<'a>),
    /// Server answers a CONNECT.
    ConnAck(ConnAck<'a>),
    /// Application message.
    Publish(Publish<'a>),
    /// QoS 1 acknowledgement.
    PubAck(Ack<'a>),
    /// QoS 2 step 1: received.
    PubRec(Ack<'a>),
    /// QoS 2 step 2: release.
    PubRel(Ack<'a>),
    /// QoS 2 step 3: complete.
    PubComp(Ack<'a>),
    /// Subscribe to topic filters.
    Subscribe(Subscribe<'a>),
    /// Answer to SUBSCRIBE.
    SubAck(SubAck<'a>),
    /// Unsubscribe from topic filters.
    Unsubscribe(Unsubscribe<'a>),
    /// Answer to UNSUBSCRIBE.
    UnsubAck(SubAck<'a>),
    /// Keep-alive probe.
    PingReq,
    /// Keep-alive answer.
    PingResp,
    /// Either side closes, with a reason.
    Disconnect(Disconnect<'a>),
    /// Enhanced authentication exchange.
    Auth(Disconnect<'a>),
}

impl Packet<'_> {
    /// The packet type's name in upper case, as the specification writes it (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck(_) => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe(_) => "SUBSCRIBE",
            Packet::SubAck(_) => "SUBACK",
            Packet::Unsubscribe(_) => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect(_) => "DISCONNECT",
            Packet::Auth(_) => "AUTH",
        }
    }
}
