//! Before a run: the load it offers, and for AWS IoT Core its estimated bill and quota breaches.
//!
//! AWS IoT Core bills every message, so a load test against it costs money by the minute. The
//! figures below are AWS's published ones (messaging price and message-broker quotas); the
//! price is an option because it differs by region and changes over time.

mod connect_rate;

use std::fmt;
use std::time::Duration;

pub use connect_rate::{
    AWS_MAX_CONNECTS_PER_ACCOUNT, AWS_MAX_CONNECTS_PER_CLIENT_ID, ConnectBreach, ConnectShape,
};

use crate::cli::Cli;
use crate::mqtt::QoS;
use crate::payload::PayloadBuilder;
use crate::plan::{RunPlan, expand_template};

/// AWS meters messages in increments of this many bytes of payload plus topic.
pub const METER_INCREMENT_BYTES: u64 = 5 * 1024;
/// Most publishes per second one AWS IoT connection may send.
pub const AWS_MAX_PUBLISHES_PER_CONNECTION: f64 = 100.0;
/// Most bytes per second one AWS IoT connection may send (512 KiB).
pub const AWS_MAX_BYTES_PER_CONNECTION: f64 = 512.0 * 1024.0;
/// Keep alive range AWS IoT accepts, in seconds.
pub const AWS_KEEPALIVE_SECS: std::ops::RangeInclusive<u64> = 30..=1200;
/// Longest client id AWS IoT accepts, in bytes.
pub const AWS_MAX_CLIENT_ID_BYTES: usize = 128;
/// Longest topic AWS IoT accepts, in bytes.
pub const AWS_MAX_TOPIC_BYTES: usize = 256;
/// Most forward slashes in an AWS IoT topic.
pub const AWS_MAX_TOPIC_SLASHES: usize = 7;
/// Largest payload AWS IoT accepts (128 KB).
pub const AWS_MAX_PAYLOAD_BYTES: u64 = 128 * 1024;
/// Most unacknowledged QoS 1 publishes AWS IoT takes from one client.
pub const AWS_MAX_INFLIGHT: u16 = 100;
/// The seed's first publish comes this long after CONNACK.
const FIRST_PUBLISH_DELAY_SECS: f64 = 1.0;

/// What a run asks of the broker, as the guard needs it.
#[derive(Debug, Clone)]
pub struct LoadShape {
    /// Number of publishing users.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Messages per second per user.
    pub throughput: f64,
    /// Run duration; `None` runs until stopped.
    pub run_time: Option<Duration>,
    /// Body bytes of one message.
    pub payload_bytes: u64,
    /// Topic bytes of one message (the longest user's).
    pub topic_bytes: u64,
    /// The longest topic, for the slash count.
    pub topic: String,
    /// The longest client id.
    pub client_id: String,
    /// Publish QoS.
    pub qos: QoS,
    /// MQTT keep alive.
    pub keep_alive: Duration,
    /// Most unacked publishes per connection.
    pub max_inflight: u16,
    /// Copies of each message delivered to `--subscribers` (AWS bills each delivery too).
    pub deliveries_per_message: u64,
    /// `--stages`: the profile (then `users` and `throughput` are its peaks).
    pub stages: Option<crate::stages::Profile>,
    /// MQTT 5 user properties of one message, as sent: AWS meters them with the payload.
    pub user_property_bytes: u64,
    /// Subscriber connections (they connect in the first second).
    pub subscribers: u64,
    /// `--connection-lifetime` churn: each client reconnects this long after connecting.
    pub lifetime: Option<Duration>,
}

