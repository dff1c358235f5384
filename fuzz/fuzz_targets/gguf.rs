//! The GGUF reader and the model loader on arbitrary bytes: an error or a model whose every
//! tensor lies inside the file; a small enough model also runs one token. Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_engine::gguf::GgufFile;
use tessera_engine::{Context, ContextParams, Model};
use tessera_kernels::{Isa, IsaRequest, Kernels};

fuzz_target!(|data: &[u8]| {
    let Ok(f) = GgufFile::from_bytes(data.to_vec()) else {
        return;
    };
    for t in &f.tensors {
        // The reader validated every range: data of the stated size, or nothing.
        let d = f.tensor_data(t);
        assert!(d.len() as u64 == t.size || d.is_empty());
    }
    let Ok(model) = Model::from_gguf(&f) else {
        return;
    };
    let hp = &model.hp;
    if hp.n_embd * hp.n_layer * hp.n_ff.max(1) > 1 << 22 || hp.n_vocab > 1 << 16 {
        return; // too big to run per input
    }
    let kernels = Kernels::new(IsaRequest::Named(Isa::Scalar), None).unwrap();
    let params = ContextParams {
        n_ctx: 4,
        ..ContextParams::default()
    };
    if let Ok(mut ctx) = Context::new(&model, &kernels, params) {
        let _ = ctx.eval(&[0, 1]);
    }
});
