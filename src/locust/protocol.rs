//! Locust's master/worker messages: `[type, data, node_id]` in msgpack, both directions.
//!
//! Field names and types are Locust 2.4x's (`runners.py` `WorkerRunner`/`MasterRunner`).

use std::fmt;

use super::msgpack::{self, Encoder, MsgpackError, Value};

/// Worker states as the master's heartbeat handler stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerState {
    /// Connected, no users (Locust's `STATE_INIT`).
    Ready,
    /// Applying a spawn message.
    Spawning,
    /// Users running.
    Running,
    /// Users stopping.
    Stopping,
}

impl WorkerState {
    /// The spelling the master compares with.
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Ready => "ready",
            WorkerState::Spawning => "spawning",
            WorkerState::Running => "running",
            WorkerState::Stopping => "stopping",
        }
    }
}

/// One whole message, `[kind, data, node_id]`; `data` is written by `write_data`.
pub fn encode(kind: &str, node_id: &str, write_data: impl FnOnce(&mut Encoder)) -> Vec<u8> {
    let mut e = Encoder::new();
    e.array(3);
    e.str(kind);
    write_data(&mut e);
    e.str(node_id);
    e.buf
}

/// `client_ready` with data -1 (the master then skips its version check).
pub fn client_ready(node_id: &str) -> Vec<u8> {
    encode("client_ready", node_id, |e| e.int(-1))
}

/// A message whose data is nil: `spawning`, `client_stopped`, `quit`.
pub fn bare(kind: &str, node_id: &str) -> Vec<u8> {
    encode(kind, node_id, Encoder::nil)
}

/// `heartbeat {state, current_cpu_usage, current_memory_usage}`.
pub fn heartbeat(node_id: &str, state: WorkerState, cpu_percent: f64, rss_bytes: u64) -> Vec<u8> {
    encode("heartbeat", node_id, |e| {
        e.map(3);
        e.str("state");
        e.str(state.as_str());
        e.str("current_cpu_usage");
        e.float(cpu_percent);
        e.str("current_memory_usage");
        e.uint(rss_bytes);
    })
}

/// Writes `{class: count, ...}`.
pub fn write_class_counts(e: &mut Encoder, classes: &[(String, u64)]) {
    e.map(classes.len());
    for (name, n) in classes {
        e.str(name);
        e.uint(*n);
    }
}

/// Users over all classes (saturating: the counts come from the network).
pub fn total_users(classes: &[(String, u64)]) -> u64 {
    classes
        .iter()
        .fold(0u64, |sum, (_, n)| sum.saturating_add(*n))
}

/// `spawning_complete {user_classes_count, user_count}`.
pub fn spawning_complete(node_id: &str, classes: &[(String, u64)]) -> Vec<u8> {
    encode("spawning_complete", node_id, |e| {
        e.map(2);
        e.str("user_classes_count");
        write_class_counts(e, classes);
        e.str("user_count");
        e.uint(total_users(classes));
    })
}

/// `exception {msg, traceback}`: shown in the master's exceptions table.
pub fn exception(node_id: &str, msg: &str, traceback: &str) -> Vec<u8> {
    encode("exception", node_id, |e| {
        e.map(2);
        e.str("msg");
        e.str(msg);
        e.str("traceback");
        e.str(traceback);
    })
}

/// A `spawn` order: the worker's absolute target per user class.
#[derive(Debug, Clone, PartialEq)]
pub struct Spawn {
    /// The master's clock when it sent this; older or equal ones are ignored.
    pub timestamp: f64,
    /// Users per class, absolute.
    pub user_classes_count: Vec<(String, u64)>,
    /// The master's `--host`, when given.
    pub host: Option<String>,
    /// The master's `--stop-timeout` in seconds, when given.
    pub stop_timeout: Option<f64>,
    /// Every option of the master (custom arguments included), by argparse dest name.
    pub parsed_options: Vec<(String, Value)>,
}

/// What the master sends a worker.
#[derive(Debug, Clone, PartialEq)]
pub enum MasterMsg {
    /// Our `client_ready` was accepted.
    Ack {
        /// The worker's index among the master's workers.
        index: Option<u64>,
    },
    /// New user targets.
    Spawn(Spawn),
    /// The master is alive (a reply to our heartbeat).
    Heartbeat,
    /// Stop the users; stay connected.
    Stop,
    /// Stop and exit.
    Quit,
    /// Close the connection and connect again.
    Reconnect,
    /// The whole ramp-up finished.
    SpawningComplete,
    /// Anything else (`update_user_class`, custom messages): ignored.
    Other(String),
}

/// A message from the master that is not what Locust sends.
#[derive(Debug, Clone, PartialEq)]
pub enum ProtocolError {
    /// Not msgpack.
    Msgpack(MsgpackError),
    /// Not an array `[str, any, str]`.
    NotAMessage,
    /// A field is missing or has the wrong type.
    BadField {
        /// Message type.
        kind: &'static str,
        /// Field name.
        field: &'static str,
    },
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::Msgpack(e) => write!(f, "message from the master is not msgpack: {e}"),
            ProtocolError::NotAMessage => {
                f.write_str("message from the master is not [type, data, node_id]")
            }
            ProtocolError::BadField { kind, field } => {
                write!(
                    f,
                    "{kind} message from the master has a bad or missing {field:?}"
                )
            }
        }
    }
}

