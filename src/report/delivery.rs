//! The delivery figures in words (console) and as `PREFIX_delivery.csv`: sent, expected,
//! received, lost, duplicates, reordered, and what could not be checked.

use crate::stats::DeliveryStats;

/// Header of `PREFIX_delivery.csv` (one data row, written at the end of the run).
pub const DELIVERY_HEADER: &str = "Subscribers,Sent,Expected,Received,Lost,Duplicates,Reordered,Stale,Untracked,Foreign,Unparseable";

/// The final report's delivery lines.
pub fn delivery_report(d: &DeliveryStats) -> String {
    let c = &d.counts;
    let mut out = format!(
        "Delivery ({} subscribers): sent {}, expected {}, received {}, lost {}, duplicates {}, reordered {}\n",
        d.subscribers, c.sent, c.expected, c.received, d.lost, c.duplicates, c.reordered
    );
    if c.stale + c.untracked + c.foreign + c.unparseable > 0 {
        out.push_str(&format!(
            "Not checked: {} older than the {}-message window (counted lost), {} from publishers beyond the tracking limit, {} of other runs, {} without an mqload stamp\n",
            c.stale,
            crate::delivery::WINDOW,
            c.untracked,
            c.foreign,
            c.unparseable
        ));
    }
    if c.delivered() > c.expected {
        out.push_str(
            "More messages arrived than this process's publishers sent: another process publishes \
             with the same run id. Its receive latency compares two hosts' clocks (sync them, \
             e.g. with chrony), and lost counts only this process's publishers\n",
        );
    } else {
        out.push_str(
            "Receive latency is arrival minus due time; publishers and subscribers ran in this \
             process, on one clock\n",
        );
    }
    out
}

/// `PREFIX_delivery.csv`'s text.
pub fn delivery_csv(d: &DeliveryStats) -> String {
    let c = &d.counts;
    let fields = [
        d.subscribers,
        c.sent,
        c.expected,
        c.received,
        d.lost,
        c.duplicates,
        c.reordered,
        c.stale,
        c.untracked,
        c.foreign,
        c.unparseable,
    ];
    let row: Vec<String> = fields.iter().map(u64::to_string).collect();
    format!("{DELIVERY_HEADER}\n{}\n", row.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::DeliveryCounts;

    fn stats(received: u64, duplicates: u64) -> DeliveryStats {
        DeliveryStats::new(
            2,
            DeliveryCounts {
                sent: 10,
                expected: 20,
                received,
                duplicates,
                reordered: 1,
                ..DeliveryCounts::default()
            },
        )
    }

    #[test]
    fn the_line_and_the_csv_carry_the_same_figures() {
        let d = stats(19, 1);
        let line = delivery_report(&d);
        assert!(
            line.starts_with("Delivery (2 subscribers): sent 10, expected 20, received 19, lost 2, duplicates 1, reordered 1\n"),
            "{line}"
        );
        assert!(line.contains("on one clock"));
        assert!(!line.contains("Not checked"));
        assert_eq!(
            delivery_csv(&d),
            format!("{DELIVERY_HEADER}\n2,10,20,19,2,1,1,0,0,0,0\n")
        );
    }

    #[test]
    fn more_than_expected_names_another_process_and_its_clock() {
        let line = delivery_report(&stats(30, 0));
        assert!(line.contains("another process"), "{line}");
        assert!(line.contains("clocks"), "{line}");
    }
}
