//! The capacity search in the JSON report (`find_limit`): the verdict with its evidence, the
//! limits, and one row per level (offered and acked msg/s, p50/p99, what broke; or, raising the
//! connect rate, offered and connected connections/s, connect p50/p99, connects unanswered),
//! which the HTML page draws as latency and achieved rate against offered load.

use serde_json::{Value, json};

use crate::find_limit::{CONNECT_TOLERANCE, HELD_BACK_TOLERANCE, SearchMode};
use crate::find_limit::{Judgement, Level, Limits, Verdict, breach_text, verdict_sentence};
use crate::stats::SEND_LAG_BOTTLENECK_US;

/// What `mqload find-limit` adds to its report.
#[derive(Debug, Clone, Copy)]
pub struct FindLimitReport<'a> {
    /// Every level run, in order.
    pub levels: &'a [Level],
    /// How the search ended.
    pub verdict: Verdict,
    /// The limits each level was judged against.
    pub limits: Limits,
}

fn row(number: usize, level: &Level, mode: SearchMode) -> Value {
    let r = &level.result;
    let broke: Vec<String> = match &level.judgement {
        Judgement::Held => Vec::new(),
        Judgement::Broke(breaches) => breaches.iter().map(breach_text).collect(),
        Judgement::MqloadBound { send_lag_p99_us } => vec![format!(
            "mqload's send-lag p99 {:.1} ms passed {} ms",
            *send_lag_p99_us as f64 / 1000.0,
            SEND_LAG_BOTTLENECK_US / 1000
        )],
        Judgement::MqloadSlowStart { not_started, due } => vec![format!(
            "mqload never started {not_started} of {due} connects due"
        )],
        Judgement::MqloadOutOfResources { failures } => vec![format!(
            "{failures} connects failed for want of mqload's local ports or open files"
        )],
    };
    let mut row = json!({
        "level": number,
        "offered_per_s": r.offered_per_s,
        "achieved_per_s": r.acked_per_s,
        "seconds": r.seconds,
        "p50_us": r.p50_us,
        "p99_us": r.p99_us,
        "requests": r.requests,
        "failures": r.failures,
        "failure_percent": r.failure_percent(),
        "outcome": level.judgement.word(),
        "broke": broke,
        "confirmation": level.confirmation,
    });
    let own = match mode {
        SearchMode::Messages => json!({
            "offered_messages_per_s": r.offered_per_s,
            "acked_messages_per_s": r.acked_per_s,
            "published": r.published,
            "held_back": r.held_back,
            "lost": r.lost,
            "send_lag_p99_us": r.send_lag_p99_us,
        }),
        SearchMode::Connects => json!({
            "offered_connections_per_s": r.offered_per_s,
            "connected_per_s": r.acked_per_s,
            "answered": r.published,
            "unanswered": r.unanswered,
            "not_started": r.not_started,
            "due_in_level": r.due_in_level,
            "local_failures": r.local_failures,
        }),
    };
    if let (Value::Object(row), Value::Object(own)) = (&mut row, own) {
        row.extend(own);
    }
    row
}

/// The `find_limit` object of the report.
pub fn build(report: &FindLimitReport) -> Value {
    let held = report.verdict.held().and_then(|i| report.levels.get(i));
    let mode = report.limits.mode;
    let limit = held.map(|l| l.result.offered_per_s);
    let mut out = json!({
        "search": mode.word(),
        "unit": mode.unit(),
        "verdict": {
            "kind": report.verdict.word(),
            "text": verdict_sentence(&report.verdict, report.levels, mode),
        },
        "limit_per_s": limit,
        "slo_p99_us": report.limits.p99_us,
        "slo_failure_percent": report.limits.failure_percent,
        "levels": report
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| row(i + 1, l, mode))
            .collect::<Vec<_>>(),
    });
    let own = match mode {
        SearchMode::Messages => json!({
            "limit_messages_per_s": limit,
            "held_back_tolerance": HELD_BACK_TOLERANCE,
            "send_lag_bottleneck_us": SEND_LAG_BOTTLENECK_US,
        }),
        SearchMode::Connects => json!({
            "limit_connections_per_s": limit,
            "unanswered_tolerance": CONNECT_TOLERANCE,
        }),
    };
    if let (Value::Object(out), Value::Object(own)) = (&mut out, own) {
        out.extend(own);
    }
    out
}
