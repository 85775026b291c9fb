//! Locust's configuration files: `key = value` files (`locust.conf`, `~/.locust.conf`,
//! `--config FILE`) as configargparse reads them, and the `[tool.locust]` table of a TOML file
//! (`pyproject.toml`), of which the plain `key = value` subset is understood.

use std::fmt;

/// One setting of a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Setting {
    /// Key as written, without leading dashes (`spawn-rate`).
    pub key: String,
    /// Its value.
    pub value: SettingValue,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// A setting's value.
#[derive(Debug, Clone, PartialEq)]
pub enum SettingValue {
    /// One value, as text (`true`, `10`, `mqtts://h:8883`).
    Text(String),
    /// A list (`[a, b]`).
    List(Vec<String>),
}

/// A config file mqload cannot read as Locust would.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigFileError {
    /// A line that is neither a comment, a section header nor a `key = value`.
    BadLine {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// TOML that mqload's subset does not understand (it names what was found).
    UnsupportedToml {
        /// 1-based line number.
        line: usize,
        /// What mqload does not understand there.
        what: String,
    },
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigFileError::BadLine { line, text } => write!(
                f,
                "line {line}: {text:?} is not `key = value` (nor a comment or [section])"
            ),
            ConfigFileError::UnsupportedToml { line, what } => write!(
                f,
                "line {line}: {what}; mqload reads [tool.locust] as plain `key = value` lines with strings, numbers, booleans or one-line arrays"
            ),
        }
    }
}

impl std::error::Error for ConfigFileError {}

/// Reads a `locust.conf`-style file (configargparse's default format): `key = value`,
/// `key: value`, `key value`, `--key value` or a bare `key` (true); `#`, `;`, `[section]`
/// and `---` lines are comments; a value in matching quotes loses them; `[a, b]` is a list.
pub fn parse_conf(text: &str) -> Result<Vec<Setting>, ConfigFileError> {
    let mut settings: Vec<Setting> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with(['#', ';', '[']) || line.starts_with("---") {
            continue;
        }
        let number = index + 1;
        let key_end = line
            .find(|c: char| c == ':' || c == '=' || c == ';' || c == '#' || c.is_whitespace())
            .unwrap_or(line.len());
        let key = &line[..key_end];
        if key.is_empty() {
            return Err(ConfigFileError::BadLine {
                line: number,
                text: raw.to_owned(),
            });
        }
        let rest = &line[key_end..];
        let trimmed = rest.trim_start();
        let (separator, after) = match trimmed.chars().next() {
            Some(c @ (':' | '=')) => (Some(c), &trimmed[1..]),
            Some(';' | '#') if rest.starts_with(char::is_whitespace) => (None, ""),
            Some(';' | '#') => {
                return Err(ConfigFileError::BadLine {
                    line: number,
                    text: raw.to_owned(),
                });
            }
            Some(_) => (Some(' '), trimmed),
            None => (None, ""),
        };
        let value = strip_comment(after.trim());
        let value = unquote(value);
        let value = match (separator, value.is_empty()) {
            (None, _) => "true".to_owned(),
            (Some(' '), true) => "true".to_owned(),
            (Some(_), _) => value.to_owned(),
        };
        let value = if value.starts_with('[') && value.ends_with(']') {
            SettingValue::List(list_items(&value))
        } else {
            SettingValue::Text(value)
        };
        let key = key.trim_start_matches('-').to_owned();
        // A later line with the same key replaces the earlier one, as in a Python dict.
        settings.retain(|s| s.key != key);
        settings.push(Setting {
            key,
            value,
            line: number,
        });
    }
    Ok(settings)
}

/// A value's trailing ` # comment` or ` ; comment` (after whitespace) removed.
fn strip_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for i in 1..bytes.len() {
        if (bytes[i] == b'#' || bytes[i] == b';') && bytes[i - 1].is_ascii_whitespace() {
            return value[..i].trim_end();
        }
    }
    value
}

/// `"x"` or `'x'` -> `x`; anything else unchanged.
fn unquote(value: &str) -> &str {
    for q in ['"', '\''] {
        if value.len() >= 2 && value.starts_with(q) && value.ends_with(q) {
            return &value[1..value.len() - 1];
        }
    }
    value
}

/// `[a, "b", 3]` -> `a`, `b`, `3` (configargparse tries JSON first, then splits on commas).
fn list_items(value: &str) -> Vec<String> {
    if let Ok(serde_json::Value::Array(items)) = serde_json::from_str::<serde_json::Value>(value) {
        return items
            .into_iter()
            .map(|v| match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            })
            .collect();
    }
    value[1..value.len() - 1]
        .split(',')
        .map(|s| s.trim().to_owned())
        .collect()
}

