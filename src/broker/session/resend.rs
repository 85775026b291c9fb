//! A resumed session's unacknowledged deliveries, sent again one at a time as the
//! connection has room (not all into the output at once: up to [`super::MAX_INFLIGHT`]
//! messages of up to the largest packet each).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use super::{Encoded, ServerSession, Suspended};
use crate::broker::message::Message;
use crate::mqtt::QoS;

/// Which entries of [`ServerSession::inflight`] still wait to be sent again: `left` of
/// them, from index `at` on (later entries are new deliveries, already sent once here).
#[derive(Debug, Default, Clone, Copy)]
pub struct Resend {
    at: usize,
    left: usize,
}

impl ServerSession {
    /// Takes up a stored session's state (MQTT-4.4.0-1); its unacknowledged deliveries go
    /// out again through [`ServerSession::resend_next`]. Returns what (MQTT 5) the Receive
    /// Maximum held back, never sent yet, to queue behind them.
    pub fn resume(&mut self, suspended: Suspended) -> VecDeque<(Arc<Message>, QoS, bool)> {
        self.resend = Resend {
            at: 0,
            left: suspended.inflight.len(),
        };
        self.inflight = suspended.inflight;
        self.next_packet_id = suspended.next_packet_id.max(1);
        self.qos2_pending = suspended.qos2_pending;
        suspended.waiting
    }

    /// Whether unacknowledged deliveries of a resumed session wait to be sent again.
    pub fn resending(&self) -> bool {
        self.resend.left > 0
    }

    /// Sends the next unacknowledged delivery of a resumed session again: the PUBLISH with
    /// DUP and its original packet id, or PUBREL for one already received. `false` when
    /// none is left.
    pub fn resend_next(&mut self, out: &mut Vec<u8>, now: Instant) -> bool {
        let at = self.resend.at;
        let Some(sent) = self.inflight.get(at).filter(|_| self.resend.left > 0) else {
            self.resend = Resend::default();
            return false;
        };
        self.resend.left -= 1;
        if sent.received {
            self.put_pubrel(sent.id, out);
            self.resend.at += 1;
            return true;
        }
        let (message, qos, id) = (Arc::clone(&sent.message), sent.qos, sent.id);
        // Sent once already, so it encodes; one that did not, or is too large for the
        // client's new connection, is not kept waiting for an ack.
        match self.encode_delivery(&message, qos, false, true, id, out, now) {
            Encoded::Written => self.resend.at += 1,
            _ => {
                self.inflight.remove(at);
            }
        }
        true
    }

    /// Forgets the unacknowledged delivery at `at` (its exchange ended), keeping the
    /// resend position on the same entries.
    pub(in crate::broker) fn forget_inflight(&mut self, at: usize) {
        if self.inflight.remove(at).is_none() {
            return;
        }
        if at < self.resend.at {
            self.resend.at -= 1;
        } else if at < self.resend.at + self.resend.left {
            self.resend.left -= 1;
        }
    }
}
