//! `tessera probe`: the JSON carries the fingerprint, topology and measurements; its
//! bandwidth agrees with an independent STREAM-style loop (an ignored check, since it
//! times memory: `cargo test -p tessera --test probe -- --ignored --nocapture`, alone —
//! `--include-ignored` runs the other probe test beside it and skews both loops).

use std::time::Instant;

use assert_cmd::Command;
use serde_json::Value;

fn probe_json(args: &[&str]) -> Value {
    let out = Command::cargo_bin("tessera")
        .unwrap()
        .args(["probe", "-o", "json"])
        .args(args)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn json_has_fingerprint_topology_and_measurements() {
    let p = probe_json(&["--array-mib", "8", "-t", "2"]);
    let id = p["fingerprint"].as_str().unwrap();
    assert_eq!(id.len(), 16);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    let cpu = &p["cpu"];
    assert!(cpu["logical_cpus"].as_u64().unwrap() >= 1);
    assert!(cpu["cores"].as_u64().unwrap() >= 1);
    assert!(cpu["flags"].is_array());
    assert!(!p["numa"].as_array().unwrap().is_empty());
    assert_eq!(p["numa"][0]["node"], 0);
    assert!(p["perf"]["software"].as_bool().unwrap());
    let m = &p["measured"];
    assert_eq!(m["array_bytes"], 8 << 20);
    let bw = m["bandwidth"].as_array().unwrap();
    assert_eq!(
        bw.iter()
            .map(|b| b["threads"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    for b in bw {
        for k in ["read_gbps", "copy_gbps", "triad_gbps"] {
            let v = b[k].as_f64().unwrap();
            assert!(v > 0.01 && v < 100_000.0, "{k} = {v}");
        }
    }
    for k in [
        "int8_gops_1",
        "int8_gops_all",
        "f32_gflops_1",
        "f32_gflops_all",
    ] {
        assert!(m["peak"][k].as_f64().unwrap() > 0.0, "{k}");
    }
    // The id is stable: a second probe without measurements gives the same one.
    assert_eq!(
        probe_json(&["--no-measure"])["fingerprint"],
        p["fingerprint"]
    );
}

#[test]
fn bad_flags_are_exit_2() {
    for args in [vec!["-o", "xml"], vec!["-t", "0"], vec!["--array-mib", "0"]] {
        Command::cargo_bin("tessera")
            .unwrap()
            .arg("probe")
            .args(&args)
            .assert()
            .code(2);
    }
}

/// An independent single-thread read-bandwidth measurement: f64 sum with eight
/// accumulators over 256 MiB, best of five.
fn stream_read_gbps() -> f64 {
    let n = (256usize << 20) / 8;
    let a: Vec<f64> = (0..n).map(|i| (i % 7) as f64).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut acc = [0.0f64; 8];
        for c in a.chunks_exact(8) {
            for j in 0..8 {
                acc[j] += c[j];
            }
        }
        std::hint::black_box(acc);
        best = best.min(t0.elapsed().as_secs_f64());
    }
    (n * 8) as f64 / best / 1e9
}

#[test]
#[ignore = "times memory bandwidth; run by hand, ideally with --release on an idle machine"]
fn probe_bandwidth_agrees_with_an_independent_stream_loop() {
    let p = probe_json(&["--array-mib", "256", "-t", "1"]);
    let probe = p["measured"]["bandwidth"][0]["read_gbps"].as_f64().unwrap();
    let mine = stream_read_gbps();
    let ratio = probe / mine;
    println!("probe read {probe:.2} GB/s, independent loop {mine:.2} GB/s, ratio {ratio:.3}");
    assert!(
        (0.8..=1.25).contains(&ratio),
        "ratio {ratio:.3} outside 0.8..1.25"
    );
}