impl LoadShape {
    /// The shape of a planned run, with the last user's client id and topic (the longest
    /// when ids grow with `{i}`) and a body built the way the workers build them.
    pub fn from_plan(plan: &RunPlan) -> LoadShape {
        let last = plan.users.saturating_sub(1);
        let client_id = expand_template(&plan.client_id_template, last, &plan.run_id, "");
        let topic = expand_template(&plan.topic_template, last, &plan.run_id, &client_id);
        let mut body = Vec::new();
        PayloadBuilder::new(&plan.payload, 0).build(last, &client_id, last, 1.7e9, &mut body);
        let deliveries_per_message = plan.subscribe.as_ref().map_or(0, |sub| {
            crate::delivery::expected_copies(&sub.filter, &topic, sub.subscribers)
        });
        LoadShape {
            users: plan.users,
            spawn_rate: plan.spawn_rate,
            // --connect-only publishes nothing: no messages to price.
            throughput: if plan.scale.connect_only {
                0.0
            } else {
                plan.stages
                    .as_ref()
                    .map_or(plan.throughput, |p| p.peak_rate())
            },
            run_time: plan.run_time,
            payload_bytes: body.len() as u64,
            topic_bytes: topic.len() as u64,
            topic,
            client_id,
            qos: plan.qos,
            keep_alive: plan.session.keep_alive,
            max_inflight: plan.session.max_inflight,
            deliveries_per_message,
            stages: plan.stages.clone(),
            user_property_bytes: plan
                .session
                .mqtt5
                .as_ref()
                .map_or(0, |v5| v5.user_properties.len() as u64),
            subscribers: plan.subscribe.as_ref().map_or(0, |sub| sub.subscribers),
            lifetime: plan.scale.lifetime,
        }
    }

    /// How the run opens connections, for AWS's connect quotas.
    pub fn connects(&self) -> ConnectShape {
        ConnectShape {
            users: self.users,
            spawn_rate: connect_rate::peak_spawn_rate(self.spawn_rate, self.stages.as_ref()),
            subscribers: self.subscribers,
            lifetime: self.lifetime,
        }
    }
}

/// The load a run offers, whatever the broker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OfferedLoad {
    /// Messages per second once every user publishes.
    pub messages_per_sec: f64,
    /// Payload, topic and MQTT 5 user property bytes of one message.
    pub message_bytes: u64,
    /// Payload plus topic bytes per second of one connection.
    pub bytes_per_sec_per_connection: f64,
}

impl LoadShape {
    /// Messages per second and bytes per second the run offers at full strength.
    pub fn offered(&self) -> OfferedLoad {
        let message_bytes = self.payload_bytes + self.topic_bytes + self.user_property_bytes;
        OfferedLoad {
            messages_per_sec: self.users as f64 * self.throughput,
            message_bytes,
            bytes_per_sec_per_connection: self.throughput * message_bytes as f64,
        }
    }

    /// Messages the run sends at most: user `i` starts at `i / spawn_rate`, publishes from
    /// one second later at `throughput` until the run time ends (connect time taken as zero,
    /// so the estimate errs high). `None` for a run without an end.
    pub fn messages_in_run(&self) -> Option<f64> {
        if let Some(profile) = &self.stages {
            // The whole profile (`--connect-only` publishes nothing).
            let run = self.run_time.unwrap_or_else(|| profile.total());
            return Some(if self.throughput > 0.0 {
                profile.messages_over(run)
            } else {
                0.0
            });
        }
        let run_secs = self.run_time?.as_secs_f64();
        let publishing_secs = run_secs - FIRST_PUBLISH_DELAY_SECS;
        if publishing_secs <= 0.0 {
            return Some(0.0);
        }
        // Users that start before publishing would end, then the sum of their publishing
        // times: n * D - (0 + 1 + ... + (n - 1)) / rate.
        let starters = (publishing_secs * self.spawn_rate)
            .ceil()
            .min(self.users as f64);
        let user_seconds =
            starters * publishing_secs - starters * (starters - 1.0) / 2.0 / self.spawn_rate;
        Some(user_seconds.max(0.0) * self.throughput)
    }
}

/// Metered messages AWS bills for one message of `bytes` payload plus topic.
pub fn metered_per_message(bytes: u64) -> u64 {
    bytes.div_ceil(METER_INCREMENT_BYTES).max(1)
}

