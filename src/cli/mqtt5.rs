//! The MQTT 5 options (`--mqtt-version 5` and what only MQTT 5 can carry), and their check.

use std::fmt;
use std::sync::Arc;

use clap::Args;

use crate::duration::parse_duration;
use crate::mqtt::v5::{RetainHandling, SubscriptionOptions};
use crate::mqtt::{EncodeError, ProtocolVersion, QoS, topic};
use crate::session::Mqtt5Options;

/// MQTT version and MQTT 5 properties; flattened into [`super::Cli`].
#[derive(Debug, Clone, Default, Args)]
pub struct Mqtt5Args {
    /// MQTT version the clients speak: `3.1.1` or `5`.
    #[arg(
        long,
        env = "MQLOAD_MQTT_VERSION",
        default_value = "3.1.1",
        help_heading = "MQTT"
    )]
    pub mqtt_version: String,
    /// MQTT 5: CONNECT Session Expiry Interval (`0`, `300`, `1h`): how long the broker keeps
    /// the session after the connection ends.
    #[arg(long, env = "MQLOAD_SESSION_EXPIRY", help_heading = "MQTT")]
    pub session_expiry: Option<String>,
    /// MQTT 5: CONNECT Receive Maximum (1..65535): QoS 1/2 messages the broker may send a
    /// client unacknowledged.
    #[arg(long, env = "MQLOAD_RECEIVE_MAXIMUM", help_heading = "MQTT")]
    pub receive_maximum: Option<u16>,
    /// MQTT 5: CONNECT Maximum Packet Size (bytes) the clients accept.
    #[arg(long, env = "MQLOAD_MAX_PACKET_SIZE", help_heading = "MQTT")]
    pub max_packet_size: Option<u32>,
    /// MQTT 5: CONNECT Topic Alias Maximum: topic aliases the broker may use towards a client.
    #[arg(long, env = "MQLOAD_TOPIC_ALIAS_MAXIMUM", help_heading = "MQTT")]
    pub topic_alias_maximum: Option<u16>,
    /// MQTT 5: Message Expiry Interval of every PUBLISH (`30`, `5m`).
    #[arg(long, env = "MQLOAD_MESSAGE_EXPIRY", help_heading = "MQTT")]
    pub message_expiry: Option<String>,
    /// MQTT 5: Content Type of every PUBLISH (`application/json`).
    #[arg(long, env = "MQLOAD_CONTENT_TYPE", help_heading = "MQTT")]
    pub content_type: Option<String>,
    /// MQTT 5: a user property `NAME=VALUE` on every PUBLISH (repeatable).
    #[arg(
        long,
        env = "MQLOAD_USER_PROPERTY",
        value_delimiter = ',',
        help_heading = "MQTT"
    )]
    pub user_property: Vec<String>,
    /// MQTT 5 subscribers: No Local (the broker does not send a client its own messages).
    #[arg(long, env = "MQLOAD_NO_LOCAL", value_parser = super::parse_switch, num_args = 0..=1, default_missing_value = "true", help_heading = "MQTT")]
    pub no_local: Option<bool>,
    /// MQTT 5 subscribers: Retain As Published (forwarded messages keep their retain flag).
    #[arg(long, env = "MQLOAD_RETAIN_AS_PUBLISHED", value_parser = super::parse_switch, num_args = 0..=1, default_missing_value = "true", help_heading = "MQTT")]
    pub retain_as_published: Option<bool>,
    /// MQTT 5 subscribers: Retain Handling: 0 send retained messages on subscribe, 1 only for
    /// a new subscription, 2 never.
    #[arg(long, env = "MQLOAD_RETAIN_HANDLING", help_heading = "MQTT")]
    pub retain_handling: Option<u8>,
}

/// Why the MQTT version or an MQTT 5 option cannot be used; `Display` names the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mqtt5OptionError {
    /// `--mqtt-version` names a version mqload does not speak.
    UnknownVersion(String),
    /// An MQTT 5 option given without `--mqtt-version 5` (the option's name).
    NeedsMqtt5(&'static str),
    /// `--receive-maximum 0`, which MQTT 5 forbids.
    ZeroReceiveMaximum,
    /// `--max-packet-size 0`, which MQTT 5 forbids.
    ZeroMaxPacketSize,
    /// A `--user-property` without `=`.
    UserPropertyWithoutValue(String),
    /// A `--user-property` MQTT cannot carry (U+0000, longer than 65,535 bytes).
    UserPropertyNotEncodable(EncodeError),
    /// A duration option that is not a duration of whole seconds that fits four bytes.
    BadDuration {
        /// The option, without `--`.
        option: &'static str,
        /// What was given.
        given: String,
    },
    /// `--retain-handling` other than 0, 1 or 2.
    BadRetainHandling(u8),
    /// `--no-local` on a shared subscription, a protocol error.
    NoLocalOnSharedSubscription,
}

