//! The limits a level must keep (`--slo-p99`, `--slo-failures`, no loss, nothing held back; or,
//! raising the connect rate, `--slo-connect-p99`, `--slo-failures` and every connect answered),
//! and the judgement of one level against them.

use super::{LevelResult, SearchMode};
use crate::stats::SEND_LAG_BOTTLENECK_US;

/// Held-back messages tolerated in a level, as a fraction of its publishes: one message in a
/// thousand, so a single full socket at a scheduling hiccup does not end the search, while a
/// broker that stops taking messages does.
pub const HELD_BACK_TOLERANCE: f64 = 0.001;
/// Connects a connect-rate level may leave unanswered in its window, or mqload may fail to
/// start, as a fraction of those due (plus [`CONNECT_SLACK`]): two in a hundred, so the
/// window's edges (a connect due at the end, answered just after) do not end the search, while
/// a broker that answers fewer connects than are offered does within seconds.
pub const CONNECT_TOLERANCE: f64 = 0.02;
/// Connects tolerated beyond [`CONNECT_TOLERANCE`], for low rates.
const CONNECT_SLACK: u64 = 2;

/// What a level must keep to hold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Highest publish p99 that holds, microseconds (`--slo-p99`); or connect p99
    /// (`--slo-connect-p99`) in a connect-rate search.
    pub p99_us: u64,
    /// Highest failure percentage that holds (`--slo-failures`).
    pub failure_percent: f64,
    /// What the search raises, and so which figures a level is judged by.
    pub mode: SearchMode,
}

/// One limit a level broke.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Breach {
    /// Publish p99 passed `--slo-p99`.
    P99 {
        /// Measured p99, microseconds.
        p99_us: u64,
        /// The limit, microseconds.
        limit_us: u64,
    },
    /// Failures passed `--slo-failures` percent.
    Failures {
        /// Measured percentage.
        percent: f64,
        /// The limit, percent.
        limit: f64,
    },
    /// Subscribers missed messages.
    Lost {
        /// Expected copies never received.
        lost: u64,
    },
    /// Connect p99 passed `--slo-connect-p99`.
    ConnectP99 {
        /// Measured p99, microseconds.
        p99_us: u64,
        /// The limit, microseconds.
        limit_us: u64,
    },
    /// The broker answered fewer connects than fell due in the window, beyond
    /// [`CONNECT_TOLERANCE`].
    Unanswered {
        /// Connects due in the window and not answered in it.
        unanswered: u64,
        /// Connects due in the window.
        due: u64,
    },
    /// The broker did not take messages as fast as they were due (full socket or in-flight
    /// window), beyond [`HELD_BACK_TOLERANCE`].
    HeldBack {
        /// Messages held back.
        held_back: u64,
        /// Publishes in the window.
        published: u64,
    },
}

/// How a level went.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// Every limit kept.
    Held,
    /// These limits broke.
    Broke(Vec<Breach>),
    /// mqload's own send lag passed the bottleneck threshold: its figures are not the broker's.
    MqloadBound {
        /// mqload's send-lag p99, microseconds.
        send_lag_p99_us: u64,
    },
    /// mqload did not start the connects as they fell due (its own scheduling lag): the
    /// broker never saw the offered rate.
    MqloadSlowStart {
        /// Connects due before the level stopped that mqload never started.
        not_started: u64,
        /// Connects due before the level stopped.
        due: u64,
    },
    /// Connects failed because this host ran out of local ports or open files: mqload's
    /// limit, not the broker's.
    MqloadOutOfResources {
        /// Connects that failed so in the window.
        failures: u64,
    },
}

impl Judgement {
    /// Whether every limit kept.
    pub fn held(&self) -> bool {
        matches!(self, Judgement::Held)
    }

    /// Whether mqload, not the broker, set the level's pace.
    pub fn mqload_bound(&self) -> bool {
        matches!(
            self,
            Judgement::MqloadBound { .. }
                | Judgement::MqloadSlowStart { .. }
                | Judgement::MqloadOutOfResources { .. }
        )
    }

