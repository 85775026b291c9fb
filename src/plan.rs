//! From options to a validated, resolved [`RunPlan`]: every user mistake stops here, with a fix.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::cli::mqtt5::Mqtt5OptionError;
use crate::cli::{Cli, PayloadFormatArg};
pub use crate::duration::{MAX_DURATION, parse_duration};
use crate::mqtt::{self, Publish, QoS};
use crate::net::{self, TlsConfigError, TlsFiles};
use crate::payload::{PayloadFormat, PayloadRecipe};
use crate::scale::{ScaleError, ScalePlan};
use crate::session::{Session, SessionConfig};
use crate::stages::{self, Profile, StagesError};
use crate::stats::RequestKind;

pub mod transport;

pub use transport::{TransportPlanError, WebSocketPlan};

/// Largest packet mqload accepts from a broker (MQTT allows 256 MiB; nobody sends us that).
pub const MAX_INCOMING_PACKET: usize = 1 << 20;
/// File descriptors kept free for the process itself (stdio, epoll, CSV files, ...).
const RESERVED_FDS: u64 = 64;

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

/// Everything a run needs, checked and resolved.
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// Broker addresses (connections spread over them).
    pub addrs: Vec<SocketAddr>,
    /// Host as the user gave it (for reports).
    pub host: String,
    /// TLS configuration and server name; `None` for `--no-tls`.
    pub tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// MQTT over WebSocket: the upgrade each connection sends; `None` for MQTT over TCP.
    pub websocket: Option<WebSocketPlan>,
    /// Number of users.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Run duration; `None` runs until Ctrl-C.
    pub run_time: Option<Duration>,
    /// Worker threads.
    pub threads: usize,
    /// How long to wait for outstanding acks at the end.
    pub stop_timeout: Duration,
    /// TCP + TLS + CONNACK deadline.
    pub connect_timeout: Duration,
    /// Publish QoS.
    pub qos: QoS,
    /// Messages per second per user.
    pub throughput: f64,
    /// Message bodies.
    pub payload: PayloadRecipe,
    /// Client id template.
    pub client_id_template: String,
    /// Topic template.
    pub topic_template: String,
    /// MQTT session settings.
    pub session: SessionConfig,
    /// Run identifier.
    pub run_id: String,
    /// Shortest time between two wakeups of a worker loop.
    pub wake_interval: Duration,
    /// Request names (the stats table rows), indexed by the `NAME_*` constants.
    pub request_names: Vec<String>,
    /// Subscribers and what they check; `None` without `--subscribers`.
    pub subscribe: Option<SubscribePlan>,
    /// Connection scale: source addresses, connect-only, churn, TLS tickets.
    pub scale: ScalePlan,
    /// `--stages`: the load profile (then `users` is its peak); `None` for a constant load.
    pub stages: Option<Profile>,
}

/// Subscriber connections of a run (`--subscribers`, `--subscribe-topic`, `--subscribe-qos`).
#[derive(Debug, Clone)]
pub struct SubscribePlan {
    /// How many; subscriber `j` takes user index `users + j` in the client id template.
    pub subscribers: u64,
    /// Topic filter each subscribes to (`{run_id}` substituted).
    pub filter: String,
    /// Requested QoS.
    pub qos: QoS,
    /// Row of `subscribe:<qos>:<filter>` (SUBACK time, refusals) in `request_names`.
    pub subscribe_name: usize,
    /// Row of `receive:<qos>:<filter>` (due time to arrival) in `request_names`.
    pub receive_name: usize,
    /// SUBSCRIBE options (MQTT 5 no local, retain as published, retain handling).
    pub options: mqtt::v5::SubscriptionOptions,
}

/// Checks the subscriber options; `None` when there are no subscribers.
fn subscribe_options(cli: &Cli) -> Result<Option<(u64, String, QoS)>, PlanError> {
    let filter = match (cli.subscribers, &cli.subscribe_topic) {
        (0, None) => return Ok(None),
        (subscribers, None) | (subscribers @ 0, Some(_)) => {
            return Err(PlanError::SubscribeIncomplete { subscribers });
        }
        (_, Some(filter)) => filter.clone(),
    };
    if cli.worker {
        return Err(PlanError::SubscribersInWorker);
    }
    let qos =
        QoS::from_u8(cli.subscribe_qos).ok_or(PlanError::BadSubscribeQos(cli.subscribe_qos))?;
    Ok(Some((cli.subscribers, filter, qos)))
}

