//! The session's MQTT 5 side: CONNECT with properties, the broker's limits from CONNACK
//! (Receive Maximum caps the in-flight window, Topic Alias Maximum allows aliases), PUBLISH
//! with a topic alias and the run's properties, and reason codes turned into named failures.

use std::sync::Arc;
use std::time::Instant;

use super::{Session, SessionConfig, SessionError};
use crate::mqtt::v5::{
    self, Ack, Packet, Properties, Publish, SubAck, Subscribe, SubscriptionOptions, UserProperties,
};
use crate::mqtt::{Answer, QoS};

/// The run's MQTT 5 options (`--mqtt-version 5` and the flags that go with it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mqtt5Options {
    /// CONNECT Session Expiry Interval, seconds (`--session-expiry`).
    pub session_expiry: Option<u32>,
    /// CONNECT Receive Maximum: QoS 1/2 messages the broker may send us unacknowledged.
    pub receive_maximum: Option<u16>,
    /// CONNECT Maximum Packet Size we accept (default: the session's own limit).
    pub max_packet_size: Option<u32>,
    /// CONNECT Topic Alias Maximum: aliases the broker may use towards us.
    pub topic_alias_maximum: Option<u16>,
    /// PUBLISH Message Expiry Interval, seconds (`--message-expiry`).
    pub message_expiry: Option<u32>,
    /// PUBLISH Content Type (`--content-type`); a template like the topic's.
    pub content_type: Option<String>,
    /// PUBLISH user properties as property bytes of the wire (see
    /// [`Mqtt5Options::with_user_properties`]), so a publish borrows them.
    pub user_properties: Vec<u8>,
    /// The user properties as given (templates like the topic's), for [`Mqtt5Options::for_device`].
    pub user_property_templates: Vec<(String, String)>,
}

impl Mqtt5Options {
    /// Sets the user properties every PUBLISH carries. Fails when a pair cannot be sent
    /// (U+0000, longer than 65,535 bytes).
    pub fn with_user_properties(
        mut self,
        pairs: Vec<(String, String)>,
    ) -> Result<Self, crate::mqtt::EncodeError> {
        self.user_properties = wire_pairs(&pairs)?;
        self.user_property_templates = pairs;
        Ok(self)
    }

    /// These options for one device, with `expand` applied to the content type and the user
    /// properties (the topic's placeholders); `None` when none has a placeholder, so every
    /// device shares the run's options.
    pub fn for_device(&self, expand: impl Fn(&str) -> String) -> Option<Mqtt5Options> {
        let templated = |text: &str| text.contains('{');
        let any = self.content_type.as_deref().is_some_and(templated)
            || self
                .user_property_templates
                .iter()
                .any(|(name, value)| templated(name) || templated(value));
        if !any {
            return None;
        }
        let pairs: Vec<(String, String)> = self
            .user_property_templates
            .iter()
            .map(|(name, value)| (expand(name), expand(value)))
            .collect();
        let personal = Mqtt5Options {
            content_type: self.content_type.as_deref().map(&expand),
            ..self.clone()
        };
        // An expansion MQTT cannot send (the plan checked the templates) keeps the run's.
        personal.with_user_properties(pairs).ok()
    }
}

fn wire_pairs(pairs: &[(String, String)]) -> Result<Vec<u8>, crate::mqtt::EncodeError> {
    let borrowed: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    UserProperties::to_wire(&borrowed)
}

/// What an MQTT 5 session keeps beyond the 3.1.1 one.
#[derive(Debug)]
pub(super) struct V5State {
    options: Arc<Mqtt5Options>,
    /// The broker's Topic Alias Maximum (0: no aliases towards it).
    alias_max: u16,
    /// The topic bound to alias 1 on this connection (empty: none yet).
    alias_topic: String,
    /// The broker's Maximum Packet Size from CONNACK (`usize::MAX`: no limit given).
    broker_max_packet: usize,
    /// Bytes of the properties every PUBLISH carries, with a topic alias (the most they
    /// take), worked out once so the size check per publish is arithmetic.
    publish_properties_len: usize,
}

