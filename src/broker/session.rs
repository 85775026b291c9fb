//! One client connection's MQTT state on the server side, sans IO: packets in, replies
//! appended to an output buffer, and events for the loop (route, subscribe, ...).
//!
//! The session never sees a socket or a clock; the loop decodes, calls [`ServerSession::on_packet`],
//! and acts on the returned [`Event`].

use std::collections::VecDeque;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::message::Message;
pub use super::v5_state::{Encoded, Incoming, V5State};
pub use super::violation::{MAX_QOS2_PENDING, Violation};
use crate::mqtt::v5::SubscriptionOptions;
use crate::mqtt::{
    ConnectReturnCode, DecodeError, EncodeError, FixedPacket, Packet, ProtocolVersion, Publish, QoS,
};
use resend::Resend;

/// Most QoS 1/2 messages sent to one client and not yet acknowledged; a delivery beyond this
/// is refused (the broker then disconnects the client as too slow).
pub const MAX_INFLIGHT: usize = 10_000;

/// A QoS 1/2 message sent and not yet acknowledged.
#[derive(Debug)]
pub struct InFlight {
    /// Its packet id.
    pub id: u16,
    /// The message.
    pub message: Arc<Message>,
    /// QoS it was sent at.
    pub qos: QoS,
    /// QoS 2: PUBREC arrived (the client has it), PUBCOMP pending.
    pub received: bool,
}

/// What a stored session keeps of a connection's outbound state, to resume it.
#[derive(Debug, Default)]
pub struct Suspended {
    /// Unacknowledged deliveries, oldest first.
    pub inflight: VecDeque<InFlight>,
    /// The next packet id it would have used.
    pub next_packet_id: u16,
    /// Inbound QoS 2 packet ids routed and awaiting PUBREL (so a re-send is not routed twice).
    pub qos2_pending: Vec<u16>,
    /// MQTT 5: deliveries held back by the client's Receive Maximum, never sent yet.
    pub waiting: VecDeque<(Arc<Message>, QoS, bool)>,
}

/// Where the connection is in MQTT terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// TCP/TLS is up; the first packet must be CONNECT.
    AwaitingConnect,
    /// CONNACK 0 sent.
    Connected,
}

/// What the loop must do after a packet (replies are already in the output buffer).
/// Unboxed: boxing the MQTT 5 PUBLISH would allocate per message.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Event<'a> {
    /// Nothing more.
    Nothing,
    /// CONNECT accepted: register the client id (taking over an older connection), then
    /// answer with [`put_connack`] (session present or not).
    Connected,
    /// Route this message to matching subscribers (and store it when retained).
    Publish(Incoming<'a>),
    /// Add these subscriptions, answer with SUBACK (see [`ServerSession::put_suback`]), then
    /// send matching retained messages.
    Subscribe {
        /// Packet id for the SUBACK.
        packet_id: u16,
        /// Requested filters and options (3.1.1: the QoS alone).
        filters: Vec<(&'a str, SubscriptionOptions)>,
    },
    /// Remove these subscriptions, then answer with [`ServerSession::put_unsuback`].
    Unsubscribe {
        /// Packet id for the UNSUBACK.
        packet_id: u16,
        /// The filters.
        filters: Vec<&'a str>,
    },
    /// The client said goodbye: close without fuss.
    Disconnect,
}

/// Counter for the ids given to clients that connect with an empty one.
static AUTO_ID: AtomicU64 = AtomicU64::new(1);

/// A will message, owned: published if the connection ends without DISCONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// Topic.
    pub topic: String,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
}