impl std::error::Error for ProtocolError {}

/// Decodes one message from the master.
pub fn decode_master(bytes: &[u8]) -> Result<MasterMsg, ProtocolError> {
    let value = msgpack::decode(bytes).map_err(ProtocolError::Msgpack)?;
    let Value::Array(mut items) = value else {
        return Err(ProtocolError::NotAMessage);
    };
    if items.len() != 3 || items[0].as_str().is_none() {
        return Err(ProtocolError::NotAMessage);
    }
    let data = std::mem::replace(&mut items[1], Value::Nil);
    Ok(match items[0].as_str().unwrap_or_default() {
        "ack" => MasterMsg::Ack {
            index: data.get("index").and_then(Value::as_u64),
        },
        "spawn" => MasterMsg::Spawn(decode_spawn(data)?),
        "heartbeat" => MasterMsg::Heartbeat,
        "stop" => MasterMsg::Stop,
        "quit" => MasterMsg::Quit,
        "reconnect" => MasterMsg::Reconnect,
        "spawning_complete" => MasterMsg::SpawningComplete,
        other => MasterMsg::Other(other.to_owned()),
    })
}

fn decode_spawn(data: Value) -> Result<Spawn, ProtocolError> {
    let bad = |field| ProtocolError::BadField {
        kind: "spawn",
        field,
    };
    let timestamp = data
        .get("timestamp")
        .and_then(Value::as_f64)
        .ok_or(bad("timestamp"))?;
    let Some(Value::Map(classes)) = data.get("user_classes_count") else {
        return Err(bad("user_classes_count"));
    };
    let user_classes_count = classes
        .iter()
        .map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_u64()?)))
        .collect::<Option<Vec<_>>>()
        .ok_or(bad("user_classes_count"))?;
    let host = data
        .get("host")
        .and_then(Value::as_str)
        .filter(|h| !h.is_empty())
        .map(str::to_owned);
    let stop_timeout = data.get("stop_timeout").and_then(Value::as_f64);
    let parsed_options = match data.get("parsed_options") {
        Some(Value::Map(pairs)) => pairs
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.clone())))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Spawn {
        timestamp,
        user_classes_count,
        host,
        stop_timeout,
        parsed_options,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(kind: &str, data: Value) -> Vec<u8> {
        let mut e = Encoder::new();
        e.value(&Value::Array(vec![
            Value::Str(kind.into()),
            data,
            Value::Str("w_1".into()),
        ]));
        e.buf
    }

    fn s(text: &str) -> Value {
        Value::Str(text.into())
    }

    #[test]
    fn master_messages_decode() {
        let ack = master("ack", Value::Map(vec![(s("index"), Value::Int(3))]));
        assert_eq!(decode_master(&ack), Ok(MasterMsg::Ack { index: Some(3) }));
        let spawn = master(
            "spawn",
            Value::Map(vec![
                (s("timestamp"), Value::Float(1.7e9)),
                (
                    s("user_classes_count"),
                    Value::Map(vec![(s("MqttPublisher"), Value::Int(50))]),
                ),
                (s("host"), Value::Nil),
                (s("stop_timeout"), Value::Nil),
                (
                    s("parsed_options"),
                    Value::Map(vec![(s("mqtt_qos"), Value::Int(1))]),
                ),
            ]),
        );
        let Ok(MasterMsg::Spawn(spawn)) = decode_master(&spawn) else {
            panic!("spawn");
        };
        assert_eq!(spawn.user_classes_count, vec![("MqttPublisher".into(), 50)]);
        assert_eq!(spawn.host, None);
        assert_eq!(
            spawn.parsed_options,
            vec![("mqtt_qos".into(), Value::Int(1))]
        );
        for (kind, want) in [
            ("heartbeat", MasterMsg::Heartbeat),
            ("stop", MasterMsg::Stop),
            ("quit", MasterMsg::Quit),
            ("reconnect", MasterMsg::Reconnect),
            (
                "update_user_class",
                MasterMsg::Other("update_user_class".into()),
            ),
        ] {
            assert_eq!(decode_master(&master(kind, Value::Nil)), Ok(want));
        }
    }

    #[test]
    fn malformed_master_messages_are_errors() {
        assert!(matches!(
            decode_master(b"\xc1"),
            Err(ProtocolError::Msgpack(_))
        ));
        assert_eq!(
            decode_master(b"\x92\xa1a\xc0"),
            Err(ProtocolError::NotAMessage)
        );
        assert_eq!(
            decode_master(&master("spawn", Value::Nil)),
            Err(ProtocolError::BadField {
                kind: "spawn",
                field: "timestamp"
            })
        );
        let negative = master(
            "spawn",
            Value::Map(vec![
                (s("timestamp"), Value::Int(1)),
                (
                    s("user_classes_count"),
                    Value::Map(vec![(s("A"), Value::Int(-5))]),
                ),
            ]),
        );
        assert!(decode_master(&negative).is_err());
    }
}
