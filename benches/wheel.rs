//! Criterion bench of the timer wheel as a worker uses it: 10,000 devices each re-armed one
//! period ahead every time it fires, so each iteration is one schedule and one firing.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mqload::engine::wheel::TimerWheel;
use std::hint::black_box;

const DEVICES: u32 = 10_000;
/// 100 ms between a device's messages, in 250 us ticks.
const PERIOD_TICKS: u64 = 400;

fn rearm_on_fire(c: &mut Criterion) {
    let mut group = c.benchmark_group("wheel");
    group.throughput(Throughput::Elements(u64::from(DEVICES)));
    group.bench_function("10k_devices_one_period", |b| {
        let mut wheel = TimerWheel::new();
        for device in 0..DEVICES {
            wheel.schedule(1 + u64::from(device) % PERIOD_TICKS, device);
        }
        let mut now = 0;
        let mut fired = Vec::with_capacity(DEVICES as usize);
        b.iter(|| {
            // One period of ticks: every device fires once and is re-armed.
            for _ in 0..PERIOD_TICKS {
                now += 1;
                fired.clear();
                wheel.advance(now, &mut fired);
                for &(tick, device) in &fired {
                    wheel.schedule(tick + PERIOD_TICKS, device);
                }
            }
            black_box(wheel.len())
        });
    });
    group.finish();
}

criterion_group!(benches, rearm_on_fire);
criterion_main!(benches);
