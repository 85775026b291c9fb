//! The search itself, a state machine with no IO: it asks for a level ([`Step::Run`]), is told
//! the level's figures ([`Search::record`]), and ends with a [`Verdict`].
//!
//! It doubles the offered load from the start until a level breaks (or halves it while the
//! start breaks), then bisects between the highest level that held and the lowest that broke
//! until they are within `precision`, and holds the highest again to confirm it. A
//! confirmation that breaks becomes the new lowest broken level and the bisection goes on
//! below it. A level where mqload itself lagged is run once more (a busy host can stall any
//! process for a moment); lagging twice in a row ends the search: mqload is the bottleneck.

use super::{Judgement, LevelResult, Limits, judge};

/// Most levels one search runs, confirmations included: doubling from 1 msg/s passes 10 M
/// msg/s in 24 levels, and bisection to 5 % takes about 5 more.
pub const MAX_LEVELS: usize = 40;
/// Most confirmations that may fail before the search gives up on a steady answer.
pub const MAX_FAILED_CONFIRMATIONS: u32 = 3;
/// Halving below this fraction of the start ends the search: nothing held.
const LOWEST_FRACTION: f64 = 1.0 / 64.0;

/// How the search moves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SearchConfig {
    /// The first level, messages (or connections) per second.
    pub start_per_s: f64,
    /// The highest level tried, messages (or connections) per second (`--max-rate`; for
    /// connections, also what the open-file limit lets mqload hold open over a level).
    pub max_per_s: Option<f64>,
    /// Stop bisecting when the lowest broken level is within this fraction above the highest
    /// held one (`--precision`, e.g. 0.05).
    pub precision: f64,
    /// What a level must keep.
    pub limits: Limits,
}

/// One level run, with its judgement.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    /// Its figures.
    pub result: LevelResult,
    /// Held, broke, or mqload-bound.
    pub judgement: Judgement,
    /// Whether it re-ran the highest held level to confirm it.
    pub confirmation: bool,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Run a level at this many messages (or connections) per second.
    Run(f64),
    /// The search is over.
    Done(Verdict),
}

/// How the search ended; the indexes are into [`Search::levels`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// `held` held twice (the second time is this index) and `broke` is the lowest level
    /// that broke.
    Found {
        /// The confirming run of the highest level that held.
        held: usize,
        /// The lowest level that broke.
        broke: usize,
    },
    /// `--max-rate` held twice: no limit below it.
    HeldMax {
        /// The confirming run of the maximum.
        held: usize,
    },
    /// mqload's send lag (or, raising connects, its unstarted connects) showed mqload was the
    /// bottleneck at `at`: the broker's limit is above
    /// what this host can offer.
    MqloadLimit {
        /// The level where mqload could not keep up.
        at: usize,
        /// The highest level that held before it, if any.
        held: Option<usize>,
    },
    /// Even the lowest level tried broke.
    NothingHeld {
        /// The lowest level tried.
        lowest: usize,
    },
    /// No steady answer within [`MAX_LEVELS`] or [`MAX_FAILED_CONFIRMATIONS`].
    Unsteady {
        /// The highest level that held, if any.
        held: Option<usize>,
        /// The lowest level that broke, if any.
        broke: Option<usize>,
    },
    /// Stopped by a signal.
    Interrupted {
        /// The highest level that held, if any.
        held: Option<usize>,
        /// The lowest level that broke, if any.
        broke: Option<usize>,
    },
}

/// The capacity search.
#[derive(Debug, Clone)]
pub struct Search {
    config: SearchConfig,
    levels: Vec<Level>,
    /// Highest level that held (and was not contradicted by a failed confirmation).
    held: Option<usize>,
    /// Lowest level that broke.
    broke: Option<usize>,
    /// The next level is a confirmation of `held`.
    confirming: bool,
    failed_confirmations: u32,
    /// The last level was mqload-bound for the first time: run it once more.
    lag_retry: bool,
    verdict: Option<Verdict>,
}

impl Search {
    /// A search that starts at `config.start_per_s`.
    pub fn new(config: SearchConfig) -> Search {
        Search {
            config,
            levels: Vec::new(),
            held: None,
            broke: None,
            confirming: false,
            failed_confirmations: 0,
            lag_retry: false,
            verdict: None,
        }
    }

