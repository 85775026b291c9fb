//! MQTT 5 in the built-in broker. mosquitto_pub/mosquitto_sub with `-V mqttv5` (clients
//! nobody here wrote) check forwarded properties, message expiry, shared subscriptions and
//! session expiry; a raw client on a socket checks the reason codes and limits byte by byte.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use common::{BrokerProcess, require_broker_tools, serial, tool_path};
use mqload::mqtt::QoS;
use mqload::mqtt::v5::{
    self, Ack, Connect, Disconnect, Packet, Properties, ReasonCode, Subscribe, SubscriptionOptions,
    Unsubscribe,
};

const WAIT: Duration = Duration::from_secs(30);

/// `mqload broker --no-tls` on a free port, stopped by SIGTERM.
struct Broker {
    process: BrokerProcess,
    addr: SocketAddr,
}

impl Broker {
    fn start() -> Broker {
        let process = BrokerProcess::start(&["--no-tls", "--port", "0", "--threads", "2"]);
        let addr = process.addrs[0];
        Broker { process, addr }
    }

    fn port(&self) -> String {
        self.addr.port().to_string()
    }

    fn stop(self) -> String {
        self.process.stop()
    }
}

/// Runs a mosquitto client with `-V mqttv5` on the broker; its stdout.
fn mosquitto(tool: &str, broker: &Broker, args: &[&str]) -> String {
    let out = Command::new(tool_path(tool).expect(tool))
        .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &broker.port()])
        .args(args)
        .output()
        .expect("run a mosquitto client");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A mosquitto_sub running in the background (it subscribed once this returns).
fn background_sub(broker: &Broker, args: &[&str]) -> Child {
    let mut child = Command::new("stdbuf")
        .arg("-oL")
        .arg(tool_path("mosquitto_sub").expect("mosquitto_sub"))
        .args([
            "-V",
            "mqttv5",
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port(),
            "-d",
        ])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_sub");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while !line.contains("received SUBACK") {
        line.clear();
        assert!(reader.read_line(&mut line).expect("read") > 0, "no SUBACK");
    }
    child.stdout = Some(reader.into_inner());
    child
}

/// The message lines (not `-d` debug lines) a background mosquitto_sub printed.
fn messages(child: Child) -> Vec<String> {
    let out = child.wait_with_output().expect("mosquitto_sub output");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with("Client ") && !l.starts_with("Subscribed"))
        .map(String::from)
        .collect()
}

