//! Serving a scrape allocates nothing once the responder is warm: connection slots, the
//! request and response buffers and the rendered body are all reused. Counted by a global
//! allocator wrapper, so this binary holds this one test only.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};

use mqload::metrics::{
    FailureTotal, LoadSnapshot, MetricsResponder, RequestTotals, ResponderOptions, snapshot_handoff,
};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PLAIN: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
const OPEN_METRICS: &[u8] =
    b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n";
const NOT_FOUND: &[u8] = b"GET / HTTP/1.1\r\n\r\n";

/// One exchange with a caller's buffer (so the client side allocates nothing); the status
/// line's code and the answer's length.
fn scrape(addr: SocketAddr, request: &[u8], answer: &mut [u8]) -> (u8, usize) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(request).expect("send");
    let mut length = 0;
    loop {
        match stream.read(&mut answer[length..]).expect("read") {
            0 => break,
            read => length += read,
        }
        assert!(
            length < answer.len(),
            "answer larger than the test's buffer"
        );
    }
    // "HTTP/1.1 200": the status code's first digit.
    (answer[9], length)
}

#[test]
fn a_warm_responder_serves_scrapes_without_allocating() {
    let (publisher, reader) = snapshot_handoff::<LoadSnapshot>();
    let addr = "127.0.0.1:0".parse().expect("address");
    let responder =
        MetricsResponder::start(addr, reader, ResponderOptions::default()).expect("listen");
    let mut snapshot = publisher.blank();
    for index in 0..20_u64 {
        let mut request = RequestTotals {
            kind: "publish".into(),
            name: format!("publish:1:devices/{index}/\"telemetry\""),
            requests: index * 1000,
            ..RequestTotals::default()
        };
        request.response_time.record_micros(index * 997, index);
        snapshot.requests.push(request);
    }
    snapshot.failures.push(FailureTotal {
        reason: "timeout".into(),
        failures: 3,
    });
    publisher.publish(snapshot);

    let mut answer = vec![0_u8; 1 << 20];
    let addr = responder.local_addr();
    for request in [PLAIN, OPEN_METRICS, NOT_FOUND, PLAIN, OPEN_METRICS] {
        scrape(addr, request, &mut answer);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut bytes = 0;
    for round in 0..30 {
        let request = [PLAIN, OPEN_METRICS, NOT_FOUND][round % 3];
        let (status, length) = scrape(addr, request, &mut answer);
        assert_eq!(status, if request == NOT_FOUND { b'4' } else { b'2' });
        bytes += length;
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert!(
        bytes > 30 * 1000,
        "the scrapes carried metrics ({bytes} bytes)"
    );
    assert_eq!(allocations, 0, "allocations over 30 warm scrapes");
    responder.stop();
}
