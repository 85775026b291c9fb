//! Topic filter matching (MQTT 3.1.1 section 4.7): `+` one level, `#` the rest, `$` topics apart.

/// Whether `filter` (a valid topic filter) matches `topic` (a valid topic name).
///
/// `+` matches exactly one level (possibly empty), `#` matches the parent level and
/// everything below it, and a filter starting with a wildcard never matches a topic starting
/// with `$` (so `#` does not see `$SYS/...`). No allocation.
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// For a shared subscription `$share/{group}/{filter}`: the group and the inner filter.
///
/// `None` for an ordinary filter. Delivery goes to one member of the group, and the inner
/// filter is what topics are matched against.
pub fn shared_parts(filter: &str) -> Option<(&str, &str)> {
    filter.strip_prefix("$share/")?.split_once('/')
}

/// A valid MQTT 5 topic filter: the 3.1.1 rules, and for a shared subscription a non-empty
/// group name without wildcards followed by a valid filter.
pub fn is_valid_filter(filter: &str) -> bool {
    match filter.strip_prefix("$share/") {
        Some(rest) => match rest.split_once('/') {
            Some((group, inner)) => {
                !group.is_empty()
                    && !group.contains(['+', '#'])
                    && super::wire::is_valid_topic_filter(inner)
            }
            None => false,
        },
        None => super::wire::is_valid_topic_filter(filter),
    }
}

#[cfg(test)]
mod tests {
    use super::{is_valid_filter, matches, shared_parts};

    #[test]
    fn shared_subscriptions_split_into_group_and_filter() {
        assert_eq!(shared_parts("$share/g/a/+"), Some(("g", "a/+")));
        assert_eq!(shared_parts("a/b"), None);
        assert!(is_valid_filter("$share/workers/#"));
        assert!(is_valid_filter("a/+/c"));
        assert!(!is_valid_filter("$share/g"));
        assert!(!is_valid_filter("$share//a"));
        assert!(!is_valid_filter("$share/g+/a"));
        assert!(!is_valid_filter("$share/g/a#"));
    }

    #[test]
    fn exact_and_single_level() {
        assert!(matches("a/b/c", "a/b/c"));
        assert!(!matches("a/b/c", "a/b"));
        assert!(!matches("a/b", "a/b/c"));
        assert!(matches("a/+/c", "a/x/c"));
        assert!(matches("a/+/c", "a//c"));
        assert!(!matches("a/+/c", "a/x/y/c"));
        assert!(matches("+", "a"));
        assert!(!matches("+", "a/b"));
        assert!(matches("+/+", "/a"));
    }

    #[test]
    fn multi_level() {
        assert!(matches("#", "a"));
        assert!(matches("#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(matches("a/#", "a/b/c"));
        assert!(!matches("a/#", "b/a"));
        assert!(matches("a/+/#", "a/b"));
        assert!(!matches("a/+/#", "a"));
    }

    #[test]
    fn dollar_topics_need_an_explicit_first_level() {
        assert!(!matches("#", "$SYS/broker/uptime"));
        assert!(!matches("+/broker/uptime", "$SYS/broker/uptime"));
        assert!(matches("$SYS/#", "$SYS/broker/uptime"));
        assert!(matches("$SYS/+/uptime", "$SYS/broker/uptime"));
    }
}
