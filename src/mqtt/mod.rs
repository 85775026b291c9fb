//! MQTT 3.1.1 and MQTT 5 packets and their wire format: pure functions over byte slices, no
//! IO, no clock. The 3.1.1 packets live here; MQTT 5's are in [`v5`] (the protocol level that
//! CONNECT carries selects one).
//!
//! Decoding borrows from the input buffer (no allocation for PUBLISH, acks or pings); only
//! SUBSCRIBE/SUBACK/UNSUBSCRIBE collect their lists. Every error is a [`DecodeError`], never a panic.
//!
//! The decoder is strict where the specification says a packet is malformed (reserved
//! flags, QoS 3, packet id 0, bad UTF-8 or U+0000, wildcards in topic names, empty lists,
//! bytes left over) and lenient where strictness would only hide information: a
//! non-minimal remaining length is accepted, and so is a refusing CONNACK with "session
//! present" set (the engine still learns the return code). The encoder refuses whatever the
//! decoder would refuse, so what mqload sends always decodes.
//!
//! Layout: `wire` (constants, varint, topic rules), `reader` (bounds-checked field reads),
//! `decode` (fixed header, dispatch, PUBLISH and acks), `decode_connect`, `decode_subscribe`,
//! `encode`, `error`; codec-wide property tests live in `tests`. MQTT 5 adds `properties`
//! (+ `properties_encode`), `reason`, and `v5` (packets, with its own `decode`, `encode` and
//! property tests).

mod decode;
mod decode_connect;
mod decode_subscribe;
mod encode;
mod error;
mod properties;
mod properties_encode;
mod reader;
mod reason;
pub mod topic;
pub mod v5;
mod wire;

#[cfg(test)]
mod tests;

pub use decode::{FixedHeader, decode, decode_fixed_header};
pub use encode::{FixedPacket, encode_publish_into, encoded_publish_len};
pub use error::{DecodeError, EncodeError};
pub use reason::ReasonCode;

/// Which MQTT the client speaks (CONNECT's protocol level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolVersion {
    /// MQTT 3.1.1 (protocol level 4), the default.
    #[default]
    V311,
    /// MQTT 5 (protocol level 5).
    V5,
}

impl ProtocolVersion {
    /// CONNECT's protocol level byte.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V311 => wire::PROTOCOL_LEVEL,
            ProtocolVersion::V5 => wire::PROTOCOL_LEVEL_V5,
        }
    }

    /// The name users type and reports show: "3.1.1" or "5".
    pub fn name(self) -> &'static str {
        match self {
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5",
        }
    }

    /// Parses "3.1.1" (or "4", "311") and "5"; `None` for anything else.
    pub fn parse(text: &str) -> Option<ProtocolVersion> {
        match text.trim() {
            "3.1.1" | "311" | "4" => Some(ProtocolVersion::V311),
            "5" | "5.0" => Some(ProtocolVersion::V5),
            _ => None,
        }
    }
}

/// Quality of service of a PUBLISH or a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QoS {
    /// Fire and forget.
    AtMostOnce = 0,
    /// Acknowledged by PUBACK; may be delivered twice.
    AtLeastOnce = 1,
    /// Four-step PUBREC/PUBREL/PUBCOMP handshake; delivered once.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value 0..=2, `None` for anything else.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// CONNACK return codes (MQTT 3.1.1 section 3.2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectReturnCode {
    /// 0: connection accepted.
    Accepted,
    /// 1: the server does not support MQTT 3.1.1.
    UnacceptableProtocolVersion,
    /// 2: the client identifier is not allowed.
    IdentifierRejected,
    /// 3: the MQTT service is unavailable.
    ServerUnavailable,
    /// 4: the user name or password is malformed or wrong.
    BadUserNameOrPassword,
    /// 5: the client is not authorised to connect.
    NotAuthorized,
}

impl ConnectReturnCode {
    /// The return code for a wire value 0..=5, `None` for anything else.
    pub fn from_u8(value: u8) -> Option<ConnectReturnCode> {
        match value {
            0 => Some(ConnectReturnCode::Accepted),
            1 => Some(ConnectReturnCode::UnacceptableProtocolVersion),
            2 => Some(ConnectReturnCode::IdentifierRejected),
            3 => Some(ConnectReturnCode::ServerUnavailable),
            4 => Some(ConnectReturnCode::BadUserNameOrPassword),
            5 => Some(ConnectReturnCode::NotAuthorized),
            _ => None,
        }
    }