#[test]
fn mosquitto_v5_clients_get_properties_shares_and_expiries() {
    if !require_broker_tools() {
        return;
    }
    let _one = serial();
    let broker = Broker::start();
    // Publish properties reach an MQTT 5 subscriber; the expiry left is counted down.
    let format = ["-F", "%t|%p|%P|%C|%E"];
    let props = background_sub(
        &broker,
        &[&["-t", "p/#", "-q", "1", "-C", "1"][..], &format].concat(),
    );
    mosquitto(
        "mosquitto_pub",
        &broker,
        &[
            "-t",
            "p/a",
            "-q",
            "1",
            "-m",
            "hi",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
        ],
    );
    let got = messages(props);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("p/a|hi|k:v|"), "{got:?}");
    let with_all = mosquitto_pub_props(&broker);
    assert!(
        with_all.starts_with("p/b|hi|k:v|text/plain|")
            && ["|59", "|60"].iter().any(|e| with_all.ends_with(e)),
        "{with_all:?}"
    );

    // A shared subscription: each message to one member, all of them to the group.
    let members: Vec<Child> = (0..2)
        .map(|_| background_sub(&broker, &["-t", "$share/g/s/#", "-q", "1", "-v"]))
        .collect();
    let lines: String = (0..40).map(|i| format!("m{i}\n")).collect();
    let mut publisher = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-V", "mqttv5", "-h", "127.0.0.1", "-p", &broker.port()])
        .args(["-t", "s/x", "-q", "1", "-l"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn mosquitto_pub");
    let mut stdin = publisher.stdin.take().expect("stdin");
    stdin.write_all(lines.as_bytes()).expect("feed");
    drop(stdin);
    assert!(publisher.wait().expect("mosquitto_pub").success());
    thread::sleep(Duration::from_millis(500));
    let mut all = Vec::new();
    for mut member in members {
        let _ = member.kill();
        let got = messages(member);
        assert!(!got.is_empty(), "each member gets a share");
        all.extend(got);
    }
    all.sort_by_key(|l| {
        l.trim_start_matches("s/x m")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    let expected: Vec<String> = (0..40).map(|i| format!("s/x m{i}")).collect();
    assert_eq!(all, expected, "every message once to the group");

    // A retained message that expired is not sent to a late subscriber.
    mosquitto(
        "mosquitto_pub",
        &broker,
        &[
            "-t",
            "r/old",
            "-r",
            "-m",
            "x",
            "-D",
            "publish",
            "message-expiry-interval",
            "1",
        ],
    );
    mosquitto("mosquitto_pub", &broker, &["-t", "r/new", "-r", "-m", "y"]);
    thread::sleep(Duration::from_millis(2100));
    let late = mosquitto("mosquitto_sub", &broker, &["-t", "r/#", "-v", "-W", "2"]);
    assert_eq!(late.trim(), "r/new y", "only the unexpired one");

    // A session with an expiry keeps QoS 1 messages while away, until it expires.
    let keeper = ["-i", "keeper", "-c", "-x", "4", "-q", "1", "-t", "k/#"];
    mosquitto("mosquitto_sub", &broker, &[&keeper[..], &["-E"]].concat());
    mosquitto(
        "mosquitto_pub",
        &broker,
        &["-t", "k/a", "-q", "1", "-m", "kept"],
    );
    let back = mosquitto(
        "mosquitto_sub",
        &broker,
        &[&keeper[..], &["-C", "1", "-W", "5"]].concat(),
    );
    assert_eq!(back.trim(), "kept", "session resumed with its message");
    thread::sleep(Duration::from_millis(6000));
    mosquitto(
        "mosquitto_pub",
        &broker,
        &["-t", "k/a", "-q", "1", "-m", "lost"],
    );
    let expired = mosquitto(
        "mosquitto_sub",
        &broker,
        &[&keeper[..], &["-C", "1", "-W", "2"]].concat(),
    );
    assert_eq!(
        expired.trim(),
        "",
        "the session expired 4 s after its client left"
    );
    let exit = broker.stop();
    assert!(exit.contains("bad packets 0"), "{exit}");
}

/// A message with every forwarded property, as the subscriber prints it.
fn mosquitto_pub_props(broker: &Broker) -> String {
    let sub = background_sub(
        broker,
        &["-t", "p/#", "-q", "1", "-C", "1", "-F", "%t|%p|%P|%C|%E"],
    );
    mosquitto(
        "mosquitto_pub",
        broker,
        &[
            "-t",
            "p/b",
            "-q",
            "1",
            "-m",
            "hi",
            "-D",
            "publish",
            "user-property",
            "k",
            "v",
            "-D",
            "publish",
            "content-type",
            "text/plain",
            "-D",
            "publish",
            "message-expiry-interval",
            "60",
        ],
    );
    messages(sub).join("\n")
}

/// An MQTT 5 client on a plain socket, using mqload's codec for the bytes.
struct Raw {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    fn connect(broker: &Broker, id: &str, properties: Properties<'_>) -> Raw {
        let stream = TcpStream::connect(broker.addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).expect("timeout");
        let mut raw = Raw {
            stream,
            buf: Vec::new(),
        };
        raw.send(&Packet::Connect(Connect {
            client_id: id,
            keep_alive: 60,
            clean_start: true,
            username: None,
            password: None,
            will: None,
            properties,
        }));
        raw
    }

    fn send(&mut self, packet: &Packet<'_>) {
        let mut bytes = Vec::new();
        packet.encode(&mut bytes).expect("encode");
        self.stream.write_all(&bytes).expect("send");
    }

    /// Reads the next packet and hands it to `inspect`; `None` when the socket closed.
    fn next<T>(&mut self, inspect: impl FnOnce(&Packet<'_>) -> T) -> Option<T> {
        loop {
            if let Some((packet, used)) = v5::decode(&self.buf, 1 << 20).expect("valid MQTT 5") {
                let seen = inspect(&packet);
                self.buf.drain(..used);
                return Some(seen);
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn expect(&mut self, what: &str) -> String {
        self.next(|p| format!("{p:?}"))
            .unwrap_or_else(|| panic!("closed while waiting for {what}"))
    }

    fn subscribe(&mut self, filter: &str, options: SubscriptionOptions) -> Vec<ReasonCode> {
        self.send(&Packet::Subscribe(Subscribe {
            packet_id: 1,
            properties: Properties::default(),
            filters: vec![(filter, options)],
        }));
        self.next(|p| match p {
            Packet::SubAck(suback) => suback.reasons.clone(),
            other => panic!("{other:?}"),
        })
        .expect("SUBACK")
    }

    fn publish(&mut self, topic: &str, id: u16, alias: Option<u16>, payload: &[u8]) {
        self.send(&Packet::Publish(v5::Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic,
            packet_id: id,
            properties: Properties {
                topic_alias: alias,
                ..Properties::default()
            },
            payload,
        }));
    }
}

#[test]
fn a_raw_client_sees_the_reason_codes_and_limits() {
    let _one = serial();
    let broker = Broker::start();
    let receive_two = Properties {
        receive_maximum: Some(2),
        ..Properties::default()
    };
    let mut sub = Raw::connect(&broker, "", receive_two);
    let connack = sub.expect("CONNACK");
    for expected in [
        "reason: Success",
        "receive_maximum: Some(1024)",
        "topic_alias_maximum: Some(64)",
        "assigned_client_identifier: Some(\"mqload-auto-",
        "shared_subscription_available: Some(1)",
    ] {
        assert!(connack.contains(expected), "{expected} in {connack}");
    }
    let no_local = SubscriptionOptions {
        no_local: true,
        ..SubscriptionOptions::qos(QoS::AtLeastOnce)
    };
    assert_eq!(sub.subscribe("t/#", no_local), [ReasonCode::GrantedQoS1]);
    // UNSUBSCRIBE of a filter it never had: 0x11.
    sub.send(&Packet::Unsubscribe(Unsubscribe {
        packet_id: 2,
        properties: Properties::default(),
        filters: vec!["nothing/here"],
    }));
    let unsuback = sub.expect("UNSUBACK");
    assert!(unsuback.contains("NoSubscriptionExisted"), "{unsuback}");
    // No Local: its own publish is acked but not sent back to it.
    sub.publish("t/own", 3, None, b"own");
    let puback = sub.expect("PUBACK");
    assert!(
        puback.contains("PubAck") && puback.contains("Success"),
        "{puback}"
    );
    // PUBREL for an id it never used: PUBCOMP 0x92.
    sub.send(&Packet::PubRel(Ack::success(77)));
    let pubcomp = sub.expect("PUBCOMP");
    assert!(pubcomp.contains("PacketIdentifierNotFound"), "{pubcomp}");
    // A QoS 1 publish nobody subscribed to: PUBACK 0x10.
    sub.publish("nobody/here", 4, None, b"?");
    let unheard = sub.expect("PUBACK");
    assert!(unheard.contains("NoMatchingSubscribers"), "{unheard}");

    // Another client sets a topic alias, uses it, and five messages go to a subscriber
    // whose Receive Maximum is 2: two arrive, the rest after it acknowledges.
    let mut publisher = Raw::connect(&broker, "pub", Properties::default());
    publisher.expect("CONNACK");
    publisher.publish("t/aliased", 1, Some(3), b"0");
    for n in 1..5u8 {
        publisher.publish("", u16::from(n) + 1, Some(3), &[b'0' + n]);
    }
    for _ in 0..5 {
        assert!(publisher.expect("PUBACK").contains("PubAck"));
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (topic, id) = sub
            .next(|p| match p {
                Packet::Publish(p) => (p.topic.to_string(), p.packet_id),
                other => panic!("{other:?}"),
            })
            .expect("PUBLISH");
        assert_eq!(topic, "t/aliased", "the alias resolved");
        ids.push(id);
    }
    sub.stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    assert!(
        sub.next(|p| format!("{p:?}")).is_none(),
        "a third before any ack"
    );
    sub.stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let mut payloads = Vec::new();
    while payloads.len() < 3 {
        let id = ids.remove(0);
        sub.send(&Packet::PubAck(Ack::success(id)));
        let (id, payload) = sub
            .next(|p| match p {
                Packet::Publish(p) => (p.packet_id, p.payload.to_vec()),
                other => panic!("{other:?}"),
            })
            .expect("PUBLISH");
        ids.push(id);
        payloads.push(payload);
    }
    assert_eq!(
        payloads,
        [b"2".to_vec(), b"3".to_vec(), b"4".to_vec()],
        "in order"
    );

    // An alias past the maximum: DISCONNECT 0x94, then the broker closes.
    publisher.publish("t/x", 9, Some(65), b"x");
    let goodbye = publisher.expect("DISCONNECT");
    assert!(goodbye.contains("TopicAliasInvalid"), "{goodbye}");
    assert!(publisher.next(|_| ()).is_none(), "closed after it");

    // The same client id again: the first connection gets DISCONNECT 0x8E.
    let mut first = Raw::connect(&broker, "twice", Properties::default());
    first.expect("CONNACK");
    let mut second = Raw::connect(&broker, "twice", Properties::default());
    second.expect("CONNACK");
    let taken = first.expect("DISCONNECT");
    assert!(taken.contains("SessionTakenOver"), "{taken}");
    second.send(&Packet::Disconnect(Disconnect::with_reason(
        ReasonCode::Success,
    )));
    sub.send(&Packet::Disconnect(Disconnect::with_reason(
        ReasonCode::Success,
    )));
    let exit = broker.stop();
    assert!(
        exit.contains("bad packets 1"),
        "the alias abuse only: {exit}"
    );
}

/// What the Receive Maximum held back goes out as the client reads, under the 1 MiB output
/// cap: before, each ack released a held message straight into the connection's output,
/// so a client that acknowledged many at once and then did not read at once was
/// disconnected as slow.
#[test]
fn held_back_deliveries_released_by_many_acks_go_out_as_the_client_reads() {
    const WINDOW: u16 = 150;
    const COUNT: usize = 2 * WINDOW as usize;
    const PAYLOAD: usize = 100_000;
    let _one = serial();
    let broker = Broker::start();
    let window = Properties {
        receive_maximum: Some(WINDOW),
        ..Properties::default()
    };
    let mut sub = Raw::connect(&broker, "window", window);
    sub.expect("CONNACK");
    let reasons = sub.subscribe("r/#", SubscriptionOptions::qos(QoS::AtLeastOnce));
    assert_eq!(reasons, [ReasonCode::GrantedQoS1]);
    let mut publisher = Raw::connect(&broker, "bulk", Properties::default());
    publisher.expect("CONNACK");
    // 300 QoS 1 messages of 100 kB: the first 150 (15 MB, more than loopback socket
    // buffers take) are read as they come and not acknowledged; the rest are held back.
    let mut first_ids = Vec::new();
    for n in 0..COUNT {
        let mut payload = format!("{n:06}").into_bytes();
        payload.resize(PAYLOAD, b'x');
        publisher.publish("r/big", n as u16 + 1, None, &payload);
        let puback = publisher.expect("PUBACK");
        assert!(puback.starts_with("PubAck"), "{puback}");
        if n < usize::from(WINDOW) {
            first_ids.push(read_numbered(&mut sub, n));
        }
    }
    // All 150 acknowledged at once; then it does not read for a while.
    let mut acks = Vec::new();
    for id in first_ids {
        Packet::PubAck(Ack::success(id))
            .encode(&mut acks)
            .expect("encode");
    }
    sub.stream.write_all(&acks).expect("send acks");
    thread::sleep(Duration::from_millis(1500));
    // Then it reads (and acknowledges) the held ones: all of them, in order.
    for n in usize::from(WINDOW)..COUNT {
        let id = read_numbered(&mut sub, n);
        sub.send(&Packet::PubAck(Ack::success(id)));
    }
    let exit = broker.stop();
    let sent = format!("messages sent {COUNT}, dropped 0, slow subscribers disconnected 0,");
    assert!(exit.contains(&sent), "{exit}");
}

/// Reads a QoS 1 PUBLISH of 100 kB whose payload starts with `n` in six digits; its id.
fn read_numbered(raw: &mut Raw, n: usize) -> u16 {
    raw.next(|p| match p {
        Packet::Publish(p) => {
            assert_eq!(p.payload.len(), 100_000);
            let expected = format!("{n:06}");
            assert_eq!(&p.payload[..6], expected.as_bytes(), "in order");
            p.packet_id
        }
        other => panic!("{other:?}"),
    })
    .unwrap_or_else(|| panic!("closed before message {n}"))
}
