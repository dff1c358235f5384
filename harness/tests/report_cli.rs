//! End-to-end `tessera report`: a run directory becomes report.md, a self-contained
//! report.html with inlined charts, and chart PNGs; `--baseline` adds a comparison.

#[path = "fixtures/rows.rs"]
mod rows;

use assert_cmd::Command;
use rows::{fault_row, row, spread, write_run};

fn tessera() -> Command {
    Command::cargo_bin("tessera").unwrap()
}

/// A small sweep: 2 ISAs × threads 1,2,4 at one tile, plus four tiles at 2 threads,
/// plus one crashed point.
fn sweep_rows(scale: f64) -> Vec<tessera::results::BenchRow> {
    let mut out = Vec::new();
    for (isa, f) in [("avx2", 1.0), ("avx512", 1.3)] {
        for t in [1u32, 2, 4] {
            out.push(row(
                (512, 0),
                t,
                isa,
                "16x16x32",
                &spread(5, 600.0 * f * t as f64 * scale, 0.01),
            ));
        }
        for (i, tile) in ["16x32x32", "32x16x32", "32x32x32"].iter().enumerate() {
            out.push(row(
                (512, 0),
                2,
                isa,
                tile,
                &spread(5, 1150.0 * f * (1.0 + 0.05 * i as f64) * scale, 0.01),
            ));
        }
    }
    out.push(fault_row((512, 0), 4, "amx", "16x16x64"));
    out
}

#[test]
fn report_writes_markdown_html_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    write_run(&run, &sweep_rows(1.0));
    tessera().arg("report").arg(&run).assert().success();

    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.starts_with("# tessera report: run\n"), "{md}");
    assert!(md.contains("13 rows from"), "{md}");
    assert!(md.contains("## Failures"), "{md}");
    assert!(
        md.contains(
            "| threads=4, isa=amx, tile=16x16x64 | pp512 | fault | SIGSEGV: Segmentation fault |"
        ),
        "{md}"
    );
    assert!(
        md.contains("![pp512: tokens/s vs threads](charts/scaling-pp512.png)"),
        "{md}"
    );
    // One heatmap per ISA at 2 threads (4 tiles each); none for the crashed amx row.
    let heatmaps: Vec<&str> = md.lines().filter(|l| l.contains("charts/tiles-")).collect();
    assert_eq!(heatmaps.len(), 2, "{md}");

    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    // Self-contained: every image inlined, nothing fetched from elsewhere.
    let images = html.matches("<img ").count();
    assert_eq!(images, 3);
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), images);
    assert!(!html.contains("src=\"charts/") && !html.contains("http"));
    assert!(html.contains("<td>fault</td>"));

    for f in std::fs::read_dir(run.join("charts")).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    }
}

#[test]
fn report_with_baseline_compares_and_can_fail() {
    let dir = tempfile::tempdir().unwrap();
    let (base, cand, out) = (
        dir.path().join("base"),
        dir.path().join("cand"),
        dir.path().join("out"),
    );
    write_run(&base, &sweep_rows(1.0));
    write_run(&cand, &sweep_rows(0.85));
    tessera()
        .arg("report")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .arg("-o")
        .arg(&out)
        .assert()
        .success();
    assert!(
        !cand.join("report.md").exists(),
        "-o must redirect the output"
    );
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("## Comparison with base"), "{md}");
    assert!(md.contains("-15.00% | regressed |"), "{md}");
    assert!(md.contains("12 regressed, 1 broken"), "{md}");
    assert!(md.contains("![Baseline vs candidate](charts/compare.png)"));
    assert!(out.join("charts/compare.png").is_file());
    tessera()
        .arg("report")
        .arg(&cand)
        .arg("--baseline")
        .arg(&base)
        .arg("-o")
        .arg(&out)
        .arg("--fail-on-regression")
        .assert()
        .code(1);
}

#[test]
fn report_on_a_missing_run_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    tessera()
        .arg("report")
        .arg(dir.path())
        .assert()
        .code(2)
        .stderr(predicates::str::contains("without results.jsonl"));
}
