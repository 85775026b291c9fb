//! mosquitto's `protocol websockets` listeners for the WebSocket tests (`mod
//! websocket_listeners;` beside `mod common;`).

use std::fs::OpenOptions;
use std::io::Write;

use crate::common::{self, Broker, Pki};

/// Appends two WebSocket listeners on free loopback ports to the broker's config, plain
/// and TLS (the broker's certificate, no client certificate: AWS IoT's WebSocket clients
/// authenticate by signature), and restarts it. `socket_domain ipv4` keeps libwebsockets
/// on 127.0.0.1 (without it, mosquitto 2.0.11's websockets listener binds every interface).
pub fn add_websocket_listeners(broker: &mut Broker, pki: &Pki) -> (u16, u16) {
    let plain = common::free_port();
    let tls = common::free_port();
    let mut conf = OpenOptions::new()
        .append(true)
        .open(broker.conf_path())
        .expect("open mosquitto.conf");
    writeln!(
        conf,
        "\nlistener {plain} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n\
         listener {tls} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets\n\
         certfile {cert}\nkeyfile {key}",
        cert = pki.broker_cert.display(),
        key = pki.broker_key.display(),
    )
    .expect("append the websockets listeners");
    broker.restart();
    (plain, tls)
}
