//! The command line: every Locust and `LOCUST_MQTT_*` option of the Python tool, plus mqload's own.
//!
//! Parsing only; `plan.rs` validates and resolves. Every option also reads its environment
//! variable, so the seed's `export LOCUST_MQTT_...` lines keep working unchanged, and Locust's
//! config files (see `load`).

pub mod config_file;
pub mod host_url;
pub mod load;
pub mod locust_flags;
pub mod mqtt5;
pub mod pki;

use std::path::PathBuf;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};

pub use load::{LoadError, load};

/// A switch's value in the environment, as Locust reads it: `true yes on 1` or
/// `false no off 0`, any case.
pub fn parse_switch(text: &str) -> Result<bool, String> {
    locust_flags::switch_value(text)
        .ok_or_else(|| "use true, false, yes, no, on, off, 1 or 0 (as Locust)".to_owned())
}

/// Load-test an MQTT broker (AWS IoT Core or any other) with thousands of TLS clients, MQTT 3.1.1 or 5.
#[derive(Debug, Clone, Parser)]
#[command(name = "mqload", version, about, long_about = None)]
pub struct Cli {
    /// A subcommand instead of a load test (`mqload broker`).
    #[command(subcommand)]
    pub command: Option<Command>,

    // --- the seed's LOCUST_MQTT_* variables ---
    /// PEM file of the CA that signed the broker's certificate (default: the webpki roots).
    #[arg(long, env = "LOCUST_MQTT_CAFILE", help_heading = "Broker and TLS")]
    pub cafile: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (AWS IoT requires one); with `{i}`, a template
    /// giving each device its own (`certs/device-{i}.pem.crt`), loaded at its connect.
    #[arg(long, env = "LOCUST_MQTT_CERT", help_heading = "Broker and TLS")]
    pub cert: Option<PathBuf>,
    /// PEM private key of the client certificate; with `{i}`, each device's own.
    #[arg(long, env = "LOCUST_MQTT_KEY", help_heading = "Broker and TLS")]
    pub key: Option<PathBuf>,
    /// Broker: `mqtts://host:8883` (TLS), `mqtt://host:1883` (plain TCP), `host:port` or
    /// `host`; also read from LOCUST_HOST, which beats LOCUST_MQTT_HOST.
    #[arg(
        short = 'H',
        long,
        env = "LOCUST_MQTT_HOST",
        help_heading = "Broker and TLS"
    )]
    pub host: Option<String>,
    /// Broker port.
    #[arg(
        long,
        env = "LOCUST_MQTT_PORT",
        default_value_t = 8883,
        help_heading = "Broker and TLS"
    )]
    pub port: u16,
    /// Topic template; `{i}` user index, `{run_id}`, `{client_id}` are substituted.
    #[arg(
        long,
        env = "LOCUST_MQTT_TOPIC",
        default_value = "locust/test/topic",
        help_heading = "Messages"
    )]
    pub topic: String,
    /// Quality of service of every publish: 0, 1 or 2.
    #[arg(
        long,
        env = "LOCUST_MQTT_QOS",
        default_value_t = 0,
        help_heading = "Messages"
    )]
    pub qos: u8,
    /// KiB of random data in each message (the seed's `random_5KiB_data`).
    #[arg(
        long = "payload-kb",
        env = "LOCUST_MQTT_RANDOM_DATA_KB_SIZE",
        default_value_t = 5,
        help_heading = "Messages"
    )]
    pub payload_kb: u32,
    /// Bytes of random data in each message; overrides --payload-kb (for bodies under 1 KiB).
    #[arg(long, env = "MQLOAD_PAYLOAD_BYTES", help_heading = "Messages")]
    pub payload_bytes: Option<usize>,
    /// Messages per second per client (fractions allowed, e.g. 0.5).
    #[arg(
        long,
        env = "LOCUST_MQTT_CONSTANT_THROUGHPUT",
        default_value_t = 1.0,
        help_heading = "Messages"
    )]
    pub throughput: f64,
    /// Identifier written into every message (generated when absent).
    #[arg(long, env = "LOCUST_MQTT_RUN_ID", help_heading = "Messages")]
    pub run_id: Option<String>,
    /// Body format: the seed's JSON document, or raw random bytes.
    #[arg(long, value_enum, env = "MQLOAD_PAYLOAD_FORMAT", default_value_t = PayloadFormatArg::Json, help_heading = "Messages")]
    pub payload_format: PayloadFormatArg,

    // --- Locust's own options ---
    /// Number of simulated devices (one MQTT connection each).
    #[arg(
        short = 'u',
        long,
        env = "LOCUST_USERS",
        default_value_t = 1,
        help_heading = "Locust"
    )]
    pub users: u64,
    /// Users started per second.
    #[arg(
        short = 'r',
        long,
        env = "LOCUST_SPAWN_RATE",
        default_value_t = 1.0,
        help_heading = "Locust"
    )]
    pub spawn_rate: f64,
    /// Stop after this long (`30s`, `10m`, `1h30m`); without it, run until Ctrl-C.
    #[arg(short = 't', long, env = "LOCUST_RUN_TIME", help_heading = "Locust")]
    pub run_time: Option<String>,
    /// Worker threads (Locust's processes); -1 or absent: one per CPU.
    #[arg(
        long,
        env = "LOCUST_PROCESSES",
        allow_negative_numbers = true,
        help_heading = "Locust"
    )]
    pub processes: Option<i64>,
    /// Accepted for compatibility: mqload is always headless.
    #[arg(long, env = "LOCUST_HEADLESS", value_parser = parse_switch, help_heading = "Locust")]
    pub headless: bool,
    /// On stop, wait this long for outstanding acks before disconnecting (`5s`, `1m`; a bare
    /// number is seconds).
    #[arg(
        short = 's',
        long,
        env = "LOCUST_STOP_TIMEOUT",
        default_value = "5s",
        help_heading = "Locust"
    )]
    pub stop_timeout: String,
    /// Write Locust's CSV files PREFIX_stats.csv, _stats_history.csv, _failures.csv, _exceptions.csv.
    #[arg(long, env = "LOCUST_CSV", help_heading = "Locust")]
    pub csv: Option<PathBuf>,
    /// Also write a row per request name to PREFIX_stats_history.csv (Locust's meaning).
    #[arg(long, env = "LOCUST_CSV_FULL_HISTORY", value_parser = parse_switch, help_heading = "Locust")]
    pub csv_full_history: bool,
    /// Print only the final summary, not a table every 2 s.
    #[arg(long, env = "LOCUST_ONLY_SUMMARY", value_parser = parse_switch, help_heading = "Locust")]
    pub only_summary: bool,
    /// Exit code when any request failed or subscribers missed messages.
    #[arg(
        long,
        env = "LOCUST_EXIT_CODE_ON_ERROR",
        default_value_t = 1,
        help_heading = "Locust"
    )]
    pub exit_code_on_error: i32,
    /// Accepted so existing scripts run unchanged; mqload ignores the locustfile.
    #[arg(short = 'f', long, env = "LOCUST_LOCUSTFILE", help_heading = "Locust")]
    pub locustfile: Option<String>,
    /// Read options from this Locust config file (`key = value`; `.toml`: its [tool.locust]),
    /// after ~/.locust.conf, ./locust.conf and ./pyproject.toml; the environment and the
    /// command line override files.
    #[arg(long, help_heading = "Locust")]
    pub config: Option<PathBuf>,
    /// Locust's log level (DEBUG, INFO, WARNING, ERROR, CRITICAL): checked, but mqload's
    /// stderr lines have no levels.
    #[arg(short = 'L', long, env = "LOCUST_LOGLEVEL", default_value = "INFO", ignore_case = true,
          value_parser = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], help_heading = "Locust")]
    pub loglevel: String,
    /// Write everything mqload prints on stderr to this file (appended) instead.
    #[arg(long, env = "LOCUST_LOGFILE", help_heading = "Locust")]
    pub logfile: Option<PathBuf>,
    /// Forget the request statistics once the last user has started (Locust: once spawning
    /// completes), so the report covers the steady state only.
    #[arg(long, env = "LOCUST_RESET_STATS", value_parser = parse_switch, help_heading = "Locust")]
    pub reset_stats: bool,
    /// Accepted and ignored: mqload always prints the table every 2 s (unless --only-summary).
    #[arg(long, env = "LOCUST_PRINT_STATS", value_parser = parse_switch, help_heading = "Locust")]
    pub print_stats: bool,
    /// Accepted and ignored: mqload has no Python logging to set up.
    #[arg(long, alias = "skip-log", env = "LOCUST_SKIP_LOG_SETUP", value_parser = parse_switch, help_heading = "Locust")]
    pub skip_log_setup: bool,
    /// Accepted and ignored: it only labels runs for Locust's own dashboards.
    #[arg(long, help_heading = "Locust")]
    pub profile: Option<String>,
    // (--csv-full-history goes here)
    /// Options the user set (clap ids), on the command line, in the environment or in a
    /// config file; filled by [`load`].
    #[arg(skip)]
    pub given: Vec<String>,

    // --- MQTT and TLS ---
    /// Client id template: `{i}`, `{run_id}`, and `{rand}` (16 random alphanumerics).
    #[arg(
        long,
        env = "MQLOAD_CLIENT_ID",
        default_value = "locust-{rand}",
        help_heading = "MQTT"
    )]
    pub client_id: String,
    /// MQTT keep alive (`60s`).
    #[arg(
        long,
        env = "MQLOAD_KEEPALIVE",
        default_value = "60s",
        help_heading = "MQTT"
    )]
    pub keepalive: String,
    /// Clean session flag of CONNECT (`--clean-session false` keeps broker sessions).
    #[arg(long, env = "MQLOAD_CLEAN_SESSION", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = ArgAction::Set, help_heading = "MQTT")]
    pub clean_session: bool,
    /// MQTT user name.
    #[arg(long, env = "MQLOAD_USERNAME", help_heading = "MQTT")]
    pub username: Option<String>,
    /// MQTT password.
    #[arg(long, env = "MQLOAD_PASSWORD", help_heading = "MQTT")]
    pub password: Option<String>,
    /// Most unacknowledged QoS 1/2 publishes per connection (AWS IoT allows 100).
    #[arg(
        long,
        env = "MQLOAD_MAX_INFLIGHT",
        default_value_t = 100,
        help_heading = "MQTT"
    )]
    pub max_inflight: u16,
    /// A publish or ping not answered within this is a failure and a reconnect.
    #[arg(
        long,
        env = "MQLOAD_ACK_TIMEOUT",
        default_value = "30s",
        help_heading = "MQTT"
    )]
    pub ack_timeout: String,
    /// TCP + TLS + CONNACK must complete within this.
    #[arg(
        long,
        env = "MQLOAD_CONNECT_TIMEOUT",
        default_value = "60s",
        help_heading = "MQTT"
    )]
    pub connect_timeout: String,
    /// Shortest time between two wakeups of a worker: fewer, fuller wakeups cost less CPU;
    /// ack times come from kernel timestamps, so this does not blur latency (`0ms` disables).
    #[arg(
        long,
        env = "MQLOAD_WAKE_INTERVAL",
        default_value = "1ms",
        help_heading = "MQTT"
    )]
    pub wake_interval: String,
    /// TLS ALPN protocol (repeatable); AWS IoT on port 443 wants `x-amzn-mqtt-ca`.
    #[arg(
        long,
        env = "MQLOAD_ALPN",
        value_delimiter = ',',
        help_heading = "Broker and TLS"
    )]
    pub alpn: Vec<String>,
    /// TLS server name (SNI and certificate check), when it differs from --host.
    #[arg(long, env = "MQLOAD_SERVER_NAME", help_heading = "Broker and TLS")]
    pub server_name: Option<String>,
    /// MQTT version and MQTT 5 properties (`--mqtt-version 5`, ...).
    #[command(flatten)]
    pub mqtt5: mqtt5::Mqtt5Args,
    /// Plain TCP instead of TLS (for brokers on a trusted network).
    #[arg(long, env = "MQLOAD_NO_TLS", value_parser = parse_switch, help_heading = "Broker and TLS")]
    pub no_tls: bool,
    // --- transport and AWS IoT authentication (issue 11) ---
    /// MQTT straight over TCP, or over WebSocket (RFC 6455, subprotocol `mqtt`); TLS either
    /// way unless --no-tls. `-H ws://` and `-H wss://` set it.
    #[arg(long, value_enum, env = "MQLOAD_TRANSPORT", default_value_t = TransportArg::Tcp, help_heading = "Transport and AWS IoT auth")]
    pub transport: TransportArg,
    /// The WebSocket request path; the path of a `-H wss://host/path` URL sets it.
    #[arg(
        long,
        env = "MQLOAD_WS_PATH",
        default_value = "/mqtt",
        help_heading = "Transport and AWS IoT auth"
    )]
    pub ws_path: String,
    /// Sign each WebSocket upgrade with AWS SigV4 (service iotdevicegateway) at its own
    /// connect time, with the credentials of AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/
    /// AWS_SESSION_TOKEN or an AWS profile; automatic over WebSocket to an AWS IoT endpoint
    /// (`*.iot.<region>.amazonaws.com`) without a custom authorizer.
    #[arg(long, env = "MQLOAD_AWS_SIGV4", value_parser = parse_switch, help_heading = "Transport and AWS IoT auth")]
    pub aws_sigv4: bool,
    /// The AWS profile whose credentials sign (default: AWS_PROFILE, else `default`).
    #[arg(long, help_heading = "Transport and AWS IoT auth")]
    pub aws_profile: Option<String>,
    /// AWS IoT custom authorizer to invoke (`x-amz-customauthorizer-name`): in the MQTT user
    /// name over TCP, an upgrade header over WebSocket.
    #[arg(
        long,
        env = "MQLOAD_AUTHORIZER_NAME",
        help_heading = "Transport and AWS IoT auth"
    )]
    pub authorizer_name: Option<String>,
    /// The custom authorizer's token key name (its `tokenKeyName`); goes with --token.
    #[arg(
        long,
        env = "MQLOAD_TOKEN_KEY_NAME",
        help_heading = "Transport and AWS IoT auth"
    )]
    pub token_key_name: Option<String>,
    /// The token the custom authorizer reads.
    #[arg(
        long,
        env = "MQLOAD_TOKEN",
        help_heading = "Transport and AWS IoT auth"
    )]
    pub token: Option<String>,
    /// The token's base64 signature, for an authorizer with token signing
    /// (`x-amz-customauthorizer-signature`).
    #[arg(
        long,
        env = "MQLOAD_TOKEN_SIGNATURE",
        help_heading = "Transport and AWS IoT auth"
    )]
    pub token_signature: Option<String>,
    // --- reports: JSON, HTML, live status (issue 3) ---
    /// As Locust: print the final stats to stdout as Locust's JSON (a list of stats entries).
    #[arg(long, help_heading = "Reports")]
    pub json: bool,
    /// As Locust: write the final stats as Locust's JSON to FILE.json (Locust adds `.json`).
    #[arg(long, help_heading = "Reports")]
    pub json_file: Option<PathBuf>,
    /// Write mqload's own report as JSON (schema `mqload.report/1`, see docs/json-schema.md).
    #[arg(long, env = "MQLOAD_REPORT_JSON", help_heading = "Reports")]
    pub report_json: Option<PathBuf>,
    /// Write a self-contained HTML report (tables and charts; opens offline); `{u}`, `{r}`,
    /// `{t}` become users, spawn rate and run time, as in Locust.
    #[arg(long, env = "LOCUST_HTML", help_heading = "Reports")]
    pub html: Option<PathBuf>,
    /// Serve live metrics for Prometheus at http://ADDR/metrics while the run goes on
    /// (e.g. 127.0.0.1:9273): request, failure, connect and delivery counters, user and
    /// in-flight gauges, response-time histograms.
    #[arg(long, env = "MQLOAD_PROMETHEUS", value_name = "ADDR", value_parser = crate::metrics::parse_listen_addr,
          help_heading = "Reports")]
    pub prometheus: Option<std::net::SocketAddr>,
    // --- AWS IoT cost and quota guard (issue 3) ---
    /// Treat the broker as AWS IoT Core (automatic for `*.iot.*.amazonaws.com` hosts):
    /// print the estimated cost and warn about quota breaches before connecting.
    #[arg(long, env = "MQLOAD_AWS", value_parser = parse_switch, help_heading = "AWS IoT Core guard")]
    pub aws: bool,
    /// Dollars per million metered AWS IoT messages (5 KB increments), for the estimate.
    #[arg(
        long,
        env = "MQLOAD_PRICE_PER_MILLION",
        allow_negative_numbers = true,
        default_value_t = 1.0,
        help_heading = "AWS IoT Core guard"
    )]
    pub price_per_million: f64,
    /// Refuse to start an AWS IoT run whose estimated cost passes this many dollars.
    #[arg(
        long,
        env = "MQLOAD_MAX_COST",
        allow_negative_numbers = true,
        default_value_t = 10.0,
        help_heading = "AWS IoT Core guard"
    )]
    pub max_cost: f64,
    /// Run even when the estimate passes --max-cost or the run has no --run-time.
    #[arg(long, env = "MQLOAD_YES", value_parser = parse_switch, help_heading = "AWS IoT Core guard")]
    pub yes: bool,
    /// Check the options and print the plan, offered load and cost estimate, then exit without
    /// connecting: 0 when the run would go ahead, 2 when it would be refused.
    #[arg(long, env = "MQLOAD_DRY_RUN", value_parser = parse_switch, help_heading = "AWS IoT Core guard")]
    pub dry_run: bool,
    // --- subscribers and delivery (issue 4) ---
    /// Subscriber connections in the same run (same engine and threads); each subscribes to
    /// --subscribe-topic and checks every message: end-to-end latency, lost, duplicated,
    /// reordered.
    #[arg(
        long,
        env = "MQLOAD_SUBSCRIBERS",
        default_value_t = 0,
        help_heading = "Subscribers"
    )]
    pub subscribers: u64,
    /// Topic filter the subscribers subscribe to (`+` and `#` allowed, `{run_id}` substituted),
    /// e.g. `locust/#`.
    #[arg(long, env = "MQLOAD_SUBSCRIBE_TOPIC", help_heading = "Subscribers")]
    pub subscribe_topic: Option<String>,
    /// QoS the subscribers ask for (0, 1 or 2).
    #[arg(
        long,
        env = "MQLOAD_SUBSCRIBE_QOS",
        default_value_t = 0,
        help_heading = "Subscribers"
    )]
    pub subscribe_qos: u8,
    // --- faults and reconnects (issue 4) ---

    // (fault-handling options go here)

    // --- connection scale: bind, churn, TLS resumption (issue 4) ---
    /// Source addresses spread over the connections, each bound with IP_BIND_ADDRESS_NO_PORT:
    /// a list and ranges, e.g. `127.0.0.2-127.0.0.9,127.0.1.1` (each adds ~28k ports per broker address).
    #[arg(
        long,
        env = "MQLOAD_BIND",
        value_delimiter = ',',
        help_heading = "Connection scale"
    )]
    pub bind: Vec<String>,
    /// Connect and hold the connections (keep-alive pings only); publish nothing.
    #[arg(long, env = "MQLOAD_CONNECT_ONLY", value_parser = parse_switch, help_heading = "Connection scale")]
    pub connect_only: bool,
    /// Churn: after this long connected, each client disconnects cleanly and reconnects at
    /// once, resuming its TLS session (`30s`, `5m`).
    #[arg(
        long,
        env = "MQLOAD_CONNECTION_LIFETIME",
        help_heading = "Connection scale"
    )]
    pub connection_lifetime: Option<String>,
    /// Most connection attempts (TCP + TLS + CONNACK) in progress at once; further due
    /// clients queue in mqload, so a storm bigger than the broker queues instead of timing
    /// out in its listen backlog (mosquitto's is 100); 0: no bound.
    #[arg(
        long,
        env = "MQLOAD_MAX_CONNECTING",
        default_value_t = 100,
        help_heading = "Connection scale"
    )]
    pub max_connecting: usize,
    /// TLS session tickets: `per-device` keeps each device's newest ticket so every
    /// reconnect resumes (about 2.5 KiB per device); `shared` is rustls' default store (8 per
    /// server name, so new devices resume others' sessions); `off`; `auto`: per-device with
    /// --connection-lifetime, else off.
    #[arg(
        long,
        value_enum,
        env = "MQLOAD_TLS_TICKETS",
        default_value_t = TlsTicketsArg::Auto,
        help_heading = "Connection scale"
    )]
    pub tls_tickets: TlsTicketsArg,

    // --- load stages (issue 12) ---
    /// A load profile instead of a constant load: segments DURATION:USERSu[@MSG/S PER USER],
    /// e.g. `2m:1000u,5m:1000u,1m:5000u@2,2m:0u`; the load ramps linearly between targets
    /// (users at --spawn-rate when given); the run lasts the profile unless --run-time.
    #[arg(long, env = "MQLOAD_STAGES", help_heading = "Load stages")]
    pub stages: Option<String>,

    // --- built-in broker (issue 3) ---
    /// Threads of the built-in broker started when no --host is given (default: half the CPUs).
    #[arg(long, env = "MQLOAD_BROKER_THREADS", help_heading = "Built-in broker")]
    pub broker_threads: Option<usize>,
    // --- capacity search: `mqload find-limit` (issue 12) ---
    /// find-limit: the load raised, `msg-rate` (msg/s over the users) or `connect-rate` (new
    /// connections a second from --spawn-rate up, each held to the level's end).
    #[arg(
        long,
        value_enum,
        env = "MQLOAD_SEARCH",
        default_value_t = SearchArg::MsgRate,
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub search: SearchArg,
    /// find-limit --search connect-rate: a level holds while its connect p99 (TCP + TLS +
    /// CONNACK) stays at or under this (`100ms`).
    #[arg(
        long,
        env = "MQLOAD_SLO_CONNECT_P99",
        default_value = "100ms",
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub slo_connect_p99: String,
    /// find-limit: a level holds while its publish p99 stays at or under this (`20ms`).
    #[arg(
        long,
        env = "MQLOAD_SLO_P99",
        default_value = "20ms",
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub slo_p99: String,
    /// find-limit: a level holds while at most this percentage of its requests fail.
    #[arg(
        long,
        env = "MQLOAD_SLO_FAILURES",
        default_value_t = 1.0,
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub slo_failures: f64,
    /// find-limit: how long each level is measured, after its users connected and sent their
    /// first message (`10s`).
    #[arg(
        long,
        env = "MQLOAD_LEVEL_TIME",
        default_value = "10s",
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub level_time: String,
    /// find-limit: the highest load tried, messages per second over every user (connections
    /// per second with --search connect-rate).
    #[arg(
        long,
        env = "MQLOAD_MAX_RATE",
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub max_rate: Option<f64>,
    /// find-limit: stop bisecting when the lowest level that broke is within this percentage
    /// above the highest that held.
    #[arg(
        long,
        env = "MQLOAD_PRECISION",
        default_value_t = 5.0,
        help_heading = "Capacity search (mqload find-limit)"
    )]
    pub precision: f64,
    // --- native Locust worker (issue 5) ---

    // (Locust worker options go here)
    /// Join a Python Locust master as one of its workers (it sets users, options and timing).
    #[arg(long, env = "LOCUST_MODE_WORKER", value_parser = parse_switch, help_heading = "Locust worker")]
    pub worker: bool,
    /// Host of the Locust master (with --worker).
    #[arg(
        long,
        env = "LOCUST_MASTER_NODE_HOST",
        default_value = "127.0.0.1",
        help_heading = "Locust worker"
    )]
    pub master_host: String,
    /// Port of the Locust master (with --worker).
    #[arg(
        long,
        env = "LOCUST_MASTER_NODE_PORT",
        default_value_t = 5557,
        help_heading = "Locust worker"
    )]
    pub master_port: u16,
    /// With --worker: stop when the master has sent no heartbeat for this long.
    #[arg(
        long,
        env = "MQLOAD_MASTER_HEARTBEAT_TIMEOUT",
        default_value = "60s",
        help_heading = "Locust worker"
    )]
    pub master_heartbeat_timeout: String,
}