/// Queues the MQTT 5 CONNECT and returns the session's MQTT 5 state.
pub(super) fn connect(
    config: &SessionConfig,
    options: &Arc<Mqtt5Options>,
    client_id: &str,
    out: &mut Vec<u8>,
) -> Result<Box<V5State>, SessionError> {
    let max_packet = options
        .max_packet_size
        .unwrap_or(u32::try_from(config.max_packet_size).unwrap_or(u32::MAX));
    // Without --session-expiry, a persistent session (clean session off) lives as in 3.1.1:
    // the broker keeps it (0xFFFFFFFF: never expires); a clean one ends with the connection.
    let session_expiry = options
        .session_expiry
        .or((!config.clean_session).then_some(u32::MAX));
    let properties = Properties {
        session_expiry_interval: session_expiry,
        receive_maximum: options.receive_maximum,
        maximum_packet_size: Some(max_packet),
        topic_alias_maximum: options.topic_alias_maximum,
        ..Properties::default()
    };
    Packet::Connect(v5::Connect {
        client_id,
        keep_alive: config.keep_alive.as_secs().min(u64::from(u16::MAX)) as u16,
        clean_start: config.clean_session,
        username: config.username.as_deref(),
        password: config.password.as_deref().map(str::as_bytes),
        will: None,
        properties,
    })
    .encode(out)
    .map_err(SessionError::Encode)?;
    let mut state = V5State {
        options: Arc::clone(options),
        alias_max: 0,
        alias_topic: String::new(),
        broker_max_packet: usize::MAX,
        publish_properties_len: 0,
    };
    state.publish_properties_len = state.publish_properties(Some(1)).wire_len_unchecked();
    Ok(Box::new(state))
}

/// Queues an MQTT 5 SUBSCRIBE to one filter.
pub(super) fn subscribe(
    packet_id: u16,
    filter: &str,
    options: SubscriptionOptions,
    out: &mut Vec<u8>,
) -> Result<(), SessionError> {
    Packet::Subscribe(Subscribe {
        packet_id,
        properties: Properties::default(),
        filters: vec![(filter, options)],
    })
    .encode(out)
    .map_err(SessionError::Encode)
}

impl V5State {
    /// The largest packet we accept: what we announced, within the session's own limit.
    pub(super) fn max_incoming(&self, session_max: usize) -> usize {
        self.options
            .max_packet_size
            .map_or(session_max, |max| session_max.min(max as usize))
    }

    /// Refuses a PUBLISH the broker's Maximum Packet Size forbids, before a packet id is
    /// taken. Its size is bounded from above (full topic, no alias), so no encoding is needed.
    pub(super) fn check_size(
        &self,
        topic_len: usize,
        payload_len: usize,
    ) -> Result<(), SessionError> {
        if self.broker_max_packet == usize::MAX {
            return Ok(());
        }
        let remaining =
            (2 + topic_len + 2 + self.publish_properties_len).saturating_add(payload_len);
        match remaining.saturating_add(5) <= self.broker_max_packet {
            true => Ok(()),
            false => Err(SessionError::OverBrokerMaximum),
        }
    }

    /// The properties every PUBLISH carries, with `alias` when given.
    fn publish_properties(&self, alias: Option<u16>) -> Properties<'_> {
        Properties {
            message_expiry_interval: self.options.message_expiry,
            content_type: self.options.content_type.as_deref(),
            user: UserProperties::Wire(&self.options.user_properties),
            topic_alias: alias,
            ..Properties::default()
        }
    }

    /// Queues a PUBLISH: the first to a topic binds alias 1 (when the broker allows aliases),
    /// the next ones to it send the alias and an empty topic.
    pub(super) fn publish(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        packet_id: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        let (wire_topic, alias) = if self.alias_max == 0 {
            (topic, None)
        } else if self.alias_topic == topic {
            ("", Some(1))
        } else if self.alias_topic.is_empty() {
            (topic, Some(1))
        } else {
            (topic, None)
        };
        self.encode_publish(wire_topic, alias, payload, qos, packet_id, out)?;
        if alias.is_some() && self.alias_topic.is_empty() {
            self.alias_topic.push_str(topic);
        }
        Ok(())
    }

    /// The PUBLISH as a later connection would resend it: full topic, no alias.
    pub(super) fn encode_copy(
        &self,
        topic: &str,
        payload: &[u8],
        qos: QoS,
        packet_id: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        self.encode_publish(topic, None, payload, qos, packet_id, out)
    }

    /// Appends a PUBLISH to `topic` (empty with an alias set before) with the run's properties.
    fn encode_publish(
        &self,
        topic: &str,
        alias: Option<u16>,
        payload: &[u8],
        qos: QoS,
        packet_id: u16,
        out: &mut Vec<u8>,
    ) -> Result<(), SessionError> {
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic,
            packet_id,
            properties: self.publish_properties(alias),
            payload,
        };
        v5::encode_publish_into(&publish, out).map_err(SessionError::Encode)
    }
}

