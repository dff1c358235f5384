//! The kernels' CUDA C compiles under the real NVRTC for several architectures, with no GPU:
//! a cubin for each real architecture the NVRTC supports among Turing..Blackwell, and PTX for
//! the virtual ones, which must define every kernel the launchers look up. Skipped, with a
//! notice, where libnvrtc cannot be found.
#![cfg(feature = "cuda")]

mod cuda_common;

use tessera_kernels::cuda::nvrtc::{self, Target};
use tessera_kernels::cuda::ops::KERNEL_NAMES;
use tessera_kernels::cuda::{SOURCE, cache_file_name};

/// Architectures worth compiling for (as XY of sm_XY): Volta, Turing, Ampere, Ada, Hopper,
/// Blackwell (datacenter and consumer).
const ARCHS: &[u32] = &[70, 75, 80, 86, 89, 90, 100, 120];

#[test]
fn kernels_compile_for_every_supported_architecture() {
    let from = match cuda_common::ensure_nvrtc() {
        Ok(f) => f,
        Err(e) => {
            // .ci/run installs the NVRTC wheel: in CI its absence is a failure, not a skip.
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but no NVRTC: {e}"
            );
            eprintln!("skipped: {e}");
            return;
        }
    };
    let ver = nvrtc::version().expect("nvrtcVersion");
    let supported = nvrtc::supported_archs().expect("nvrtcGetSupportedArchs");
    eprintln!(
        "NVRTC {}.{} from {from}; supports {supported:?}",
        ver.0, ver.1
    );
    let archs: Vec<u32> = ARCHS
        .iter()
        .copied()
        .filter(|a| supported.contains(a))
        .collect();
    assert!(
        archs.len() >= 3,
        "NVRTC {ver:?} supports only {archs:?} of {ARCHS:?}"
    );
    for &a in &archs {
        let cubin =
            nvrtc::compile(SOURCE, Target::Cubin(a)).unwrap_or_else(|e| panic!("sm_{a}: {e}"));
        assert_eq!(&cubin[..4], b"\x7fELF", "sm_{a}: not an ELF cubin");
        eprintln!("sm_{a}: cubin of {} bytes", cubin.len());
    }
    for &a in [archs[0], *archs.last().unwrap()].iter() {
        let ptx =
            nvrtc::compile(SOURCE, Target::Ptx(a)).unwrap_or_else(|e| panic!("compute_{a}: {e}"));
        let text = String::from_utf8_lossy(&ptx);
        assert!(
            text.contains(&format!(".target sm_{a}")),
            "compute_{a}: wrong target"
        );
        for k in KERNEL_NAMES {
            assert!(
                text.contains(&format!(".entry {k}(")),
                "compute_{a}: no entry {k}"
            );
        }
    }
    // A device as new as the newest supported architecture gets its own cubin; one newer
    // gets PTX it can JIT.
    let newest = *supported.iter().max().unwrap();
    assert_eq!(
        nvrtc::choose_target(newest, &supported),
        Some(Target::Cubin(newest))
    );
    assert_eq!(
        nvrtc::choose_target(newest + 10, &supported),
        Some(Target::Ptx(newest))
    );
}

#[test]
fn a_compile_error_carries_the_log() {
    if let Err(e) = cuda_common::ensure_nvrtc() {
        eprintln!("skipped: {e}");
        return;
    }
    let e = nvrtc::compile(
        "extern \"C\" __global__ void k() { undefined_thing(); }",
        Target::Ptx(75),
    )
    .unwrap_err();
    assert!(e.contains("undefined_thing"), "{e}");
}

#[test]
fn cache_names_are_per_target_and_nvrtc() {
    // Host-only: the cache key distinguishes what a cached image was built for.
    let a = cache_file_name(Target::Cubin(90), (13, 0), SOURCE);
    let b = cache_file_name(Target::Cubin(120), (13, 0), SOURCE);
    assert_ne!(a, b);
    assert!(tessera_engine::cuda::kernel_cache_dir().ends_with("cuda"));
}