impl fmt::Display for Mqtt5OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mqtt5OptionError::UnknownVersion(given) => write!(
                f,
                "--mqtt-version {given} is not a version mqload speaks: use 3.1.1 or 5"
            ),
            Mqtt5OptionError::NeedsMqtt5(option) => {
                write!(f, "--{option} is an MQTT 5 property: add --mqtt-version 5")
            }
            Mqtt5OptionError::ZeroReceiveMaximum => {
                f.write_str("--receive-maximum 0 is not allowed: give 1 to 65535")
            }
            Mqtt5OptionError::ZeroMaxPacketSize => {
                f.write_str("--max-packet-size 0 is not allowed: give a size in bytes")
            }
            Mqtt5OptionError::UserPropertyWithoutValue(pair) => {
                write!(f, "--user-property {pair}: write it as NAME=VALUE")
            }
            Mqtt5OptionError::UserPropertyNotEncodable(e) => {
                write!(f, "--user-property cannot be sent over MQTT ({e}): fix it")
            }
            Mqtt5OptionError::BadDuration { option, given } => {
                write!(
                    f,
                    "--{option} {given} is not a duration: write 300, 30s or 1h"
                )
            }
            Mqtt5OptionError::BadRetainHandling(given) => write!(
                f,
                "--retain-handling {given} is not a retain handling: give 0, 1 or 2"
            ),
            Mqtt5OptionError::NoLocalOnSharedSubscription => f.write_str(
                "--no-local is a protocol error on a shared subscription ($share/...): drop one",
            ),
        }
    }
}

impl std::error::Error for Mqtt5OptionError {}