/// The filter with `{run_id}` substituted, checked by encoding its SUBSCRIBE.
fn subscribe_filter(template: &str, run_id: &str, qos: QoS) -> Result<String, PlanError> {
    let filter = template.replace("{run_id}", run_id);
    mqtt::Packet::Subscribe {
        packet_id: 1,
        filters: vec![(filter.as_str(), qos)],
    }
    .encode(&mut Vec::new())
    .map_err(|e| PlanError::BadSubscribeFilter {
        filter: filter.clone(),
        reason: e.to_string(),
    })?;
    if !mqtt::topic::is_valid_filter(&filter) {
        return Err(PlanError::BadSubscribeFilter {
            reason: "a shared subscription is $share/GROUP/FILTER".into(),
            filter,
        });
    }
    Ok(filter)
}

/// Row of `connect` in [`RunPlan::request_names`].
pub const NAME_CONNECT: usize = 0;
/// Row of `disconnect`.
pub const NAME_DISCONNECT: usize = 1;
/// Row of `publish:<qos>:<topic template>`.
pub const NAME_PUBLISH: usize = 2;

/// Most random bytes per message (before base64): far above AWS IoT's 128 KB, and small enough
/// that each thread's random pool stays a few tens of megabytes.
pub const MAX_RANDOM_BYTES: u64 = 4 << 20;
/// Longest wake interval: past this the loop would sleep through its own timers.
const MAX_WAKE_INTERVAL: Duration = Duration::from_millis(100);
/// Rates (messages or users per second) outside this range are mistakes.
const RATE_RANGE: std::ops::RangeInclusive<f64> = 1e-4..=1e7;

fn duration(option: &'static str, value: &str) -> Result<Duration, PlanError> {
    parse_duration(value).ok_or_else(|| PlanError::BadDuration {
        option,
        value: value.to_string(),
    })
}

fn positive(option: &'static str, value: f64) -> Result<f64, PlanError> {
    if RATE_RANGE.contains(&value) {
        Ok(value)
    } else {
        Err(PlanError::BadRate { option, value })
    }
}

/// Every placeholder a template may hold.
const PLACEHOLDERS: [&str; 4] = ["{i}", "{run_id}", "{client_id}", "{rand}"];
/// The client id cannot contain itself.
const CLIENT_ID_PLACEHOLDERS: [&str; 3] = ["{i}", "{run_id}", "{rand}"];

/// Substitutes `{i}`, `{run_id}`, `{client_id}` and `{rand}` (16 random alphanumerics) in a
/// template; any other `{` is kept as it is.
pub fn expand_template(template: &str, index: u64, run_id: &str, client_id: &str) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(placeholder) = PLACEHOLDERS.iter().find(|p| after.starts_with(**p)) else {
            out.push('{');
            rest = &after[1..];
            continue;
        };
        match *placeholder {
            "{i}" => out.push_str(&index.to_string()),
            "{run_id}" => out.push_str(run_id),
            "{client_id}" => out.push_str(client_id),
            _ => out.push_str(&random_alphanumerics(16)),
        }
        rest = &after[placeholder.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether every `{` in `template` opens one of `allowed`.
fn template_ok(template: &str, allowed: &[&str]) -> bool {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let Some(placeholder) = allowed.iter().find(|p| after.starts_with(**p)) else {
            return false;
        };
        rest = &after[placeholder.len()..];
    }
    true
}

fn random_alphanumerics(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

/// Raises the soft open-file limit to the hard one; returns the limit now in force.
pub fn raise_open_file_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
    }
    limit.rlim_cur
}

