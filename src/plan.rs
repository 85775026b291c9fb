//! From options to a validated, resolved [`RunPlan`]: every user mistake stops here, with a fix.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ClientConfig;
use rustls_pki_types::ServerName;

use crate::cli::{Cli, PayloadFormatArg};
pub use crate::duration::{MAX_DURATION, parse_duration};
use crate::mqtt::{self, Publish, QoS};
use crate::payload::{PayloadFormat, PayloadRecipe};
use crate::scale::ScalePlan;
use crate::session::{Session, SessionConfig};
use crate::stages::Profile;
use crate::stats::RequestKind;

mod connect;
mod error;
mod staged;
mod subscribe;
mod template;
pub mod transport;

use connect::{connection_layers, resolve, tls_client_config};
pub use error::PlanError;
use staged::staged;
pub use subscribe::SubscribePlan;
use subscribe::{subscribe_options, subscribe_plan};
pub use template::expand_template;
use template::{CLIENT_ID_PLACEHOLDERS, PLACEHOLDERS, random_alphanumerics, template_ok};
pub use transport::{TransportPlanError, WebSocketPlan};

/// Largest packet mqload accepts from a broker (MQTT allows 256 MiB; nobody sends us that).
pub const MAX_INCOMING_PACKET: usize = 1 << 20;
/// File descriptors kept free for the process itself (stdio, epoll, CSV files, ...).
const RESERVED_FDS: u64 = 64;

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
        let timings = Timings::from_cli(cli)?;
        if cli.max_inflight == 0 {
            return Err(PlanError::ZeroInflight);
        }
        let subscribe = subscribe_options(cli)?;
        let subscribers = subscribe.as_ref().map_or(0, |s| s.0);
        check_templates(cli, subscribers)?;
        let threads = thread_count(cli)?;
        check_open_files(cli, subscribers)?;
        let tls = tls_client_config(cli, target, subscribers)?;
        let (host, port) = match target {
            Some(target) => (target.host.clone(), target.port),
            None => (cli.host.clone().ok_or(PlanError::MissingHost)?, cli.port),
        };
        let addrs = resolve(&host, port)?;
        let (mut scale, addrs) = ScalePlan::from_cli(cli, addrs).map_err(PlanError::Scale)?;
        let (tls, websocket) = connection_layers(cli, target, (&host, port), tls, &mut scale)?;
        let run_id = cli
            .run_id
            .clone()
            .unwrap_or_else(|| format!("mqload-{}", random_alphanumerics(12)));
        let payload = payload_recipe(cli, &run_id)?;
        let session = session_config(cli, &timings)?;
        check_mqtt_fields(cli, &session, qos, &run_id)?;
        let mut request_names = vec![
            RequestKind::Connect.to_string(),
            RequestKind::Disconnect.to_string(),
            RequestKind::Publish.row_name(qos, &cli.topic),
        ];
        let subscribe = subscribe
            .map(|options| subscribe_plan(cli, options, &run_id, &mut request_names))
            .transpose()?;
        Ok(RunPlan {
            addrs,
            host,
            tls,
            websocket,
            users: cli.users,
            spawn_rate,
            run_time: timings.run_time,
            threads: threads
                .min(usize::try_from(cli.users.saturating_add(subscribers)).unwrap_or(usize::MAX))
                .max(1),
            stop_timeout: timings.stop_timeout,
            connect_timeout: timings.connect_timeout,
            qos,
            throughput,
            payload,
            client_id_template: cli.client_id.clone(),
            topic_template: cli.topic.clone(),
            session,
            run_id,
            wake_interval: timings.wake_interval,
            request_names,
            subscribe,
            scale,
            stages: None,
        })
    }
}

/// The run's durations and timeouts, each checked.
struct Timings {
    run_time: Option<Duration>,
    stop_timeout: Duration,
    keep_alive: Duration,
    ack_timeout: Duration,
    connect_timeout: Duration,
    wake_interval: Duration,
}

impl Timings {
    /// Parses every duration option and refuses those a run cannot use.
    fn from_cli(cli: &Cli) -> Result<Timings, PlanError> {
        let run_time = cli
            .run_time
            .as_deref()
            .map(|t| duration("run-time", t))
            .transpose()?;
        let timings = Timings {
            run_time,
            stop_timeout: duration("stop-timeout", &cli.stop_timeout)?,
            keep_alive: duration("keepalive", &cli.keepalive)?,
            ack_timeout: duration("ack-timeout", &cli.ack_timeout)?,
            connect_timeout: duration("connect-timeout", &cli.connect_timeout)?,
            wake_interval: duration("wake-interval", &cli.wake_interval)?,
        };
        if timings.wake_interval > MAX_WAKE_INTERVAL {
            return Err(PlanError::BadWakeInterval(cli.wake_interval.clone()));
        }
        let keep_alive = timings.keep_alive;
        if keep_alive.subsec_nanos() != 0 || keep_alive.as_secs() > u64::from(u16::MAX) {
            return Err(PlanError::BadKeepAlive(cli.keepalive.clone()));
        }
        for (option, value) in [
            ("ack-timeout", timings.ack_timeout),
            ("connect-timeout", timings.connect_timeout),
        ] {
            if value.is_zero() {
                return Err(PlanError::ZeroTimeout { option });
            }
        }
        Ok(timings)
    }
}

/// Refuses a client id shared by several connections and unknown template placeholders.
fn check_templates(cli: &Cli, subscribers: u64) -> Result<(), PlanError> {
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
    Ok(())
}

/// Worker threads `--processes` asks for (`-1` or absent: one per CPU).
fn thread_count(cli: &Cli) -> Result<usize, PlanError> {
    match cli.processes {
        None | Some(-1) => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
        Some(n) if n >= 1 => Ok(usize::try_from(n).unwrap_or(1)),
        Some(n) => Err(PlanError::BadProcesses(n)),
    }
}

/// Raises the open-file limit and checks that users and subscribers fit under it.
fn check_open_files(cli: &Cli, subscribers: u64) -> Result<(), PlanError> {
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
    Ok(())
}

/// Message bodies from `--payload-format`, `--payload-kb` / `--payload-bytes`.
fn payload_recipe(cli: &Cli, run_id: &str) -> Result<PayloadRecipe, PlanError> {
    let random_bytes = cli
        .payload_bytes
        .map_or(u64::from(cli.payload_kb) * 1024, |b| b as u64);
    if random_bytes > MAX_RANDOM_BYTES {
        return Err(PlanError::PayloadTooLarge {
            bytes: random_bytes,
        });
    }
    Ok(PayloadRecipe {
        format: match cli.payload_format {
            PayloadFormatArg::Json => PayloadFormat::Json,
            PayloadFormatArg::Raw => PayloadFormat::Raw,
        },
        run_id: run_id.to_owned(),
        random_bytes: random_bytes as usize,
    })
}

/// The MQTT session settings every connection shares.
fn session_config(cli: &Cli, timings: &Timings) -> Result<SessionConfig, PlanError> {
    Ok(SessionConfig {
        keep_alive: timings.keep_alive,
        clean_session: cli.clean_session,
        username: transport::mqtt_username(cli).map_err(PlanError::Transport)?,
        password: cli.password.clone(),
        max_inflight: cli.max_inflight,
        ack_timeout: timings.ack_timeout,
        max_packet_size: MAX_INCOMING_PACKET,
        mqtt5: cli.mqtt5.options().map_err(PlanError::Mqtt5)?,
    })
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
