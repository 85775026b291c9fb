//! Criterion bench of a subscriber's per-message work: read the stamp (raw header or JSON
//! `info`) and judge it in the per-publisher window, over 1,000 publishers in turn.

use criterion::{Criterion, criterion_group, criterion_main};
use mqload::delivery::{Reading, STAMP_HEAD_LEN, StampReader, SubscriberTracker};
use mqload::payload::{PayloadBuilder, PayloadFormat, PayloadRecipe, json_head};
use mqload::stats::DeliveryCounts;
use std::hint::black_box;

const PUBLISHERS: u64 = 1_000;
const RUN_ID: &str = "mqload-bench-run";

/// One message per publisher, as a subscriber sees their first bytes.
fn heads(format: PayloadFormat) -> Vec<Vec<u8>> {
    let recipe = PayloadRecipe {
        format,
        run_id: RUN_ID.into(),
        random_bytes: 100,
    };
    let mut builder = PayloadBuilder::new(&recipe, 1);
    (0..PUBLISHERS)
        .map(|user| {
            let mut out = Vec::new();
            let client_id = format!("locust-{user:016}");
            builder.build(user, &client_id, 0, 1_764_270_000.25, &mut out);
            out.truncate(STAMP_HEAD_LEN);
            out
        })
        .collect()
}

fn bench_receive(c: &mut Criterion) {
    let reader = StampReader::new(RUN_ID, json_head(RUN_ID));
    for (name, format) in [("raw", PayloadFormat::Raw), ("json", PayloadFormat::Json)] {
        let heads = heads(format);
        let mut tracker = SubscriberTracker::new(PUBLISHERS as usize);
        let mut counts = DeliveryCounts::default();
        let mut seq = 0u64;
        let mut next = 0usize;
        c.bench_function(&format!("receive_{name}_read_and_track"), |b| {
            b.iter(|| {
                let head = &heads[next];
                next += 1;
                if next == heads.len() {
                    next = 0;
                    seq += 1;
                }
                if let Reading::Ours(mut stamp) = reader.read(black_box(head)) {
                    stamp.seq = seq;
                    black_box(tracker.observe(stamp, &mut counts));
                }
            })
        });
        assert_eq!(counts.duplicates + counts.stale + counts.untracked, 0);
    }
}

criterion_group!(benches, bench_receive);
criterion_main!(benches);
