//! Why the broker closes a connection for the client's fault: the protocol rules it broke.
//! Its own file so the 3.1.1 and MQTT 5 sides of the session share it without importing
//! each other.

use std::fmt;

use crate::mqtt::v5::ReasonCode;
use crate::mqtt::{ConnectReturnCode, DecodeError};

/// Most inbound QoS 2 messages a client may leave unreleased (PUBREC sent, PUBREL not yet
/// received); more is a protocol abuse that would grow memory, so the connection closes.
pub const MAX_QOS2_PENDING: usize = 1024;

/// Why a connection must be closed: the client broke the protocol. Each is counted as a bad packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// Bytes that are not MQTT 3.1.1.
    Decode(DecodeError),
    /// The first packet was not CONNECT.
    NotConnectFirst(&'static str),
    /// A second CONNECT on the same connection.
    SecondConnect,
    /// A packet only a server sends (CONNACK, SUBACK, ...).
    ServerOnlyPacket(&'static str),
    /// Too many unreleased QoS 2 messages.
    TooManyQos2,
    /// CONNECT was refused with this return code (already written).
    Refused(ConnectReturnCode),
    /// MQTT 5 CONNECT refused with this reason code (already written).
    RefusedV5(ReasonCode),
    /// MQTT 5: a topic alias of 0, past the maximum, or never set.
    TopicAliasInvalid,
    /// MQTT 5: more unacknowledged QoS 2 publishes than the Receive Maximum announced.
    ReceiveMaximumExceeded,
    /// MQTT 5: AUTH, or another packet the broker does not take.
    Unsupported(&'static str),
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::Decode(e) => write!(f, "malformed packet: {e}"),
            Violation::NotConnectFirst(name) => write!(f, "{name} before CONNECT"),
            Violation::SecondConnect => f.write_str("second CONNECT"),
            Violation::ServerOnlyPacket(name) => write!(f, "{name} from a client"),
            Violation::TooManyQos2 => write!(f, "more than {MAX_QOS2_PENDING} unreleased QoS 2"),
            Violation::Refused(code) => write!(f, "CONNECT refused ({code:?})"),
            Violation::RefusedV5(reason) => write!(f, "CONNECT refused ({})", reason.name()),
            Violation::TopicAliasInvalid => f.write_str("invalid topic alias"),
            Violation::ReceiveMaximumExceeded => write!(
                f,
                "more than {MAX_QOS2_PENDING} unreleased QoS 2 (the Receive Maximum)"
            ),
            Violation::Unsupported(what) => write!(f, "{what} is not supported"),
        }
    }
}