    /// The short word of the JSON rows: `held`, `broke` or `mqload_limit`.
    pub fn word(&self) -> &'static str {
        match self {
            Judgement::Held => "held",
            Judgement::Broke(_) => "broke",
            Judgement::MqloadBound { .. }
            | Judgement::MqloadSlowStart { .. }
            | Judgement::MqloadOutOfResources { .. } => "mqload_limit",
        }
    }
}

/// Judges one level. A broker that held messages back did not take what mqload sent, so it set
/// the pace. Otherwise, when mqload's own send lag passed its bottleneck threshold and a p99
/// breach would be gone without that lag (p99 minus the send-lag p99 within the limit), the
/// breach is mqload's, not the broker's. A level that kept every limit with mqload's lag in its
/// latency held: the broker took the whole load. (A message that waited for a full in-flight
/// window can show as send lag rather than held back when no wakeup fell between its due time
/// and the ack that freed the window; the p99 test keeps such late acks the broker's.)
pub fn judge(limits: &Limits, level: &LevelResult) -> Judgement {
    if limits.mode == SearchMode::Connects {
        return judge_connects(limits, level);
    }
    let mut breaches = Vec::new();
    let stalled = level.published == 0 && level.offered_per_s > 0.0;
    let held_back = level.held_back as f64 > level.published as f64 * HELD_BACK_TOLERANCE;
    if level.p99_us > limits.p99_us {
        let lagging = level.send_lag_p99_us > SEND_LAG_BOTTLENECK_US;
        let ours = level.p99_us.saturating_sub(level.send_lag_p99_us) <= limits.p99_us;
        if lagging && ours && !held_back && !stalled {
            return Judgement::MqloadBound {
                send_lag_p99_us: level.send_lag_p99_us,
            };
        }
        breaches.push(Breach::P99 {
            p99_us: level.p99_us,
            limit_us: limits.p99_us,
        });
    }
    let percent = level.failure_percent();
    if percent > limits.failure_percent {
        breaches.push(Breach::Failures {
            percent,
            limit: limits.failure_percent,
        });
    }
    if level.lost > 0 {
        breaches.push(Breach::Lost { lost: level.lost });
    }
    if held_back || stalled {
        // `stalled`: nothing completed at all, which no other limit catches while every
        // message is still waiting.
        breaches.push(Breach::HeldBack {
            held_back: level.held_back,
            published: level.published,
        });
    }
    if breaches.is_empty() {
        Judgement::Held
    } else {
        Judgement::Broke(breaches)
    }
}

/// Whether `count` of `of` passes [`CONNECT_TOLERANCE`] (and [`CONNECT_SLACK`]).
fn over_tolerance(count: u64, of: u64) -> bool {
    count > CONNECT_SLACK && count as f64 > of as f64 * CONNECT_TOLERANCE
}

/// Judges one connect-rate level. Each level offers its connects open-loop (connect `i` falls
/// due at `i / rate` whatever the broker answered), so a broker slower than the rate shows as
/// a growing backlog: connect p99 climbs and connects stay unanswered. When mqload itself did
/// not start the connects that fell due (more than [`CONNECT_TOLERANCE`] never began before
/// the level stopped), the broker never saw the offered rate: the level is mqload's, whatever
/// else it shows. So is a level where connects failed for want of local ports or open files.
pub fn judge_connects(limits: &Limits, level: &LevelResult) -> Judgement {
    if level.local_failures > 0 {
        return Judgement::MqloadOutOfResources {
            failures: level.local_failures,
        };
    }
    if over_tolerance(level.not_started, level.due_in_level) {
        return Judgement::MqloadSlowStart {
            not_started: level.not_started,
            due: level.due_in_level,
        };
    }
    let mut breaches = Vec::new();
    if level.p99_us > limits.p99_us {
        breaches.push(Breach::ConnectP99 {
            p99_us: level.p99_us,
            limit_us: limits.p99_us,
        });
    }
    let percent = level.failure_percent();
    if percent > limits.failure_percent {
        breaches.push(Breach::Failures {
            percent,
            limit: limits.failure_percent,
        });
    }
    let due = (level.offered_per_s * level.seconds).round() as u64;
    if over_tolerance(level.unanswered, due) {
        breaches.push(Breach::Unanswered {
            unanswered: level.unanswered,
            due,
        });
    }
    if breaches.is_empty() {
        Judgement::Held
    } else {
        Judgement::Broke(breaches)
    }
}
