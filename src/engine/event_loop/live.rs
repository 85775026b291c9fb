//! Live user changes on one worker thread, ordered through the control channel.

use std::time::Instant;

use super::Shared;
use crate::delivery::MIN_TRACKED_PUBLISHERS;
use crate::engine::conn::{Conn, Phase};
use crate::engine::order::{Control, share, start_time};
use crate::engine::subscriber;
use crate::plan::expand_template;

/// This thread's part of a live (controlled) run.
#[derive(Debug)]
pub(super) struct Live {
    /// This thread's index.
    pub(super) index: usize,
    /// Slots `0..active` are wanted; the others are stopping or stopped.
    pub(super) active: usize,
    /// The last total user count ordered (over all threads).
    count: u64,
    /// This thread runs subscribers ([`Control::SetSubscribers`]), not publishers.
    subscribers: bool,
}

/// Subscriber `j` of a controlled run takes user index `SUBSCRIBER_BASE + j` in the client id
/// template, apart from the publishers' `0..`.
pub const SUBSCRIBER_BASE: u64 = 1_000_000_000;

impl Live {
    /// `active` users already planned (the standalone schedule) or none (a controlled run).
    pub(super) fn new(index: usize, active: usize) -> Live {
        Live {
            index,
            active,
            count: 0,
            subscribers: false,
        }
    }
}

impl Shared<'_> {
    /// Carries out one control message.
    pub(super) fn apply_control(&mut self, conns: &mut Vec<Conn>, control: Control, now: Instant) {
        match control {
            Control::Stop => {
                if self.stop_deadline.is_none() {
                    self.begin_stop(conns, now);
                }
            }
            Control::SetUsers { count, spawn_rate } => {
                if self.stop_deadline.is_none() {
                    self.set_users(conns, count, spawn_rate, now);
                }
            }
            Control::SetSubscribers { count } => {
                if self.stop_deadline.is_none() && self.plan.subscribe.is_some() {
                    self.live.subscribers = true;
                    self.set_users(conns, count, f64::INFINITY, now);
                }
            }
        }
    }

    fn set_users(&mut self, conns: &mut Vec<Conn>, count: u64, spawn_rate: f64, now: Instant) {
        let threads = self.plan.threads;
        let target = share(count, self.live.index, threads);
        let previous = self.live.count;
        for slot in 0..target {
            let user = self.live.index as u64 + slot as u64 * threads as u64;
            let at = start_time(user, previous, spawn_rate, now);
            if slot == conns.len() && self.live.subscribers {
                let user = SUBSCRIBER_BASE + user;
                let client_id =
                    expand_template(&self.plan.client_id_template, user, &self.plan.run_id, "");
                let mut conn = Conn::new(user, client_id, String::new(), at);
                // Publishers of other workers (same run id) are tracked too, up to a limit.
                conn.subscriber = Some(subscriber::new_state(MIN_TRACKED_PUBLISHERS));
                conns.push(conn);
                if let Some(conn) = conns.last_mut() {
                    self.schedule(slot, conn, at);
                }
                continue;
            }
            if slot == conns.len() {
                let client_id =
                    expand_template(&self.plan.client_id_template, user, &self.plan.run_id, "");
                let topic = expand_template(
                    &self.plan.topic_template,
                    user,
                    &self.plan.run_id,
                    &client_id,
                );
                conns.push(Conn::new(user, client_id, topic, at));
                if let Some(conn) = conns.last_mut() {
                    self.schedule(slot, conn, at);
                }
                continue;
            }
            let Some(conn) = conns.get_mut(slot) else {
                continue;
            };
            match conn.phase {
                Phase::Closed => {
                    conn.phase = Phase::Idle;
                    conn.idle_until = at;
                    conn.failures_in_row = 0;
                    conn.drain_until = None;
                    self.closed = self.closed.saturating_sub(1);
                    self.schedule(slot, conn, at);
                }
                Phase::Draining => {
                    // Not disconnected yet: carry on publishing at the plan's next slot.
                    conn.phase = Phase::Connected;
                    conn.drain_until = None;
                    conn.schedule.skip_to(now, self.period);
                    self.drive(slot, conn, now);
                }
                Phase::Idle | Phase::Connecting | Phase::Connected => {}
            }
        }
        self.live.active = target;
        self.live.count = count;
        for (slot, conn) in conns.iter_mut().enumerate().skip(target) {
            match conn.phase {
                Phase::Connected => {
                    conn.phase = Phase::Draining;
                    conn.drain_until = Some(now + self.plan.stop_timeout);
                    self.drive(slot, conn, now);
                }
                Phase::Idle | Phase::Connecting => self.close(conn),
                Phase::Draining | Phase::Closed => {}
            }
        }
    }
}
