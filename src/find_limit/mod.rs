//! `mqload find-limit`: the capacity search, sans IO. A level's measured figures go in
//! ([`LevelResult`]); the next offered load or the verdict comes out ([`Search`]). The caller
//! (`app::find_limit`) runs each level with the engine and feeds its figures back.

mod evidence;
mod judge;
mod level;
mod search;

pub use evidence::{breach_text, verdict_sentence};
pub use judge::{Breach, HELD_BACK_TOLERANCE, Judgement, Limits, judge};
pub use level::LevelResult;
pub use search::{Level, Search, SearchConfig, Step, Verdict};

#[cfg(test)]
mod tests;
