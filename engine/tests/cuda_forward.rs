//! The whole forward pass with the CUDA backend against the CPU backend, for each weight type
//! and several `-ngl` splits (none, the last layer, every layer, every layer and the head),
//! both batched and one token at a time. Budget: NMSE 5e-4 on the logits (the matmul budget of
//! llama.cpp's test-backend-ops). Skipped with a notice where no CUDA device is present.
#![cfg(feature = "cuda")]

mod cuda_common;

use cuda_common::{device_or_skip, nmse};
use tessera_engine::synth::{self, Preset, SynthSpec};
use tessera_engine::{Backend, Context, ContextParams, EngineError, KvType, Model};
use tessera_kernels::{GgmlType, IsaRequest, Kernels};

const PROMPT: [u32; 20] = [
    1, 17, 300, 42, 511, 7, 256, 99, 3, 128, 64, 200, 401, 13, 77, 250, 9, 310, 480, 5,
];
const BUDGET: f64 = 5e-4;

fn model(dir: &std::path::Path, ty: GgmlType, tied: bool) -> Model {
    let path = dir.join(format!("tiny-{}-{tied}.gguf", ty.name()));
    let spec = SynthSpec {
        shape: Preset::Tiny.shape(),
        ty,
        seed: 5,
        tie_output: tied,
    };
    synth::write_model(&path, &spec).unwrap();
    Model::load(&path).unwrap()
}

fn logits(
    m: &Model,
    backend: Backend,
    ngl: usize,
    kv: KvType,
    ubatch: usize,
) -> Result<Vec<f32>, EngineError> {
    let kernels = Kernels::new(IsaRequest::Auto, None).unwrap();
    let params = ContextParams {
        n_ctx: PROMPT.len(),
        n_batch: PROMPT.len(),
        n_ubatch: ubatch,
        n_threads: 2,
        type_k: kv,
        type_v: kv,
        logits_all: true,
        backend,
        n_gpu_layers: ngl,
    };
    let mut ctx = Context::new(m, &kernels, params)?;
    Ok(ctx.eval(&PROMPT)?.to_vec())
}

#[test]
fn gpu_forward_matches_cpu_for_every_split() {
    if device_or_skip("gpu_forward_matches_cpu_for_every_split").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (ty, tied) in [
        (GgmlType::Q4_0, false),
        (GgmlType::Q8_0, true),
        (GgmlType::F16, false),
        (GgmlType::F32, false),
    ] {
        let m = model(dir.path(), ty, tied);
        let n_layer = m.hp.n_layer;
        for kv in [KvType::F16, KvType::F32] {
            let cpu = logits(&m, Backend::Cpu, 0, kv, 7).unwrap();
            for ngl in [0, 1, n_layer, 99] {
                let gpu = logits(&m, Backend::Cuda, ngl, kv, 7).unwrap();
                let e = nmse(&gpu, &cpu);
                eprintln!("{ty} kv {kv} -ngl {ngl}: nmse {e:.3e}");
                assert!(
                    e <= BUDGET,
                    "{ty} kv {kv} -ngl {ngl}: nmse {e:.3e} > {BUDGET:e}"
                );
            }
        }
    }
}

#[test]
fn gpu_generation_one_token_at_a_time_matches_the_batch() {
    if device_or_skip("gpu_generation_one_token_at_a_time_matches_the_batch").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), GgmlType::Q4_0, false);
    let kernels = Kernels::new(IsaRequest::Auto, None).unwrap();
    let batch = logits(&m, Backend::Cuda, 99, KvType::F16, 32).unwrap();
    let nv = m.hp.n_vocab;
    let params = ContextParams {
        n_ctx: PROMPT.len(),
        n_batch: 1,
        n_ubatch: 1,
        backend: Backend::Cuda,
        n_gpu_layers: 99,
        ..Default::default()
    };
    let mut ctx = Context::new(&m, &kernels, params).unwrap();
    for (p, &t) in PROMPT.iter().enumerate() {
        let one = ctx.eval(&[t]).unwrap().to_vec();
        let e = nmse(&one, &batch[p * nv..(p + 1) * nv]);
        assert!(e <= BUDGET, "position {p}: nmse {e:.3e}");
    }
}

#[test]
fn cuda_backend_without_a_device_is_a_clear_error() {
    // Where there is no GPU this is the path users hit; where there is one, it must work.
    let dir = tempfile::tempdir().unwrap();
    let m = model(dir.path(), GgmlType::Q4_0, false);
    match logits(&m, Backend::Cuda, 99, KvType::F16, 8) {
        Ok(l) => assert_eq!(l.len(), PROMPT.len() * m.hp.n_vocab),
        Err(e) => {
            let s = e.to_string();
            assert!(matches!(e, EngineError::NoCudaDevice(_)), "{s}");
            assert!(
                s.starts_with("no CUDA device: ") && !s.contains('\n'),
                "{s}"
            );
        }
    }
}
