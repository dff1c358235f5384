//! The files of a profile: folded stacks (`a;b;c count`, the input format of every
//! flamegraph tool) and a flamegraph SVG drawn from them by inferno.

use std::path::Path;

use super::Analysis;

/// Writes `<run_dir>/<name>.folded` and `<run_dir>/<name>.svg`; returns their paths
/// relative to `run_dir` (with `/`), or the reason they could not be written.
pub fn write(a: &Analysis, run_dir: &Path, name: &str) -> Result<(String, String), String> {
    let folded_rel = format!("{name}.folded");
    let svg_rel = format!("{name}.svg");
    let folded_path = run_dir.join(&folded_rel);
    let svg_path = run_dir.join(&svg_rel);
    if let Some(parent) = folded_path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let lines = folded_lines(a);
    let mut text = lines.join("\n");
    text.push('\n');
    std::fs::write(&folded_path, text)
        .map_err(|e| format!("cannot write {}: {e}", folded_path.display()))?;
    let svg = flamegraph(a, name, &lines)?;
    std::fs::write(&svg_path, svg)
        .map_err(|e| format!("cannot write {}: {e}", svg_path.display()))?;
    Ok((folded_rel, svg_rel))
}

/// The folded lines, in the stacks' sort order.
pub fn folded_lines(a: &Analysis) -> Vec<String> {
    a.folded
        .iter()
        .map(|(stack, n)| format!("{stack} {n}"))
        .collect()
}

/// The flamegraph SVG of folded `lines`.
pub fn flamegraph(a: &Analysis, name: &str, lines: &[String]) -> Result<Vec<u8>, String> {
    let mut opt = inferno::flamegraph::Options::default();
    opt.title = format!(
        "{name}: {} samples of {} at {} Hz",
        a.samples, a.event, a.freq_hz
    );
    opt.count_name = "samples".into();
    // Colours from the names' hashes: the same function has the same colour in every
    // profile, so two flamegraphs can be compared by eye.
    opt.hash = true;
    if a.lost > 0 {
        opt.subtitle = Some(format!(
            "{} records lost (the ring buffer was full)",
            a.lost
        ));
    }
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut opt, lines.iter().map(String::as_str), &mut svg)
        .map_err(|e| format!("cannot draw the flamegraph: {e}"))?;
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Leaf;
    use std::collections::BTreeMap;

    #[test]
    fn files_are_written_relative_to_the_run_dir() {
        let dir = tempfile::tempdir().unwrap();
        let a = Analysis {
            event: "cpu-clock",
            freq_hz: 999,
            samples: 4,
            lost: 0,
            folded: BTreeMap::from([
                ("engine;main;hot_loop".to_string(), 3),
                ("engine;main".to_string(), 1),
            ]),
            leaves: vec![Leaf {
                symbol: "hot_loop".into(),
                dso: "engine".into(),
                samples: 3,
            }],
        };
        let (f, s) = write(&a, dir.path(), "profiles/p-0").unwrap();
        assert_eq!(
            (f.as_str(), s.as_str()),
            ("profiles/p-0.folded", "profiles/p-0.svg")
        );
        let folded = std::fs::read_to_string(dir.path().join(&f)).unwrap();
        assert_eq!(folded, "engine;main 1\nengine;main;hot_loop 3\n");
        let svg = std::fs::read_to_string(dir.path().join(&s)).unwrap();
        assert!(svg.starts_with("<?xml"), "{}", &svg[..100.min(svg.len())]);
        assert!(svg.contains("hot_loop"));
        let p = a.profile(f, s);
        assert_eq!(p.top[0].symbol, "hot_loop");
        assert_eq!(p.top[0].share, 0.75);
    }
}
