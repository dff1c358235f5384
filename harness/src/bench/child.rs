//! One bench point in a child process: the `tessera bench` arguments that measure exactly
//! that point (`--no-isolate`, `-o jsonl`, every list narrowed to the point's value). The
//! runner gives them to [`crate::gpu::run_child`], which turns a crash or a hang into a
//! `fault` row; the child itself runs [`super::measure`] in its own process.

use super::Config;
use crate::grid::Point;

/// The `tessera bench` arguments that measure exactly one point, in a child process; `seq`
/// is the row's place in this run (its profile's name).
pub(super) fn child_args(cfg: &Config, p: &Point, seq: usize) -> Vec<String> {
    let mut a: Vec<String> = vec!["bench".into(), "-m".into(), p.model.clone()];
    let (np, ng) = (p.test.n_prompt, p.test.n_gen);
    if np > 0 && ng > 0 {
        a.extend([
            "-p".into(),
            "0".into(),
            "-n".into(),
            "0".into(),
            "--pg".into(),
            format!("{np},{ng}"),
        ]);
    } else {
        a.extend(["-p".into(), np.to_string(), "-n".into(), ng.to_string()]);
    }
    a.extend([
        "-b".into(),
        p.n_batch.to_string(),
        "--ubatch-size".into(),
        p.ubatch.to_string(),
        "-t".into(),
        p.threads.to_string(),
        "--cache-type-k".into(),
        p.type_k.name().into(),
        "--cache-type-v".into(),
        p.type_v.name().into(),
        "-r".into(),
        cfg.reps.to_string(),
        "--isa".into(),
        cfg.isa.to_string(),
        "--seed".into(),
        cfg.seed.to_string(),
        "--numa".into(),
        cfg.numa.to_string(),
        "--pin".into(),
        cfg.pin.to_string(),
        "--counters".into(),
        if cfg.counters.is_empty() {
            "none".into()
        } else {
            cfg.counters.join(",")
        },
        "--backend".into(),
        p.backend.name().into(),
        "--n-gpu-layers".into(),
        p.ngl.to_string(),
        "-o".into(),
        "jsonl".into(),
        "--no-isolate".into(),
    ]);
    if let Some(t) = cfg.tile {
        a.extend(["--tile".into(), t.to_string()]);
    }
    if let Some(prof) = &cfg.profile {
        let test = p.test.name();
        a.extend([
            "--profile".into(),
            "--profile-dir".into(),
            prof.dir.display().to_string(),
            "--profile-name".into(),
            prof.name_for(seq, &test, p.threads as u32),
        ]);
    }
    a
}
