//! Under an address-space limit (`ulimit -v`), a context that does not fit is an error
//! naming the sizes and the limit, from `Context::new` itself, and a small one still works.
//! One test in its own binary: it lowers this process's RLIMIT_AS.

use tessera_engine::synth::{Preset, SynthSpec, write_model};
use tessera_engine::{Context, ContextParams, EngineError, Model};
use tessera_kernels::{GgmlType, IsaRequest, Kernels};

fn vm_size() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = s
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_context_past_ulimit_v_is_an_error_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    let spec = SynthSpec {
        shape: Preset::Tiny.shape(),
        ty: GgmlType::Q4_0,
        seed: 1,
        tie_output: false,
    };
    write_model(&path, &spec).unwrap();
    let model = Model::load(&path).unwrap();
    let kernels = Kernels::new(IsaRequest::Named(tessera_kernels::Isa::Scalar), None).unwrap();

    // 1 GiB more than this process maps now.
    let mut r = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read or write one rlimit through a valid pointer;
    // lowering the soft limit is always allowed.
    let rc = unsafe {
        libc::getrlimit(libc::RLIMIT_AS, &mut r);
        r.rlim_cur = vm_size() + (1 << 30);
        libc::setrlimit(libc::RLIMIT_AS, &r)
    };
    assert_eq!(rc, 0, "setrlimit");

    // 4M positions x 1 KiB (2 layers x 128 x f16 K and V) = 4 GiB > 1 GiB.
    let big = ContextParams {
        n_ctx: 4 << 20,
        ..ContextParams::default()
    };
    let e = Context::new(&model, &kernels, big).err().expect("refused");
    let msg = e.to_string();
    assert!(matches!(e, EngineError::OutOfMemory { .. }), "{msg}");
    assert!(
        msg.starts_with("a context of 4194304 positions (KV cache 4.0 GiB as K f16 + V f16")
            && msg.contains("ulimit -v"),
        "{msg}"
    );

    // A context that fits still works under the limit.
    let mut ctx = Context::new(&model, &kernels, ContextParams::default()).unwrap();
    assert_eq!(ctx.eval(&[1, 2, 3]).unwrap().len(), 512);
}
