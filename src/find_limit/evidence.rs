//! The search's result as a sentence with its evidence: "held 41,800 msg/s for 30 s with p99
//! 3.1 ms; at 46,000 msg/s p99 passed 20 ms (24.3 ms)", or in connections/s for a connect-rate
//! search.

use super::{Breach, Judgement, Level, SearchMode, Verdict};
use crate::guard::thousands;
use crate::stats::SEND_LAG_BOTTLENECK_US;

fn ms(us: u64) -> String {
    format!("{:.1} ms", us as f64 / 1000.0)
}

/// "41,800 msg/s" or "200 connections/s".
pub fn rate(per_s: f64, mode: SearchMode) -> String {
    format!("{} {}", thousands(per_s.round() as i128), mode.unit())
}

/// One broken limit in words: "p99 passed 20.0 ms (24.3 ms)".
pub fn breach_text(breach: &Breach) -> String {
    match *breach {
        Breach::P99 { p99_us, limit_us } => {
            format!("p99 passed {} ({})", ms(limit_us), ms(p99_us))
        }
        Breach::ConnectP99 { p99_us, limit_us } => {
            format!("connect p99 passed {} ({})", ms(limit_us), ms(p99_us))
        }
        Breach::Unanswered { unanswered, due } => format!(
            "{} connects not answered (of {} due)",
            thousands(i128::from(unanswered)),
            thousands(i128::from(due))
        ),
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

/// "held 41,800 msg/s for 30 s with p99 3.1 ms (acked 41,790 msg/s)", or "held 200
/// connections/s for 5 s with connect p99 1.2 ms (connected 200 connections/s)".
fn held_text(level: &Level, mode: SearchMode) -> String {
    let r = &level.result;
    let (p99, done) = match mode {
        SearchMode::Messages => ("p99", "acked"),
        SearchMode::Connects => ("connect p99", "connected"),
    };
    format!(
        "held {} for {:.0} s with {p99} {} ({done} {})",
        rate(r.offered_per_s, mode),
        r.seconds,
        ms(r.p99_us),
        rate(r.acked_per_s, mode)
    )
}

/// Why mqload, not the broker, set a level's pace, in words.
pub fn mqload_bound_text(judgement: &Judgement) -> Option<String> {
    match *judgement {
        Judgement::MqloadBound { send_lag_p99_us } => Some(format!(
            "mqload's send-lag p99 was {} (over {} ms) and the level broke only through that lag",
            ms(send_lag_p99_us),
            SEND_LAG_BOTTLENECK_US / 1000
        )),
        Judgement::MqloadSlowStart { not_started, due } => Some(format!(
            "mqload never started {} of the {} connects due (its own scheduling lag)",
            thousands(i128::from(not_started)),
            thousands(i128::from(due))
        )),
        Judgement::MqloadOutOfResources { failures } => Some(format!(
            "{} connects failed for want of mqload's own local ports or open files",
            thousands(i128::from(failures))
        )),
        Judgement::Held | Judgement::Broke(_) => None,
    }
}

/// "at 46,000 msg/s p99 passed 20.0 ms (24.3 ms)".
fn broke_text(level: &Level, mode: SearchMode) -> String {
    let why = match &level.judgement {
        Judgement::Broke(breaches) => breaches.iter().map(breach_text).collect::<Vec<_>>(),
        Judgement::Held => vec!["nothing broke".to_owned()],
        other => mqload_bound_text(other).into_iter().collect(),
    };
    format!(
        "at {} {}",
        rate(level.result.offered_per_s, mode),
        why.join(", ")
    )
}

/// The verdict as one sentence with its evidence, in the search's unit.
pub fn verdict_sentence(verdict: &Verdict, levels: &[Level], mode: SearchMode) -> String {
    let level = |i: usize| &levels[i];
    let known = |held: Option<usize>, broke: Option<usize>| {
        let held = held.map_or("no level held".to_owned(), |i| {
            format!("the highest load that {}", held_text(level(i), mode))
        });
        let broke = broke.map_or("no level broke".to_owned(), |i| broke_text(level(i), mode));
        format!("{held}; {broke}")
    };
    match *verdict {
        Verdict::Found { held, broke } => format!(
            "{}, twice; {}",
            held_text(level(held), mode),
            broke_text(level(broke), mode)
        ),
        Verdict::HeldMax { held } => format!(
            "{}, twice: no limit up to {}",
            held_text(level(held), mode),
            match mode {
                SearchMode::Messages => "--max-rate",
                SearchMode::Connects =>
                    "the highest rate tried (--max-rate, or the most connections this host can \
                     hold open over a level: its open-file limit)",
            }
        ),
        Verdict::MqloadLimit { at, held } => format!(
            "mqload is the bottleneck, not the broker: at {} {}, so the broker's limit is above \
             what this host can offer; {}",
            rate(level(at).result.offered_per_s, mode),
            mqload_bound_text(&level(at).judgement).unwrap_or_default(),
            held.map_or("no level held before it".to_owned(), |i| {
                format!("the highest load that {}", held_text(level(i), mode))
            })
        ),
        Verdict::NothingHeld { lowest } => {
            format!("no level held: {}", broke_text(level(lowest), mode))
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
