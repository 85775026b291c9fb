//! The event loop's slot for one device: the sans-IO [`Device`], its link (a socket with TLS
//! and WebSocket as the plan says, plaintext MQTT to the device), and the loop's own
//! bookkeeping (readiness, timer entry, connect-gate turn).

use super::device::Device;
use crate::net::Link;

/// A device and the socket the loop keeps for it.
#[derive(Debug)]
pub struct Conn {
    /// Every protocol, schedule and lifecycle decision.
    pub device: Device,
    /// Socket (with TLS, and WebSocket framing when asked) while connecting or connected.
    pub transport: Option<Link>,
    /// The socket reported readable and has not been drained since (a short read or `WouldBlock`: the next arrival raises a new edge).
    pub readable: bool,
    /// Tick of the wheel entry that is current for this device.
    pub scheduled_tick: Option<u64>,
    /// Its turn to connect came after waiting at the gate (`--max-connecting`).
    pub admitted: bool,
}

impl Conn {
    /// The loop's slot for `device`, no socket yet.
    pub fn new(device: Device) -> Conn {
        Conn {
            device,
            transport: None,
            readable: false,
            scheduled_tick: None,
            admitted: false,
        }
    }
}
