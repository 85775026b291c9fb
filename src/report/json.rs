//! `--json FILE`: the run as one versioned JSON document for scripts (schema in
//! `docs/json-schema.md`); the HTML report embeds the same document and renders from it.

use serde_json::{Map, Value, json};

use crate::plan::RunPlan;
use crate::stats::{
    DeliveryStats, ErrorRow, LagStats, PERCENTILE_LABELS, RowStats, SEND_LAG_BOTTLENECK_US,
    Snapshot, TimeSeries,
};

/// The `schema` field. Adding fields or optional sections keeps `/1`; renaming, removing or
/// changing the meaning of a field makes `/2`.
pub const SCHEMA: &str = "mqload.report/1";

/// The run's parameters as the report shows them (from the validated [`RunPlan`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunParameters {
    /// Broker host as given.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// TLS on (false for `--no-tls`).
    pub tls: bool,
    /// Simulated devices.
    pub users: u64,
    /// Users started per second.
    pub spawn_rate: f64,
    /// Publish QoS (0, 1, 2).
    pub qos: u8,
    /// Messages per second per user.
    pub throughput_per_user: f64,
    /// Random bytes per message before encoding.
    pub payload_bytes: usize,
    /// `json` or `raw`.
    pub payload_format: String,
    /// Planned run time in seconds; `None` runs until stopped.
    pub run_time_s: Option<f64>,
    /// Worker threads.
    pub threads: usize,
    /// Run identifier.
    pub run_id: String,
    /// Topic template.
    pub topic: String,
    /// Most unacknowledged publishes per connection.
    pub max_inflight: u16,
}

impl RunParameters {
    /// The parameters of `plan`.
    pub fn from_plan(plan: &RunPlan) -> Self {
        RunParameters {
            host: plan.host.clone(),
            port: plan.addrs.first().map_or(0, |a| a.port()),
            tls: plan.tls.is_some(),
            users: plan.users,
            spawn_rate: plan.spawn_rate,
            qos: plan.qos as u8,
            throughput_per_user: plan.throughput,
            payload_bytes: plan.payload.random_bytes,
            payload_format: format!("{:?}", plan.payload.format).to_lowercase(),
            run_time_s: plan.run_time.map(|d| d.as_secs_f64()),
            threads: plan.threads,
            run_id: plan.run_id.clone(),
            topic: plan.topic_template.clone(),
            max_inflight: plan.session.max_inflight,
        }
    }
}

/// Why the run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// `--run-time` elapsed.
    RunTime,
    /// SIGINT or SIGTERM.
    Signal,
}

/// Everything a report file shows.
#[derive(Debug, Clone)]
pub struct ReportData<'a> {
    /// The run's parameters.
    pub parameters: RunParameters,
    /// Final statistics.
    pub stats: &'a Snapshot,
    /// Per-second series.
    pub series: &'a TimeSeries,
    /// Wall-clock start and end of the run, Unix seconds.
    pub start_unix: f64,
    /// See `start_unix`.
    pub end_unix: f64,
    /// Why it ended.
    pub stopped_by: StopReason,
    /// Optional extra sections by name (e.g. `delivery`, `connections_detail`): each an object
    /// of scalar fields or a `{"columns": [...], "rows": [[...]]}` table; the HTML report shows
    /// them without further code. Empty when no feature adds any.
    pub sections: Vec<(String, Value)>,
    /// `mqload find-limit`'s levels and verdict; `None` for a plain run.
    pub find_limit: Option<super::find_limit::FindLimitReport<'a>>,
}

/// The verdict: `(kind, sentence)`; kind is `mqload_bottleneck`, `failures`, `lost` or
/// `clean`, in that order of precedence (a bottlenecked mqload makes every other figure
/// suspect).
pub fn verdict(stats: &Snapshot) -> (&'static str, String) {
    let lag = &stats.send_lag;
    if lag.is_bottleneck() {
        return (
            "mqload_bottleneck",
            format!(
                "mqload was the bottleneck: its send-lag p99 was {:.2} ms (> {} ms), so response \
                 times include mqload's own delay",
                lag.p99_us as f64 / 1000.0,
                SEND_LAG_BOTTLENECK_US / 1000
            ),
        );
    }
    let t = &stats.total;
    let lost = stats
        .delivery
        .as_ref()
        .and_then(DeliveryStats::loss_sentence);
    if t.num_failures > 0 {
        let failed = format!(
            "{} of {} requests failed ({:.2} %)",
            t.num_failures,
            t.num_requests,
            t.fail_ratio() * 100.0
        );
        return match lost {
            Some(lost) => ("failures", format!("{failed}; {lost}")),
            None => ("failures", failed),
        };
    }
    if let Some(lost) = lost {
        return ("lost", lost);
    }
    (
        "clean",
        format!("clean: {} requests, no failures", t.num_requests),
    )
}

