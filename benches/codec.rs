//! Criterion benches of the per-message hot paths: PUBLISH/CONNECT/PUBACK encode and decode
//! (MQTT 3.1.1, and an MQTT 5 PUBLISH with the properties mqload sends), and building the
//! seed's 5 KiB JSON body.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqload::mqtt::{Connect, Packet, Publish, QoS, decode, encode_publish_into};
use mqload::payload::{PayloadBuilder, PayloadFormat, PayloadRecipe};
use std::hint::black_box;

const MAX_PACKET: usize = 1 << 20;
const TOPIC: &str = "locust/test/topic";

fn publish(payload: &[u8]) -> Publish<'_> {
    Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TOPIC,
        packet_id: 4242,
        payload,
    }
}

fn connect() -> Packet<'static> {
    Packet::Connect(Connect {
        client_id: "locust-0123456789abcdef",
        keep_alive: 60,
        clean_session: true,
        username: None,
        password: None,
        will: None,
    })
}

fn bench_publish(c: &mut Criterion) {
    for (name, size) in [("100B", 100), ("5KiB", 5 * 1024)] {
        let payload = vec![0x5A; size];
        let packet = publish(&payload);
        let mut out = Vec::with_capacity(size + 64);
        let mut group = c.benchmark_group(format!("publish_qos1_{name}"));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("encode", |b| {
            b.iter(|| {
                out.clear();
                encode_publish_into(black_box(&packet), &mut out).expect("valid");
                black_box(out.len())
            })
        });
        let wire = out.clone();
        group.bench_function("decode", |b| {
            b.iter(|| {
                let decoded = decode(black_box(&wire), MAX_PACKET).expect("valid");
                black_box(decoded.map(|(_, consumed)| consumed))
            })
        });
        group.finish();
    }
}

fn bench_packet(c: &mut Criterion, name: &str, packet: &Packet<'_>) {
    let mut out = Vec::with_capacity(256);
    let mut group = c.benchmark_group(name);
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            black_box(packet).encode(&mut out).expect("valid");
            black_box(out.len())
        })
    });
    let wire = out.clone();
    group.bench_function("decode", |b| {
        b.iter(|| {
            let decoded = decode(black_box(&wire), MAX_PACKET).expect("valid");
            black_box(decoded.map(|(_, consumed)| consumed))
        })
    });
    group.finish();
}

fn bench_control(c: &mut Criterion) {
    bench_packet(c, "connect", &connect());
    bench_packet(c, "puback", &Packet::PubAck(4242));
}

fn bench_payload(c: &mut Criterion) {
    let recipe = PayloadRecipe {
        format: PayloadFormat::Json,
        run_id: "EXAMPLE-AC28-45D0-9EC8-7A4B57A9C04B".to_string(),
        random_bytes: 5 * 1024,
    };
    let mut builder = PayloadBuilder::new(&recipe, 1);
    let mut out = Vec::with_capacity(builder.body_len_hint());
    let mut seq = 0u64;
    let mut group = c.benchmark_group("payload_json_5KiB");
    group.throughput(Throughput::Bytes(builder.body_len_hint() as u64));
    group.bench_function("build", |b| {
        b.iter(|| {
            seq += 1;
            builder.build(
                7,
                black_box("locust-0123456789abcdef"),
                seq,
                black_box(1_764_270_000.123_456),
                &mut out,
            );
            black_box(out.len())
        })
    });
    group.finish();
}

/// An MQTT 5 QoS 1 PUBLISH as mqload sends it with `--message-expiry`, `--content-type` and
/// one `--user-property`, by topic alias (empty topic), beside the same 3.1.1 one.
fn bench_publish_v5(c: &mut Criterion) {
    use mqload::mqtt::v5::{self, Properties, UserProperties};
    let payload = vec![0x5A; 100];
    let user = UserProperties::to_wire(&[("site", "lab")]).expect("valid");
    let packet = v5::Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "",
        packet_id: 4242,
        properties: Properties {
            message_expiry_interval: Some(60),
            content_type: Some("application/json"),
            user: UserProperties::Wire(&user),
            topic_alias: Some(1),
            ..Properties::default()
        },
        payload: &payload,
    };
    let mut out = Vec::with_capacity(256);
    let mut group = c.benchmark_group("publish_v5_qos1_100B");
    group.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            v5::encode_publish_into(black_box(&packet), &mut out).expect("valid");
            black_box(out.len())
        })
    });
    let wire = out.clone();
    group.bench_function("decode", |b| {
        b.iter(|| {
            let decoded = v5::decode(black_box(&wire), MAX_PACKET).expect("valid");
            black_box(decoded.map(|(_, consumed)| consumed))
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_publish,
    bench_publish_v5,
    bench_control,
    bench_payload
);
criterion_main!(benches);