/// Reads the `[tool.locust]` table of a TOML file; other tables are skipped (their strings
/// and arrays are followed so that a `[` inside them is not taken for a header). Values
/// become text as Locust's parser makes them (`true` -> `True`, as Python's `str()` does).
pub fn parse_pyproject(text: &str) -> Result<Vec<Setting>, ConfigFileError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut settings = Vec::new();
    let mut in_locust = false;
    let mut index = 0;
    while index < lines.len() {
        let number = index + 1;
        let line = lines[index].trim();
        index += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.starts_with('[') {
            let header = strip_toml_comment(line);
            let name = header
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split('.')
                .map(|part| part.trim().trim_matches('"').trim_matches('\''))
                .collect::<Vec<_>>();
            in_locust = !header.starts_with("[[") && name == ["tool", "locust"];
            if name.len() > 2 && name[..2] == ["tool", "locust"] {
                return Err(ConfigFileError::UnsupportedToml {
                    line: number,
                    what: format!("the sub-table {header}"),
                });
            }
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            if !in_locust {
                continue; // another tool's table: not ours to judge
            }
            return Err(ConfigFileError::UnsupportedToml {
                line: number,
                what: format!("{line:?} is not `key = value`"),
            });
        };
        let key = key.trim();
        let mut value = value.trim().to_owned();
        // Follow multi-line strings and arrays to their end, whichever table they are in.
        while !toml_value_complete(&value) && index < lines.len() {
            if in_locust {
                return Err(ConfigFileError::UnsupportedToml {
                    line: number,
                    what: format!("the value of {key} spans several lines"),
                });
            }
            value.push('\n');
            value.push_str(lines[index]);
            index += 1;
        }
        if !in_locust {
            if key.starts_with("tool.locust") || key.starts_with("locust.") {
                return Err(ConfigFileError::UnsupportedToml {
                    line: number,
                    what: format!("the dotted key {key}"),
                });
            }
            continue;
        }
        let key = key.trim_matches('"').to_owned();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ConfigFileError::UnsupportedToml {
                line: number,
                what: format!("the key {key:?}"),
            });
        }
        let value = toml_value(strip_toml_comment(&value), number)?;
        settings.push(Setting {
            key,
            value,
            line: number,
        });
    }
    Ok(settings)
}

/// Whether a value's strings and brackets are all closed.
fn toml_value_complete(value: &str) -> bool {
    if value.starts_with("\"\"\"") || value.starts_with("'''") {
        let quote = &value[..3];
        return value.len() >= 6 && value[3..].contains(quote);
    }
    let mut depth = 0i32;
    for (_, c) in outside_strings(value) {
        match c {
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            '#' => break,
            _ => {}
        }
    }
    depth <= 0
}

/// The characters of `text` outside TOML strings (`"..."` with `\\` escapes, `'...'`
/// literal), with their byte offsets: where a comment or an array's comma may stand.
fn outside_strings(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    text.char_indices().filter(move |&(_, c)| match quote {
        Some(q) => {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            false
        }
        None if c == '"' || c == '\'' => {
            quote = Some(c);
            false
        }
        None => true,
    })
}

/// A line's ` # comment` removed, outside strings.
fn strip_toml_comment(line: &str) -> &str {
    match outside_strings(line).find(|&(_, c)| c == '#') {
        Some((i, _)) => line[..i].trim_end(),
        None => line.trim_end(),
    }
}

/// One TOML value of the subset: a string, an integer, a float, a boolean, or a one-line
/// array of those.
fn toml_value(text: &str, line: usize) -> Result<SettingValue, ConfigFileError> {
    let text = text.trim();
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        let mut items = Vec::new();
        for part in split_array(inner) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            if part.starts_with('[') {
                return Err(ConfigFileError::UnsupportedToml {
                    line,
                    what: "a nested array".into(),
                });
            }
            items.push(toml_scalar(part, line)?);
        }
        return Ok(SettingValue::List(items));
    }
    Ok(SettingValue::Text(toml_scalar(text, line)?))
}

/// Splits an array's inside on commas outside strings.
fn split_array(inner: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in outside_strings(inner).filter(|&(_, c)| c == ',') {
        parts.push(&inner[start..i]);
        start = i + 1;
    }
    parts.push(&inner[start..]);
    parts
}

/// A TOML scalar as Python's `str()` of the parsed value prints it.
fn toml_scalar(text: &str, line: usize) -> Result<String, ConfigFileError> {
    let unsupported = |what: String| ConfigFileError::UnsupportedToml { line, what };
    if text.starts_with("\"\"\"") || text.starts_with("'''") {
        return Err(unsupported("a multi-line string".into()));
    }
    if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        return Ok(inner.to_owned());
    }
    if text.starts_with('"') {
        return match serde_json::from_str::<String>(text) {
            Ok(s) => Ok(s),
            Err(_) => Err(unsupported(format!("the string {text}"))),
        };
    }
    match text {
        "true" => return Ok("True".into()),
        "false" => return Ok("False".into()),
        _ => {}
    }
    let digits = text.replace('_', "");
    if let Ok(i) = digits.parse::<i64>() {
        return Ok(i.to_string());
    }
    if digits.contains(['.', 'e', 'E'])
        && let Ok(f) = digits.parse::<f64>()
        && f.is_finite()
    {
        return Ok(python_float(f));
    }
    Err(unsupported(format!("the value {text}")))
}