fn percentiles(values: &[u64; 11]) -> Value {
    let map: Map<String, Value> = PERCENTILE_LABELS
        .iter()
        .zip(values)
        .map(|(l, v)| ((*l).to_owned(), json!(v)))
        .collect();
    Value::Object(map)
}

fn row(r: &RowStats) -> Value {
    json!({
        "method": r.method,
        "name": r.name,
        "num_requests": r.num_requests,
        "num_failures": r.num_failures,
        "fail_ratio": r.fail_ratio(),
        "avg_us": r.avg_us,
        "min_us": r.min_us,
        "max_us": r.max_us,
        "median_us": r.median_us,
        "avg_content_length": r.avg_content_length,
        "current_rps": r.current_rps,
        "current_fail_per_sec": r.current_fail_per_sec,
        "total_rps": r.total_rps,
        "total_fail_per_sec": r.total_fail_per_sec,
        "percentiles_us": percentiles(&r.percentiles_us),
    })
}

fn error(e: &ErrorRow) -> Value {
    json!({
        "method": e.method,
        "name": e.name,
        "error": e.error,
        "occurrences": e.occurrences,
        "first_seen_unix": e.first_seen_unix,
        "last_seen_unix": e.last_seen_unix,
    })
}

/// Occurrences per error text over every name, most frequent first.
fn errors_by_kind(errors: &[ErrorRow]) -> Value {
    let mut kinds: Vec<(&str, u64)> = Vec::new();
    for e in errors {
        match kinds.iter_mut().find(|(k, _)| *k == e.error) {
            Some((_, n)) => *n += e.occurrences,
            None => kinds.push((&e.error, e.occurrences)),
        }
    }
    kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    Value::Array(
        kinds
            .into_iter()
            .map(|(error, occurrences)| json!({ "error": error, "occurrences": occurrences }))
            .collect(),
    )
}

fn series(s: &TimeSeries) -> Value {
    let first = s.points.first().map_or(0, |p| p.start_unix);
    let points: Vec<Value> = s
        .points
        .iter()
        .map(|p| {
            let secs = f64::from(p.seconds.max(1));
            json!({
                "t": p.start_unix - first,
                "unix": p.start_unix,
                "seconds": p.seconds,
                "users": p.users,
                "rps": p.total_requests() as f64 / secs,
                "fps": p.total_failures() as f64 / secs,
                "p50_us": p.p50_us,
                "p95_us": p.p95_us,
                "p99_us": p.p99_us,
                "send_lag_p99_us": p.send_lag_p99_us,
                "requests": p.requests,
                "failures": p.failures,
            })
        })
        .collect();
    json!({ "resolution_s": s.resolution_s, "names": s.names, "points": points })
}

/// The report as a JSON value (schema [`SCHEMA`]).
pub fn build(data: &ReportData) -> Value {
    let s = data.stats;
    let (kind, text) = verdict(s);
    let mut report = json!({
        "schema": SCHEMA,
        "mqload_version": env!("CARGO_PKG_VERSION"),
        "parameters": parameters(&data.parameters),
        "run": run_times(data),
        "verdict": { "kind": kind, "text": text },
        "percentile_labels": PERCENTILE_LABELS,
        "stats": {
            "rows": s.rows.iter().map(row).collect::<Vec<_>>(),
            "aggregated": row(&s.total),
        },
        "send_lag": send_lag(&s.send_lag),
        "connections": {
            "connected_at_end": s.users_connected,
            "peak_connected": data.series.points.iter().map(|p| p.users).max().unwrap_or(0),
            "target": s.target_users,
        },
        "errors": s.errors.iter().map(error).collect::<Vec<_>>(),
        "errors_by_kind": errors_by_kind(&s.errors),
        "series": series(data.series),
        "sections": sections(data),
    });
    if let (Some(find_limit), Value::Object(map)) = (&data.find_limit, &mut report) {
        map.insert(
            "find_limit".to_owned(),
            super::find_limit::build(find_limit),
        );
    }
    report
}

/// `parameters`: the run as it was asked for.
fn parameters(p: &RunParameters) -> Value {
    json!({
        "host": p.host,
        "port": p.port,
        "tls": p.tls,
        "users": p.users,
        "spawn_rate": p.spawn_rate,
        "qos": p.qos,
        "throughput_per_user": p.throughput_per_user,
        "payload_bytes": p.payload_bytes,
        "payload_format": p.payload_format,
        "run_time_s": p.run_time_s,
        "threads": p.threads,
        "run_id": p.run_id,
        "topic": p.topic,
        "max_inflight": p.max_inflight,
    })
}