/// AWS IoT Core's estimate of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CostEstimate {
    /// Metered messages per message sent.
    pub metered_per_message: u64,
    /// Messages the run sends (`None`: no run time, no end).
    pub messages: Option<f64>,
    /// Dollars for the whole run (`None`: no run time).
    pub dollars: Option<f64>,
    /// Dollars per hour at full strength.
    pub dollars_per_hour: f64,
    /// Metered messages billed per message sent: the publish, and each delivery of it to a
    /// subscriber.
    pub billed_per_message: u64,
    /// Dollars per million metered messages.
    pub price_per_million: f64,
}

impl CostEstimate {
    /// Dollars for `messages` publishes, deliveries to subscribers included: the one
    /// metering both the estimate before a run and the report's cost of what was sent use.
    pub fn dollars_for(&self, messages: f64) -> f64 {
        messages * self.billed_per_message as f64 * self.price_per_million / 1e6
    }
}

/// Prices the run at `price_per_million` dollars per million metered messages.
pub fn estimate_cost(shape: &LoadShape, price_per_million: f64) -> CostEstimate {
    let offered = shape.offered();
    let metered = metered_per_message(offered.message_bytes);
    // Each publish is billed once, and once more per subscriber it is delivered to.
    let mut estimate = CostEstimate {
        metered_per_message: metered,
        messages: shape.messages_in_run(),
        dollars: None,
        dollars_per_hour: 0.0,
        billed_per_message: metered * (1 + shape.deliveries_per_message),
        price_per_million,
    };
    estimate.dollars = estimate.messages.map(|m| estimate.dollars_for(m));
    estimate.dollars_per_hour = estimate.dollars_for(offered.messages_per_sec * 3600.0);
    estimate
}

/// One AWS IoT quota the run would break.
#[derive(Debug, Clone, PartialEq)]
pub enum QuotaBreach {
    /// More publishes per second per connection than AWS allows.
    PublishRate(f64),
    /// More bytes per second per connection than AWS allows.
    ByteRate(f64),
    /// QoS 2, which AWS IoT does not support.
    QosTwo,
    /// A keep alive outside AWS's range.
    KeepAlive(u64),
    /// A client id longer than AWS allows.
    ClientIdLength(usize),
    /// A topic longer than AWS allows.
    TopicLength(usize),
    /// A topic with more slashes than AWS allows.
    TopicSlashes(usize),
    /// A payload larger than AWS allows.
    PayloadSize(u64),
    /// A larger in-flight window than AWS allows.
    Inflight(u16),
    /// More CONNECTs per second than AWS allows (per account, or per client id).
    Connect(ConnectBreach),
}

impl fmt::Display for QuotaBreach {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaBreach::PublishRate(rate) => write!(
                f,
                "{rate} publishes/s per connection is over AWS IoT's {AWS_MAX_PUBLISHES_PER_CONNECTION}/s: the excess is throttled; lower --throughput or add --users"
            ),
            QuotaBreach::ByteRate(rate) => write!(
                f,
                "{} per connection is over AWS IoT's 512 KiB/s: lower --throughput or --payload-kb",
                bytes_per_sec(*rate)
            ),
            QuotaBreach::QosTwo => f.write_str(
                "AWS IoT Core does not support QoS 2 and closes such connections: use --qos 0 or 1",
            ),
            QuotaBreach::KeepAlive(secs) => write!(
                f,
                "--keepalive {secs}s is outside AWS IoT's 30 to 1200 s (it substitutes its own): pick a value in range"
            ),
            QuotaBreach::ClientIdLength(len) => write!(
                f,
                "client ids of {len} bytes are over AWS IoT's {AWS_MAX_CLIENT_ID_BYTES}: shorten --client-id"
            ),
            QuotaBreach::TopicLength(len) => write!(
                f,
                "topics of {len} bytes are over AWS IoT's {AWS_MAX_TOPIC_BYTES}: shorten --topic"
            ),
            QuotaBreach::TopicSlashes(n) => write!(
                f,
                "topics with {n} slashes are over AWS IoT's {AWS_MAX_TOPIC_SLASHES}: use fewer levels in --topic"
            ),
            QuotaBreach::PayloadSize(bytes) => write!(
                f,
                "{bytes}-byte payloads are over AWS IoT's 128 KB and are rejected: lower --payload-kb"
            ),
            QuotaBreach::Inflight(n) => write!(
                f,
                "--max-inflight {n} is over AWS IoT's {AWS_MAX_INFLIGHT} unacknowledged publishes per client: the broker stops reading past it"
            ),
            QuotaBreach::Connect(breach) => write!(f, "{breach}"),
        }
    }
}

