//! Reads what a run produced: the perf metric (from tessera's or llama-bench's JSON rows, or
//! a regex over the output) and the comparable output of `--mode output` (stdout, tokens,
//! or logits within a tolerance).

use anyhow::{Result, anyhow, bail};
use regex::Regex;
use serde_json::Value;

use crate::results::test_name;

/// Where the perf metric comes from.
#[derive(Debug, Clone)]
pub enum MetricSource {
    /// `field` of the JSON row whose `test` is `test` (or the only row when `test` is empty).
    Json { test: String, field: String },
    /// The first capture group (or whole match) of the last match in stdout.
    Regex(Regex),
}

impl MetricSource {
    /// One value from a run's stdout; the error says what was looked for and what was there.
    pub fn extract(&self, stdout: &str) -> Result<f64> {
        match self {
            MetricSource::Json { test, field } => json_metric(stdout, test, field),
            MetricSource::Regex(re) => {
                let caps = re.captures_iter(stdout).last().ok_or_else(|| {
                    anyhow!("--metric-regex '{}' does not match the output", re.as_str())
                })?;
                let text = caps.get(1).or(caps.get(0)).map_or("", |m| m.as_str());
                text.trim().parse::<f64>().map_err(|_| {
                    anyhow!(
                        "--metric-regex '{}' matched '{text}', which is not a number",
                        re.as_str()
                    )
                })
            }
        }
    }
}

/// JSON objects in a run's output: a JSON array of rows (`-o json`), one object, or one
/// object per line (`-o jsonl`), with other lines ignored.
fn json_objects(stdout: &str) -> Vec<serde_json::Map<String, Value>> {
    let mut out = Vec::new();
    let mut push = |v: Value| match v {
        Value::Object(o) => out.push(o),
        Value::Array(a) => out.extend(a.into_iter().filter_map(|v| match v {
            Value::Object(o) => Some(o),
            _ => None,
        })),
        _ => {}
    };
    if let Ok(v) = serde_json::from_str::<Value>(stdout.trim()) {
        push(v);
        return out;
    }
    // Output with log lines around the JSON: take the outermost [...] block if it parses,
    // then any line that is an object on its own.
    if let (Some(a), Some(b)) = (stdout.find('['), stdout.rfind(']'))
        && a < b
        && let Ok(v) = serde_json::from_str::<Value>(&stdout[a..=b])
    {
        push(v);
        return out;
    }
    for line in stdout.lines() {
        let line = line.trim();
        if line.starts_with('{')
            && let Ok(v) = serde_json::from_str::<Value>(line)
        {
            push(v);
        }
    }
    out
}

/// A row's test name: its `test` field, or derived from n_prompt/n_gen/n_depth as upstream
/// llama-bench rows need.
fn row_test(row: &serde_json::Map<String, Value>) -> Option<String> {
    if let Some(t) = row.get("test").and_then(Value::as_str) {
        return Some(t.to_string());
    }
    let num = |k: &str| row.get(k).and_then(Value::as_u64).map(|v| v as u32);
    let (p, g) = (num("n_prompt")?, num("n_gen")?);
    Some(test_name(p, g, num("n_depth").unwrap_or(0)))
}

fn json_metric(stdout: &str, test: &str, field: &str) -> Result<f64> {
    let rows = json_objects(stdout);
    if rows.is_empty() {
        bail!("no JSON result rows in the output (looked for a JSON array, object or lines)");
    }
    let tests: Vec<String> = rows.iter().filter_map(row_test).collect();
    let row = if test.is_empty() {
        if rows.len() > 1 {
            bail!(
                "--metric: the output has {} rows ({}); name the test, e.g. --metric {}",
                rows.len(),
                tests.join(", "),
                tests.first().map_or("tg128", String::as_str)
            );
        }
        &rows[0]
    } else {
        rows.iter()
            .find(|r| row_test(r).as_deref() == Some(test))
            .ok_or_else(|| {
                anyhow!(
                    "--metric: no row with test '{test}' in the output; tests present: {}",
                    if tests.is_empty() {
                        "none".to_string()
                    } else {
                        tests.join(", ")
                    }
                )
            })?
    };
    match row.get(field) {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| anyhow!("--metric-field {field}: not a number")),
        Some(Value::String(s)) if s.parse::<f64>().is_ok() => Ok(s.parse::<f64>().unwrap_or(0.0)),
        Some(other) => bail!("--metric-field {field}: value {other} is not a number"),
        None => bail!("--metric-field {field}: the row has no such field"),
    }
}

/// How `--mode output` compares a run with the good endpoint's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    /// Byte-for-byte equal text.
    Text,
    /// The same sequence of integers (generated token ids).
    Tokens,
    /// The same count of numbers, each within `tolerance` (absolute).
    Logits { tolerance: f64 },
}

