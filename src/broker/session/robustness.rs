//! Random and mutated MQTT 3.1.1 byte streams through the server session: no panic.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;

/// Feeds a byte stream the way the broker does: decode, hand over, stop at the first
/// violation. Returns (normally, whatever the bytes are) how many packets were accepted.
fn feed(bytes: &[u8]) -> usize {
    let mut session = ServerSession::new();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut accepted = 0;
    loop {
        match crate::mqtt::decode(rest, 1 << 16) {
            Ok(Some((packet, used))) => {
                rest = &rest[used..];
                if session.on_packet(packet, &mut out).is_err() {
                    return accepted;
                }
                accepted += 1;
            }
            Ok(None) => return accepted,
            Err(e) => {
                session.on_decode_error(e, &mut out);
                return accepted;
            }
        }
    }
}

#[test]
fn random_and_mutated_streams_never_panic() {
    let mut rng = StdRng::seed_from_u64(0x6d71_6c6f_6164);
    // A valid session: CONNECT, SUBSCRIBE, PUBLISH QoS 2, PUBREL, PINGREQ, DISCONNECT.
    let valid: &[u8] = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id\
            \x82\x08\x00\x01\x00\x03a/#\x02\
            \x34\x09\x00\x03a/b\x00\x05hi\
            \x62\x02\x00\x05\xc0\x00\xe0\x00";
    assert_eq!(feed(valid), 6);
    for _ in 0..20_000 {
        let mut bytes = valid.to_vec();
        for _ in 0..rng.random_range(1..4) {
            let at = rng.random_range(0..bytes.len());
            bytes[at] = rng.random();
        }
        bytes.truncate(rng.random_range(0..=bytes.len()));
        feed(&bytes);
        let noise: Vec<u8> = (0..rng.random_range(0..64)).map(|_| rng.random()).collect();
        feed(&noise);
    }
}