/// `run`: when it started and ended, and what stopped it.
fn run_times(data: &ReportData) -> Value {
    json!({
        "start_unix": data.start_unix,
        "end_unix": data.end_unix,
        "duration_s": (data.end_unix - data.start_unix).max(0.0),
        "stopped_by": match data.stopped_by {
            StopReason::RunTime => "run_time",
            StopReason::Signal => "signal",
        },
    })
}

/// `send_lag`: how late publishes left against their schedule.
fn send_lag(lag: &LagStats) -> Value {
    json!({
        "count": lag.count,
        "p50_us": lag.p50_us,
        "p99_us": lag.p99_us,
        "max_us": lag.max_us,
        "held_back": lag.held_back,
        "held_back_max_us": lag.held_back_max_us,
        "bottleneck_threshold_us": SEND_LAG_BOTTLENECK_US,
        "bottleneck": lag.is_bottleneck(),
    })
}

/// `sections`: the caller's sections, plus `delivery` (with subscribers) and `connects`
/// (when connections were counted).
fn sections(data: &ReportData) -> Map<String, Value> {
    let s = data.stats;
    let mut sections: Map<String, Value> = data.sections.iter().cloned().collect();
    if let Some(d) = &s.delivery {
        sections.insert("delivery".to_owned(), delivery(d));
    }
    let (c, life) = (&s.connects, &s.connections);
    if c.total() > 0 || c.queued > 0 || !life.is_empty() {
        sections.insert(
            "connects".to_owned(),
            json!({
                "connects": life.connects,
                "reconnects": life.reconnects,
                "failed_attempts": life.failed_attempts,
                "drops": life.drops,
                "dup_resent": life.resent,
                "tls_full_handshakes": c.full,
                "tls_resumed_handshakes": c.resumed,
                "queued_for_a_turn": c.queued,
                "longest_queue_wait_us": c.queued_max_us,
            }),
        );
    }
    sections
}

/// The `delivery` section: what the subscribers received against what was sent.
fn delivery(d: &DeliveryStats) -> Value {
    let n = &d.counts;
    json!({
        "subscribers": d.subscribers,
        "sent": n.sent,
        "expected": n.expected,
        "received": n.received,
        "lost": d.lost,
        "duplicates": n.duplicates,
        "reordered": n.reordered,
        "stale": n.stale,
        "untracked": n.untracked,
        "foreign": n.foreign,
        "unparseable": n.unparseable,
    })
}

