//! Locust's duration syntax (`90`, `30s`, `1h30m`), shared by every room that reads a time
//! from the user: the load plan, the built-in broker's `--run-time`, the Locust worker.

use std::time::Duration;

/// Longest duration any option accepts (a year): far past any load test, and far from the
/// overflow of instant arithmetic.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// Parses Locust's duration syntax (`90`, `30s`, `10m`, `1h30m`, `1h 30m 10s`), plus `ms`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .ok()
            .filter(|d| *d <= MAX_DURATION);
    }
    let mut total = 0f64;
    let mut number = String::new();
    let mut saw_unit = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let unit = match c {
            '0'..='9' | '.' => {
                number.push(c);
                continue;
            }
            ' ' => continue,
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                0.001
            }
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        let value: f64 = number.parse().ok()?;
        number.clear();
        total += value * unit;
        saw_unit = true;
    }
    if !number.is_empty() || !saw_unit {
        return None;
    }
    Duration::try_from_secs_f64(total)
        .ok()
        .filter(|d| *d <= MAX_DURATION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locust_durations_parse() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(
            parse_duration("1h 30m 10s"),
            Some(Duration::from_secs(5410))
        );
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("0.5s"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2ms"), Some(Duration::from_millis(2)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
    }

    #[test]
    fn bad_durations_are_rejected() {
        for bad in [
            "",
            "10x",
            "m",
            "-5",
            "1h30",
            "ten minutes",
            "5s5",
            "1e19",
            "1e30s",
            "NaN",
            "inf",
            "9000h",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
    }
}
