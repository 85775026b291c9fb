//! Why a client session ends ([`SessionError`]), and the failure texts the engine counts.

use std::fmt;

use crate::mqtt::{Answer, ConnectReturnCode, DecodeError, EncodeError, ReasonCode};

/// Why a session ended; the engine counts each as a named failure and reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionError {
    /// The broker refused the CONNECT with this return code.
    Refused(ConnectReturnCode),
    /// The broker sent bytes that are not MQTT 3.1.1.
    Decode(DecodeError),
    /// The broker sent a packet a client never expects at this point.
    Unexpected(&'static str),
    /// A publish was not acknowledged within the ack timeout.
    AckTimeout,
    /// A PINGREQ was not answered within the ack timeout.
    PingTimeout,
    /// A packet could not be encoded (a topic or payload too long for MQTT).
    Encode(EncodeError),
    /// The caller published while the session could not take it (a bug in the caller).
    NotReady,
    /// A SUBSCRIBE was not answered within the ack timeout.
    SubAckTimeout,
    /// The broker refused a subscription (SUBACK return code 0x80).
    SubscribeRefused,
    /// MQTT 5: the broker refused the CONNECT with this reason code.
    RefusedV5(ReasonCode),
    /// MQTT 5: the broker closed the connection with this reason code.
    ServerDisconnect(ReasonCode),
    /// MQTT 5: a PUBLISH larger than the broker's Maximum Packet Size (from CONNACK) was not
    /// sent; the connection carries on.
    OverBrokerMaximum,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Refused(code) => write!(f, "CONNACK refused: {}", refusal_text(*code)),
            SessionError::Decode(e) => write!(f, "malformed packet from broker: {e}"),
            SessionError::Unexpected(what) => write!(f, "unexpected packet from broker: {what}"),
            SessionError::AckTimeout => f.write_str("no PUBACK/PUBCOMP within the ack timeout"),
            SessionError::PingTimeout => f.write_str("no PINGRESP within the ack timeout"),
            SessionError::Encode(e) => write!(f, "cannot encode packet: {e}"),
            SessionError::NotReady => {
                f.write_str("publish while not connected or the window is full")
            }
            SessionError::SubAckTimeout => f.write_str("no SUBACK within the ack timeout"),
            SessionError::SubscribeRefused => f.write_str(SUBSCRIBE_REFUSED),
            SessionError::RefusedV5(reason) => f.write_str(reason.failure_text(Answer::ConnAck)),
            SessionError::ServerDisconnect(reason) => {
                f.write_str(reason.failure_text(Answer::Disconnect))
            }
            SessionError::OverBrokerMaximum => f.write_str(OVER_BROKER_MAXIMUM),
        }
    }
}

impl std::error::Error for SessionError {}

/// The failure of a PUBLISH not sent because it exceeds the broker's Maximum Packet Size.
pub const OVER_BROKER_MAXIMUM: &str =
    "PUBLISH larger than the broker's Maximum Packet Size (CONNACK): lower --payload-kb";

/// The failure a 3.1.1 SUBACK refusal (0x80) counts as.
pub const SUBSCRIBE_REFUSED: &str =
    "SUBACK refused the filter (0x80): check --subscribe-topic and the client's policy";

/// The spec's words for a CONNACK return code, plus what usually causes it.
pub fn refusal_text(code: ConnectReturnCode) -> &'static str {
    match code {
        ConnectReturnCode::Accepted => "accepted",
        ConnectReturnCode::UnacceptableProtocolVersion => "1 unacceptable protocol version",
        ConnectReturnCode::IdentifierRejected => "2 identifier rejected (check --client-id)",
        ConnectReturnCode::ServerUnavailable => "3 server unavailable",
        ConnectReturnCode::BadUserNameOrPassword => {
            "4 bad user name or password (check --username/--password)"
        }
        ConnectReturnCode::NotAuthorized => "5 not authorized (check the certificate's policy)",
    }
}
