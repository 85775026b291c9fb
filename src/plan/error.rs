//! [`PlanError`]: each configuration mistake and the one line that names its fix.

use std::fmt;

use super::{MAX_RANDOM_BYTES, RESERVED_FDS};
use crate::cli::mqtt5::Mqtt5OptionError;
use crate::net::TlsConfigError;
use crate::scale::ScaleError;
use crate::stages::StagesError;

use super::transport::TransportPlanError;

/// A configuration mistake; each names the fix. The process exits with code 2.
#[derive(Debug)]
pub enum PlanError {
    /// No broker host was given.
    MissingHost,
    /// The broker host does not resolve.
    Unresolvable {
        /// Host as given.
        host: String,
        /// Resolver's reason.
        reason: String,
    },
    /// `--users 0`.
    NoUsers,
    /// QoS other than 0, 1, 2.
    BadQos(u8),
    /// A duration that is not Locust syntax.
    BadDuration {
        /// Which option.
        option: &'static str,
        /// Value given.
        value: String,
    },
    /// A rate that is zero, negative or not a number.
    BadRate {
        /// Which option.
        option: &'static str,
        /// Value given.
        value: f64,
    },
    /// More users than open files allow.
    TooManyUsers {
        /// Users asked for.
        users: u64,
        /// The hard open-file limit.
        limit: u64,
    },
    /// A connection-scale option (`--bind`, `--connection-lifetime`) is wrong.
    Scale(ScaleError),
    /// TLS files missing, unreadable or inconsistent.
    Tls(TlsConfigError),
    /// `--server-name` (or the host) is not a valid TLS server name.
    BadServerName(String),
    /// `--processes 0` or below -1.
    BadProcesses(i64),
    /// A template names a placeholder mqload does not know.
    BadTemplate {
        /// Which option.
        option: &'static str,
        /// The template.
        template: String,
    },
    /// More random bytes per message than mqload builds.
    PayloadTooLarge {
        /// Bytes asked for.
        bytes: u64,
    },
    /// A keep alive MQTT cannot carry (whole seconds, 0 to 65,535).
    BadKeepAlive(String),
    /// A timeout of zero, which would fail every attempt at once.
    ZeroTimeout {
        /// Which option.
        option: &'static str,
    },
    /// A wake interval so long that the loop would sleep through its own deadlines.
    BadWakeInterval(String),
    /// `--max-inflight 0`: no QoS 1/2 publish could ever go out.
    ZeroInflight,
    /// Several users would share one client id, and the broker would keep disconnecting them.
    SharedClientId(String),
    /// `--subscribers N` without `--subscribe-topic`, or a filter without subscribers.
    SubscribeIncomplete {
        /// Subscribers asked for.
        subscribers: u64,
    },
    /// A `--subscribe-topic` MQTT does not accept as a filter.
    BadSubscribeFilter {
        /// The filter.
        filter: String,
        /// The encoder's reason.
        reason: String,
    },
    /// `--subscribe-qos` other than 0, 1, 2.
    BadSubscribeQos(u8),
    /// `--subscribers` with `--worker`: a Locust master sets the users, not the subscribers.
    SubscribersInWorker,
    /// Users plus subscribers need more sockets than open files allow.
    TooManyConnections {
        /// Publishing users.
        users: u64,
        /// Subscribers.
        subscribers: u64,
        /// The hard open-file limit.
        limit: u64,
    },
    /// `--stages` is not a profile.
    Stages(StagesError),
    /// `--stages` with an option it replaces or cannot run with.
    StagesConflict {
        /// The other option.
        option: &'static str,
        /// Why, and what to do.
        fix: &'static str,
    },
    /// An MQTT 5 option that is wrong or given without `--mqtt-version 5`.
    Mqtt5(Mqtt5OptionError),
    /// `--transport`, `--aws-sigv4` or a custom authorizer's options cannot work.
    Transport(TransportPlanError),
    /// A client id, topic or credential the MQTT encoder refuses (bad characters, too long, ...).
    InvalidMqtt {
        /// Which option.
        option: &'static str,
        /// The encoder's reason.
        reason: String,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::MissingHost => {
                f.write_str("no broker host: give --host or set LOCUST_MQTT_HOST")
            }
            PlanError::Unresolvable { host, reason } => write!(
                f,
                "cannot resolve broker host {host:?} ({reason}); check --host / LOCUST_MQTT_HOST"
            ),
            PlanError::NoUsers => f.write_str("--users is 0: give at least 1 user (-u 10)"),
            PlanError::BadQos(q) => write!(
                f,
                "--qos {q} is not an MQTT QoS: use 0, 1 or 2 (LOCUST_MQTT_QOS)"
            ),
            PlanError::BadDuration { option, value } => write!(
                f,
                "--{option} {value:?} is not a duration: use Locust's form, e.g. 30s, 10m, 1h30m"
            ),
            PlanError::BadRate { option, value } => {
                write!(
                    f,
                    "--{option} {value} must be a number from 0.0001 to 10000000, e.g. 1 or 0.5"
                )
            }
            PlanError::TooManyUsers { users, limit } => write!(
                f,
                "{users} users need {} open files ({users} sockets + {RESERVED_FDS} for mqload itself) but the open-file limit is {limit} (the hard limit, `ulimit -Hn`): lower --users, raise the hard limit (as root: `ulimit -Hn 100000`, or LimitNOFILE= / limits.conf), or split the users over more mqload processes or hosts",
                users.saturating_add(RESERVED_FDS)
            ),
            PlanError::Scale(e) => write!(f, "{e}"),
            PlanError::Tls(e) => write!(f, "{e}"),
            PlanError::BadServerName(name) => {
                write!(
                    f,
                    "{name:?} is not a valid TLS server name: fix --server-name or --host"
                )
            }
            PlanError::BadProcesses(n) => {
                write!(
                    f,
                    "--processes {n}: give a thread count of 1 or more, or -1 for one per CPU"
                )
            }
            PlanError::BadTemplate { option, template } => write!(
                f,
                "--{option} {template:?} has an unknown placeholder: use {{i}}, {{run_id}}, {{rand}}, and in --topic also {{client_id}}"
            ),
            PlanError::PayloadTooLarge { bytes } => write!(
                f,
                "{bytes} random bytes per message is more than mqload builds ({MAX_RANDOM_BYTES}); lower --payload-kb / --payload-bytes (AWS IoT takes at most 128 KB)"
            ),
            PlanError::BadKeepAlive(value) => write!(
                f,
                "--keepalive {value}: MQTT carries whole seconds from 0 (off) to 65535, e.g. 60s"
            ),
            PlanError::ZeroTimeout { option } => {
                write!(f, "--{option} 0 would fail every attempt at once: give e.g. 30s")
            }
            PlanError::BadWakeInterval(value) => write!(
                f,
                "--wake-interval {value} is too long: give 0ms to 100ms (default 1ms)"
            ),
            PlanError::ZeroInflight => f.write_str(
                "--max-inflight 0 would never let a QoS 1/2 publish out: give 1 or more (AWS IoT allows 100)",
            ),
            PlanError::SharedClientId(template) => write!(
                f,
                "--client-id {template:?} gives every user the same id, so the broker would keep disconnecting them: add {{i}} or {{rand}}"
            ),
            PlanError::SubscribeIncomplete { subscribers: 0 } => f.write_str(
                "--subscribe-topic without subscribers: add --subscribers N (e.g. --subscribers 1)",
            ),
            PlanError::SubscribeIncomplete { subscribers } => write!(
                f,
                "--subscribers {subscribers} needs a topic filter: add --subscribe-topic, e.g. 'locust/#'"
            ),
            PlanError::BadSubscribeFilter { filter, reason } => write!(
                f,
                "--subscribe-topic {filter:?} is not an MQTT topic filter ({reason}): `+` takes a whole level, `#` only the last, e.g. 'locust/+/data' or 'locust/#'"
            ),
            PlanError::SubscribersInWorker => f.write_str(
                "--subscribers does not run in a Locust worker (--worker): run them in a separate mqload: -u 0 --subscribers N with the workers' --run-id",
            ),
            PlanError::BadSubscribeQos(q) => write!(
                f,
                "--subscribe-qos {q} is not an MQTT QoS: use 0, 1 or 2 (MQLOAD_SUBSCRIBE_QOS)"
            ),
            PlanError::TooManyConnections {
                users,
                subscribers,
                limit,
            } => write!(
                f,
                "{users} users and {subscribers} subscribers need {} sockets but the open-file limit is {limit}: lower --users or --subscribers, raise `ulimit -Hn`, or run more mqload processes",
                users.saturating_add(*subscribers)
            ),
            PlanError::Stages(e) => write!(f, "{e}"),
            PlanError::StagesConflict { option, fix } => {
                write!(f, "--stages with --{option}: {fix}")
            }
            PlanError::Mqtt5(e) => e.fmt(f),
            PlanError::Transport(e) => write!(f, "{e}"),
            PlanError::InvalidMqtt { option, reason } => {
                write!(f, "--{option} cannot be sent over MQTT ({reason}): fix --{option}")
            }
        }
    }
}

impl std::error::Error for PlanError {}