/// The report as pretty-printed JSON text.
pub fn render(data: &ReportData) -> String {
    // Serializing a `Value` built from plain numbers and strings cannot fail.
    serde_json::to_string_pretty(&build(data)).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::{DeliveryCounts, LagStats, SeriesPoint};

    /// A small run with two rows, one error and three points, for the JSON and HTML tests.
    pub(crate) fn sample() -> (Snapshot, TimeSeries) {
        let mut stats = Snapshot {
            users_connected: 4,
            target_users: 5,
            ..Snapshot::default()
        };
        for (name, n, f) in [("connect", 5, 1), ("publish:1:\"t\"</script>", 300, 0)] {
            stats.rows.push(RowStats {
                method: "MQTT".into(),
                name: name.into(),
                num_requests: n,
                num_failures: f,
                avg_us: 812.5,
                min_us: 100,
                max_us: 9_000,
                median_us: 700,
                percentiles_us: [700, 750, 800, 850, 900, 1000, 1200, 1500, 5000, 9000, 9000],
                ..RowStats::default()
            });
        }
        stats.total.num_requests = 305;
        stats.connects.full = 4;
        stats.connects.resumed = 1;
        stats.connections.reconnects = 2;
        stats.total.num_failures = 1;
        stats.errors.push(ErrorRow {
            method: "MQTT".into(),
            name: "connect".into(),
            error: "refused <b>&\"".into(),
            occurrences: 1,
            first_seen_unix: 1000.5,
            last_seen_unix: 1000.5,
        });
        stats.errors.push(ErrorRow {
            name: "publish".into(),
            error: "timeout".into(),
            occurrences: 3,
            ..ErrorRow::default()
        });
        stats.errors.push(ErrorRow {
            name: "disconnect".into(),
            error: "timeout".into(),
            occurrences: 2,
            ..ErrorRow::default()
        });
        stats.send_lag = LagStats {
            count: 300,
            p50_us: 90,
            p99_us: 400,
            max_us: 900,
            held_back: 2,
            held_back_max_us: 3000,
        };
        let points = (0..3)
            .map(|i| SeriesPoint {
                start_unix: 1000 + i,
                seconds: 1,
                requests: vec![if i == 0 { 5 } else { 0 }, 100],
                failures: vec![if i == 0 { 1 } else { 0 }, 0],
                p50_us: 700,
                p95_us: 1000,
                p99_us: 1500,
                users: 4,
                send_lag_p99_us: 400,
            })
            .collect();
        let series = TimeSeries {
            names: vec!["connect".into(), "disconnect".into()],
            resolution_s: 1,
            points,
        };
        (stats, series)
    }

    pub(crate) fn data<'a>(stats: &'a Snapshot, series: &'a TimeSeries) -> ReportData<'a> {
        ReportData {
            parameters: RunParameters {
                host: "127.0.0.1".into(),
                port: 8883,
                users: 5,
                qos: 1,
                ..RunParameters::default()
            },
            stats,
            series,
            start_unix: 999.9,
            end_unix: 1003.2,
            stopped_by: StopReason::RunTime,
            sections: vec![("delivery".into(), json!({"received": 299, "lost": 1}))],
            find_limit: None,
        }
    }

    #[test]
    fn document_carries_every_part_with_escaped_strings() {
        let (stats, series) = sample();
        let text = render(&data(&stats, &series));
        let v: Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["parameters"]["users"], 5);
        assert_eq!(v["stats"]["rows"][1]["name"], "publish:1:\"t\"</script>");
        assert_eq!(v["stats"]["rows"][1]["percentiles_us"]["99%"], 1500);
        assert_eq!(v["stats"]["aggregated"]["num_failures"], 1);
        assert_eq!(v["errors"][0]["error"], "refused <b>&\"");
        assert_eq!(v["errors_by_kind"][0]["error"], "timeout");
        assert_eq!(
            v["errors_by_kind"][0]["occurrences"], 5,
            "summed over names"
        );
        assert_eq!(v["errors_by_kind"][1]["occurrences"], 1);
        assert_eq!(v["send_lag"]["held_back"], 2);
        assert_eq!(v["connections"]["connected_at_end"], 4);
        assert_eq!(v["connections"]["peak_connected"], 4);
        assert_eq!(v["verdict"]["kind"], "failures");
        assert_eq!(v["series"]["points"].as_array().map(Vec::len), Some(3));
        assert_eq!(v["series"]["points"][2]["t"], 2);
        assert_eq!(v["series"]["points"][0]["rps"], 105.0);
        assert_eq!(v["sections"]["delivery"]["lost"], 1);
        assert_eq!(v["sections"]["connects"]["tls_resumed_handshakes"], 1);
        assert_eq!(v["sections"]["connects"]["longest_queue_wait_us"], 0);
        assert_eq!(v["sections"]["connects"]["reconnects"], 2);
        assert_eq!(v["run"]["stopped_by"], "run_time");
    }

    #[test]
    fn verdict_puts_a_slow_mqload_before_failures() {
        let mut s = Snapshot::default();
        assert_eq!(verdict(&s).0, "clean");
        s.total.num_requests = 10;
        s.total.num_failures = 1;
        assert_eq!(verdict(&s).0, "failures");
        s.send_lag.p99_us = SEND_LAG_BOTTLENECK_US + 1;
        let (kind, text) = verdict(&s);
        assert_eq!(kind, "mqload_bottleneck");
        assert!(text.contains("10.00 ms"), "{text}");
    }

    #[test]
    fn lost_messages_are_a_verdict_of_their_own() {
        let mut s = Snapshot::default();
        let counts = DeliveryCounts {
            sent: 10,
            expected: 10,
            received: 7,
            ..DeliveryCounts::default()
        };
        s.delivery = Some(DeliveryStats::new(1, counts));
        s.total.num_requests = 10;
        assert_eq!(
            verdict(&s),
            (
                "lost",
                "3 of 10 expected messages never reached a subscriber".to_owned()
            )
        );
        s.total.num_failures = 1;
        let (kind, text) = verdict(&s);
        assert_eq!(kind, "failures");
        assert!(
            text.ends_with("; 3 of 10 expected messages never reached a subscriber"),
            "{text}"
        );
        s.total.num_failures = 0;
        s.delivery = Some(DeliveryStats::new(
            1,
            DeliveryCounts {
                received: 10,
                ..counts
            },
        ));
        assert_eq!(verdict(&s).0, "clean");
    }
}
