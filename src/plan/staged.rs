//! `--stages`: a run planned for the profile's peak users, carrying the profile.

use super::error::PlanError;
use super::{RunPlan, Target, positive};
use crate::cli::Cli;
use crate::stages::{self, Profile};

/// `--stages`: the plan for the profile's peak users, carrying the profile; the run lasts the
/// profile unless `--run-time` says otherwise (shorter cuts it, longer holds its last target).
pub(super) fn staged(cli: &Cli, target: Option<&Target>) -> Result<RunPlan, PlanError> {
    let text = cli.stages.as_deref().unwrap_or_default();
    let stages = stages::parse(text).map_err(PlanError::Stages)?;
    let given = |id: &str| cli.given.iter().any(|g| g == id);
    let conflicts = [
        (
            given("users"),
            "users",
            "the profile sets the users; drop --users",
        ),
        (
            cli.subscribers > 0,
            "subscribers",
            "a profile runs publishers only; run the subscribers in a second mqload (-u 0 --subscribers N, same --run-id)",
        ),
        (
            cli.reset_stats,
            "reset-stats",
            "a profile has no end of spawning to reset at; drop --reset-stats",
        ),
        (
            cli.worker,
            "worker",
            "a Locust master sets the load of its workers; drop --stages",
        ),
    ];
    if let Some((_, option, fix)) = conflicts.into_iter().find(|c| c.0) {
        return Err(PlanError::StagesConflict { option, fix });
    }
    let spawn_rate = given("spawn_rate").then_some(positive("spawn-rate", cli.spawn_rate)?);
    let throughput = positive("throughput", cli.throughput)?;
    let profile = Profile::new(stages, throughput, spawn_rate);
    let mut peak = cli.clone();
    peak.stages = None;
    peak.users = profile.peak_users();
    let mut plan = RunPlan::from_cli_with_target(&peak, target)?;
    if plan.run_time.is_none() {
        plan.run_time = Some(profile.total());
    }
    plan.stages = Some(profile);
    Ok(plan)
}
