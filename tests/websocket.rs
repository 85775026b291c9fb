//! The sans-IO WebSocket codec against a real server: mosquitto's `protocol websockets`
//! listener, plain and over TLS (rustls), driven through blocking streams. The upgrade, a
//! CONNECT/CONNACK, QoS 1 PUBLISHes (one in a single frame, one fragmented) that
//! mosquitto_sub on the plain port must see, a ping answered by a pong, and a clean close.
//! Over TLS the request target is a SigV4-presigned AWS IoT URL's, with custom-authorizer
//! headers, as a device reaching AWS IoT sends it (mosquitto ignores both).

mod common;
mod websocket_listeners;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Broker, Pki, Subscriber};
use mqload::aws::sigv4::{self, AmzDate};
use mqload::aws::{Credentials, CustomAuthorizer};
use mqload::net::websocket::{
    ClientHandshake, Control, FrameDecoder, FramesFrom, Opcode, UpgradeRequest, WsClient, WsStatus,
    encode_binary, encode_close, encode_frame,
};
use websocket_listeners::add_websocket_listeners;

const IO_TIMEOUT: Duration = Duration::from_secs(5);
const TOPIC: &str = "ws/mqload/test";

/// A TCP connection to `port` on loopback, once the listener accepts.
fn tcp_to(port: u16) -> TcpStream {
    let mut stream = None;
    common::wait_until(IO_TIMEOUT, || {
        stream = TcpStream::connect(("127.0.0.1", port)).ok();
        stream.is_some()
    });
    let stream = stream.expect("mosquitto's websockets listener accepts");
    stream.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    stream
}

