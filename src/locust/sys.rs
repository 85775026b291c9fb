//! What the heartbeat reports about this process (CPU and memory from /proc), and the node id.

use std::time::Instant;

use rand::Rng;

/// CPU use of this process between two samples, from /proc/self/stat.
#[derive(Debug)]
pub struct CpuMeter {
    last_ticks: u64,
    last_at: Instant,
    ticks_per_sec: f64,
    cpus: f64,
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
            cpus: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
        }
    }

    /// (CPU percent of the whole host's cores since the last sample, resident bytes).
    pub fn sample(&mut self) -> (f64, u64) {
        let now = Instant::now();
        let ticks = cpu_ticks().unwrap_or(self.last_ticks);
        let elapsed = now.duration_since(self.last_at).as_secs_f64();
        let used = ticks.saturating_sub(self.last_ticks) as f64 / self.ticks_per_sec;
        self.last_ticks = ticks;
        self.last_at = now;
        let percent = if elapsed > 0.0 {
            (used / elapsed / self.cpus * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        };
        (percent, rss_bytes().unwrap_or(0))
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

    #[test]
    fn this_process_has_memory_and_cpu_readings() {
        let mut meter = CpuMeter::new();
        let spin = Instant::now();
        let mut x = 0u64;
        while spin.elapsed().as_millis() < 30 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let (cpu, rss) = meter.sample();
        assert!(x > 0);
        assert!((0.0..=100.0).contains(&cpu));
        assert!(rss > 1 << 20, "{rss}");
    }
}