/// Every AWS IoT quota the run would break.
pub fn quota_breaches(shape: &LoadShape) -> Vec<QuotaBreach> {
    let offered = shape.offered();
    let mut breaches = Vec::new();
    if shape.throughput > AWS_MAX_PUBLISHES_PER_CONNECTION {
        breaches.push(QuotaBreach::PublishRate(shape.throughput));
    }
    if offered.bytes_per_sec_per_connection > AWS_MAX_BYTES_PER_CONNECTION {
        breaches.push(QuotaBreach::ByteRate(offered.bytes_per_sec_per_connection));
    }
    if shape.qos == QoS::ExactlyOnce {
        breaches.push(QuotaBreach::QosTwo);
    }
    let keep_alive = shape.keep_alive.as_secs();
    if !AWS_KEEPALIVE_SECS.contains(&keep_alive) {
        breaches.push(QuotaBreach::KeepAlive(keep_alive));
    }
    if shape.client_id.len() > AWS_MAX_CLIENT_ID_BYTES {
        breaches.push(QuotaBreach::ClientIdLength(shape.client_id.len()));
    }
    if shape.topic.len() > AWS_MAX_TOPIC_BYTES {
        breaches.push(QuotaBreach::TopicLength(shape.topic.len()));
    }
    let slashes = shape.topic.matches('/').count();
    if slashes > AWS_MAX_TOPIC_SLASHES {
        breaches.push(QuotaBreach::TopicSlashes(slashes));
    }
    if shape.payload_bytes > AWS_MAX_PAYLOAD_BYTES {
        breaches.push(QuotaBreach::PayloadSize(shape.payload_bytes));
    }
    if shape.qos != QoS::AtMostOnce && shape.max_inflight > AWS_MAX_INFLIGHT {
        breaches.push(QuotaBreach::Inflight(shape.max_inflight));
    }
    breaches.extend(
        shape
            .connects()
            .breaches()
            .into_iter()
            .map(QuotaBreach::Connect),
    );
    breaches
}

/// Whether `host` is an AWS IoT Core endpoint (`*.iot.<region>.amazonaws.com`, or `.com.cn`).
pub fn is_aws_iot_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let Some(rest) = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
    else {
        return false;
    };
    let labels: Vec<&str> = rest.split('.').collect();
    // <prefix>... . iot . <region>
    labels.len() >= 3
        && labels[labels.len() - 2] == "iot"
        && !labels[labels.len() - 1].is_empty()
        && labels[..labels.len() - 2].iter().all(|l| !l.is_empty())
}

/// Why the guard stops a run before it connects. The process exits with code 2.
#[derive(Debug, Clone, PartialEq)]
pub enum GuardError {
    /// `--price-per-million` or `--max-cost` is negative or not a number.
    BadAmount {
        /// Which option.
        option: &'static str,
        /// Value given.
        value: f64,
    },
    /// The estimate is over `--max-cost` and `--yes` was not given.
    OverBudget {
        /// Estimated dollars.
        dollars: f64,
        /// `--max-cost`.
        max_cost: f64,
    },
    /// No run time against AWS: the bill has no end, and `--yes` was not given.
    Unbounded {
        /// Dollars per hour at full strength.
        dollars_per_hour: f64,
    },
}

impl fmt::Display for GuardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuardError::BadAmount { option, value } => write!(
                f,
                "--{option} {value} must be a number of dollars of 0 or more, e.g. 1.0"
            ),
            GuardError::OverBudget { dollars, max_cost } => write!(
                f,
                "this run would cost about {} on AWS IoT Core, over --max-cost {}: lower --users, --throughput or --run-time, raise --max-cost, or pass --yes",
                dollars_text(*dollars),
                dollars_text(*max_cost)
            ),
            GuardError::Unbounded { dollars_per_hour } => write!(
                f,
                "no --run-time: AWS IoT Core would bill about {} per hour until you stop it; give --run-time (e.g. -t 10m) or pass --yes",
                dollars_text(*dollars_per_hour)
            ),
        }
    }
}

