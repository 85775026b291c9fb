//! The sans-IO WebSocket codec against a real server: mosquitto's `protocol websockets`
//! listener, driven through a plain blocking `TcpStream`. The upgrade, a CONNECT/CONNACK,
//! QoS 1 PUBLISHes (one in a single frame, one fragmented) that mosquitto_sub on the plain
//! port must see, a ping answered by a pong, and a clean close.

mod common;

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Broker, Pki, Subscriber};
use mqload::net::websocket::{
    ClientHandshake, Control, FrameDecoder, FramesFrom, Opcode, UpgradeRequest, encode_binary,
    encode_close, encode_frame,
};

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const TOPIC: &str = "ws/mqload/test";

/// Appends a WebSocket listener on a free loopback port to the broker's config and
/// restarts it. `socket_domain ipv4` keeps libwebsockets on 127.0.0.1 (without it,
/// mosquitto 2.0.11's websockets listener binds every interface).
fn add_websocket_listener(broker: &mut Broker) -> u16 {
    let port = common::free_port();
    let mut conf = OpenOptions::new()
        .append(true)
        .open(broker.conf_path())
        .expect("open mosquitto.conf");
    writeln!(
        conf,
        "\nlistener {port} 127.0.0.1\nsocket_domain ipv4\nprotocol websockets"
    )
    .expect("append the websockets listener");
    broker.restart();
    port
}

/// MQTT 3.1.1 CONNECT: clean session, keep-alive 30 s, client id `id`.
fn connect_packet(id: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 30];
    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
    body.extend_from_slice(id.as_bytes());
    with_header(0x10, body)
}

/// MQTT 3.1.1 PUBLISH at QoS 1.
fn publish_packet(topic: &str, packet_id: u16, payload: &[u8]) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic.as_bytes());
    body.extend_from_slice(&packet_id.to_be_bytes());
    body.extend_from_slice(payload);
    with_header(0x32, body)
}

fn with_header(first_byte: u8, body: Vec<u8>) -> Vec<u8> {
    assert!(
        body.len() < 128,
        "test packets fit a one-byte remaining length"
    );
    let mut packet = vec![first_byte, body.len() as u8];
    packet.extend(body);
    packet
}

/// A WebSocket client over a blocking stream: everything it reads goes through the codec.
struct Client {
    stream: TcpStream,
    decoder: FrameDecoder,
    mqtt: Vec<u8>,
    controls: Vec<(Control, Vec<u8>)>,
    pending: Vec<u8>,
}

impl Client {
    fn open(port: u16) -> Client {
        let mut stream = None;
        common::wait_until(IO_TIMEOUT, || {
            stream = TcpStream::connect(("127.0.0.1", port)).ok();
            stream.is_some()
        });
        let mut stream = stream.expect("mosquitto's websockets listener accepts");
        stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        let host = format!("127.0.0.1:{port}");
        let mut request = Vec::new();
        let handshake = ClientHandshake::start(
            &UpgradeRequest {
                host: &host,
                path_and_query: "/mqtt",
                key: rand::random(),
                extra_headers: &[("x-amz-customauthorizer-name", "mqload-test")],
            },
            &mut request,
        )
        .expect("a valid upgrade request");
        stream.write_all(&request).expect("send the upgrade");
        let mut received = Vec::new();
        let head_len = loop {
            if let Some(head_len) = handshake
                .read_response(&received)
                .expect("mosquitto accepts the upgrade")
            {
                break head_len;
            }
            let mut buf = [0u8; 1024];
            let n = stream.read(&mut buf).expect("read the upgrade answer");
            assert!(n > 0, "mosquitto closed during the upgrade");
            received.extend_from_slice(&buf[..n]);
        };
        Client {
            stream,
            decoder: FrameDecoder::new(FramesFrom::Server, 1 << 20),
            mqtt: Vec::new(),
            controls: Vec::new(),
            pending: received[head_len..].to_vec(),
        }
    }

    fn send(&mut self, frames: &[u8]) {
        self.stream.write_all(frames).expect("send frames");
    }

    /// Reads until `done` holds for what was decoded; panics after the I/O timeout.
    fn read_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let mut rest = std::mem::take(&mut self.pending);
            let mut input = rest.as_slice();
            while !input.is_empty() {
                let decoded = self
                    .decoder
                    .decode(input, &mut self.mqtt)
                    .expect("mosquitto's frames decode");
                if let Some(control) = decoded.control {
                    self.controls
                        .push((control, self.decoder.control_payload().to_vec()));
                }
                input = &input[decoded.consumed..];
            }
            rest.clear();
            if done(self) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            let mut buf = [0u8; 4096];
            let n = self.stream.read(&mut buf).expect("read frames");
            assert!(
                n > 0,
                "mosquitto closed the connection while waiting for {what}"
            );
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

#[test]
fn mqtt_over_websocket_through_mosquitto() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let mut broker = Broker::start(&pki);
    let port = add_websocket_listener(&mut broker);
    let subscriber = Subscriber::start(&broker, TOPIC);
    let mut client = Client::open(port);

    let mut out = Vec::new();
    encode_binary(&mut out, &connect_packet("mqload-ws-test"), rand::random());
    client.send(&out);
    client.read_until("CONNACK", |c| c.mqtt.len() >= 4);
    assert_eq!(
        client.mqtt[..4],
        [0x20, 0x02, 0x00, 0x00],
        "CONNACK accepted"
    );

    // One PUBLISH in a single frame; the next in three fragments with a ping among them.
    out.clear();
    encode_binary(
        &mut out,
        &publish_packet(TOPIC, 1, b"single frame"),
        rand::random(),
    );
    let fragmented = publish_packet(TOPIC, 2, b"fragmented over three frames");
    let (first, rest) = fragmented.split_at(5);
    let (second, third) = rest.split_at(7);
    encode_frame(&mut out, false, Opcode::Binary, first, Some(rand::random()));
    encode_frame(
        &mut out,
        true,
        Opcode::Ping,
        b"are you there",
        Some(rand::random()),
    );
    encode_frame(
        &mut out,
        false,
        Opcode::Continuation,
        second,
        Some(rand::random()),
    );
    encode_frame(
        &mut out,
        true,
        Opcode::Continuation,
        third,
        Some(rand::random()),
    );
    client.send(&out);
    let pubacks = [0x40, 0x02, 0x00, 0x01, 0x40, 0x02, 0x00, 0x02];
    client.read_until("two PUBACKs and a pong", |c| {
        c.mqtt.len() >= 12 && !c.controls.is_empty()
    });
    assert_eq!(client.mqtt[4..12], pubacks, "both publishes acknowledged");
    assert_eq!(
        client.controls[0],
        (Control::Pong, b"are you there".to_vec()),
        "the ping's payload comes back in the pong"
    );

    let messages = subscriber.wait_for(2, IO_TIMEOUT);
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(
        payloads,
        [&b"single frame"[..], &b"fragmented over three frames"[..]],
        "mosquitto_sub saw both publishes, in order"
    );
    assert!(messages.iter().all(|m| m.topic == TOPIC));

    // DISCONNECT, then a close: the server's close frame ends the stream.
    out.clear();
    encode_binary(&mut out, &[0xe0, 0x00], rand::random());
    encode_close(&mut out, 1000, rand::random());
    client.send(&out);
    client.read_until("the server's close", |c| c.decoder.is_closed());
    assert!(
        matches!(client.controls.last(), Some((Control::Close { .. }, _))),
        "closed with {:?}",
        client.controls.last()
    );
}
