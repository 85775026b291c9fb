//! `mqload broker --ws-port`: MQTT over WebSocket with real clients nobody here wrote.
//! Headless Chromium speaks MQTT 3.1.1 over `ws://` from a page (its own WebSocket stack,
//! framing and masking); Python's websocket-client (from the pinned Locust venv) does it over
//! `wss://` with a client certificate. mosquitto_pub/mosquitto_sub on the TCP listener check
//! that messages cross between the two transports, counted and in order.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use common::{BrokerProcess, exit_counter, require_broker_tools, serial, tool_path, wait_until};

const WAIT: Duration = Duration::from_secs(60);

/// `mqload broker --ws-port 0` with `extra`; the TCP and WebSocket addresses from its first line.
struct WsBroker {
    process: BrokerProcess,
    tcp: SocketAddr,
    ws: SocketAddr,
}

impl WsBroker {
    fn start(extra: &[&str]) -> WsBroker {
        let mut args = vec!["--port", "0", "--ws-port", "0", "--threads", "2"];
        args.extend_from_slice(extra);
        let process = BrokerProcess::start(&args);
        let line = &process.first_line;
        assert_eq!(process.addrs.len(), 2, "two addresses in {line:?}");
        assert!(line.contains("WebSocket"), "{line}");
        let (tcp, ws) = (process.addrs[0], process.addrs[1]);
        WsBroker { process, tcp, ws }
    }

    /// SIGTERM; returns the exit line with the counters.
    fn stop(self) -> String {
        self.process.stop()
    }
}

/// mosquitto_sub -v on the TCP listener, its message lines collected as they come.
struct Sub {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Sub {
    fn start(broker: &WsBroker, filter: &str, tls: &[&str]) -> Sub {
        let mut child = Command::new("stdbuf")
            .arg("-oL")
            .arg(tool_path("mosquitto_sub").expect("mosquitto_sub"))
            .args(["-h", "127.0.0.1", "-p", &broker.tcp.port().to_string()])
            .args(tls)
            .args(["-q", "1", "-v", "-d", "-t", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn mosquitto_sub");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        let stdout = child.stdout.take().expect("stdout");
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().expect("lines").push(line);
            }
        });
        let sub = Sub { child, lines };
        assert!(
            wait_until(WAIT, || sub.all().iter().any(|l| l.contains("SUBACK"))),
            "mosquitto_sub got no SUBACK"
        );
        sub
    }

