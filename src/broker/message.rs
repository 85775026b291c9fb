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
    /// User properties, in order.
    pub user: Box<[(Box<str>, Box<str>)]>,
}

impl Extra {
    /// What of `props` travels with the message, received at `now`; `None` when nothing does.
    pub fn from_properties(props: &Properties<'_>, now: Instant) -> Option<Box<Extra>> {
        let user: Box<[(Box<str>, Box<str>)]> = props
            .user
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
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

    /// The PUBLISH properties to send at `now` (expiry as what is left of it), borrowing
    /// `pairs`, which the caller fills with the user properties.
    pub fn properties<'a>(
        &'a self,
        now: Instant,
        pairs: &'a [(&'a str, &'a str)],
    ) -> Properties<'a> {
        let left = self.expires_at.map(|at| {
            u32::try_from(at.saturating_duration_since(now).as_secs()).unwrap_or(u32::MAX)
        });
        Properties {
            message_expiry_interval: left,
            payload_format_indicator: self.payload_format,
            content_type: self.content_type.as_deref(),
            response_topic: self.response_topic.as_deref(),
            correlation_data: self.correlation_data.as_deref(),
            user: UserProperties::List(pairs),
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