    /// The wire value, 0..=5.
    pub fn code(self) -> u8 {
        match self {
            ConnectReturnCode::Accepted => 0,
            ConnectReturnCode::UnacceptableProtocolVersion => 1,
            ConnectReturnCode::IdentifierRejected => 2,
            ConnectReturnCode::ServerUnavailable => 3,
            ConnectReturnCode::BadUserNameOrPassword => 4,
            ConnectReturnCode::NotAuthorized => 5,
        }
    }
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill<'a> {
    /// Topic the will is published to.
    pub topic: &'a str,
    /// Will payload.
    pub message: &'a [u8],
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
}

/// CONNECT (client to server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect<'a> {
    /// Client identifier (may be empty with clean_session).
    pub client_id: &'a str,
    /// Keep alive in seconds; 0 disables it.
    pub keep_alive: u16,
    /// Clean session flag.
    pub clean_session: bool,
    /// Optional user name.
    pub username: Option<&'a str>,
    /// Optional password (only valid with a user name).
    pub password: Option<&'a [u8]>,
    /// Optional will message.
    pub will: Option<LastWill<'a>>,
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
    /// Topic name (no wildcards).
    pub topic: &'a str,
    /// Packet identifier; present exactly when qos > 0 (0 is used for QoS 0 and never encoded).
    pub packet_id: u16,
    /// Application payload.
    pub payload: &'a [u8],
}

/// One MQTT 3.1.1 control packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    /// Client asks to open a session.
    Connect(Connect<'a>),
    /// Server answers a CONNECT.
    ConnAck {
        /// Server holds state from an earlier session.
        session_present: bool,
        /// Outcome.
        code: ConnectReturnCode,
    },
    /// Application message.
    Publish(Publish<'a>),
    /// QoS 1 acknowledgement.
    PubAck(u16),
    /// QoS 2 step 1: received.
    PubRec(u16),
    /// QoS 2 step 2: release.
    PubRel(u16),
    /// QoS 2 step 3: complete.
    PubComp(u16),
    /// Subscribe to topic filters.
    Subscribe {
        /// Packet identifier.
        packet_id: u16,
        /// (filter, requested QoS) pairs; at least one.
        filters: Vec<(&'a str, QoS)>,
    },
    /// Answer to SUBSCRIBE: granted QoS per filter, `None` for failure (0x80).
    SubAck {
        /// Packet identifier.
        packet_id: u16,
        /// One entry per requested filter.
        return_codes: Vec<Option<QoS>>,
    },
    /// Unsubscribe from topic filters.
    Unsubscribe {
        /// Packet identifier.
        packet_id: u16,
        /// Filters; at least one.
        filters: Vec<&'a str>,
    },
    /// Answer to UNSUBSCRIBE.
    UnsubAck(u16),
    /// Keep-alive probe.
    PingReq,
    /// Keep-alive answer.
    PingResp,
    /// Client closes cleanly.
    Disconnect,
}

impl Packet<'_> {
    /// The packet type's name in upper case, as the specification writes it (for logs).
    pub fn name(&self) -> &'static str {
        match self {
            Packet::Connect(_) => "CONNECT",
            Packet::ConnAck { .. } => "CONNACK",
            Packet::Publish(_) => "PUBLISH",
            Packet::PubAck(_) => "PUBACK",
            Packet::PubRec(_) => "PUBREC",
            Packet::PubRel(_) => "PUBREL",
            Packet::PubComp(_) => "PUBCOMP",
            Packet::Subscribe { .. } => "SUBSCRIBE",
            Packet::SubAck { .. } => "SUBACK",
            Packet::Unsubscribe { .. } => "UNSUBSCRIBE",
            Packet::UnsubAck(_) => "UNSUBACK",
            Packet::PingReq => "PINGREQ",
            Packet::PingResp => "PINGRESP",
            Packet::Disconnect => "DISCONNECT",
        }
    }
}