/// A float as Python's `str()` writes it (`1.0`, `0.5`, `1e-05`).
fn python_float(f: f64) -> String {
    let text = format!("{f:?}");
    if text.contains(['.', 'e', 'E']) {
        text
    } else {
        format!("{text}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(settings: &[Setting], key: &str) -> Option<String> {
        settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| match &s.value {
                SettingValue::Text(t) => t.clone(),
                SettingValue::List(l) => format!("{l:?}"),
            })
    }

    #[test]
    fn conf_lines_read_as_configargparse_reads_them() {
        let conf = "# comment\n; other comment\n[section]\n---\n\
                    users = 10\nspawn-rate: 2\nrun-time 1m\n--host mqtt://h:1883\n\
                    headless\nhtml = \"report {u}.html\"  # trailing comment\n\
                    csv =\ntags = [a, b]\nexclude-tags = [\"x\", \"y\"]\nusers = 12\n";
        let s = parse_conf(conf).expect("parses");
        assert_eq!(
            text(&s, "users").as_deref(),
            Some("12"),
            "the later line wins"
        );
        assert_eq!(text(&s, "spawn-rate").as_deref(), Some("2"));
        assert_eq!(text(&s, "run-time").as_deref(), Some("1m"));
        assert_eq!(text(&s, "host").as_deref(), Some("mqtt://h:1883"));
        assert_eq!(text(&s, "headless").as_deref(), Some("true"));
        assert_eq!(text(&s, "html").as_deref(), Some("report {u}.html"));
        assert_eq!(text(&s, "csv").as_deref(), Some(""));
        assert_eq!(text(&s, "tags").as_deref(), Some(r#"["a", "b"]"#));
        assert_eq!(text(&s, "exclude-tags").as_deref(), Some(r#"["x", "y"]"#));
        assert!(parse_conf("=x\n").is_err());
    }

    #[test]
    fn pyproject_reads_only_tool_locust_and_follows_other_tables() {
        let toml = "[project]\nname = \"x\"\ndependencies = [\n  \"a[extra]>=1\",\n  \"b\",\n]\n\
                    description = \"\"\"\n[tool.locust]\nusers = 99\n\"\"\"\n\
                    [tool.locust]\nusers = 5  # five\nspawn-rate = 0.5\nheadless = true\n\
                    host = 'mqtt://127.0.0.1:1883'\ntags = [\"a\", \"b\"]\n[tool.other]\nusers = 7\nnot ours to judge\n";
        let s = parse_pyproject(toml).expect("parses");
        assert_eq!(text(&s, "users").as_deref(), Some("5"));
        assert_eq!(text(&s, "spawn-rate").as_deref(), Some("0.5"));
        assert_eq!(text(&s, "headless").as_deref(), Some("True"));
        assert_eq!(text(&s, "host").as_deref(), Some("mqtt://127.0.0.1:1883"));
        assert_eq!(text(&s, "tags").as_deref(), Some(r#"["a", "b"]"#));
        assert_eq!(s.len(), 5);
    }

    #[test]
    fn hashes_and_commas_inside_strings_are_not_comments_or_separators() {
        let toml = "[tool.locust]\nhost = \"mqtt://h#1\" # the broker\n\
                    tags = [\"a,b\", 'c # d', \"e\\\"#,f\"] # three\n";
        let s = parse_pyproject(toml).expect("parses");
        assert_eq!(text(&s, "host").as_deref(), Some("mqtt://h#1"));
        match &s.iter().find(|x| x.key == "tags").expect("tags").value {
            SettingValue::List(items) => assert_eq!(items.len(), 3, "{items:?}"),
            other => panic!("tags: {other:?}"),
        }
    }

    #[test]
    fn pyproject_refuses_what_it_does_not_understand() {
        for bad in [
            "[tool.locust]\nusers = { a = 1 }\n",
            "[tool.locust]\nhost = \"\"\"x\"\"\"\n",
            "[tool.locust]\ntags = [\n\"a\"]\n",
            "[tool.locust]\nrun-time = 1979-05-27\n",
            "[tool.locust.sub]\nx = 1\n",
            "[tool]\nlocust.users = 3\n",
            "[tool.locust]\nusers\n",
        ] {
            let e = parse_pyproject(bad).expect_err(bad);
            assert!(e.to_string().starts_with("line "), "{e}");
        }
    }
}
