//! A published message as the broker holds it: one copy shared by every subscriber it goes to.
//! Its own file so the hub (routing) and the session (delivery) both use it without
//! importing each other.

use std::time::Instant;

use crate::mqtt::QoS;
use crate::mqtt::v5::{Properties, UserProperties};

/// A message on its way to subscribers (shared by all of them).
#[derive(Debug)]
pub struct Message {
    /// Topic name.
    pub topic: Box<str>,
    /// Payload.
    pub payload: Box<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
    /// What an MQTT 5 publisher attached (forwarded to MQTT 5 subscribers); `None` for a
    /// plain message, so a 3.1.1 publish allocates nothing more.
    pub extra: Option<Box<Extra>>,
}

/// The MQTT 5 properties a broker forwards with a message (section 3.3.2.3), owned.
#[derive(Debug, Default)]
pub struct Extra {
    /// When the message expires (from its Message Expiry Interval), if ever.
    pub expires_at: Option<Instant>,
    /// Payload Format Indicator.
    pub payload_format: Option<u8>,
    /// Content Type.
    pub content_type: Option<Box<str>>,
    /// Response Topic.
    pub response_topic: Option<Box<str>>,
    /// Correlation Data.
    pub correlation_data: Option<Box<[u8]>>,
    /// User properties, in order, as property bytes (checked when decoded), so a delivery
    /// sends them as they are.
    pub user: Box<[u8]>,
}

impl Extra {
    /// What of `props` travels with the message, received at `now`; `None` when nothing does.
    pub fn from_properties(props: &Properties<'_>, now: Instant) -> Option<Box<Extra>> {
        // Decoded properties always re-encode; were they not, the message goes on without.
        let user = props.user.to_owned_wire().unwrap_or_default();
        let nothing = props.message_expiry_interval.is_none()
            && props.payload_format_indicator.is_none()
            && props.content_type.is_none()
            && props.response_topic.is_none()
            && props.correlation_data.is_none()
            && user.is_empty();
        if nothing {
            return None;
        }
        let expiry = props.message_expiry_interval;
        Some(Box::new(Extra {
            expires_at: expiry.map(|s| now + std::time::Duration::from_secs(u64::from(s))),
            payload_format: props.payload_format_indicator,
            content_type: props.content_type.map(Into::into),
            response_topic: props.response_topic.map(Into::into),
            correlation_data: props.correlation_data.map(Into::into),
            user,
        }))
    }

    /// Whether it has expired by `now`.
    pub fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }

    /// The PUBLISH properties to send at `now` (expiry as what is left of it).
    pub fn properties(&self, now: Instant) -> Properties<'_> {
        let left = self.expires_at.map(|at| {
            u32::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
        });
        Properties {
            message_expiry_interval: left,
            payload_format_indicator: self.payload_format,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            user: UserProperties::Wire(&self.user),
            ..Properties::default()
        }
    }
}

impl Message {
    /// Whether the message expired by `now` (MQTT 5 Message Expiry Interval).
    pub fn expired(&self, now: Instant) -> bool {
        self.extra.as_ref().is_some_and(|extra| extra.expired(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mqtt::v5::{self, Packet, Publish};

    #[test]
    fn user_properties_are_kept_as_their_wire_entries_and_forwarded_in_order() {
        let pairs = [("site", "lab"), ("k", ""), ("site", "two")];
        let sent = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: "t",
            packet_id: 0,
            properties: Properties {
                content_type: Some("text/plain"),
                user: UserProperties::List(&pairs),
                ..Properties::default()
            },
            payload: b"p",
        };
        let mut bytes = Vec::new();
        Packet::Publish(sent).encode(&mut bytes).expect("encode");
        let Some((Packet::Publish(received), _)) = v5::decode(&bytes, 1 << 16).expect("decode")
        else {
            panic!("not a PUBLISH");
        };
        let now = Instant::now();
        let extra = Extra::from_properties(&received.properties, now).expect("properties kept");
        let forwarded = extra.properties(now);
        assert_eq!(forwarded.user.iter().collect::<Vec<_>>(), pairs);
        assert_eq!(forwarded.content_type, Some("text/plain"));
        // Only the user property entries are kept: 3 ids, 3 names, 3 values.
        let expected: usize = pairs
            .iter()
            .map(|(k, v)| 1 + 2 + k.len() + 2 + v.len())
            .sum();
        assert_eq!(extra.user.len(), expected);
        let mut again = Vec::new();
        let publish = Publish {
            properties: forwarded,
            ..received
        };
        Packet::Publish(publish)
            .encode(&mut again)
            .expect("re-encode");
        assert_eq!(again, bytes, "forwarded byte for byte");
    }
}
