//! Client id and topic templates: their placeholders, checking and expansion per user.

use rand::Rng;
use rand::distr::Alphanumeric;

/// Every placeholder a template may hold.
pub(super) const PLACEHOLDERS: [&str; 4] = ["{i}", "{run_id}", "{client_id}", "{rand}"];
/// The client id cannot contain itself.
pub(super) const CLIENT_ID_PLACEHOLDERS: [&str; 3] = ["{i}", "{run_id}", "{rand}"];

/// Substitutes `{i}`, `{run_id}`, `{client_id}` and `{rand}` (16 random alphanumerics) in a
/// template; any other `{` is kept as it is.
pub fn expand_template(template: &str, index: u64, run_id: &str, client_id: &str) -> String {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let after = &rest[start..];
        let Some(placeholder) = PLACEHOLDERS.iter().find(|p| after.starts_with(**p)) else {
            out.push('{');
            rest = &after[1..];
            continue;
        };
        match *placeholder {
            "{i}" => out.push_str(&index.to_string()),
            "{run_id}" => out.push_str(run_id),
            "{client_id}" => out.push_str(client_id),
            _ => out.push_str(&random_alphanumerics(16)),
        }
        rest = &after[placeholder.len()..];
    }
    out.push_str(rest);
    out
}

/// Whether every `{` in `template` opens one of `allowed`.
pub(super) fn template_ok(template: &str, allowed: &[&str]) -> bool {
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let after = &rest[start..];
        let Some(placeholder) = allowed.iter().find(|p| after.starts_with(**p)) else {
            return false;
        };
        rest = &after[placeholder.len()..];
    }
    true
}

/// `n` random ASCII letters and digits.
pub(super) fn random_alphanumerics(n: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_expand() {
        assert_eq!(
            expand_template("dev/{i}/{run_id}", 7, "R1", "c"),
            "dev/7/R1"
        );
        assert_eq!(expand_template("t/{client_id}", 0, "R", "cid"), "t/cid");
        let id = expand_template("locust-{rand}", 0, "R", "");
        assert_eq!(id.len(), 23);
        assert!(id[7..].chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(template_ok("a/{i}/{rand}", &PLACEHOLDERS));
        assert!(!template_ok("a/{user}", &PLACEHOLDERS));
        assert!(!template_ok("id-{client_id}", &CLIENT_ID_PLACEHOLDERS));
        assert_eq!(expand_template("{x}/{i}", 3, "R", ""), "{x}/3");
    }
}
