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

/// A row whose 512 prompt tokens took `gemm` + `attn` + 1 ms per repetition, two
/// repetitions, with the built-in engine's per-op record.
fn op_row(isa: &str, gemm_kernel: &str, gemm_ms: u64, attn_ms: u64) -> tessera::results::BenchRow {
    use tessera::results::KernelUse;
    let rep_ns = (gemm_ms + attn_ms + 1) * 1_000_000;
    let ts = 512.0 / (rep_ns as f64 / 1e9);
    let mut r = row((512, 0), 2, isa, "4x8x4096", &[ts, ts]);
    r.samples_ns = vec![rep_ns, rep_ns];
    r.kernels_used = vec![
        KernelUse {
            op: "ffn_up".into(),
            isa: isa.into(),
            kernel: gemm_kernel.into(),
            calls: 16,
            ns: 2 * gemm_ms * 1_000_000,
            flop: 2 * 512 * 2816 * 1024 * 16,
            bytes: 16 * 1_622_016,
            ..KernelUse::default()
        },
        KernelUse {
            op: "attention".into(),
            isa: isa.into(),
            kernel: "attn_kv_f16".into(),
            calls: 16,
            ns: 2 * attn_ms * 1_000_000,
            flop: 1,
            bytes: 1,
            ..KernelUse::default()
        },
    ];
    r
}

#[test]
fn report_splits_the_fastest_and_slowest_configuration_by_op() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    write_run(
        &run,
        &[
            op_row("avx2", "gemm_q4_0x8_q8_0", 300, 100),
            op_row("scalar", "gemm_q4_0_q8_0", 2300, 100),
        ],
    );
    tessera().arg("report").arg(&run).assert().success();
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("## Where the time goes"), "{md}");
    // 401 ms vs 2401 ms per 512 tokens: 5.99x, the whole gap in ffn_up's gemm.
    assert!(
        md.contains("**pp512: isa=scalar is 5.99x slower than isa=avx2; 100% of the extra time is in gemm ops (gemm_q4_0_q8_0)**"),
        "{md}"
    );
    assert!(
        md.contains("Kernels of the fastest configuration, isa=avx2:"),
        "{md}"
    );
    assert!(
        md.contains("Kernels of the slowest configuration, isa=scalar:"),
        "{md}"
    );
    // ffn_up of the fastest: 300 ms of 401 per repetition, 74.8%.
    assert!(
        md.lines().any(
            |l| l.starts_with("| ffn_up | gemm_q4_0x8_q8_0 | avx2 | 16 |")
                && l.contains("| 74.8% |")
        ),
        "{md}"
    );
    assert!(md.contains("![Time per token by op"), "{md}");
    let png = std::fs::read(run.join("charts/ops.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