/// The server side of one MQTT connection.
#[derive(Debug)]
pub struct ServerSession {
    state: State,
    /// The MQTT the client speaks (from its CONNECT).
    pub version: ProtocolVersion,
    /// MQTT 5 state (aliases, limits, held-back deliveries); idle for 3.1.1.
    pub(super) v5: V5State,
    /// Client identifier (assigned when the client sent an empty one).
    pub client_id: String,
    /// Keep alive the client asked for, in seconds (0: none).
    pub keep_alive: u16,
    /// Clean session flag of its CONNECT.
    pub clean_session: bool,
    /// Packet id of the next message sent to this client with QoS 1 or 2.
    pub(super) next_packet_id: u16,
    /// Inbound QoS 2 packet ids routed and awaiting PUBREL.
    pub(super) qos2_pending: Vec<u16>,
    /// Outbound QoS 1/2 messages awaiting their acknowledgement, oldest first.
    pub(super) inflight: VecDeque<InFlight>,
    /// The will, until a DISCONNECT discards it.
    pub will: Option<Will>,
    /// Which of `inflight` a resumed session still has to send again.
    resend: Resend,
}

impl Default for ServerSession {
    fn default() -> Self {
        ServerSession::new()
    }
}

impl ServerSession {
    /// A session waiting for CONNECT.
    pub fn new() -> ServerSession {
        ServerSession {
            state: State::AwaitingConnect,
            version: ProtocolVersion::V311,
            v5: V5State::default(),
            client_id: String::new(),
            keep_alive: 0,
            clean_session: true,
            next_packet_id: 1,
            qos2_pending: Vec::new(),
            inflight: VecDeque::new(),
            will: None,
            resend: Resend::default(),
        }
    }

    /// Whether CONNECT has been accepted.
    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    /// Marks CONNECT accepted (the MQTT 5 side sets it too).
    pub(super) fn set_connected(&mut self) {
        self.state = State::Connected;
    }

    /// A fresh id for a client that connected with an empty one.
    pub(super) fn assign_client_id(&mut self) {
        let n = AUTO_ID.fetch_add(1, Ordering::Relaxed);
        self.client_id = format!("mqload-auto-{n}");
    }

    /// Handles a packet that did not decode: answers an unsupported protocol level with
    /// CONNACK 1 (as the specification asks) and returns the violation to close with.
    pub fn on_decode_error(&mut self, error: DecodeError, out: &mut Vec<u8>) -> Violation {
        if self.version == ProtocolVersion::V5 {
            self.v5.on_decode_error(&error, self.is_connected(), out);
            return Violation::Decode(error);
        }
        if self.state == State::AwaitingConnect
            && matches!(error, DecodeError::UnsupportedProtocolLevel(_))
        {
            refuse(ConnectReturnCode::UnacceptableProtocolVersion, out);
        }
        Violation::Decode(error)
    }