impl Session {
    /// Handles one MQTT 5 packet from the broker.
    pub(super) fn handle_packet_v5(
        &mut self,
        packet: Packet<'_>,
        now: Instant,
    ) -> Result<(), SessionError> {
        match packet {
            Packet::ConnAck(connack) => {
                if self.state != super::State::AwaitingConnAck {
                    return Err(SessionError::Unexpected("second CONNACK"));
                }
                if connack.reason.is_error() {
                    self.state = super::State::Closed;
                    return Err(SessionError::RefusedV5(connack.reason));
                }
                if let Some(receive_maximum) = connack.properties.receive_maximum {
                    self.max_inflight = self.max_inflight.min(usize::from(receive_maximum));
                }
                if let Some(state) = self.v5.as_mut() {
                    state.alias_max = connack.properties.topic_alias_maximum.unwrap_or(0);
                    if let Some(max) = connack.properties.maximum_packet_size {
                        state.broker_max_packet = max as usize;
                    }
                }
                self.on_connack(connack.session_present, now);
            }
            _ if self.state == super::State::AwaitingConnAck => {
                return Err(SessionError::Unexpected("packet before CONNACK"));
            }
            Packet::PubAck(ack) => self.on_ack(ack, QoS::AtLeastOnce, Answer::PubAck, now)?,
            Packet::PubRec(ack) if ack.reason.is_error() => {
                self.on_ack(ack, QoS::ExactlyOnce, Answer::PubRec, now)?;
            }
            Packet::PubRec(ack) => self.on_pubrec(ack.packet_id)?,
            Packet::PubComp(ack) => self.on_ack(ack, QoS::ExactlyOnce, Answer::PubComp, now)?,
            Packet::Publish(p) => {
                let announced = self
                    .v5
                    .as_ref()
                    .and_then(|state| state.options.topic_alias_maximum)
                    .unwrap_or(0);
                if p.properties
                    .topic_alias
                    .is_some_and(|alias| alias > announced)
                {
                    return Err(SessionError::Unexpected("topic alias above our maximum"));
                }
                self.on_publish(p.qos, p.packet_id, p.payload, now);
            }
            Packet::PubRel(ack) => self.on_pubrel(ack.packet_id),
            Packet::PingResp => self.ping_sent = None,
            Packet::SubAck(SubAck {
                packet_id, reasons, ..
            }) => {
                let first = reasons.first().copied();
                let granted = first.and_then(|reason| QoS::from_u8(reason.code()));
                let refusal = first.filter(|reason| reason.is_error());
                self.on_suback(packet_id, granted, refusal, now)?;
            }
            Packet::UnsubAck(_) => {}
            Packet::Disconnect(disconnect) => {
                self.state = super::State::Closed;
                return Err(SessionError::ServerDisconnect(disconnect.reason));
            }
            Packet::Auth(_) => return Err(SessionError::Unexpected("AUTH")),
            Packet::Connect(_) => return Err(SessionError::Unexpected("CONNECT")),
            Packet::Subscribe(_) => return Err(SessionError::Unexpected("SUBSCRIBE")),
            Packet::Unsubscribe(_) => return Err(SessionError::Unexpected("UNSUBSCRIBE")),
            Packet::PingReq => return Err(SessionError::Unexpected("PINGREQ")),
        }
        Ok(())
    }

    /// PUBACK, failing PUBREC or PUBCOMP: the publish is done, acknowledged or refused.
    fn on_ack(
        &mut self,
        ack: Ack<'_>,
        qos: QoS,
        answer: Answer,
        now: Instant,
    ) -> Result<(), SessionError> {
        let rejected = ack
            .reason
            .is_error()
            .then(|| ack.reason.failure_text(answer));
        self.finish(ack.packet_id, qos, now, rejected)
    }
}
