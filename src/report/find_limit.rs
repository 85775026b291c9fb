//! The capacity search in the JSON report (`find_limit`): the verdict with its evidence, the
//! limits, and one row per level (offered and acked msg/s, p50/p99, what broke), which the
//! HTML page draws as latency and acked msg/s against offered load.

use serde_json::{Value, json};

use crate::find_limit::HELD_BACK_TOLERANCE;
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

fn row(number: usize, level: &Level) -> Value {
    let r = &level.result;
    let broke: Vec<String> = match &level.judgement {
        Judgement::Held => Vec::new(),
        Judgement::Broke(breaches) => breaches.iter().map(breach_text).collect(),
        Judgement::MqloadBound { send_lag_p99_us } => vec![format!(
            "mqload's send-lag p99 {:.1} ms passed {} ms",
            *send_lag_p99_us as f64 / 1000.0,
            SEND_LAG_BOTTLENECK_US / 1000
        )],
    };
    json!({
        "level": number,
        "offered_messages_per_s": r.offered_per_s,
        "acked_messages_per_s": r.acked_per_s,
        "seconds": r.seconds,
        "p50_us": r.p50_us,
        "p99_us": r.p99_us,
        "requests": r.requests,
        "failures": r.failures,
        "failure_percent": r.failure_percent(),
        "published": r.published,
        "held_back": r.held_back,
        "lost": r.lost,
        "send_lag_p99_us": r.send_lag_p99_us,
        "outcome": level.judgement.word(),
        "broke": broke,
        "confirmation": level.confirmation,
    })
}

/// The `find_limit` object of the report.
pub fn build(report: &FindLimitReport) -> Value {
    let held = report.verdict.held().and_then(|i| report.levels.get(i));
    json!({
        "verdict": {
            "kind": report.verdict.word(),
            "text": verdict_sentence(&report.verdict, report.levels),
        },
        "limit_messages_per_s": held.map(|l| l.result.offered_per_s),
        "slo_p99_us": report.limits.p99_us,
        "slo_failure_percent": report.limits.failure_percent,
        "held_back_tolerance": HELD_BACK_TOLERANCE,
        "send_lag_bottleneck_us": SEND_LAG_BOTTLENECK_US,
        "levels": report
            .levels
            .iter()
            .enumerate()
            .map(|(i, l)| row(i + 1, l))
            .collect::<Vec<_>>(),
    })
}
