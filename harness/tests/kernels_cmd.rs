//! `tessera kernels`: listing, JSON rows per ISA × tile × shape × m, and flag errors.

use assert_cmd::Command;
use tessera_kernels::Isa;

fn tessera() -> Command {
    Command::cargo_bin("tessera").unwrap()
}

#[test]
fn list_prints_every_available_isa_with_tiles_and_marks_the_default() {
    let out = tessera().args(["kernels", "--list"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for isa in Isa::available() {
        let line = text
            .lines()
            .find(|l| {
                l.starts_with(&format!("{}:", isa.name()))
                    || l.starts_with(&format!("{} (", isa.name()))
            })
            .unwrap_or_else(|| panic!("no line for {}: {text}", isa.name()));
        for t in isa.valid_tiles() {
            assert!(line.contains(&t.to_string()), "{line} lacks {t}");
        }
        assert!(line.contains(&format!("{}*", isa.default_tile())), "{line}");
        assert_eq!(line.matches('*').count(), 1, "{line}");
    }
}

#[test]
fn json_has_one_row_per_isa_tile_shape_and_m() {
    let isas: Vec<Isa> = Isa::available();
    let out = tessera()
        .args([
            "kernels", "--preset", "tiny", "-r", "1", "--isa", "all", "--m", "1,4",
        ])
        .args(["--no-measure", "-o", "json", "-t", "1"])
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    // tiny: 8 weight shapes, 2 token counts, the default tile of each ISA.
    assert_eq!(rows.len(), isas.len() * 8 * 2);
    let mut seen = std::collections::BTreeSet::new();
    for r in &rows {
        assert!(r["gflops"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["gbps"].as_f64().unwrap() > 0.0, "{r}");
        let kernel = r["kernel"].as_str().unwrap();
        let m = r["m"].as_u64().unwrap();
        let want = if m == 1 { "gemv_q4_0" } else { "gemm_q4_0" };
        assert!(kernel.starts_with(want), "{r}");
        // The layout the engine runs: avx2 repacks Q4_0 to x8, avx512 and AMX to x16
        // (tiny's row counts are multiples of 16), the kernel name says it too.
        let layout = r["layout"].as_str().unwrap();
        let want_layout = match r["isa"].as_str().unwrap() {
            "avx2" => "x8",
            "avx512" | "amx" | "amx-emu" => "x16",
            _ => "plain",
        };
        assert_eq!(layout, want_layout, "{r}");
        if layout != "plain" {
            assert!(kernel.contains(&format!("q4_0{layout}")), "{r}");
        }
        for f in ["roofline_pct", "roof_gflops", "bound", "level"] {
            assert!(r[f].is_null(), "--no-measure gives no roofline: {r}");
        }
        assert!(r["working_set_bytes"].as_u64().unwrap() > 0, "{r}");
        seen.insert((
            r["isa"].as_str().unwrap().to_string(),
            r["weight"].as_str().unwrap().to_string(),
            m,
        ));
    }
    assert_eq!(seen.len(), rows.len(), "duplicate rows");
    let ffn = rows.iter().find(|r| r["weight"] == "ffn_down").unwrap();
    assert_eq!(
        (ffn["n"].as_u64(), ffn["k"].as_u64()),
        (Some(256), Some(768))
    );
}

#[test]
fn invalid_tile_exits_2_naming_the_valid_tiles() {
    let out = tessera()
        .args([
            "kernels", "--preset", "tiny", "-r", "1", "--isa", "scalar", "--tile", "3x3x3",
        ])
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains("3x3x3"), "{err}");
    assert!(
        err.contains(&Isa::Scalar.default_tile().to_string()),
        "{err}"
    );
}

#[test]
fn unavailable_or_unknown_isa_exits_2() {
    let missing = Isa::ALL.into_iter().find(|i| !i.is_available());
    let name = missing.map_or("nosuchisa", |i| i.name());
    let out = tessera()
        .args(["kernels", "--preset", "tiny", "-r", "1", "--isa", name])
        .assert()
        .code(2);
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(err.contains(name), "{err}");
}

/// A probe.json for this machine whose roofline is made up: DRAM only, 1 GB/s with one
/// thread; scalar's int8 peak 2 GOP/s (so scalar rows are compute bound), the SIMD ISAs'
/// far above any bandwidth roof (so theirs are DRAM bound).
fn fake_probe(dir: &std::path::Path) -> tessera::probe::Probe {
    use tessera::probe::roofline::{IsaPeak, Level, Roofline};
    let mut p = tessera::probe::describe();
    let peak = |isa: &str, int8: f64| IsaPeak {
        isa: isa.into(),
        int8_gops_1: int8,
        int8_gops_all: 2.0 * int8,
        f32_gflops_1: int8,
        f32_gflops_all: 2.0 * int8,
    };
    p.measured = Some(tessera::probe::Measured {
        array_bytes: 1 << 26,
        bandwidth: vec![],
        peak: None,
        roofline: Some(Roofline {
            levels: vec![Level {
                name: "DRAM".into(),
                max_bytes: u64::MAX,
                read_gbps_1: 1.0,
                read_gbps_all: 2.0,
                max_bytes_all: u64::MAX,
                min_bytes: 0,
                min_bytes_all: 0,
            }],
            peaks: vec![
                peak("scalar", 2.0),
                peak("avx2", 1e6),
                peak("avx512", 1e6),
                peak("amx", 1e6),
            ],
            threads_all: 2,
            skipped: vec![],
            read_isa: "scalar".into(),
            curve_1: vec![],
            curve_all: vec![],
        }),
    });
    std::fs::write(dir.join("probe.json"), serde_json::to_string(&p).unwrap()).unwrap();
    p
}

#[test]
fn rows_take_their_roof_from_the_cached_probe_with_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let p = fake_probe(dir.path());
    let out = tessera()
        .env("TESSERA_CACHE", dir.path())
        .args([
            "kernels", "--preset", "tiny", "-r", "1", "--isa", "all", "--m", "1,4",
        ])
        .args(["-o", "json", "-t", "1"])
        .assert()
        .success();
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert!(!rows.is_empty());
    let r = p.measured.as_ref().unwrap().roofline.as_ref().unwrap();
    for row in &rows {
        let ran = row["ran_isa"].as_str().unwrap();
        let ws = row["working_set_bytes"].as_u64().unwrap();
        let (m, n, k) = (
            row["m"].as_u64().unwrap(),
            row["n"].as_u64().unwrap(),
            row["k"].as_u64().unwrap(),
        );
        // Q4_0 weights (18 bytes per 32), Q8_0 activations (34 per 32), f32 output, at least.
        assert!(ws >= n * k / 32 * 18 + m * k / 32 * 34 + m * n * 4, "{row}");
        if ran == "amx-emu" {
            assert!(
                row["roofline_pct"].is_null() && row["roof_gflops"].is_null(),
                "{row}"
            );
            assert_eq!(row["bound"], "emulated", "{row}");
            continue;
        }
        let flop = 2.0 * (m * n * k) as f64;
        let by_bw = flop / ws as f64 * 1.0;
        let peak = r
            .peaks
            .iter()
            .find(|q| q.isa == ran)
            .map_or(2.0, |q| q.int8_gops_1);
        let (want, bound) = if peak <= by_bw {
            (peak, "compute")
        } else {
            (by_bw, "DRAM")
        };
        let roof = row["roof_gflops"].as_f64().unwrap();
        assert!((roof / want - 1.0).abs() < 1e-9, "{row}: want {want}");
        assert_eq!(row["bound"], bound, "{row}");
        assert_eq!(row["level"], "DRAM", "{row}");
        if ran == "scalar" {
            assert_eq!(bound, "compute");
        } else {
            assert_eq!(bound, "DRAM");
        }
        let pct = row["roofline_pct"].as_f64().unwrap();
        let gflops = row["gflops"].as_f64().unwrap();
        assert!(
            (pct - 100.0 * gflops / roof).abs() < 1e-6 * pct.max(1.0),
            "{row}"
        );
    }
    // The cached probe is used as it is, not measured again.
    let again: tessera::probe::Probe =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("probe.json")).unwrap())
            .unwrap();
    assert_eq!(again, p);
    // The markdown table has the bound column.
    let out = tessera()
        .env("TESSERA_CACHE", dir.path())
        .args([
            "kernels", "--preset", "tiny", "-r", "1", "--isa", "scalar", "--m", "1", "-t", "1",
        ])
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let header = text.lines().next().unwrap();
    assert!(header.ends_with("| roofline % | bound |"), "{header}");
    let row = text.lines().nth(2).unwrap();
    assert!(row.ends_with("| compute |"), "{row}");
}
