//! mqload: one host behaving like tens of thousands of MQTT-over-TLS devices, to load-test a broker.

pub mod mqtt;
pub mod payload;
pub mod report;
pub mod stats;
