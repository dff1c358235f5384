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
        assert!(
            r["roofline_pct"].is_null(),
            "--no-measure gives no roofline: {r}"
        );
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
