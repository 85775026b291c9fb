//! The master's forwarded options (`parsed_options` of a spawn message) applied to the worker's
//! own command line: the master configures what the worker's flags left unset.

use std::collections::HashSet;

use super::msgpack::Value;
use super::protocol::Spawn;
use crate::cli::host_url::HostUrl;
use crate::cli::{Cli, PayloadFormatArg, TransportArg};

/// Locustfile custom arguments (argparse dest names) and the mqload option each sets.
pub const FORWARDED: &[(&str, &str)] = &[
    ("mqtt_host", "host"),
    ("mqtt_port", "port"),
    ("mqtt_topic", "topic"),
    ("mqtt_qos", "qos"),
    ("mqtt_payload_kb", "payload_kb"),
    ("mqtt_payload_bytes", "payload_bytes"),
    ("mqtt_payload_format", "payload_format"),
    ("mqtt_throughput", "throughput"),
    ("mqtt_run_id", "run_id"),
    ("mqtt_no_tls", "no_tls"),
    ("mqtt_subscribe_topic", "subscribe_topic"),
    ("mqtt_subscribe_qos", "subscribe_qos"),
];

/// The forwarded options the user gave this worker (clap ids): on its command line, in its
/// environment or in its Locust config files ([`Cli::given`]).
pub fn given_options(cli: &Cli) -> HashSet<String> {
    FORWARDED
        .iter()
        .map(|(_, id)| *id)
        .chain(["stop_timeout"])
        .filter(|id| cli.given.iter().any(|g| g == id))
        .map(str::to_owned)
        .collect()
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Str(s) if !s.is_empty() => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `cli` with what the master forwarded, except where `given` says the worker's own flag wins.
/// Returns one line per forwarded value that could not be used.
pub fn apply(cli: &mut Cli, spawn: &Spawn, given: &HashSet<String>) -> Vec<String> {
    let mut problems = Vec::new();
    let free = |id: &str| !given.contains(id);
    if let Some(host) = spawn.host.as_deref().filter(|h| !h.is_empty())
        && !apply_host_url(cli, host, free)
    {
        problems.push(format!(
            "the master's --host {host:?} is not an MQTT broker (use mqtts://host:8883, mqtt://host:1883 or wss://host/mqtt); ignored"
        ));
    }
    if let Some(t) = spawn.stop_timeout.filter(|t| *t > 0.0 && t.is_finite())
        && free("stop_timeout")
    {
        cli.stop_timeout = format!("{t}");
    }
    for (dest, value) in &spawn.parsed_options {
        let Some(&(_, id)) = FORWARDED.iter().find(|(d, _)| d == dest) else {
            continue;
        };
        let Some(v) = text(value) else { continue };
        if !free(id) {
            continue;
        }
        if !apply_forwarded(cli, id, &v) {
            problems.push(format!(
                "the master's --{} {v:?} is not usable here; ignored",
                dest.replace('_', "-")
            ));
        }
    }
    problems
}

/// The master's `--host` URL: host, port (a scheme's default when absent), TLS and WebSocket,
/// each unless the worker gave its own (`free` false); false when it is not a broker URL.
fn apply_host_url(cli: &mut Cli, host: &str, free: impl Fn(&str) -> bool) -> bool {
    let Ok(url) = HostUrl::parse(host) else {
        return false;
    };
    // A scheme without a port means its default port, as with `-H`.
    let port = url.port.or(url.tls.map(|tls| match (tls, url.websocket) {
        (true, false) => 8883,
        (false, false) => 1883,
        (true, true) => 443,
        (false, true) => 80,
    }));
    if url.websocket && free("transport") {
        cli.transport = TransportArg::Websockets;
        if let Some(path) = url.path.clone().filter(|_| free("ws_path")) {
            cli.ws_path = path;
        }
    }
    if free("host") {
        cli.host = Some(url.host);
    }
    if let Some(port) = port.filter(|_| free("port")) {
        cli.port = port;
    }
    if let Some(tls) = url.tls.filter(|_| free("no_tls")) {
        cli.no_tls = !tls;
    }
    true
}

/// Sets the option `id` (a [`FORWARDED`] id) from the master's value; false when the value
/// does not parse.
fn apply_forwarded(cli: &mut Cli, id: &str, v: &str) -> bool {
    match id {
        "host" => {
            cli.host = Some(v.to_owned());
            true
        }
        "port" => v.parse().map(|p| cli.port = p).is_ok(),
        "topic" => {
            cli.topic = v.to_owned();
            true
        }
        "qos" => v.parse().map(|q| cli.qos = q).is_ok(),
        "payload_kb" => v.parse().map(|n| cli.payload_kb = n).is_ok(),
        "payload_bytes" => v.parse().map(|n| cli.payload_bytes = Some(n)).is_ok(),
        "payload_format" => match v {
            "json" => {
                cli.payload_format = PayloadFormatArg::Json;
                true
            }
            "raw" => {
                cli.payload_format = PayloadFormatArg::Raw;
                true
            }
            _ => false,
        },
        "throughput" => v.parse().map(|t| cli.throughput = t).is_ok(),
        "run_id" => {
            cli.run_id = Some(v.to_owned());
            true
        }
        "no_tls" => v.parse().map(|b| cli.no_tls = b).is_ok(),
        "subscribe_topic" => {
            cli.subscribe_topic = Some(v.to_owned());
            true
        }
        "subscribe_qos" => v.parse().map(|q| cli.subscribe_qos = q).is_ok(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn spawn(options: &[(&str, Value)], host: Option<&str>) -> Spawn {
        Spawn {
            timestamp: 1.0,
            user_classes_count: vec![],
            host: host.map(str::to_owned),
            stop_timeout: Some(2.5),
            parsed_options: options
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn master_options_fill_in_and_worker_flags_win() {
        let mut cli = Cli::parse_from(["mqload", "--worker", "--qos", "2"]);
        let given: HashSet<String> = ["qos".to_owned()].into();
        let s = spawn(
            &[
                ("mqtt_topic", Value::Str("a/{i}".into())),
                ("mqtt_qos", Value::Int(1)),
                ("mqtt_throughput", Value::Float(0.5)),
                ("mqtt_payload_bytes", Value::Int(100)),
                ("mqtt_payload_format", Value::Str("raw".into())),
                ("mqtt_port", Value::Str("not a port".into())),
                ("mqtt_run_id", Value::Nil),
                ("users", Value::Int(100)),
            ],
            Some("mqtts://broker.local:8884"),
        );
        let problems = apply(&mut cli, &s, &given);
        assert_eq!(cli.topic, "a/{i}");
        assert_eq!(cli.qos, 2, "the worker's --qos wins");
        assert_eq!(cli.throughput, 0.5);
        assert_eq!(cli.payload_bytes, Some(100));
        assert_eq!(cli.payload_format, PayloadFormatArg::Raw);
        assert_eq!(cli.host.as_deref(), Some("broker.local"));
        assert_eq!(cli.port, 8884, "from --host; the bad mqtt_port is ignored");
        assert_eq!(cli.stop_timeout, "2.5");
        assert_eq!(cli.run_id, None);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn the_masters_host_reads_as_dash_h_does() {
        let mut cli = Cli::parse_from(["mqload", "--worker"]);
        let problems = apply(
            &mut cli,
            &spawn(&[], Some("mqtt://127.0.0.1")),
            &HashSet::new(),
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            (cli.port, cli.no_tls),
            (1883, true),
            "mqtt:// without a port: 1883"
        );
        let mut cli = Cli::parse_from(["mqload", "--worker", "--host", "127.0.0.2"]);
        let problems = apply(
            &mut cli,
            &spawn(&[], Some("https://example.com")),
            &HashSet::new(),
        );
        assert_eq!(
            problems.len(),
            1,
            "an HTTP host is named, not used: {problems:?}"
        );
        assert_eq!(cli.host.as_deref(), Some("127.0.0.2"));
    }
}