    /// Every level run so far, in order.
    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    /// The level to run next, or the verdict.
    pub fn step(&self) -> Step {
        if let Some(verdict) = self.verdict {
            return Step::Done(verdict);
        }
        let at = |i: usize| self.levels[i].result.offered_per_s;
        if self.lag_retry
            && let Some(last) = self.levels.last()
        {
            return Step::Run(last.result.offered_per_s);
        }
        let rate = match (self.held, self.broke) {
            _ if self.confirming => self.held.map_or(self.config.start_per_s, at),
            (None, None) => self.config.start_per_s,
            (Some(held), None) => at(held) * 2.0,
            (None, Some(broke)) => at(broke) / 2.0,
            (Some(held), Some(broke)) => (at(held) + at(broke)) / 2.0,
        };
        let rate = round_rate(rate);
        Step::Run(self.config.max_per_s.map_or(rate, |max| rate.min(max)))
    }

    /// Takes the figures of the level [`Search::step`] asked for, judges them, and moves on.
    pub fn record(&mut self, result: LevelResult) {
        if self.verdict.is_some() {
            return;
        }
        let judgement = judge(&self.config.limits, &result);
        let index = self.levels.len();
        let held = judgement.held();
        let mqload_bound = judgement.mqload_bound();
        self.levels.push(Level {
            result,
            judgement,
            confirmation: self.confirming,
        });
        if mqload_bound {
            if !self.lag_retry {
                self.lag_retry = true;
                return;
            }
            self.verdict = Some(Verdict::MqloadLimit {
                at: index,
                held: self.held,
            });
            return;
        }
        self.lag_retry = false;
        if self.confirming {
            self.confirming = false;
            if held {
                self.verdict = Some(match self.broke {
                    Some(broke) => Verdict::Found { held: index, broke },
                    None => Verdict::HeldMax { held: index },
                });
                return;
            }
            self.failed_confirmations += 1;
            self.broke = Some(index);
            self.held = self.highest_held_below(result.offered_per_s);
        } else if held {
            self.held = Some(index);
        } else {
            self.broke = Some(index);
        }
        self.verdict = self.verdict_now();
        self.confirming = self.verdict.is_none() && self.converged();
    }

    /// Ends the search early (Ctrl-C), with what it knows.
    pub fn interrupt(&mut self) {
        if self.verdict.is_none() {
            self.verdict = Some(Verdict::Interrupted {
                held: self.held,
                broke: self.broke,
            });
        }
    }

    /// The verdict once no more level is needed, or `None` to go on.
    fn verdict_now(&self) -> Option<Verdict> {
        let unsteady = Verdict::Unsteady {
            held: self.held,
            broke: self.broke,
        };
        if self.failed_confirmations >= MAX_FAILED_CONFIRMATIONS || self.levels.len() >= MAX_LEVELS
        {
            return Some(unsteady);
        }
        if let (None, Some(broke)) = (self.held, self.broke) {
            let lowest = self.config.start_per_s * LOWEST_FRACTION;
            if self.levels[broke].result.offered_per_s / 2.0 < lowest.max(1.0) {
                return Some(Verdict::NothingHeld { lowest: broke });
            }
        }
        None
    }

    /// Whether the next level should confirm the highest held one: it is within `precision`
    /// of the lowest broken level, or it is `--max-rate`.
    fn converged(&self) -> bool {
        let Some(held) = self.held else {
            return false;
        };
        let held_rate = self.levels[held].result.offered_per_s;
        match self.broke {
            Some(broke) => {
                let broke_rate = self.levels[broke].result.offered_per_s;
                let middle = round_rate((held_rate + broke_rate) / 2.0);
                broke_rate <= held_rate * (1.0 + self.config.precision)
                    || middle >= broke_rate
                    || middle <= held_rate
            }
            None => self.config.max_per_s.is_some_and(|max| held_rate >= max),
        }
    }

    /// The highest level that held (not a confirmation that broke) below `rate`.
    fn highest_held_below(&self, rate: f64) -> Option<usize> {
        self.levels
            .iter()
            .enumerate()
            .filter(|(_, l)| l.judgement.held() && l.result.offered_per_s < rate)
            .max_by(|a, b| {
                a.1.result
                    .offered_per_s
                    .total_cmp(&b.1.result.offered_per_s)
            })
            .map(|(i, _)| i)
    }
}

/// A rate rounded to three significant figures (41,800 rather than 41,796.9), at least 1.
pub fn round_rate(rate: f64) -> f64 {
    if !rate.is_finite() || rate <= 1.0 {
        return 1.0;
    }
    let scale = 10f64.powi(rate.log10().floor() as i32 - 2).max(1.0);
    (rate / scale).round() * scale
}
