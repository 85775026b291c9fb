//! mqload: one host behaving like tens of thousands of MQTT-over-TLS devices, to load-test a broker.

pub mod app;
pub mod aws;
pub mod broker;
pub mod cli;
pub mod delivery;
pub mod duration;
pub mod engine;
pub mod exit_code;
pub mod find_limit;
pub mod guard;
pub mod locust;
pub mod metrics;
pub mod mqtt;
pub mod net;
pub mod payload;
pub mod pki;
pub mod plan;
pub mod report;
pub mod reporter;
pub mod scale;
pub mod session;
pub mod signals;
pub mod stages;
pub mod stats;
pub mod threads;
pub mod unix_time;