impl std::error::Error for GuardError {}

/// The user's budget settings.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Dollars per million metered messages.
    pub price_per_million: f64,
    /// Largest estimate a run may have without `--yes`.
    pub max_cost: f64,
    /// `--yes`: run whatever the estimate.
    pub confirmed: bool,
}

/// Checks the budget's own numbers, then whether the estimate fits in it.
pub fn check_budget(estimate: &CostEstimate, budget: &Budget) -> Result<(), GuardError> {
    for (option, value) in [
        ("price-per-million", budget.price_per_million),
        ("max-cost", budget.max_cost),
    ] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(GuardError::BadAmount { option, value });
        }
    }
    if budget.confirmed {
        return Ok(());
    }
    match estimate.dollars {
        None if estimate.dollars_per_hour > 0.0 => Err(GuardError::Unbounded {
            dollars_per_hour: estimate.dollars_per_hour,
        }),
        Some(dollars) if dollars > budget.max_cost => Err(GuardError::OverBudget {
            dollars,
            max_cost: budget.max_cost,
        }),
        _ => Ok(()),
    }
}

/// `$1.20`, `$0.0042`, `$12,345.68`.
pub fn dollars_text(dollars: f64) -> String {
    if dollars != 0.0 && dollars.abs() < 0.01 {
        return format!("${dollars:.4}");
    }
    let cents = (dollars * 100.0).round() as i128;
    format!("${}.{:02}", thousands(cents / 100), (cents % 100).abs())
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i128) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte rate in binary units, as AWS quotes its per-connection quota (`678.4 KiB/s`).
pub fn bytes_per_sec(rate: f64) -> String {
    if rate >= 1024.0 * 1024.0 {
        format!("{:.1} MiB/s", rate / (1024.0 * 1024.0))
    } else if rate >= 1024.0 {
        format!("{:.1} KiB/s", rate / 1024.0)
    } else {
        format!("{rate:.0} B/s")
    }
}

/// The lines printed before a run: the offered load, and for AWS the cost and breaches.
pub fn describe(
    shape: &LoadShape,
    offered: &OfferedLoad,
    aws: Option<&CostEstimate>,
) -> Vec<String> {
    let mut lines = vec![format!(
        "offered load: {} msg/s in total ({} users x {} msg/s), {} B per message (payload + topic{}), {} per connection",
        rate_text(offered.messages_per_sec),
        shape.users,
        shape.throughput,
        thousands(i128::from(offered.message_bytes)),
        if shape.user_property_bytes > 0 {
            " + user properties"
        } else {
            ""
        },
        bytes_per_sec(offered.bytes_per_sec_per_connection),
    )];
    if let Some(estimate) = aws {
        let per_hour = dollars_text(estimate.dollars_per_hour);
        let metered = estimate.metered_per_message;
        lines.push(match (estimate.messages, estimate.dollars) {
            (Some(messages), Some(dollars)) => format!(
                "AWS IoT Core estimate: {} messages x {metered} metered (5 KB increments) = {} ({per_hour} per hour at full load)",
                thousands(messages.round() as i128),
                dollars_text(dollars),
            ),
            _ => format!(
                "AWS IoT Core estimate: {per_hour} per hour at full load ({metered} metered per message, 5 KB increments), with no end: no --run-time"
            ),
        });
        for breach in quota_breaches(shape) {
            lines.push(format!("warning: AWS IoT quota: {breach}"));
        }
    }
    lines
}

fn rate_text(rate: f64) -> String {
    if rate >= 100.0 || rate.fract() == 0.0 {
        thousands(rate.round() as i128)
    } else {
        format!("{rate:.2}")
    }
}

