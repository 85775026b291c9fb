//! Fuzz target: the MQTT 3.1.1 and MQTT 5 decoders on arbitrary bytes never panic, and what
//! they accept re-encodes to a packet that decodes the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mqload::mqtt::{self, v5};

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let Ok(Some((packet, used))) = mqtt::decode(buf, 1 << 16) {
        assert!(used > 0 && used <= buf.len());
        let mut again = Vec::new();
        if packet.encode(&mut again).is_ok() {
            let (decoded, n) = mqtt::decode(&again, 1 << 16)
                .expect("what the encoder writes decodes")
                .expect("a whole packet");
            assert_eq!(n, again.len());
            assert_eq!(decoded, packet);
        }
        buf = &buf[used..];
    }
    let _ = mqtt::decode_fixed_header(data, 1 << 16);
    let mut buf = data;
    while let Ok(Some((packet, used))) = v5::decode(buf, 1 << 16) {
        assert!(used > 0 && used <= buf.len());
        let mut again = Vec::new();
        packet.encode(&mut again).expect("what the MQTT 5 decoder accepts encodes");
        let (decoded, n) = v5::decode(&again, 1 << 16)
            .expect("what the encoder writes decodes")
            .expect("a whole packet");
        assert_eq!(n, again.len());
        assert_eq!(decoded, packet);
        buf = &buf[used..];
    }
    let _ = v5::decode_fixed_header(data, 1 << 16);
});
