//! A published message as the broker holds it: one copy shared by every subscriber it goes to.
//! Its own file so the hub (routing) and the session (delivery) both use it without
//! importing each other.

use crate::mqtt::QoS;

/// A message on its way to subscribers (shared by all of them).
#[derive(Debug)]
pub struct Message {
    /// Topic name.
    pub topic: Box<str>,
    /// Payload.
    pub payload: Box<[u8]>,
    /// QoS it was published with.
    pub qos: QoS,
}
