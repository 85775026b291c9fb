//! `mqload find-limit`: the capacity search (of msg/s, or of connections/s), sans IO. A level's measured figures go in
//! ([`LevelResult`]); the next offered load or the verdict comes out ([`Search`]). The caller
//! (`app::find_limit`) runs each level with the engine and feeds its figures back.

mod evidence;
mod judge;
mod level;
mod mode;
mod search;

pub use evidence::{breach_text, mqload_bound_text, verdict_sentence};
pub use judge::{
    Breach, CONNECT_TOLERANCE, HELD_BACK_TOLERANCE, Judgement, Limits, judge, judge_connects,
};
pub use level::LevelResult;
pub use mode::SearchMode;
pub use search::{Level, Search, SearchConfig, Step, Verdict};

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_connects;