/// `None` when `candidate` matches `reference`, else a one-line description of the first
/// difference.
pub fn compare(how: Compare, reference: &str, candidate: &str) -> Option<String> {
    match how {
        Compare::Text => {
            if reference == candidate {
                return None;
            }
            let line = reference
                .lines()
                .zip(candidate.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| reference.lines().count().min(candidate.lines().count()));
            Some(format!("output differs from line {}", line + 1))
        }
        Compare::Tokens => {
            let (a, b) = (integers(reference), integers(candidate));
            if a == b {
                return None;
            }
            match a.iter().zip(&b).position(|(x, y)| x != y) {
                Some(i) => Some(format!("token {i} differs: {} vs {}", a[i], b[i])),
                None => Some(format!("{} tokens vs {}", a.len(), b.len())),
            }
        }
        Compare::Logits { tolerance } => {
            let (a, b) = (numbers(reference), numbers(candidate));
            if a.len() != b.len() {
                return Some(format!("{} values vs {}", a.len(), b.len()));
            }
            let (i, d) = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .enumerate()
                .fold((0, 0.0f64), |best, (i, d)| {
                    if d > best.1 || d.is_nan() {
                        (i, d)
                    } else {
                        best
                    }
                });
            if d <= tolerance {
                None
            } else {
                Some(format!(
                    "value {i} differs by {d:.3e} (> tolerance {tolerance:e}): {} vs {}",
                    a[i], b[i]
                ))
            }
        }
    }
}

fn integers(s: &str) -> Vec<i64> {
    s.split(|c: char| !(c.is_ascii_digit() || c == '-'))
        .filter_map(|t| t.parse().ok())
        .collect()
}

fn numbers(s: &str) -> Vec<f64> {
    s.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '+' || c == '.'))
        .filter(|t| t.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '+' || c == '.'))
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(test: &str, field: &str) -> MetricSource {
        MetricSource::Json {
            test: test.into(),
            field: field.into(),
        }
    }

    #[test]
    fn metric_from_tessera_and_llama_bench_json() {
        let rows = r#"[{"test":"pp512","avg_ts":1160.5},{"test":"tg128","avg_ts":340.25}]"#;
        assert_eq!(json("tg128", "avg_ts").extract(rows).unwrap(), 340.25);
        // Upstream llama-bench: no `test`, derived from n_prompt/n_gen.
        let upstream = r#"[{"n_prompt":512,"n_gen":0,"avg_ts":1.5},
                           {"n_prompt":0,"n_gen":128,"n_depth":0,"avg_ts":2.5}]"#;
        assert_eq!(json("tg128", "avg_ts").extract(upstream).unwrap(), 2.5);
        // JSONL among log lines.
        let jsonl = "loading model\n{\"test\":\"tg128\",\"avg_ns\":7}\ndone\n";
        assert_eq!(json("tg128", "avg_ns").extract(jsonl).unwrap(), 7.0);
        // A single row needs no test name.
        assert_eq!(json("", "avg_ts").extract(r#"{"avg_ts": 3}"#).unwrap(), 3.0);
    }

    #[test]
    fn metric_errors_name_what_is_there() {
        let rows = r#"[{"test":"pp512","avg_ts":1},{"test":"tg128","avg_ts":2}]"#;
        let e = json("tg64", "avg_ts")
            .extract(rows)
            .unwrap_err()
            .to_string();
        assert!(e.contains("tg64") && e.contains("pp512, tg128"), "{e}");
        let e = json("", "avg_ts").extract(rows).unwrap_err().to_string();
        assert!(e.contains("2 rows"), "{e}");
        let e = json("tg128", "speed")
            .extract(rows)
            .unwrap_err()
            .to_string();
        assert!(e.contains("speed"), "{e}");
        assert!(json("tg128", "avg_ts").extract("no json here").is_err());
    }

    #[test]
    fn metric_from_regex() {
        let m = MetricSource::Regex(Regex::new(r"speed: ([0-9.]+)").unwrap());
        assert_eq!(m.extract("speed: 1.5\nspeed: 2.5\n").unwrap(), 2.5);
        assert!(
            m.extract("nothing")
                .unwrap_err()
                .to_string()
                .contains("does not match")
        );
    }

    #[test]
    fn output_comparisons() {
        assert_eq!(compare(Compare::Text, "a\nb\n", "a\nb\n"), None);
        assert_eq!(
            compare(Compare::Text, "a\nb\n", "a\nc\n").as_deref(),
            Some("output differs from line 2")
        );
        assert_eq!(compare(Compare::Tokens, "[1, 2, 3]", "1 2 3\n"), None);
        assert!(
            compare(Compare::Tokens, "1 2 3", "1 2 4")
                .unwrap()
                .contains("token 2")
        );
        let tol = Compare::Logits { tolerance: 1e-3 };
        assert_eq!(compare(tol, "0.5 -1.25e0 3", "0.5004 -1.2501 3.0"), None);
        assert!(
            compare(tol, "0.5 1.0", "0.5 1.01")
                .unwrap()
                .contains("value 1")
        );
        assert!(
            compare(tol, "0.5 1.0", "0.5")
                .unwrap()
                .contains("2 values vs 1")
        );
    }
}
