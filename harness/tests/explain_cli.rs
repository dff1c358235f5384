//! `tessera explain` on a slowdown we make ourselves: the same tiny model benchmarked with
//! `--isa scalar` and with the best ISA of this CPU. The matmuls run the scalar kernels on
//! one side only, so explain must put the gap in the matmul ops; bad input is exit 2.

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use tessera_kernels::Isa;

fn tessera(cache: &Path) -> Command {
    let mut c = Command::cargo_bin("tessera").unwrap();
    c.env("TESSERA_CACHE", cache);
    c
}

/// Rows of `bench -o jsonl` for `isa`, written to `dir/<isa>.jsonl`.
fn bench(dir: &Path, model: &Path, isa: &str, args: &[&str]) -> PathBuf {
    let out = tessera(dir)
        .args([
            "bench", "-t", "1", "-r", "2", "-o", "jsonl", "--isa", isa, "-m",
        ])
        .arg(model)
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let path = dir.join(format!("{isa}.jsonl"));
    std::fs::write(&path, out).unwrap();
    path
}

fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("tiny.gguf");
    tessera(dir.path())
        .args(["model", "synth", "--preset", "tiny", "--type", "q4_0", "-o"])
        .arg(&model)
        .assert()
        .success();
    (dir, model)
}

fn best_isa() -> Option<Isa> {
    // The fastest vector table this CPU runs (not an emulation).
    [Isa::Avx512, Isa::Avx2]
        .into_iter()
        .find(|i| i.is_available())
}

#[test]
fn explain_puts_a_scalar_slowdown_in_the_matmuls() {
    let Some(best) = best_isa() else {
        eprintln!("skipped: no vector ISA on this CPU");
        return;
    };
    let (dir, model) = setup();
    let fast = bench(dir.path(), &model, best.name(), &["-p", "64", "-n", "16"]);
    let slow = bench(dir.path(), &model, "scalar", &["-p", "64", "-n", "16"]);
    let out = tessera(dir.path())
        .args(["explain", "--no-roof"])
        .arg(&fast)
        .arg(&slow)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let md = String::from_utf8(out).unwrap();
    for test in ["pp64", "tg16"] {
        let verdict = md
            .lines()
            .find(|l| l.starts_with(&format!("**{test}:")))
            .unwrap_or_else(|| panic!("no verdict for {test}:\n{md}"));
        // The labels name what differs: the ISA (and the tile that comes with it).
        assert!(
            verdict.starts_with(&format!("**{test}: isa=scalar"))
                && verdict.contains("x slower than isa="),
            "{verdict}"
        );
        let kind = if test.starts_with("pp") {
            "gemm"
        } else {
            "gemv"
        };
        assert!(
            verdict.contains(&format!(
                "of the extra time is in {kind} ops ({kind}_q4_0_q8_0)"
            )),
            "{verdict}"
        );
        // The share named is the majority of the gap.
        let pct: f64 = verdict
            .split("; ")
            .nth(1)
            .and_then(|s| s.split('%').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no share in {verdict}"));
        assert!(pct > 50.0 && pct <= 100.0, "{verdict}");
    }
    // Every op line names the kernel of each side: scalar's and the best ISA's.
    assert!(
        md.contains("(scalar)") && md.contains(&format!("({})", best.name())),
        "{md}"
    );

    // The same through one file split by --base/--cand, and a chart.
    let both = dir.path().join("both.jsonl");
    let text = std::fs::read_to_string(&fast).unwrap() + &std::fs::read_to_string(&slow).unwrap();
    std::fs::write(&both, text).unwrap();
    let chart = dir.path().join("ops.svg");
    let out = tessera(dir.path())
        .args(["explain", "--no-roof", "--base"])
        .arg(format!("isa={}", best.name()))
        .args(["--cand", "isa=scalar", "--chart"])
        .arg(&chart)
        .arg(&both)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let md2 = String::from_utf8(out).unwrap();
    assert!(md2.contains("**pp64: isa=scalar is "), "{md2}");
    let svg = std::fs::read_to_string(&chart).unwrap();
    assert!(
        svg.contains("<svg") && svg.contains("ffn_up"),
        "chart lacks the ops"
    );

    // FILE:N picks single rows: row 1 of each file is the pp test.
    let out = tessera(dir.path())
        .args(["explain", "--no-roof"])
        .arg(format!("{}:1", fast.display()))
        .arg(format!("{}:1", slow.display()))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let md3 = String::from_utf8(out).unwrap();
    assert!(md3.contains("**pp64:") && !md3.contains("**tg16:"), "{md3}");
}

#[test]
fn explain_refuses_bad_input_with_one_line_and_exit_2() {
    let (dir, model) = setup();
    let rows = bench(dir.path(), &model, "scalar", &["-p", "16", "-n", "0"]);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "--base".into(),
                "colour=red".into(),
                "--cand".into(),
                "isa=scalar".into(),
            ],
            "bad --base key 'colour': valid keys are",
        ),
        (
            vec![
                "--base".into(),
                "isa".into(),
                "--cand".into(),
                "isa=scalar".into(),
            ],
            "bad --base 'isa': give KEY=VALUE",
        ),
        (
            vec![
                "--base".into(),
                "isa=sse9".into(),
                "--cand".into(),
                "isa=scalar".into(),
            ],
            "--base isa=sse9 selects no row",
        ),
        (vec![format!("{}:9", rows.display())], "row 9 of"),
        (
            vec!["/nonexistent/run".into()],
            "is neither a run directory",
        ),
        (vec![], "give a candidate"),
    ];
    for (args, want) in cases {
        let mut cmd = tessera(dir.path());
        cmd.args(["explain", "--no-roof"]);
        if !args.iter().any(|a| a.starts_with('/')) {
            cmd.arg(&rows);
        }
        let out = cmd.args(&args).assert().code(2).get_output().clone();
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(want), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
    }
}

