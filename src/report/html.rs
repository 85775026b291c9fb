//! `--html FILE`: one self-contained page (inline CSS, JS and SVG; nothing fetched at view
//! time) that embeds the JSON report and draws its tables and charts from it, so every number
//! shown is the JSON's.

use super::json::{self, ReportData};

/// The page: styles, the drawing script, and a placeholder for the JSON document.
const TEMPLATE: &str = include_str!("report.html");
const PLACEHOLDER: &str = "__MQLOAD_REPORT_JSON__";

/// The JSON text made safe inside a `<script>` element: `<` is written as `\u003c`, which
/// JSON reads back as the same character, so `</script>` in a name cannot end the block.
fn embeddable(json_text: &str) -> String {
    json_text.replace('<', "\\u003c")
}

/// The whole HTML document for `data`.
pub fn render(data: &ReportData) -> String {
    TEMPLATE.replacen(PLACEHOLDER, &embeddable(&json::render(data)), 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::json::tests::{data, sample};

    #[test]
    fn page_embeds_the_json_intact_and_fetches_nothing() {
        let (stats, series) = sample();
        let d = data(&stats, &series);
        let page = render(&d);
        assert!(!page.contains(PLACEHOLDER));
        let start = page
            .find(r#"type="application/json">"#)
            .expect("data block")
            + 24;
        let end = start + page[start..].find("</script>").expect("block end");
        let embedded: serde_json::Value =
            serde_json::from_str(&page[start..end]).expect("embedded JSON parses");
        assert_eq!(
            embedded,
            json::build(&d),
            "the page carries the report unchanged"
        );
        for remote in ["http://", "https://", "src=", "<link", "@import"] {
            let hits: Vec<_> = page.match_indices(remote).map(|(i, _)| i).collect();
            let only_svg_ns = hits
                .iter()
                .all(|&i| page[i..].starts_with("http://www.w3.org/2000/svg"));
            assert!(only_svg_ns, "{remote} in the page would fetch at view time");
        }
    }
}
