//! Asking for the CUDA backend never panics: on a machine without a GPU, driver or NVRTC (or
//! in a build without the `cuda` feature) `Context::new` is a one-line `NoCudaDevice` error;
//! with a GPU it runs. Built in both feature configurations.

use tessera_engine::synth::{self, Preset, SynthSpec};
use tessera_engine::{Backend, Context, ContextParams, EngineError, Model};
use tessera_kernels::{GgmlType, IsaRequest, Kernels};

#[test]
fn cuda_context_is_a_clear_error_or_works() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    synth::write_model(&path, &SynthSpec::new(Preset::Tiny, GgmlType::Q4_0, 3)).unwrap();
    let model = Model::load(&path).unwrap();
    let kernels = Kernels::new(IsaRequest::Auto, None).unwrap();
    let params = ContextParams {
        n_ctx: 8,
        backend: Backend::Cuda,
        n_gpu_layers: 99,
        ..Default::default()
    };
    match Context::new(&model, &kernels, params) {
        Ok(mut ctx) => {
            if !cfg!(feature = "cuda") {
                panic!("a CUDA context in a build without cuda");
            }
            let l = ctx.eval(&[1, 2, 3]).unwrap();
            assert_eq!(l.len(), model.hp.n_vocab);
            assert!(l.iter().all(|v| v.is_finite()));
        }
        Err(e) => {
            let s = e.to_string();
            assert!(matches!(e, EngineError::NoCudaDevice(_)), "{s}");
            assert!(
                s.starts_with("no CUDA device: ") && !s.contains('\n'),
                "{s}"
            );
            if !cfg!(feature = "cuda") {
                assert!(s.contains("built without the cuda feature"), "{s}");
            }
            eprintln!("{s}");
        }
    }
}
