//! Fuzz target: broker bytes through the client session (MQTT 3.1.1 or 5, as the input says),
//! cut where the input says, interleaved with publishes and timers: no panic, bounded buffers,
//! typed errors.
#![no_main]

use std::sync::Arc;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mqload::mqtt::QoS;
use mqload::session::{Mqtt5Options, Session, SessionConfig};

const MAX_PACKET: usize = 4096;

fuzz_target!(|data: &[u8]| {
    // The first byte chooses the options, the second the chunk size; the rest is the stream.
    let [options, chunk, stream @ ..] = data else {
        return;
    };
    let config = SessionConfig {
        keep_alive: Duration::from_secs(60),
        clean_session: options & 1 == 0,
        username: None,
        password: None,
        max_inflight: 8,
        ack_timeout: Duration::from_secs(10),
        max_packet_size: MAX_PACKET,
        mqtt5: (options & 4 != 0).then(|| {
            Arc::new(Mqtt5Options {
                topic_alias_maximum: Some(4),
                ..Mqtt5Options::default()
            })
        }),
    };
    let qos = if options & 2 == 0 {
        QoS::AtLeastOnce
    } else {
        QoS::ExactlyOnce
    };
    let t0 = Instant::now();
    let mut session = Session::new(&config, "fuzz", t0).expect("session");
    let chunk = usize::from(*chunk).max(1);
    for (k, piece) in stream.chunks(chunk).enumerate() {
        let now = t0 + Duration::from_millis(k as u64 * 100);
        while session.can_publish(qos) && session.inflight_len() < usize::from(options >> 4) {
            session.publish("t", b"x", qos, now, now).expect("can_publish said yes");
        }
        session.output_sent(now);
        let result = session.handle_input(piece, now);
        while session.poll_event().is_some() {}
        assert!(session.buffered_input() <= MAX_PACKET + 5);
        assert!(session.inflight_len() <= 8);
        if let Err(e) = result {
            assert!(!e.to_string().is_empty());
            let mut next = Session::new(&config, "fuzz", now).expect("session");
            next.adopt(session.carry_over());
            return;
        }
        let _ = session.handle_timeout(now);
    }
});