impl Mqtt5Args {
    /// The MQTT 5 options, `None` for MQTT 3.1.1.
    pub fn options(&self) -> Result<Option<Arc<Mqtt5Options>>, Mqtt5OptionError> {
        let version = ProtocolVersion::parse(&self.mqtt_version)
            .ok_or_else(|| Mqtt5OptionError::UnknownVersion(self.mqtt_version.clone()))?;
        if version == ProtocolVersion::V311 {
            return match self.first_v5_only_option() {
                Some(option) => Err(Mqtt5OptionError::NeedsMqtt5(option)),
                None => Ok(None),
            };
        }
        if self.receive_maximum == Some(0) {
            return Err(Mqtt5OptionError::ZeroReceiveMaximum);
        }
        if self.max_packet_size == Some(0) {
            return Err(Mqtt5OptionError::ZeroMaxPacketSize);
        }
        let pairs = self
            .user_property
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((name, value)) => Ok((name.to_owned(), value.to_owned())),
                None => Err(Mqtt5OptionError::UserPropertyWithoutValue(pair.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = Mqtt5Options {
            session_expiry: seconds("session-expiry", self.session_expiry.as_deref())?,
            receive_maximum: self.receive_maximum,
            max_packet_size: self.max_packet_size,
            topic_alias_maximum: self.topic_alias_maximum,
            message_expiry: seconds("message-expiry", self.message_expiry.as_deref())?,
            content_type: self.content_type.clone(),
            ..Mqtt5Options::default()
        };
        let options = options
            .with_user_properties(pairs)
            .map_err(Mqtt5OptionError::UserPropertyNotEncodable)?;
        Ok(Some(Arc::new(options)))
    }

    fn first_v5_only_option(&self) -> Option<&'static str> {
        [
            ("session-expiry", self.session_expiry.is_some()),
            ("receive-maximum", self.receive_maximum.is_some()),
            ("max-packet-size", self.max_packet_size.is_some()),
            ("topic-alias-maximum", self.topic_alias_maximum.is_some()),
            ("message-expiry", self.message_expiry.is_some()),
            ("content-type", self.content_type.is_some()),
            ("user-property", !self.user_property.is_empty()),
            ("no-local", self.no_local.is_some()),
            ("retain-as-published", self.retain_as_published.is_some()),
            ("retain-handling", self.retain_handling.is_some()),
        ]
        .into_iter()
        .find_map(|(option, given)| given.then_some(option))
    }
}

impl Mqtt5Args {
    /// The subscribers' SUBSCRIBE options for `filter` at `qos` (under 3.1.1 only the QoS is
    /// sent; [`Mqtt5Args::options`] refuses the MQTT 5 ones there).
    pub fn subscription_options(
        &self,
        filter: &str,
        qos: QoS,
    ) -> Result<SubscriptionOptions, Mqtt5OptionError> {
        let retain_handling = match self.retain_handling.unwrap_or(0) {
            0 => RetainHandling::SendAtSubscribe,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            other => return Err(Mqtt5OptionError::BadRetainHandling(other)),
        };
        let no_local = self.no_local.unwrap_or(false);
        if no_local && topic::shared_parts(filter).is_some() {
            return Err(Mqtt5OptionError::NoLocalOnSharedSubscription);
        }
        Ok(SubscriptionOptions {
            qos,
            no_local,
            retain_as_published: self.retain_as_published.unwrap_or(false),
            retain_handling,
        })
    }
}

/// A duration option as whole seconds (MQTT 5 intervals are four-byte seconds).
fn seconds(option: &'static str, text: Option<&str>) -> Result<Option<u32>, Mqtt5OptionError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let secs = parse_duration(text)
        .and_then(|d| u32::try_from(d.as_secs()).ok())
        .ok_or_else(|| Mqtt5OptionError::BadDuration {
            option,
            given: text.to_owned(),
        })?;
    Ok(Some(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(version: &str) -> Mqtt5Args {
        Mqtt5Args {
            mqtt_version: version.into(),
            ..Mqtt5Args::default()
        }
    }

    #[test]
    fn version_selects_and_v5_options_need_it() {
        assert_eq!(args("3.1.1").options(), Ok(None));
        let five = args("5").options().expect("valid").expect("MQTT 5");
        assert_eq!(*five, Mqtt5Options::default());
        let bad = args("4.0").options().unwrap_err().to_string();
        assert!(bad.contains("use 3.1.1 or 5"), "{bad}");
        let mut v311 = args("3.1.1");
        v311.session_expiry = Some("60".into());
        assert_eq!(
            v311.options().unwrap_err().to_string(),
            "--session-expiry is an MQTT 5 property: add --mqtt-version 5"
        );
    }

    #[test]
    fn options_are_checked_and_converted() {
        let mut five = args("5");
        five.session_expiry = Some("1h".into());
        five.message_expiry = Some("30s".into());
        five.receive_maximum = Some(10);
        five.user_property = vec!["site=lab".into(), "k=".into()];
        let options = five.options().expect("valid").expect("MQTT 5");
        assert_eq!(options.session_expiry, Some(3600));
        assert_eq!(options.message_expiry, Some(30));
        let wire = crate::mqtt::v5::UserProperties::Wire(&options.user_properties);
        assert_eq!(
            wire.iter().collect::<Vec<_>>(),
            [("site", "lab"), ("k", "")]
        );
        five.user_property = vec!["novalue".into()];
        assert!(
            five.options()
                .unwrap_err()
                .to_string()
                .contains("NAME=VALUE")
        );
        five.user_property.clear();
        five.receive_maximum = Some(0);
        assert!(
            five.options()
                .unwrap_err()
                .to_string()
                .contains("1 to 65535")
        );
    }

    #[test]
    fn subscription_options_are_checked() {
        let mut five = args("5");
        five.no_local = Some(true);
        five.retain_handling = Some(2);
        let options = five
            .subscription_options("a/#", QoS::AtLeastOnce)
            .expect("valid");
        assert!(options.no_local);
        assert_eq!(options.retain_handling, RetainHandling::DoNotSend);
        let shared = five.subscription_options("$share/g/a/#", QoS::AtLeastOnce);
        assert!(
            shared
                .unwrap_err()
                .to_string()
                .contains("shared subscription")
        );
        five.retain_handling = Some(3);
        assert!(five.subscription_options("a", QoS::AtMostOnce).is_err());
        let mut v311 = args("3.1.1");
        v311.no_local = Some(false);
        assert!(
            v311.options()
                .unwrap_err()
                .to_string()
                .contains("--no-local")
        );
    }
}