/// `--transport` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    /// MQTT over TCP (TLS unless --no-tls).
    Tcp,
    /// MQTT over WebSocket (wss, or ws with --no-tls).
    Websockets,
}

/// `--search` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SearchArg {
    /// Raise the publish rate (msg/s over the same users).
    MsgRate,
    /// Raise the connect rate (new connections a second).
    ConnectRate,
}

/// `--tls-tickets` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsTicketsArg {
    /// Per device with --connection-lifetime, else off.
    Auto,
    /// Each device keeps its own newest ticket: every reconnect resumes.
    PerDevice,
    /// rustls' default store: 8 tickets per server name, shared by all devices.
    Shared,
    /// No session resumption.
    Off,
}

/// Subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Run the built-in MQTT broker (3.1.1 and 5) alone (until Ctrl-C, or --run-time).
    Broker(crate::broker::BrokerArgs),
    /// Make certificates for a fleet: `mqload pki devices N [--ca CA.pem --ca-key CA.key] --out DIR`.
    Pki(pki::PkiArgs),
    /// Raise the offered msg/s level by level until a limit breaks (--slo-p99,
    /// --slo-failures, loss, held-back messages) and report the highest load that held; takes
    /// the run's options, e.g. `mqload find-limit -H mqtt://127.0.0.1 -u 10 --qos 1`.
    FindLimit,
}

/// The word that starts a capacity search: `mqload find-limit [run options]`.
pub const FIND_LIMIT: &str = "find-limit";

/// `--payload-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PayloadFormatArg {
    /// The seed's JSON document.
    Json,
    /// Raw random bytes.
    Raw,
}
