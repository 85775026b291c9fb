//! The MQTT 5 side of a server session, sans IO: CONNECT with properties, PUBLISH with topic
//! aliases, acks with reason codes, the client's Receive Maximum on deliveries, session
//! expiry, and a DISCONNECT with a reason before the broker closes a connection. The state
//! and the answers it writes live in `v5_state`.

use std::time::{Duration, Instant};

use super::session::{Event, MAX_QOS2_PENDING, ServerSession, Violation, Will};
use super::v5_state::{Incoming, put_ack, put_connack, put_disconnect, reason_for};
use crate::mqtt::v5::{self, Packet, Properties, ReasonCode};
use crate::mqtt::{ProtocolVersion, QoS};

impl ServerSession {
    /// Handles one decoded MQTT 5 packet; replies go to `out`. On a violation after CONNECT,
    /// a DISCONNECT with its reason code is written first.
    pub fn on_packet_v5<'a>(
        &mut self,
        packet: Packet<'a>,
        out: &mut Vec<u8>,
    ) -> Result<Event<'a>, Violation> {
        let connected = self.is_connected();
        let result = self.handle_v5(packet, out);
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
                self.acknowledged(ack.packet_id);
                Ok(Event::Nothing)
            }
            Packet::PubRec(ack) if ack.reason as u8 >= 0x80 => {
                // Refused: the exchange ends here (MQTT-4.3.3).
                self.acknowledged(ack.packet_id);
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
            QoS::AtLeastOnce => {}
            QoS::ExactlyOnce => {
                if self.qos2_pending.contains(&publish.packet_id) {
                    put_ack(Packet::PubRec, publish.packet_id, ReasonCode::Success, out);
                    return Ok(Event::Nothing);
                }
                if self.qos2_pending.len() >= MAX_QOS2_PENDING {
                    return Err(Violation::ReceiveMaximumExceeded);
                }
                self.qos2_pending.push(publish.packet_id);
            }
        }
        let acked = publish.qos != QoS::AtMostOnce;
        Ok(Event::Publish(Incoming {
            topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties: Some(publish.properties),
            ack_after_routing: acked.then_some(publish.packet_id),
        }))
    }

    /// An outbound QoS 1/2 exchange ended: frees its place. What the Receive Maximum held
    /// back goes out through [`ServerSession::release_held`], as the connection has room.
    fn acknowledged(&mut self, id: u16) {
        if let Some(at) = self.inflight.iter().position(|s| s.id == id) {
            self.forget_inflight(at);
        }
    }

    /// Whether a delivery the Receive Maximum held back may go out now.
    pub fn may_release_held(&self) -> bool {
        !self.v5.waiting.is_empty() && self.v5.may_send(self.inflight.len())
    }

    /// Sends the oldest delivery the Receive Maximum held back, if its turn has come;
    /// `false` when none may go.
    pub fn release_held(&mut self, out: &mut Vec<u8>, now: Instant) -> bool {
        if !self.v5.may_send(self.inflight.len()) {
            return false;
        }
        let Some((message, qos, retain)) = self.v5.waiting.pop_front() else {
            return false;
        };
        self.deliver(&message, qos, retain, out, now);
        true
    }
}

#[cfg(test)]
mod tests;
