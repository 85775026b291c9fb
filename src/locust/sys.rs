//! What the heartbeat reports about this process (CPU and memory from /proc), and the node id.

use std::time::{Duration, Instant};

use rand::Rng;

/// How often Locust's runner re-reads its CPU use (`CPU_MONITOR_INTERVAL` in runners.py); the
/// heartbeats in between repeat the last reading, as a Python worker's do.
pub const CPU_MONITOR_INTERVAL: Duration = Duration::from_secs(10);

/// CPU use of this process as Locust reports it (psutil's `cpu_percent()`): percent of one
/// core, averaged over the last [`CPU_MONITOR_INTERVAL`], above 100 when several threads are
/// busy. The master warns about a worker over 90, which then means the same as for Python.
#[derive(Debug)]
pub struct CpuMeter {
    last_ticks: u64,
    last_at: Instant,
    ticks_per_sec: f64,
    percent: f64,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    /// Starts measuring now.
    pub fn new() -> CpuMeter {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
        CpuMeter {
            last_ticks: cpu_ticks().unwrap_or(0),
            last_at: Instant::now(),
            ticks_per_sec: if hz > 0 { hz as f64 } else { 100.0 },
            percent: 0.0,
        }
    }

    /// (CPU percent of one core, resident bytes); the CPU figure is re-read once every
    /// [`CPU_MONITOR_INTERVAL`] (0 before the first one, as in Locust).
    pub fn sample(&mut self) -> (f64, u64) {
        self.sample_every(CPU_MONITOR_INTERVAL)
    }

    /// As [`CpuMeter::sample`], re-reading the CPU figure once `interval` has passed.
    pub fn sample_every(&mut self, interval: Duration) -> (f64, u64) {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last_at);
        if elapsed >= interval && !elapsed.is_zero() {
            let ticks = cpu_ticks().unwrap_or(self.last_ticks);
            let used = ticks.saturating_sub(self.last_ticks) as f64 / self.ticks_per_sec;
            self.percent = (used / elapsed.as_secs_f64() * 100.0).max(0.0);
            self.last_ticks = ticks;
            self.last_at = now;
        }
        (self.percent, rss_bytes().unwrap_or(0))
    }
}

/// utime + stime of this process, in clock ticks.
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).unwrap_or(4096))
}

/// `<hostname>_<32 hex>`, as Locust's workers name themselves.
pub fn node_id() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(0);
    let host = if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    };
    let host = if host.is_empty() {
        "mqload".into()
    } else {
        host
    };
    let hex: String = (0..16)
        .map(|_| format!("{:02x}", rand::rng().random::<u8>()))
        .collect();
    format!("{host}_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_has_locusts_shape() {
        let id = node_id();
        let (host, hex) = id.rsplit_once('_').expect("underscore");
        assert!(!host.is_empty());
        assert_eq!(hex.len(), 32);
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(node_id(), id);
    }

    /// Keeps `threads` threads busy for `how_long`.
    fn spin(threads: usize, how_long: Duration) {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                std::thread::spawn(move || {
                    let start = Instant::now();
                    let mut x = 0u64;
                    while start.elapsed() < how_long {
                        x = x.wrapping_add(std::hint::black_box(1));
                    }
                    x
                })
            })
            .collect();
        for w in workers {
            assert!(w.join().expect("spinner") > 0);
        }
    }

    /// User + system CPU seconds of this process, from getrusage (not from /proc).
    fn rusage_cpu_secs() -> f64 {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(usage.ru_utime) + secs(usage.ru_stime)
    }

    #[test]
    fn cpu_is_percent_of_one_core_as_psutil_reports_it() {
        let mut meter = CpuMeter::new();
        assert_eq!(
            meter.sample().0,
            0.0,
            "Locust reports 0 before its first reading"
        );
        let (cpu_before, wall_before) = (rusage_cpu_secs(), Instant::now());
        meter.last_ticks = cpu_ticks().expect("/proc/self/stat");
        meter.last_at = wall_before;
        spin(2, Duration::from_millis(500));
        let (percent, rss) = meter.sample_every(Duration::ZERO);
        let one_core =
            (rusage_cpu_secs() - cpu_before) / wall_before.elapsed().as_secs_f64() * 100.0;
        assert!(rss > 1 << 20, "{rss}");
        // Two busy threads: CPU seconds per wall second, not divided by the host's cores (a
        // host-normalised figure would be half of this on two cores). Ticks are 10 ms.
        assert!(one_core > 50.0, "the spinners ran: {one_core}");
        assert!(
            (percent - one_core).abs() < one_core * 0.1 + 5.0,
            "meter {percent} vs getrusage {one_core}"
        );
        let (held, _) = meter.sample();
        assert_eq!(held, percent, "between readings the last one is repeated");
    }
}
