//! The server side of the WebSocket codec against a real client: headless Chromium opens
//! `ws://127.0.0.1:<port>/mqtt` with subprotocol `mqtt` and sends three binary messages
//! (7-bit, 16-bit and 64-bit frame lengths, masked as browsers must). A blocking server in
//! the test answers the upgrade with `accept_upgrade`, reads Chromium's frames with a
//! client-frame decoder, and must get every byte; Chromium sends only after it accepted
//! the 101 answer, so the bytes prove both directions of the handshake.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mqload::net::websocket::{
    Control, FrameDecoder, FramesFrom, Opcode, accept_upgrade, encode_frame,
};

const WAIT: Duration = Duration::from_secs(30);
/// Lengths of the messages the page sends: one per frame-length encoding.
const SIZES: [usize; 3] = [14, 300, 70_000];

fn chromium() -> Option<PathBuf> {
    if let Some(path) = ["chromium", "chromium-browser"]
        .iter()
        .find_map(|name| common::tool_path(name))
    {
        return Some(path);
    }
    if common::in_ci() {
        panic!(
            "chromium is not installed, and under CI=true a missing tool is a failure: \
             install it with `apt-get install -y chromium` (scripts/test.sh does this as root)"
        );
    }
    eprintln!("skipping: chromium not installed (run scripts/test.sh)");
    None
}

/// Byte `i` of message `m`, as the page makes it.
fn expected_byte(m: usize, i: usize) -> u8 {
    ((i * 7 + m * 13) % 251) as u8
}

fn page(port: u16) -> String {
    format!(
        r#"<!doctype html><html><body><script>
const sizes = {sizes:?};
const ws = new WebSocket("ws://127.0.0.1:{port}/mqtt", ["mqtt"]);
ws.binaryType = "arraybuffer";
ws.onopen = () => {{
  sizes.forEach((n, m) => {{
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = (i * 7 + m * 13) % 251;
    ws.send(bytes);
  }});
}};
ws.onmessage = (event) => {{
  ws.send(new Uint8Array(event.data));
}};
</script></body></html>"#,
        sizes = SIZES
    )
}

/// What the server saw: the protocol offered, the messages, and the echo of its own frame.
struct Seen {
    offered_mqtt: bool,
    messages: Vec<Vec<u8>>,
}

/// Serves one WebSocket client on `listener`: upgrade, read SIZES.len() messages, send one
/// binary frame the page echoes back, read the echo, then close.
fn serve(listener: TcpListener) -> Seen {
    let (mut stream, _) = listener.accept().expect("chromium connects");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    let mut received = Vec::new();
    let mut answer = Vec::new();
    let head_len = loop {
        if let Some(n) =
            accept_upgrade(&received, &mut answer).expect("chromium's upgrade is valid")
        {
            break n;
        }
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).expect("read the upgrade");
        assert!(n > 0, "chromium closed during the upgrade");
        received.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&received[..head_len]).to_ascii_lowercase();
    let offered_mqtt = head.contains("sec-websocket-protocol: mqtt");
    stream.write_all(&answer).expect("send the 101");

    let mut decoder = FrameDecoder::new(FramesFrom::Client, 1 << 20);
    let mut pending = received[head_len..].to_vec();
    let mut data = Vec::new();
    let mut messages = Vec::new();
    let total: usize = SIZES.iter().sum();
    let echo = b"mqload server frame";
    let mut echo_sent = false;
    loop {
        let mut input = pending.as_slice();
        while !input.is_empty() {
            let decoded = decoder
                .decode(input, &mut data)
                .expect("chromium's frames decode");
            if let Some(control) = decoded.control {
                assert!(
                    !matches!(control, Control::Close { .. }),
                    "chromium closed early"
                );
            }
            input = &input[decoded.consumed..];
        }
        pending.clear();
        if data.len() >= total && !echo_sent {
            let mut offset = 0;
            for size in SIZES {
                messages.push(data[offset..offset + size].to_vec());
                offset += size;
            }
            data.drain(..total);
            let mut frame = Vec::new();
            encode_frame(&mut frame, true, Opcode::Binary, echo, None);
            stream.write_all(&frame).expect("send a frame to chromium");
            echo_sent = true;
        }
        if echo_sent && data.len() >= echo.len() {
            messages.push(data.clone());
            let mut close = Vec::new();
            encode_frame(
                &mut close,
                true,
                Opcode::Close,
                &1000u16.to_be_bytes(),
                None,
            );
            let _ = stream.write_all(&close);
            return Seen {
                offered_mqtt,
                messages,
            };
        }
        let mut buf = [0u8; 65536];
        let n = stream.read(&mut buf).expect("read chromium's frames");
        assert!(n > 0, "chromium closed the connection");
        pending.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn chromium_talks_to_the_server_handshake_and_client_frame_decoder() {
    let Some(chromium) = chromium() else { return };
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("local addr").port();
    let (done_tx, done_rx) = mpsc::channel();
    let server = thread::spawn(move || {
        let seen = serve(listener);
        let _ = done_tx.send(());
        seen
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let html = dir.path().join("ws.html");
    std::fs::write(&html, page(port)).expect("write the page");
    let profile = dir.path().join("profile");
    let mut browser = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let started = Instant::now();
    let finished = done_rx.recv_timeout(WAIT).is_ok();
    let _ = browser.kill();
    let _ = browser.wait();
    assert!(
        finished,
        "the WebSocket exchange with chromium did not finish within {:?}",
        started.elapsed()
    );
    let seen = server.join().expect("the server thread");
    assert!(seen.offered_mqtt, "chromium offered subprotocol mqtt");
    for (m, size) in SIZES.iter().enumerate() {
        let message = &seen.messages[m];
        assert_eq!(message.len(), *size, "message {m}'s length");
        assert!(
            message
                .iter()
                .enumerate()
                .all(|(i, &b)| b == expected_byte(m, i)),
            "message {m}'s bytes"
        );
    }
    assert_eq!(
        seen.messages[SIZES.len()],
        b"mqload server frame",
        "chromium decoded the server's frame and echoed it"
    );
}