/// Whether this process may sample itself with perf_event_open (else the test says why).
fn sampling_allowed() -> bool {
    use tessera::profile::{Session, Settings, Target};
    match Session::start(&Settings::default(), Target::This) {
        Ok(s) => {
            drop(s.finish());
            true
        }
        Err(why) => {
            println!("skipped: {why}");
            false
        }
    }
}

#[test]
fn profiled_sides_get_a_differential_flamegraph_of_the_change() {
    let Some(best) = best_isa() else {
        eprintln!("skipped: no vector ISA on this CPU");
        return;
    };
    if !sampling_allowed() {
        return;
    }
    let (dir, model) = setup();
    let side = |isa: &str| {
        let pdir = dir.path().join(format!("prof-{isa}"));
        let out = tessera(dir.path())
            .args([
                "bench", "-t", "1", "-r", "10", "-p", "128", "-n", "0", "-o", "jsonl",
            ])
            .args(["--isa", isa, "--profile", "--profile-dir"])
            .arg(&pdir)
            .arg("-m")
            .arg(&model)
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        // The rows' profile paths are relative to the profile directory: the results
        // file goes there, as a run directory's does.
        let path = pdir.join("results.jsonl");
        std::fs::write(&path, out).unwrap();
        path
    };
    let (fast, slow) = (side(best.name()), side("scalar"));
    let flames = dir.path().join("flames");
    let out = tessera(dir.path())
        .args(["explain", "--no-roof", "--flamegraph"])
        .arg(&flames)
        .arg(&fast)
        .arg(&slow)
        .assert()
        .success()
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    let svg = std::fs::read_to_string(flames.join("pp128-diff.svg"))
        .unwrap_or_else(|e| panic!("no flamegraph ({e}): {err}"));
    // Drawn with the candidate's frames (inferno's differential mode), each titled with
    // its change in share of the samples: the scalar kernels grew from nothing.
    let grew = svg
        .split("<title>")
        .filter(|t| t.starts_with("tessera_kernels::cpu::scalar::"))
        .filter(|t| {
            t.split("</title>")
                .next()
                .is_some_and(|t| t.contains("%; +"))
        })
        .count();
    assert!(grew > 0, "no scalar frame with a positive change in {svg}");
    assert!(svg.contains("pp128: isa=scalar"), "title");
}
