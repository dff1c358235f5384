//! The differential flamegraph of two profiled sides: their folded stacks (written by
//! `--profile` next to each row) merged by inferno's differential mode, the baseline
//! scaled to the candidate's sample count, and drawn with the candidate's frame widths:
//! red where the candidate spends more of its samples, blue where less.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};

use crate::compare::load::{LoadedRow, Run};

/// The folded-stack file of `row`, if it was profiled (its path is relative to the run
/// directory: the directory given, or the directory of the results file given).
pub fn folded_files(run: &Run, row: &LoadedRow) -> Vec<PathBuf> {
    let dir = if run.path.is_dir() {
        run.path.clone()
    } else {
        run.file.parent().map(Path::to_path_buf).unwrap_or_default()
    };
    row.row
        .profile
        .iter()
        .filter(|p| !p.folded.is_empty())
        .map(|p| dir.join(&p.folded))
        .collect()
}

/// The differential flamegraph of `test` in `dir`: `<test>-diff.svg`, every character of
/// the test name but ASCII letters and digits as `_`.
pub fn diff_file(dir: &Path, test: &str) -> PathBuf {
    let name: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    dir.join(format!("{name}-diff.svg"))
}

fn read_all(files: &[PathBuf]) -> Result<String> {
    let mut s = String::new();
    for f in files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the folded stacks '{}'", f.display()))?;
        s.push_str(&text);
        if !s.ends_with('\n') {
            s.push('\n');
        }
    }
    Ok(s)
}

/// Writes the differential flamegraph of `base` → `cand` to `out` (SVG).
pub fn write(base: &[PathBuf], cand: &[PathBuf], title: &str, out: &Path) -> Result<()> {
    if base.is_empty() || cand.is_empty() {
        bail!("a differential flamegraph needs a profile on both sides (run them with --profile)");
    }
    let (b, c) = (read_all(base)?, read_all(cand)?);
    let mut diff = Vec::new();
    let opt = inferno::differential::Options {
        normalize: true,
        strip_hex: true,
    };
    inferno::differential::from_readers(opt, b.as_bytes(), c.as_bytes(), &mut diff)
        .context("merging the folded stacks")?;
    let diff = String::from_utf8_lossy(&diff).into_owned();
    let mut fo = inferno::flamegraph::Options::default();
    fo.title = title.to_string();
    fo.count_name = "samples".into();
    let mut svg = Vec::new();
    inferno::flamegraph::from_lines(&mut fo, diff.lines(), &mut svg)
        .context("drawing the differential flamegraph")?;
    std::fs::write(out, svg).with_context(|| format!("writing '{}'", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_differential_flamegraph_shows_both_sides_frames() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.folded"), dir.path().join("b.folded"));
        std::fs::write(&a, "main;gemm_avx2 80\nmain;attention 20\n").unwrap();
        std::fs::write(&b, "main;gemm_scalar 300\nmain;attention 20\n").unwrap();
        let out = dir.path().join("diff.svg");
        write(
            std::slice::from_ref(&a),
            &[b],
            "pp512: scalar vs avx2",
            &out,
        )
        .unwrap();
        let svg = std::fs::read_to_string(&out).unwrap();
        assert!(
            svg.contains("gemm_scalar") && svg.contains("attention"),
            "{svg}"
        );
        assert!(svg.contains("pp512: scalar vs avx2"));
        let e = write(&[a], &[], "t", &out).unwrap_err().to_string();
        assert!(e.contains("profile on both sides"), "{e}");
    }

    #[test]
    fn diff_file_names_are_file_safe() {
        assert_eq!(
            diff_file(Path::new("fg"), "pp512"),
            Path::new("fg/pp512-diff.svg")
        );
        assert_eq!(
            diff_file(Path::new("fg"), "pp512+tg128 @ d/1"),
            Path::new("fg/pp512_tg128___d_1-diff.svg")
        );
    }
}
