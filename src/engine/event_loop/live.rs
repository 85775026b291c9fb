//! Live user changes on one worker thread, ordered through the control channel.

use std::time::{Duration, Instant};

use super::Shared;
use super::drive::Wake;
use crate::delivery::MIN_TRACKED_PUBLISHERS;
use crate::engine::conn::Conn;
use crate::engine::device::{Device, Phase};
use crate::engine::order::{Control, share, start_time};
use crate::plan::expand_template;

/// This thread's part of a live (controlled) run.
#[derive(Debug)]
pub(super) struct Live {
    /// This thread's index.
    pub(super) index: usize,
    /// The last total user count ordered (over all threads).
    count: u64,
    /// This thread runs subscribers ([`Control::SetSubscribers`]), not publishers.
    subscribers: bool,
}

/// The time between two messages at `per_user` msg/s (`None` for a rate that is not positive).
fn period_of(per_user: f64) -> Option<Duration> {
    if !(per_user.is_finite() && per_user > 0.0) {
        return None;
    }
    Some(Duration::from_nanos(
        (1e9 / per_user).round().max(1.0) as u64
    ))
}

/// Subscriber `j` of a controlled run takes user index `SUBSCRIBER_BASE + j` in the client id
/// template, apart from the publishers' `0..`.
pub const SUBSCRIBER_BASE: u64 = 1_000_000_000;

impl Live {
    /// Thread `index`'s part, no users ordered yet.
    pub(super) fn new(index: usize) -> Live {
        Live {
            index,
            count: 0,
            subscribers: false,
        }
    }
}

impl Shared<'_> {
    /// Carries out one control message.
    pub(super) fn apply_control(&mut self, conns: &mut Vec<Conn>, control: Control, now: Instant) {
        if self.env.stop_deadline.is_some() {
            return;
        }
        match control {
            Control::Stop => self.begin_stop(conns, now),
            Control::SetUsers { count, spawn_rate } => {
                self.set_users(conns, count, spawn_rate, now);
            }
            Control::SetRate { per_user } => self.set_rate(conns, per_user, now),
            Control::SetSubscribers { count } => {
                if self.env.plan.subscribe.is_some() {
                    self.live.subscribers = true;
                    self.set_users(conns, count, f64::INFINITY, now);
                }
            }
        }
    }

    /// This thread's share of `count` users: new ones start on the spawn schedule, stopped
    /// ones start again, and the ones beyond the share drain and stop.
    fn set_users(&mut self, conns: &mut Vec<Conn>, count: u64, spawn_rate: f64, now: Instant) {
        let threads = self.env.plan.threads;
        let target = share(count, self.live.index, threads);
        let previous = self.live.count;
        // Users below the previous share are wanted (and never closed) already: only the
        // slots between the two shares change, so frequent orders (`--stages`) stay cheap.
        let previous_share = share(previous, self.live.index, threads);
        for slot in previous_share.min(target)..target {
            let user = self.live.index as u64 + slot as u64 * threads as u64;
            let at = start_time(user, previous, spawn_rate, now);
            if slot == conns.len() {
                conns.push(Conn::new(self.new_device(user, at)));
                if let Some(conn) = conns.last_mut() {
                    self.schedule(slot, conn, at);
                }
                continue;
            }
            let Some(conn) = conns.get_mut(slot) else {
                continue;
            };
            let before = conn.device.phase();
            if conn.device.want(at, now, &mut self.env) {
                self.drive(slot, conn, now);
            } else if before == Phase::Closed {
                // Started again: as a new device, on the spawn schedule.
                self.settle(slot, conn, before, now, Wake::At(at));
            }
        }
        self.live.count = count;
        let removed = previous_share.saturating_sub(target);
        for (slot, conn) in conns.iter_mut().enumerate().skip(target).take(removed) {
            let before = conn.device.phase();
            if conn.device.unwant(now, &mut self.env) {
                self.drive(slot, conn, now);
            } else {
                self.settle(slot, conn, before, now, Wake::Never);
            }
        }
    }

    /// Every publisher of this thread publishes `per_user` msg/s from `now`: a new absolute
    /// plan from this instant; the connected ones are woken for their new next slot.
    fn set_rate(&mut self, conns: &mut [Conn], per_user: f64, now: Instant) {
        let Some(new) = period_of(per_user) else {
            return;
        };
        let old = self.env.period;
        if new == old {
            return;
        }
        self.env.period = new;
        for (slot, conn) in conns.iter_mut().enumerate() {
            conn.device.rate_changed(now, old, new);
            let phase = conn.device.phase();
            if phase == Phase::Connected {
                self.settle(slot, conn, phase, now, Wake::Planned);
            }
        }
    }

    /// User `user` of a controlled run, first connecting at `at`.
    fn new_device(&self, user: u64, at: Instant) -> Device {
        let plan = self.env.plan;
        if self.live.subscribers {
            let user = SUBSCRIBER_BASE + user;
            let client_id = expand_template(&plan.client_id_template, user, &plan.run_id, "");
            // Publishers of other workers (same run id) are tracked too, up to a limit.
            return Device::subscriber(user, client_id, at, MIN_TRACKED_PUBLISHERS);
        }
        let client_id = expand_template(&plan.client_id_template, user, &plan.run_id, "");
        let topic = expand_template(&plan.topic_template, user, &plan.run_id, &client_id);
        Device::new(user, client_id, topic, at)
    }
}
