//! What a stats row measures, as a type: reports pick the publish rows by kind, not by
//! parsing their names. The names themselves stay Locust's (`publish:<qos>:<topic>`), built
//! and read here only.

use std::fmt;

use crate::mqtt::QoS;

/// The kind of request a stats row counts; its Locust name starts with [`RequestKind::label`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A connection attempt: TCP, TLS and CONNACK (`connect`).
    Connect,
    /// A clean disconnect (`disconnect`).
    Disconnect,
    /// A message published, timed from its due time to its ack (`publish:<qos>:<topic>`).
    Publish,
    /// A subscription, timed to its SUBACK (`subscribe:<qos>:<filter>`).
    Subscribe,
    /// A message received by a subscriber, timed from its due time (`receive:<qos>:<filter>`).
    Receive,
    /// A name none of the above (a future kind, or a name from elsewhere).
    Other,
}

impl RequestKind {
    /// The first field of the row's name.
    pub fn label(self) -> &'static str {
        match self {
            RequestKind::Connect => "connect",
            RequestKind::Disconnect => "disconnect",
            RequestKind::Publish => "publish",
            RequestKind::Subscribe => "subscribe",
            RequestKind::Receive => "receive",
            RequestKind::Other => "other",
        }
    }

    /// The row name of a per-topic kind: `<label>:<qos>:<topic or filter>`.
    pub fn row_name(self, qos: QoS, topic: &str) -> String {
        format!("{}:{}:{topic}", self.label(), qos as u8)
    }

    /// The kind of a row from its name (once per name, when the name table is built).
    pub fn of_name(name: &str) -> RequestKind {
        let label = name.split(':').next().unwrap_or(name);
        [
            RequestKind::Connect,
            RequestKind::Disconnect,
            RequestKind::Publish,
            RequestKind::Subscribe,
            RequestKind::Receive,
        ]
        .into_iter()
        .find(|kind| kind.label() == label)
        .unwrap_or(RequestKind::Other)
    }
}

impl fmt::Display for RequestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_built_here_read_back_as_their_kind() {
        for kind in [
            RequestKind::Publish,
            RequestKind::Subscribe,
            RequestKind::Receive,
        ] {
            let name = kind.row_name(QoS::AtLeastOnce, "devices/{client_id}/x:y");
            assert_eq!(RequestKind::of_name(&name), kind, "{name}");
        }
        assert_eq!(RequestKind::of_name("connect"), RequestKind::Connect);
        assert_eq!(RequestKind::of_name("disconnect"), RequestKind::Disconnect);
        assert_eq!(
            RequestKind::row_name(RequestKind::Publish, QoS::AtMostOnce, "t"),
            "publish:0:t"
        );
    }

    #[test]
    fn a_topic_that_looks_like_a_kind_does_not_change_the_row_kind() {
        assert_eq!(RequestKind::of_name("publisher"), RequestKind::Other);
        assert_eq!(RequestKind::of_name("connections"), RequestKind::Other);
        assert_eq!(RequestKind::of_name(""), RequestKind::Other);
    }
}