/// rustls over `tcp`, trusting the test CA, for the server name `localhost`.
fn tls_over(tcp: TcpStream, pki: &Pki) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&pki.ca).expect("read root_ca.pem") {
        roots
            .add(cert.expect("parse root_ca.pem"))
            .expect("add the CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("server name");
    let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("TLS client");
    rustls::StreamOwned::new(conn, tcp)
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
struct Client<S: Read + Write> {
    stream: S,
    decoder: FrameDecoder,
    mqtt: Vec<u8>,
    controls: Vec<(Control, Vec<u8>)>,
    pending: Vec<u8>,
}

impl<S: Read + Write> Client<S> {
    /// Upgrades `stream` with a GET of `target` for `host`, with `headers`.
    fn open(mut stream: S, host: &str, target: &str, headers: &[(&str, &str)]) -> Client<S> {
        let mut request = Vec::new();
        let handshake = ClientHandshake::start(
            &UpgradeRequest {
                host,
                path_and_query: target,
                key: rand::random(),
                extra_headers: headers,
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
    fn read_until(&mut self, what: &str, done: impl Fn(&Client<S>) -> bool) {
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

/// CONNECT, two QoS 1 publishes (one fragmented, a ping among its fragments), a close:
/// each answered as MQTT and WebSocket say, and both publishes seen by `subscriber`.
fn exercise<S: Read + Write>(client: &mut Client<S>, subscriber: &Subscriber, tag: &str) {
    let mut out = Vec::new();
    encode_binary(
        &mut out,
        &connect_packet(&format!("mqload-ws-{tag}")),
        rand::random(),
    );
    client.send(&out);
    client.read_until("CONNACK", |c| c.mqtt.len() >= 4);
    assert_eq!(
        client.mqtt[..4],
        [0x20, 0x02, 0x00, 0x00],
        "{tag}: CONNACK accepted"
    );

    // One PUBLISH in a single frame; the next in three fragments with a ping among them.
    let single = format!("{tag}: single frame");
    let fragmented_payload = format!("{tag}: fragmented over three frames");
    out.clear();
    encode_binary(
        &mut out,
        &publish_packet(TOPIC, 1, single.as_bytes()),
        rand::random(),
    );
    let fragmented = publish_packet(TOPIC, 2, fragmented_payload.as_bytes());
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
    assert_eq!(
        client.mqtt[4..12],
        pubacks,
        "{tag}: both publishes acknowledged"
    );
    assert_eq!(
        client.controls[0],
        (Control::Pong, b"are you there".to_vec()),
        "{tag}: the ping's payload comes back in the pong"
    );

    let messages = subscriber.wait_for(2, IO_TIMEOUT);
    let payloads: Vec<&[u8]> = messages.iter().map(|m| m.payload.as_slice()).collect();
    assert_eq!(
        payloads,
        [single.as_bytes(), fragmented_payload.as_bytes()],
        "{tag}: mosquitto_sub saw both publishes, in order"
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
        "{tag}: closed with {:?}",
        client.controls.last()
    );
}

#[test]
fn mqtt_over_websocket_through_mosquitto() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let mut broker = Broker::start(&pki);
    let (plain_port, tls_port) = add_websocket_listeners(&mut broker, &pki);

    let subscriber = Subscriber::start(&broker, TOPIC);
    let host = format!("127.0.0.1:{plain_port}");
    let mut client = Client::open(tcp_to(plain_port), &host, "/mqtt", &[]);
    exercise(&mut client, &subscriber, "plain");
    subscriber.stop();

    // Over TLS, with what a device sends AWS IoT: a presigned target and authorizer headers.
    let subscriber = Subscriber::start(&broker, TOPIC);
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
        session_token: Some("session/token+example=".to_owned()),
    };
    let time = AmzDate::from_unix_seconds(1_796_472_000).expect("a valid time");
    let url =
        sigv4::iot_websocket_url("localhost", "us-east-1", &credentials, time).expect("presign");
    let target = url
        .strip_prefix("wss://localhost")
        .expect("the URL's target");
    assert!(target.starts_with("/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256&"));
    let host = format!("localhost:{tls_port}");
    let authorizer = CustomAuthorizer {
        name: Some("mqload-test-authorizer"),
        token: Some(("mqload-token", "device-0")),
        signature: Some("c2lnbmF0dXJl+/=="),
    };
    let headers = authorizer
        .websocket_headers()
        .expect("sendable authorizer fields");
    let stream = tls_over(tcp_to(tls_port), &pki);
    let mut client = Client::open(stream, &host, target, &headers);
    exercise(&mut client, &subscriber, "tls");
}

/// Reads from `stream` into `client` until `done` holds for the status and MQTT bytes.
fn pump_until<S: Read + Write>(
    stream: &mut S,
    client: &mut WsClient,
    mqtt_in: &mut Vec<u8>,
    what: &str,
    done: impl Fn(WsStatus, &[u8]) -> bool,
) -> WsStatus {
    let deadline = Instant::now() + IO_TIMEOUT;
    let mut status = client.status();
    while !done(status, mqtt_in) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("read");
        assert!(
            n > 0,
            "mosquitto closed the connection while waiting for {what}"
        );
        let mut replies = Vec::new();
        status = client
            .handle_input(&buf[..n], mqtt_in, &mut replies, &mut rand::random)
            .expect("mosquitto speaks WebSocket");
        stream.write_all(&replies).expect("send replies");
    }
    status
}

#[test]
fn ws_client_carries_mqtt_through_mosquitto() {
    if !common::require_broker_tools() {
        return;
    }
    let pki = Pki::new(true);
    let mut broker = Broker::start(&pki);
    let (plain_port, _) = add_websocket_listeners(&mut broker, &pki);
    let subscriber = Subscriber::start(&broker, TOPIC);

    let mut stream = tcp_to(plain_port);
    let host = format!("127.0.0.1:{plain_port}");
    let mut to_send = Vec::new();
    let request = UpgradeRequest {
        host: &host,
        path_and_query: "/mqtt",
        key: rand::random(),
        extra_headers: &[],
    };
    let mut client = WsClient::start(&request, &mut to_send, 1 << 20).expect("upgrade request");
    stream.write_all(&to_send).expect("send the upgrade");
    let mut mqtt_in = Vec::new();
    pump_until(
        &mut stream,
        &mut client,
        &mut mqtt_in,
        "the upgrade",
        |s, _| s == WsStatus::Open,
    );

    let mut mqtt_out = connect_packet("mqload-ws-client");
    mqtt_out.extend(publish_packet(TOPIC, 7, b"through WsClient"));
    to_send.clear();
    client.encode_mqtt(&mqtt_out, &mut to_send, rand::random());
    stream
        .write_all(&to_send)
        .expect("send CONNECT and PUBLISH");
    pump_until(
        &mut stream,
        &mut client,
        &mut mqtt_in,
        "CONNACK and PUBACK",
        |_, m| m.len() >= 8,
    );
    assert_eq!(
        mqtt_in[..8],
        [0x20, 0x02, 0x00, 0x00, 0x40, 0x02, 0x00, 0x07]
    );
    let messages = subscriber.wait_for(1, IO_TIMEOUT);
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].payload, b"through WsClient");

    to_send.clear();
    client.encode_mqtt(&[0xe0, 0x00], &mut to_send, rand::random());
    client.encode_close(&mut to_send, rand::random());
    stream
        .write_all(&to_send)
        .expect("send DISCONNECT and close");
    let status = pump_until(
        &mut stream,
        &mut client,
        &mut mqtt_in,
        "the close",
        |s, _| matches!(s, WsStatus::Closed { .. }),
    );
    assert!(matches!(status, WsStatus::Closed { .. }), "{status:?}");
}