/// Encodes what the first and the last user would send, so a client id, topic or credential
/// the codec refuses stops the run here instead of failing every connection.
fn check_mqtt_fields(
    cli: &Cli,
    session: &SessionConfig,
    qos: QoS,
    run_id: &str,
) -> Result<(), PlanError> {
    if cli.password.is_some() && session.username.is_none() && session.mqtt5.is_none() {
        return Err(PlanError::InvalidMqtt {
            option: "password",
            reason: "MQTT 3.1.1 sends a password only with a user name; add --username".into(),
        });
    }
    let now = std::time::Instant::now();
    for user in [0, cli.users.saturating_sub(1)] {
        let client_id = expand_template(&cli.client_id, user, run_id, "");
        Session::new(session, &client_id, now).map_err(|e| PlanError::InvalidMqtt {
            option: "client-id",
            reason: e.to_string(),
        })?;
        let topic = expand_template(&cli.topic, user, run_id, &client_id);
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: &topic,
            packet_id: 1,
            payload: &[],
        };
        // The topic rules are the same in MQTT 5, whose properties the options check checked.
        mqtt::encode_publish_into(&publish, &mut Vec::new()).map_err(|e| {
            PlanError::InvalidMqtt {
                option: "topic",
                reason: e.to_string(),
            }
        })?;
    }
    Ok(())
}

/// A broker the run is aimed at instead of `--host`/`--port`/TLS files (the built-in one).
#[derive(Debug, Clone)]
pub struct Target {
    /// Host (an address).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS client configuration; `None` for plain TCP.
    pub tls: Option<Arc<ClientConfig>>,
}

impl RunPlan {
    /// Validates the options and resolves host, TLS files and limits.
    pub fn from_cli(cli: &Cli) -> Result<RunPlan, PlanError> {
        RunPlan::from_cli_with_target(cli, None)
    }

