//! The search's result as a sentence with its evidence: "held 41,800 msg/s for 30 s with p99
//! 3.1 ms; at 46,000 msg/s p99 passed 20 ms (24.3 ms)".

use super::{Breach, Judgement, Level, Verdict};
use crate::guard::thousands;
use crate::stats::SEND_LAG_BOTTLENECK_US;

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

fn rate(per_s: f64) -> String {
    format!("{} msg/s", thousands(per_s.round() as i128))
}

/// One broken limit in words: "p99 passed 20.0 ms (24.3 ms)".
pub fn breach_text(breach: &Breach) -> String {
    match *breach {
        Breach::P99 { p99_us, limit_us } => {
            format!("p99 passed {} ({})", ms(limit_us), ms(p99_us))
        }
        Breach::Failures { percent, limit } => {
            format!("failures passed {limit} % ({percent:.2} %)")
        }
        Breach::Lost { lost } => {
            format!("subscribers lost {} messages", thousands(i128::from(lost)))
        }
        Breach::HeldBack {
            published: 0,
            held_back,
        } => format!(
            "the broker completed no publish ({} held back)",
            thousands(i128::from(held_back))
        ),
        Breach::HeldBack {
            held_back,
            published,
        } => format!(
            "the broker held back {} messages (of {} published)",
            thousands(i128::from(held_back)),
            thousands(i128::from(published))
        ),
    }
}

/// "held 41,800 msg/s for 30 s with p99 3.1 ms".
fn held_text(level: &Level) -> String {
    let r = &level.result;
    format!(
        "held {} for {:.0} s with p99 {} (acked {})",
        rate(r.offered_per_s),
        r.seconds,
        ms(r.p99_us),
        rate(r.acked_per_s)
    )
}

/// "at 46,000 msg/s p99 passed 20.0 ms (24.3 ms)".
fn broke_text(level: &Level) -> String {
    let why = match &level.judgement {
        Judgement::Broke(breaches) => breaches.iter().map(breach_text).collect::<Vec<_>>(),
        Judgement::Held => vec!["nothing broke".to_owned()],
        Judgement::MqloadBound { send_lag_p99_us } => {
            vec![format!(
                "mqload's send-lag p99 was {}",
                ms(*send_lag_p99_us)
            )]
        }
    };
    format!("at {} {}", rate(level.result.offered_per_s), why.join(", "))
}

/// The verdict as one sentence with its evidence.
pub fn verdict_sentence(verdict: &Verdict, levels: &[Level]) -> String {
    let level = |i: usize| &levels[i];
    let known = |held: Option<usize>, broke: Option<usize>| {
        let held = held.map_or("no level held".to_owned(), |i| {
            format!("the highest load that {}", held_text(level(i)))
        });
        let broke = broke.map_or("no level broke".to_owned(), |i| broke_text(level(i)));
        format!("{held}; {broke}")
    };
    match *verdict {
        Verdict::Found { held, broke } => format!(
            "{}, twice; {}",
            held_text(level(held)),
            broke_text(level(broke))
        ),
        Verdict::HeldMax { held } => format!(
            "{}, twice: no limit up to --max-rate",
            held_text(level(held))
        ),
        Verdict::MqloadLimit { at, held } => format!(
            "mqload is the bottleneck, not the broker: at {} its send-lag p99 was {} (over {} \
             ms) and the level broke only through that lag, so the broker's limit is above what \
             this host can offer; {}",
            rate(level(at).result.offered_per_s),
            ms(level(at).result.send_lag_p99_us),
            SEND_LAG_BOTTLENECK_US / 1000,
            held.map_or("no level held before it".to_owned(), |i| {
                format!("the highest load that {}", held_text(level(i)))
            })
        ),
        Verdict::NothingHeld { lowest } => {
            format!("no level held: {}", broke_text(level(lowest)))
        }
        Verdict::Unsteady { held, broke } => {
            format!("no steady answer: {}", known(held, broke))
        }
        Verdict::Interrupted { held, broke } => {
            format!("stopped before the search ended: {}", known(held, broke))
        }
    }
}

impl Verdict {
    /// The short word of the JSON report: `found`, `held_max`, `mqload_limit`,
    /// `nothing_held`, `unsteady` or `interrupted`.
    pub fn word(&self) -> &'static str {
        match self {
            Verdict::Found { .. } => "found",
            Verdict::HeldMax { .. } => "held_max",
            Verdict::MqloadLimit { .. } => "mqload_limit",
            Verdict::NothingHeld { .. } => "nothing_held",
            Verdict::Unsteady { .. } => "unsteady",
            Verdict::Interrupted { .. } => "interrupted",
        }
    }

    /// The level whose load is the answer (the highest that held), if any.
    pub fn held(&self) -> Option<usize> {
        match *self {
            Verdict::Found { held, .. } | Verdict::HeldMax { held } => Some(held),
            Verdict::MqloadLimit { held, .. }
            | Verdict::Unsteady { held, .. }
            | Verdict::Interrupted { held, .. } => held,
            Verdict::NothingHeld { .. } => None,
        }
    }
}