/// The guard as the binary applies it: the lines to print for `shape` aimed at `host` (the
/// AWS estimate when `--aws` or an AWS endpoint), and whether the budget lets the run start.
pub fn assess(cli: &Cli, shape: &LoadShape, host: &str) -> (Vec<String>, Result<(), GuardError>) {
    let aws = cli.aws || is_aws_iot_host(host);
    let estimate = aws.then(|| estimate_cost(shape, cli.price_per_million));
    let lines = describe(shape, &shape.offered(), estimate.as_ref());
    let verdict = match estimate {
        Some(estimate) => check_budget(
            &estimate,
            &Budget {
                price_per_million: cli.price_per_million,
                max_cost: cli.max_cost,
                confirmed: cli.yes,
            },
        ),
        None => Ok(()),
    };
    (lines, verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed README's example: 10 clients, 1 user/s, 100 msg/s, 10 minutes, 5 KiB JSON.
    fn seed_example() -> LoadShape {
        LoadShape {
            users: 10,
            spawn_rate: 1.0,
            throughput: 100.0,
            run_time: Some(Duration::from_secs(600)),
            // The seed's body: 5 KiB of random data in base64 (6,828 chars) plus its JSON.
            payload_bytes: 6_930,
            topic_bytes: "locust/test/topic".len() as u64,
            topic: "locust/test/topic".into(),
            client_id: "locust-0123456789abcdef".into(),
            qos: QoS::AtLeastOnce,
            keep_alive: Duration::from_secs(60),
            max_inflight: 100,
            deliveries_per_message: 0,
            stages: None,
            user_property_bytes: 0,
            subscribers: 0,
            lifetime: None,
        }
    }

    #[test]
    fn each_subscriber_delivery_is_billed_too() {
        let alone = estimate_cost(&seed_example(), 1.0);
        let watched = estimate_cost(
            &LoadShape {
                deliveries_per_message: 2,
                ..seed_example()
            },
            1.0,
        );
        let (a, w) = (alone.dollars.unwrap_or(0.0), watched.dollars.unwrap_or(0.0));
        assert!(a > 0.0 && (w - 3.0 * a).abs() < 1e-9, "{a} {w}");
        assert_eq!(
            watched.messages, alone.messages,
            "messages sent are the same"
        );
        assert_eq!(watched.billed_per_message, 3 * alone.billed_per_message);
        assert_eq!(
            watched.dollars_for(1e6),
            3.0 * alone.dollars_for(1e6),
            "what was sent is priced as the estimate prices it"
        );
    }

    #[test]
    fn seed_example_is_two_metered_messages_each_and_about_a_dollar_twenty() {
        let shape = seed_example();
        let offered = shape.offered();
        assert_eq!(offered.messages_per_sec, 1000.0);
        assert_eq!(offered.message_bytes, 6_947);
        assert_eq!(metered_per_message(offered.message_bytes), 2);
        // Users start 0..9 s in and publish from 1 s after: 10 * 599 - 45 user-seconds.
        let messages = shape.messages_in_run().unwrap();
        assert!((messages - 594_500.0).abs() < 1e-6, "{messages}");
        let estimate = estimate_cost(&shape, 1.0);
        let dollars = estimate.dollars.unwrap();
        assert!((dollars - 1.189).abs() < 1e-9, "{dollars}");
        assert_eq!(dollars_text(dollars), "$1.19");
        assert!((estimate.dollars_per_hour - 7.2).abs() < 1e-9);
        // The seed's README says $0.60: it forgot the 5 KB metering.
        assert!(dollars > 0.6 * 1.9);
    }

    #[test]
    fn the_seed_command_line_prices_the_body_the_workers_build() {
        use clap::Parser;
        let cli = crate::cli::Cli::parse_from([
            "mqload",
            "--host",
            "127.0.0.1",
            "--no-tls",
            "-u",
            "10",
            "-r",
            "1",
            "-t",
            "10m",
            "--throughput",
            "100",
            "--qos",
            "1",
        ]);
        let plan = RunPlan::from_cli(&cli).expect("the seed's example is a valid plan");
        let shape = LoadShape::from_plan(&plan);
        // 5 KiB of random data is 6,828 base64 characters, wrapped in the seed's JSON.
        assert!(
            (6_900..7_100).contains(&shape.payload_bytes),
            "{}",
            shape.payload_bytes
        );
        let estimate = estimate_cost(&shape, 1.0);
        assert_eq!(estimate.metered_per_message, 2);
        let dollars = estimate.dollars.expect("a run time");
        assert!((dollars - 1.189).abs() < 1e-9, "{dollars}");
    }

    #[test]
    fn mqtt5_user_properties_are_metered_with_the_payload() {
        // 5,000 B of payload and topic: one metered message; 200 B of user properties more
        // pass 5 KiB, as AWS meters them: two.
        let small = LoadShape {
            payload_bytes: 5_000 - 17,
            ..seed_example()
        };
        assert_eq!(estimate_cost(&small, 1.0).metered_per_message, 1);
        let with_properties = LoadShape {
            user_property_bytes: 200,
            ..small.clone()
        };
        assert_eq!(with_properties.offered().message_bytes, 5_200);
        assert_eq!(estimate_cost(&with_properties, 1.0).metered_per_message, 2);
        let line = &describe(&with_properties, &with_properties.offered(), None)[0];
        assert!(
            line.contains("5,200 B per message (payload + topic + user properties)"),
            "{line}"
        );
    }

    #[test]
    fn metering_rounds_up_to_5_kb_increments() {
        assert_eq!(metered_per_message(0), 1);
        assert_eq!(metered_per_message(100), 1);
        assert_eq!(metered_per_message(5 * 1024), 1);
        assert_eq!(metered_per_message(5 * 1024 + 1), 2);
        assert_eq!(metered_per_message(128 * 1024), 26);
    }

    #[test]
    fn users_that_start_after_the_end_cost_nothing() {
        let mut shape = seed_example();
        shape.users = 1000;
        shape.spawn_rate = 1.0;
        shape.run_time = Some(Duration::from_secs(11));
        // Only users 0..9 start before second 10; user i publishes 10 - i seconds.
        let messages = shape.messages_in_run().unwrap();
        assert!((messages - 100.0 * 55.0).abs() < 1e-6, "{messages}");
        shape.run_time = Some(Duration::from_millis(500));
        assert_eq!(shape.messages_in_run(), Some(0.0));
        shape.run_time = None;
        assert_eq!(shape.messages_in_run(), None);
    }

    #[test]
    fn budget_stops_expensive_and_endless_runs_unless_confirmed() {
        let shape = seed_example();
        let estimate = estimate_cost(&shape, 1.0);
        let budget = Budget {
            price_per_million: 1.0,
            max_cost: 10.0,
            confirmed: false,
        };
        assert_eq!(check_budget(&estimate, &budget), Ok(()));
        let tight = Budget {
            max_cost: 1.0,
            ..budget
        };
        let err = check_budget(&estimate, &tight).unwrap_err();
        assert!(matches!(err, GuardError::OverBudget { .. }));
        assert!(err.to_string().contains("$1.19"), "{err}");
        assert!(err.to_string().contains("--yes"), "{err}");
        let confirmed = Budget {
            confirmed: true,
            ..tight
        };
        assert_eq!(check_budget(&estimate, &confirmed), Ok(()));
        let endless = estimate_cost(
            &LoadShape {
                run_time: None,
                ..shape
            },
            1.0,
        );
        let err = check_budget(&endless, &budget).unwrap_err();
        assert!(err.to_string().contains("$7.20 per hour"), "{err}");
        let bad = Budget {
            price_per_million: f64::NAN,
            ..confirmed
        };
        assert!(matches!(
            check_budget(&estimate, &bad),
            Err(GuardError::BadAmount { .. })
        ));
    }

    #[test]
    fn every_quota_is_checked() {
        // The seed's own example sends 678 KiB/s per connection: over AWS's 512 KiB/s.
        assert_eq!(
            quota_breaches(&seed_example()),
            [QuotaBreach::ByteRate(694_700.0)]
        );
        let shape = LoadShape {
            throughput: 200.0,
            payload_bytes: 200_000,
            qos: QoS::ExactlyOnce,
            keep_alive: Duration::from_secs(5),
            client_id: "c".repeat(129),
            topic: format!("a/b/c/d/e/f/g/h/{}", "x".repeat(250)),
            max_inflight: 500,
            users: 2_000,
            spawn_rate: 1_000.0,
            lifetime: Some(Duration::from_millis(500)),
            ..seed_example()
        };
        let breaches = quota_breaches(&shape);
        assert_eq!(breaches.len(), 11, "{breaches:?}");
        // 1,000/s for 2 s with a 0.5 s lifetime: 5 waves at once near the ramp's end.
        assert!(breaches.contains(&QuotaBreach::Connect(ConnectBreach::AccountRate(5_000.0))));
        assert!(breaches.contains(&QuotaBreach::Connect(ConnectBreach::ClientIdRate(2.0))));
        assert!(breaches.contains(&QuotaBreach::QosTwo));
        assert!(breaches.contains(&QuotaBreach::TopicSlashes(8)));
        assert!(breaches.contains(&QuotaBreach::KeepAlive(5)));
        // Exactly at the limits is fine.
        let edge = LoadShape {
            throughput: 100.0,
            payload_bytes: 5_000,
            keep_alive: Duration::from_secs(1200),
            client_id: "c".repeat(128),
            topic: "a/b/c/d/e/f/g/h".into(),
            spawn_rate: AWS_MAX_CONNECTS_PER_ACCOUNT,
            // A 20 s ramp and a 21 s lifetime: reconnects begin after the ramp.
            users: 10_000,
            lifetime: Some(Duration::from_secs(21)),
            ..seed_example()
        };
        assert!(
            quota_breaches(&edge).is_empty(),
            "{:?}",
            quota_breaches(&edge)
        );
    }

    #[test]
    fn aws_endpoints_are_recognised_and_lookalikes_are_not() {
        for host in [
            "a1b2c3d4e5f6g7-ats.iot.us-east-1.amazonaws.com",
            "A1B2-ATS.IOT.EU-WEST-1.AMAZONAWS.COM.",
            "abc.iot.cn-north-1.amazonaws.com.cn",
            "abc-ats.credentials.iot.us-west-2.amazonaws.com",
        ] {
            assert!(is_aws_iot_host(host), "{host}");
        }
        for host in [
            "127.0.0.1",
            "localhost",
            "iot.us-east-1.amazonaws.com",
            "abc.iot.amazonaws.com",
            "abc.s3.us-east-1.amazonaws.com",
            "abc.iot.us-east-1.amazonaws.com.evil.example",
            ".iot.us-east-1.amazonaws.com",
        ] {
            assert!(!is_aws_iot_host(host), "{host}");
        }
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1_000), "-1,000");
        assert_eq!(dollars_text(1.189), "$1.19");
        assert_eq!(dollars_text(12_345.678), "$12,345.68");
        assert_eq!(dollars_text(0.0042), "$0.0042");
        assert_eq!(dollars_text(0.0), "$0.00");
        assert_eq!(bytes_per_sec(694_700.0), "678.4 KiB/s");
        assert_eq!(bytes_per_sec(100.0), "100 B/s");
        let shape = seed_example();
        let lines = describe(&shape, &shape.offered(), Some(&estimate_cost(&shape, 1.0)));
        assert_eq!(
            lines[0],
            "offered load: 1,000 msg/s in total (10 users x 100 msg/s), 6,947 B per message (payload + topic), 678.4 KiB/s per connection"
        );
        assert_eq!(
            lines[1],
            "AWS IoT Core estimate: 594,500 messages x 2 metered (5 KB increments) = $1.19 ($7.20 per hour at full load)"
        );
        assert_eq!(
            lines[2],
            "warning: AWS IoT quota: 678.4 KiB/s per connection is over AWS IoT's 512 KiB/s: lower --throughput or --payload-kb"
        );
        assert_eq!(lines.len(), 3);
    }
}