    /// Handles one decoded packet; replies go to `out`.
    pub fn on_packet<'a>(
        &mut self,
        packet: Packet<'a>,
        out: &mut Vec<u8>,
    ) -> Result<Event<'a>, Violation> {
        if self.state == State::AwaitingConnect {
            let Packet::Connect(connect) = packet else {
                return Err(Violation::NotConnectFirst(packet.name()));
            };
            if connect.client_id.is_empty() {
                if !connect.clean_session {
                    // MQTT-3.1.3-8: an empty id needs a clean session.
                    refuse(ConnectReturnCode::IdentifierRejected, out);
                    return Err(Violation::Refused(ConnectReturnCode::IdentifierRejected));
                }
                self.assign_client_id();
            } else {
                self.client_id = connect.client_id.to_string();
            }
            self.keep_alive = connect.keep_alive;
            self.clean_session = connect.clean_session;
            self.will = connect.will.map(|will| Will {
                topic: will.topic.to_string(),
                payload: will.message.to_vec(),
                qos: will.qos,
                retain: will.retain,
            });
            self.state = State::Connected;
            return Ok(Event::Connected);
        }
        match packet {
            Packet::Publish(publish) => self.publish_v311(publish, out),
            Packet::PubRel(id) => {
                self.qos2_pending.retain(|pending| *pending != id);
                FixedPacket::PubComp(id).encode(out);
                Ok(Event::Nothing)
            }
            // Acks of what we sent.
            Packet::PubAck(id) | Packet::PubComp(id) => {
                if let Some(at) = self.inflight_position(id) {
                    self.forget_inflight(at);
                }
                Ok(Event::Nothing)
            }
            Packet::PubRec(id) => {
                if let Some(at) = self.inflight_position(id) {
                    self.inflight[at].received = true;
                }
                FixedPacket::PubRel(id).encode(out);
                Ok(Event::Nothing)
            }
            Packet::Subscribe { packet_id, filters } => Ok(Event::Subscribe {
                packet_id,
                filters: filters
                    .into_iter()
                    .map(|(filter, qos)| (filter, SubscriptionOptions::qos(qos)))
                    .collect(),
            }),
            Packet::Unsubscribe { packet_id, filters } => {
                Ok(Event::Unsubscribe { packet_id, filters })
            }
            Packet::PingReq => {
                FixedPacket::PingResp.encode(out);
                Ok(Event::Nothing)
            }
            Packet::Disconnect => {
                // MQTT-3.14.4-3: a clean goodbye discards the will.
                self.will = None;
                Ok(Event::Disconnect)
            }
            Packet::Connect(_) => Err(Violation::SecondConnect),
            other => Err(Violation::ServerOnlyPacket(other.name())),
        }
    }

    /// A 3.1.1 PUBLISH: acknowledged before routing; a QoS 2 one is routed once however
    /// often the client re-sends it before PUBREL.
    fn publish_v311<'a>(
        &mut self,
        publish: Publish<'a>,
        out: &mut Vec<u8>,
    ) -> Result<Event<'a>, Violation> {
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => FixedPacket::PubAck(publish.packet_id).encode(out),
            QoS::ExactlyOnce => {
                FixedPacket::PubRec(publish.packet_id).encode(out);
                if self.qos2_pending.contains(&publish.packet_id) {
                    // A re-sent QoS 2 message already routed: acknowledge only.
                    return Ok(Event::Nothing);
                }
                if self.qos2_pending.len() >= MAX_QOS2_PENDING {
                    return Err(Violation::TooManyQos2);
                }
                self.qos2_pending.push(publish.packet_id);
            }
        }
        Ok(Event::Publish(Incoming::from_v311(publish)))
    }

    /// Appends a message for this client at `qos`; at QoS 1/2 with a fresh packet id, kept
    /// until acknowledged. `false` (nothing appended) when [`MAX_INFLIGHT`] are unacknowledged,
    /// or for a message no valid PUBLISH could have brought in (it does not encode). MQTT 5:
    /// an expired message is skipped (`true`), and past the client's Receive Maximum it
    /// waits its turn.
    pub fn deliver(
        &mut self,
        message: &Arc<Message>,
        qos: QoS,
        retain: bool,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> bool {
        if qos != QoS::AtMostOnce && self.inflight.len() + self.v5.waiting.len() >= MAX_INFLIGHT {
            return false;
        }
        if message.expired(now) {
            return true;
        }
        if self.version == ProtocolVersion::V5
            && qos != QoS::AtMostOnce
            && !self.v5.may_send(self.inflight.len())
        {
            let held = (Arc::clone(message), qos, retain);
            self.v5.waiting.push_back(held);
            return true;
        }
        let packet_id = match qos {
            QoS::AtMostOnce => 0,
            _ => {
                let id = self.next_packet_id;
                self.next_packet_id = id.checked_add(1).unwrap_or(1);
                id
            }
        };
        match self.encode_delivery(message, qos, retain, false, packet_id, out, now) {
            Encoded::Written => {}
            // Never sent, so never acknowledged: it must not hold a Receive Maximum slot.
            Encoded::TooLargeForClient => return true,
            // Only a message no valid PUBLISH brought in (nothing appended).
            Encoded::Invalid => return false,
        }
        if qos != QoS::AtMostOnce {
            self.inflight.push_back(InFlight {
                id: packet_id,
                message: Arc::clone(message),
                qos,
                received: false,
            });
        }
        true
    }

    /// Appends one PUBLISH of `message` in this client's MQTT (MQTT 5: unless too large for it).
    #[allow(clippy::too_many_arguments)]
    fn encode_delivery(
        &self,
        message: &Message,
        qos: QoS,
        retain: bool,
        dup: bool,
        packet_id: u16,
        out: &mut Vec<u8>,
        now: Instant,
    ) -> Encoded {
        if self.version == ProtocolVersion::V5 {
            return self
                .v5
                .encode_publish(message, qos, retain, dup, packet_id, out, now);
        }
        let publish = Publish {
            dup,
            qos,
            retain,
            topic: &message.topic,
            packet_id,
            payload: &message.payload,
        };
        match crate::mqtt::encode_publish_into(&publish, out) {
            Ok(()) => Encoded::Written,
            Err(_) => Encoded::Invalid,
        }
    }

    /// Where an unacknowledged message is (acks mostly come in order: found at the front).
    fn inflight_position(&self, id: u16) -> Option<usize> {
        self.inflight.iter().position(|u| u.id == id)
    }

    /// Hands over what is in flight, for a stored session (the connection is ending).
    pub fn suspend(&mut self) -> Suspended {
        self.resend = Resend::default();
        Suspended {
            inflight: std::mem::take(&mut self.inflight),
            next_packet_id: self.next_packet_id,
            qos2_pending: std::mem::take(&mut self.qos2_pending),
            waiting: std::mem::take(&mut self.v5.waiting),
        }
    }

    /// Appends PUBREL for `id` in this client's MQTT.
    fn put_pubrel(&self, id: u16, out: &mut Vec<u8>) {
        FixedPacket::PubRel(id).encode(out);
    }

    /// Appends CONNACK accepting the connection, with the session-present flag (MQTT 5: and
    /// the broker's limits).
    pub fn put_connack(&self, session_present: bool, out: &mut Vec<u8>) {
        match self.version {
            ProtocolVersion::V311 => put_connack(session_present, out),
            ProtocolVersion::V5 => self.v5.put_connack(session_present, &self.client_id, out),
        }
    }

    /// Appends SUBACK: the granted QoS per filter, `None` for a refused one (0x80; MQTT 5:
    /// 0x97 quota exceeded). Fails only for what no decoded SUBSCRIBE gives.
    pub fn put_suback(
        &self,
        packet_id: u16,
        granted: &[Option<QoS>],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self.version {
            ProtocolVersion::V311 => put_suback(packet_id, granted, out),
            ProtocolVersion::V5 => V5State::put_suback(packet_id, granted, out),
        }
    }

    /// Appends UNSUBACK; MQTT 5 says per filter whether a subscription `existed`.
    pub fn put_unsuback(
        &self,
        packet_id: u16,
        existed: &[bool],
        out: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        match self.version {
            ProtocolVersion::V311 => {
                FixedPacket::UnsubAck(packet_id).encode(out);
                Ok(())
            }
            ProtocolVersion::V5 => V5State::put_unsuback(packet_id, existed, out),
        }
    }
}

/// Appends SUBACK: the granted QoS per filter, `None` for a refused one (0x80). Fails (with
/// `out` untouched) only for what no decoded SUBSCRIBE gives: packet id 0, no filters.
pub fn put_suback(
    packet_id: u16,
    granted: &[Option<QoS>],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let suback = Packet::SubAck {
        packet_id,
        return_codes: granted.to_vec(),
    };
    suback.encode(out)
}

/// Appends CONNACK 0 (accepted), with the session-present flag.
pub fn put_connack(session_present: bool, out: &mut Vec<u8>) {
    FixedPacket::ConnAck {
        session_present,
        code: ConnectReturnCode::Accepted,
    }
    .encode(out);
}

/// Appends a refusing CONNACK (never with a session present).
fn refuse(code: ConnectReturnCode, out: &mut Vec<u8>) {
    FixedPacket::ConnAck {
        session_present: false,
        code,
    }
    .encode(out);
}

/// PUBACK (0x40), PUBREC (0x50), PUBREL (0x62), PUBCOMP (0x70), UNSUBACK (0xB0).
mod resend;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod robustness;