    /// As [`RunPlan::from_cli`], aimed at `target` when given (host, port and TLS options
    /// are then ignored).
    pub fn from_cli_with_target(cli: &Cli, target: Option<&Target>) -> Result<RunPlan, PlanError> {
        if cli.stages.is_some() {
            return staged(cli, target);
        }
        // Subscribers alone (`-u 0`) check what publishers of another process send.
        if cli.users == 0 && cli.subscribers == 0 {
            return Err(PlanError::NoUsers);
        }
        let qos = QoS::from_u8(cli.qos).ok_or(PlanError::BadQos(cli.qos))?;
        let spawn_rate = positive("spawn-rate", cli.spawn_rate)?;
        let throughput = positive("throughput", cli.throughput)?;
        let run_time = cli
            .run_time
            .as_deref()
            .map(|t| duration("run-time", t))
            .transpose()?;
        let stop_timeout = duration("stop-timeout", &cli.stop_timeout)?;
        let keep_alive = duration("keepalive", &cli.keepalive)?;
        let ack_timeout = duration("ack-timeout", &cli.ack_timeout)?;
        let connect_timeout = duration("connect-timeout", &cli.connect_timeout)?;
        let wake_interval = duration("wake-interval", &cli.wake_interval)?;
        if wake_interval > MAX_WAKE_INTERVAL {
            return Err(PlanError::BadWakeInterval(cli.wake_interval.clone()));
        }
        if keep_alive.subsec_nanos() != 0 || keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(PlanError::BadKeepAlive(cli.keepalive.clone()));
        }
        for (option, value) in [
            ("ack-timeout", ack_timeout),
            ("connect-timeout", connect_timeout),
        ] {
            if value.is_zero() {
                return Err(PlanError::ZeroTimeout { option });
            }
        }
        if cli.max_inflight == 0 {
            return Err(PlanError::ZeroInflight);
        }
        let subscribe = subscribe_options(cli)?;
        let subscribers = subscribe.as_ref().map_or(0, |s| s.0);
        if cli.users.saturating_add(subscribers) > 1
            && !cli.client_id.contains("{i}")
            && !cli.client_id.contains("{rand}")
        {
            return Err(PlanError::SharedClientId(cli.client_id.clone()));
        }
        for (option, template, allowed) in [
            ("client-id", &cli.client_id, &CLIENT_ID_PLACEHOLDERS[..]),
            ("topic", &cli.topic, &PLACEHOLDERS[..]),
        ] {
            if !template_ok(template, allowed) {
                return Err(PlanError::BadTemplate {
                    option,
                    template: template.clone(),
                });
            }
        }
        let threads = match cli.processes {
            None | Some(-1) => std::thread::available_parallelism().map_or(1, |n| n.get()),
            Some(n) if n >= 1 => usize::try_from(n).unwrap_or(1),
            Some(n) => return Err(PlanError::BadProcesses(n)),
        };
        let limit = raise_open_file_limit();
        if cli.users.saturating_add(RESERVED_FDS) > limit {
            return Err(PlanError::TooManyUsers {
                users: cli.users,
                limit,
            });
        }
        if cli
            .users
            .saturating_add(subscribers)
            .saturating_add(RESERVED_FDS)
            > limit
        {
            return Err(PlanError::TooManyConnections {
                users: cli.users,
                subscribers,
                limit,
            });
        }
        let tls = if let Some(target) = target {
            target.tls.clone()
        } else if cli.no_tls {
            None
        } else {
            let files = TlsFiles {
                ca: cli.cafile.clone(),
                cert: cli.cert.clone(),
                key: cli.key.clone(),
            };
            let alpn = transport::alpn(cli, cli.port);
            let config = net::client_config(&files, &alpn).map_err(PlanError::Tls)?;
            // Per-device templates: the first and the last connection's files must exist.
            let last = cli.users.saturating_add(subscribers).saturating_sub(1);
            let shared = cli.tls_tickets == crate::cli::TlsTicketsArg::Shared;
            net::tls::check_device_files(&files, 0, last, shared).map_err(PlanError::Tls)?;
            Some(config)
        };
        let (host, port) = match target {
            Some(target) => (target.host.clone(), target.port),
            None => (cli.host.clone().ok_or(PlanError::MissingHost)?, cli.port),
        };
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| PlanError::Unresolvable {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(PlanError::Unresolvable {
                host,
                reason: "no addresses".into(),
            });
        }
        let (mut scale, addrs) = ScalePlan::from_cli(cli, addrs).map_err(PlanError::Scale)?;
        let name_text = match target {
            Some(_) => host.clone(),
            None => cli.server_name.clone().unwrap_or_else(|| host.clone()),
        };
        let now = crate::unix_time::unix_now() as u64;
        let websocket = transport::websocket_plan(cli, &name_text, port, tls.is_some(), now)
            .map_err(PlanError::Transport)?;
        let tls = match tls {
            Some(config) => {
                let config = scale.attach_tickets(config, cli.users);
                let name = ServerName::try_from(name_text.clone())
                    .map_err(|_| PlanError::BadServerName(name_text))?;
                Some((config, name))
            }
            None => None,
        };
        let run_id = cli
            .run_id
            .clone()
            .unwrap_or_else(|| format!("mqload-{}", random_alphanumerics(12)));
        let random_bytes = cli
            .payload_bytes
            .map_or(u64::from(cli.payload_kb) * 1024, |b| b as u64);
        if random_bytes > MAX_RANDOM_BYTES {
            return Err(PlanError::PayloadTooLarge {
                bytes: random_bytes,
            });
        }
        let random_bytes = random_bytes as usize;
        let payload = PayloadRecipe {
            format: match cli.payload_format {
                PayloadFormatArg::Json => PayloadFormat::Json,
                PayloadFormatArg::Raw => PayloadFormat::Raw,
            },
            run_id: run_id.clone(),
            random_bytes,
        };
        let session = SessionConfig {
            keep_alive,
            clean_session: cli.clean_session,
            username: transport::mqtt_username(cli).map_err(PlanError::Transport)?,
            password: cli.password.clone(),
            max_inflight: cli.max_inflight,
            ack_timeout,
            max_packet_size: MAX_INCOMING_PACKET,
            mqtt5: cli.mqtt5.options().map_err(PlanError::Mqtt5)?,
        };
        check_mqtt_fields(cli, &session, qos, &run_id)?;
        let mut request_names = vec![
            RequestKind::Connect.to_string(),
            RequestKind::Disconnect.to_string(),
            RequestKind::Publish.row_name(qos, &cli.topic),
        ];
        let subscribe = match subscribe {
            Some((subscribers, template, qos)) => {
                let filter = subscribe_filter(&template, &run_id, qos)?;
                let options = cli.mqtt5.subscription_options(&filter, qos);
                let options = options.map_err(PlanError::Mqtt5)?;
                let subscribe_name = request_names.len();
                request_names.push(RequestKind::Subscribe.row_name(qos, &template));
                request_names.push(RequestKind::Receive.row_name(qos, &template));
                Some(SubscribePlan {
                    subscribers,
                    filter,
                    qos,
                    subscribe_name,
                    receive_name: subscribe_name + 1,
                    options,
                })
            }
            None => None,
        };
        Ok(RunPlan {
            addrs,
            host,
            tls,
            websocket,
            users: cli.users,
            spawn_rate,
            run_time,
            threads: threads
                .min(usize::try_from(cli.users.saturating_add(subscribers)).unwrap_or(usize::MAX))
                .max(1),
            stop_timeout,
            connect_timeout,
            qos,
            throughput,
            payload,
            client_id_template: cli.client_id.clone(),
            topic_template: cli.topic.clone(),
            session,
            run_id,
            wake_interval,
            request_names,
            subscribe,
            scale,
            stages: None,
        })
    }
}

