//! The per-op record of a benchmark: every op of the forward pass is charged with its wall
//! time, which adds up to the timed region (less the loop outside the ops), and with the
//! work its shapes imply, counted exactly.

use tessera_engine::bench::{TestSpec, run_test};
use tessera_engine::context::{Context, ContextParams};
use tessera_engine::model::Model;
use tessera_engine::synth::{Preset, SynthSpec, write_model};
use tessera_kernels::quant::GgmlType;
use tessera_kernels::{Isa, IsaRequest, Kernels};

fn model(dir: &std::path::Path) -> Model {
    let path = dir.join("tiny.gguf");
    write_model(&path, &SynthSpec::new(Preset::Tiny, GgmlType::Q4_0, 5)).unwrap();
    Model::load(&path).unwrap()
}

#[test]
fn op_times_add_up_to_the_timed_region_and_work_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = model(dir.path());
    for isa in Isa::available() {
        let kernels = Kernels::new(IsaRequest::Named(isa), None).unwrap();
        kernels.set_timers(true);
        let n_layer = model.hp.n_layer;
        model.repack_for(&kernels, n_layer, true);
        let hp = model.hp.clone();
        let params = ContextParams {
            n_ctx: 128,
            n_threads: 2,
            ..ContextParams::default()
        };
        let mut ctx = Context::new(&model, &kernels, params).unwrap();
        for (p, g) in [(32, 0), (0, 16)] {
            let spec = TestSpec {
                n_prompt: p,
                n_gen: g,
            };
            let reps = 3;
            let samples = run_test(&mut ctx, spec, reps, 9).unwrap();
            let timed: u64 = samples.iter().sum();
            let rec = kernels.record();
            let ops: u64 = rec.iter().map(|u| u.ns).sum();
            // Ops run inside the timer, one after another: their sum cannot exceed it, and
            // what is outside them (the eval loop, argument checks) is small.
            assert!(ops <= timed, "{isa} {spec:?}: ops {ops} > timed {timed}");
            assert!(
                ops as f64 >= 0.85 * timed as f64,
                "{isa} {spec:?}: ops {ops} account for {:.1}% of {timed}",
                100.0 * ops as f64 / timed as f64
            );
            for u in &rec {
                assert!(
                    u.ns > 0 || isa == Isa::AmxEmu,
                    "{isa}: {} has no time",
                    u.op
                );
                assert!(u.bytes > 0, "{isa}: {} moves no bytes", u.op);
            }
            // Calls and flop of attn_q: one per layer per micro-batch or token, 2·m·e·e.
            let (e, tokens) = (hp.n_embd as u64, (p + g) as u64);
            let q: Vec<_> = rec.iter().filter(|u| u.op == "attn_q").collect();
            let calls: u64 = q.iter().map(|u| u.calls).sum();
            let per_rep = if p > 0 { 1 } else { tokens };
            assert_eq!(calls, reps as u64 * hp.n_layer as u64 * per_rep, "{isa}");
            let flop: u64 = q.iter().map(|u| u.flop).sum();
            assert_eq!(
                flop,
                reps as u64 * hp.n_layer as u64 * 2 * tokens * e * e,
                "{isa}"
            );
            // The timers switched off leave the work counted and the time zero.
            kernels.set_timers(false);
            run_test(&mut ctx, spec, 1, 9).unwrap();
            let rec = kernels.record();
            assert!(
                rec.iter().all(|u| u.ns == 0),
                "{isa}: timed with timers off"
            );
            assert!(rec.iter().any(|u| u.flop > 0));
            kernels.set_timers(true);
        }
    }
}