    fn all(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    /// Payloads of messages on `topic`.
    fn payloads(&self, topic: &str) -> Vec<String> {
        let prefix = format!("{topic} ");
        self.all()
            .iter()
            .filter_map(|l| l.strip_prefix(&prefix).map(String::from))
            .collect()
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn mosquitto_pub(broker: &WsBroker, tls: &[&str], topic: &str, message: &str, repeat: usize) {
    let status = Command::new(tool_path("mosquitto_pub").expect("mosquitto_pub"))
        .args(["-h", "127.0.0.1", "-p", &broker.tcp.port().to_string()])
        .args(tls)
        .args(["-q", "1", "-t", topic, "-m", message])
        .args(["--repeat", &repeat.to_string()])
        .status()
        .expect("run mosquitto_pub");
    assert!(status.success(), "mosquitto_pub {status}");
}

fn chromium() -> Option<PathBuf> {
    if let Some(path) = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| tool_path(name))
    {
        return Some(path);
    }
    assert!(
        !common::in_ci(),
        "chromium is not installed, and under CI=true a missing tool is a failure: \
         install it with `apt-get install -y chromium` (scripts/test.sh does this as root)"
    );
    eprintln!("skipping: chromium not installed (run scripts/test.sh)");
    None
}

/// Messages the browser publishes, and the mosquitto_pub repeats it must receive.
const FROM_BROWSER: usize = 300;
const FROM_TCP: usize = 100;

/// The page: MQTT 3.1.1 by hand over the browser's WebSocket. It subscribes to `web/#` at
/// QoS 1, says `ready`, publishes FROM_BROWSER numbered QoS 1 messages to `web/browser`,
/// counts PUBACKs and every message it gets back, and publishes its counts to `report` once
/// it has all it expects.
fn page(port: u16) -> String {
    format!(
        r#"<!doctype html><html><body><script>
const enc = new TextEncoder();
const str = (s) => {{ const b = enc.encode(s); return [b.length >> 8, b.length & 255, ...b]; }};
const packet = (type, body) => {{
  const len = []; let n = body.length;
  do {{ let d = n % 128; n = Math.floor(n / 128); len.push(n ? d | 128 : d); }} while (n);
  return new Uint8Array([type, ...len, ...body]);
}};
let acks = 0, own = 0, tcp = 0, inOrder = true, reported = false, buf = [];
const ws = new WebSocket("ws://127.0.0.1:{port}/mqtt", ["mqtt"]);
ws.binaryType = "arraybuffer";
const publish = (topic, text, qos, id) =>
  ws.send(packet(0x30 | (qos << 1), [...str(topic), ...(qos ? [id >> 8, id & 255] : []), ...enc.encode(text)]));
ws.onopen = () => ws.send(packet(0x10, [...str("MQTT"), 4, 2, 0, 60, ...str("chromium")]));
ws.onclose = (event) => {{ document.title = "closed " + event.code; }};
setInterval(() => publish("report/progress", `acks=${{acks}} own=${{own}} tcp=${{tcp}}`, 0, 0), 1000);
const handle = (type, body) => {{
  const kind = type >> 4;
  if (kind === 2) ws.send(packet(0x82, [0, 1, ...str("web/#"), 1]));
  if (kind === 9) {{
    publish("report/ready", "ready", 1, 1);
    for (let i = 0; i < {from_browser}; i++) publish("web/browser", "b-" + i, 1, i + 2);
  }}
  if (kind === 4) acks++;
  if (kind === 3) {{
    const tlen = (body[0] << 8) | body[1];
    const topic = new TextDecoder().decode(body.slice(2, 2 + tlen));
    const qos = (type >> 1) & 3;
    const start = 2 + tlen + (qos ? 2 : 0);
    const text = new TextDecoder().decode(body.slice(start));
    if (qos) ws.send(packet(0x40, [body[2 + tlen], body[3 + tlen]]));
    if (topic === "web/browser") {{ if (text !== "b-" + own) inOrder = false; own++; }}
    if (topic === "web/tcp") tcp++;
  }}
  if (!reported && acks === {from_browser} + 1 && own === {from_browser} && tcp === {from_tcp}) {{
    reported = true;
    publish("report/counts", `acks=${{acks - 1}} own=${{own}} tcp=${{tcp}} order=${{inOrder}}`, 1, 9999);
  }}
}};
ws.onmessage = (event) => {{
  buf.push(...new Uint8Array(event.data));
  for (;;) {{
    let len = 0, mult = 1, i = 1;
    for (; i < buf.length; i++) {{ len += (buf[i] & 127) * mult; mult *= 128; if (!(buf[i] & 128)) break; }}
    if (i >= buf.length || buf.length < i + 1 + len) break;
    const type = buf[0], body = new Uint8Array(buf.slice(i + 1, i + 1 + len));
    buf = buf.slice(i + 1 + len);
    handle(type, body);
  }}
}};
</script></body></html>"#,
        from_browser = FROM_BROWSER,
        from_tcp = FROM_TCP,
    )
}

#[test]
fn chromium_publishes_and_subscribes_over_websocket_alongside_tcp_clients() {
    if !require_broker_tools() {
        return;
    }
    let Some(chromium) = chromium() else { return };
    let _one = serial();
    let broker = WsBroker::start(&["--no-tls"]);
    let watcher = Sub::start(&broker, "#", &[]);
    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("mqtt.html");
    std::fs::write(&html, page(broker.ws.port())).expect("write the page");
    let mut browser = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(["--disable-dev-shm-usage", "--no-first-run"])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let ready = wait_until(WAIT, || !watcher.payloads("report/ready").is_empty());
    if ready {
        mosquitto_pub(&broker, &[], "web/tcp", "from tcp", FROM_TCP);
    }
    let reported = wait_until(WAIT, || !watcher.payloads("report/counts").is_empty());
    let _ = browser.kill();
    let _ = browser.wait();
    assert!(ready, "the page never subscribed");
    assert!(
        reported,
        "the page never got everything: {:?}",
        watcher.payloads("report/progress").last()
    );
    assert_eq!(
        watcher.payloads("report/counts"),
        [format!(
            "acks={FROM_BROWSER} own={FROM_BROWSER} tcp={FROM_TCP} order=true"
        )]
    );
    let expected: Vec<String> = (0..FROM_BROWSER).map(|i| format!("b-{i}")).collect();
    assert_eq!(
        watcher.payloads("web/browser"),
        expected,
        "at the TCP subscriber"
    );
    drop(watcher);
    let exit = broker.stop();
    let received = (FROM_BROWSER + FROM_TCP + 2) as u64;
    assert_eq!(exit_counter(&exit, "messages received"), received, "{exit}");
    assert_eq!(exit_counter(&exit, "bad packets"), 0, "{exit}");
}

/// Python's websocket-client (a dependency of the pinned Locust) over `wss://` with the
/// broker's generated client certificate: 500 QoS 1 publishes acked and echoed back through
/// its own subscription, a WebSocket ping answered, and a clean DISCONNECT.
const PY_CLIENT: &str = r#"
import ssl, struct, sys, websocket
port, n, pki = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def s(b): return struct.pack(">H", len(b)) + b
def pkt(t, body):
    n, rl = len(body), b""
    while True:
        d, n = n % 128, n // 128
        rl += bytes([d | (128 if n else 0)])
        if not n: return bytes([t]) + rl + body
ws = websocket.create_connection(f"wss://localhost:{port}/mqtt", subprotocols=["mqtt"],
    sslopt={"ca_certs": f"{pki}/ca.pem", "certfile": f"{pki}/client.pem", "keyfile": f"{pki}/client.key"})
assert ws.getsubprotocol() == "mqtt", ws.getsubprotocol()
buf = b""
def packets():
    global buf
    buf += ws.recv()
    while len(buf) >= 2:
        i, n, mult = 1, 0, 1
        while True:
            n += (buf[i] & 127) * mult; mult *= 128; i += 1
            if not buf[i - 1] & 128: break
        if len(buf) < i + n: return
        kind, body, buf = buf[0], buf[i:i + n], buf[i + n:]
        yield kind, body
ws.send_binary(pkt(0x10, s(b"MQTT") + bytes([4, 2, 0, 30]) + s(b"python")))
assert list(packets()) == [(0x20, b"\0\0")]
ws.send_binary(pkt(0x82, b"\0\1" + s(b"py/#") + b"\1"))
assert list(packets()) == [(0x90, b"\0\1\1")]
for k in range(n):
    ws.send_binary(pkt(0x32, s(b"py/t") + struct.pack(">H", k + 1) + b"m-%d" % k))
acks, got = 0, []
while acks < n or len(got) < n:
    for kind, body in packets():
        if kind >> 4 == 4: acks += 1
        if kind >> 4 == 3:
            got.append(body[8:].decode())
            ws.send_binary(pkt(0x40, body[6:8]))
ws.ping(b"are you there")
while True:
    op, frame = ws.recv_data_frame(True)
    if op == websocket.ABNF.OPCODE_PONG: break
ws.send_binary(b"\xe0\0")
ws.close()
print(f"acks={acks} got={len(got)} order={got == ['m-%d' % k for k in range(n)]} pong={frame.data!r}")
"#;

#[test]
fn python_websocket_client_over_wss_gets_every_ack_and_message() {
    if !require_broker_tools() {
        return;
    }
    let python = common::repo_root().join("target/locust-venv/bin/python");
    if !python.exists() {
        assert!(
            !common::in_ci(),
            "CI=true needs target/locust-venv (scripts/test.sh installs it)"
        );
        eprintln!("skipping: no target/locust-venv");
        return;
    }
    let _one = serial();
    let dir = tempfile::tempdir().expect("temp dir");
    let pki = dir.path().join("pki");
    let broker = WsBroker::start(&["--pki-out", &pki.display().to_string()]);
    let out = Command::new(&python)
        .args(["-c", PY_CLIENT, &broker.ws.port().to_string(), "500"])
        .arg(&pki)
        .output()
        .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "acks=500 got=500 order=True pong=b'are you there'"
    );
    // Plain HTTP to the wss port is no upgrade: the handshake (TLS first) fails, counted.
    let refused = Command::new(&python)
        .args([
            "-c",
            "import websocket,sys; websocket.create_connection(sys.argv[1])",
        ])
        .arg(format!("ws://127.0.0.1:{}/mqtt", broker.ws.port()))
        .output()
        .expect("run python");
    assert!(!refused.status.success(), "a ws:// client on the wss port");
    let exit = broker.stop();
    assert_eq!(exit_counter(&exit, "messages received"), 500, "{exit}");
    assert_eq!(exit_counter(&exit, "bad packets"), 1, "{exit}");
}

#[test]
fn a_request_that_is_no_upgrade_gets_400_and_is_counted() {
    let _one = serial();
    let broker = WsBroker::start(&["--no-tls"]);
    let mut stream = std::net::TcpStream::connect(broker.ws).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    std::io::Write::write_all(&mut stream, b"GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n").expect("send");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer:?}");
    let exit = broker.stop();
    assert_eq!(exit_counter(&exit, "bad packets"), 1, "{exit}");
}