/// `--stages`: the plan for the profile's peak users, carrying the profile; the run lasts the
/// profile unless `--run-time` says otherwise (shorter cuts it, longer holds its last target).
fn staged(cli: &Cli, target: Option<&Target>) -> Result<RunPlan, PlanError> {
    let text = cli.stages.as_deref().unwrap_or_default();
    let stages = stages::parse(text).map_err(PlanError::Stages)?;
    let given = |id: &str| cli.given.iter().any(|g| g == id);
    let conflicts = [
        (
            given("users"),
            "users",
            "the profile sets the users; drop --users",
        ),
        (
            cli.subscribers > 0,
            "subscribers",
            "a profile runs publishers only; run the subscribers in a second mqload (-u 0 --subscribers N, same --run-id)",
        ),
        (
            cli.reset_stats,
            "reset-stats",
            "a profile has no end of spawning to reset at; drop --reset-stats",
        ),
        (
            cli.worker,
            "worker",
            "a Locust master sets the load of its workers; drop --stages",
        ),
    ];
    if let Some((_, option, fix)) = conflicts.into_iter().find(|c| c.0) {
        return Err(PlanError::StagesConflict { option, fix });
    }
    let spawn_rate = given("spawn_rate").then_some(positive("spawn-rate", cli.spawn_rate)?);
    let throughput = positive("throughput", cli.throughput)?;
    let profile = Profile::new(stages, throughput, spawn_rate);
    let mut peak = cli.clone();
    peak.stages = None;
    peak.users = profile.peak_users();
    let mut plan = RunPlan::from_cli_with_target(&peak, target)?;
    if plan.run_time.is_none() {
        plan.run_time = Some(profile.total());
    }
    plan.stages = Some(profile);
    Ok(plan)
}

impl RunPlan {
    /// How connections reach the broker, for the startup line: `TLS`, `plain TCP`, or the
    /// WebSocket upgrade and its authentication.
    pub fn transport_label(&self) -> String {
        let tls = if self.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        };
        match &self.websocket {
            Some(ws) => format!("{}, {tls}", ws.describe()),
            None => tls.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        assert_eq!(
            expand_template("dev/{i}/{run_id}", 7, "R1", "c"),
            "dev/7/R1"
        );
        assert_eq!(expand_template("t/{client_id}", 0, "R", "cid"), "t/cid");
        let id = expand_template("locust-{rand}", 0, "R", "");
        assert_eq!(id.len(), 23);
        assert!(id[7..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(template_ok("a/{i}/{rand}", &PLACEHOLDERS));
        assert!(!template_ok("a/{user}", &PLACEHOLDERS));
        assert!(!template_ok("id-{client_id}", &CLIENT_ID_PLACEHOLDERS));
        assert_eq!(expand_template("{x}/{i}", 3, "R", ""), "{x}/3");
    }
}
