//! kernels.cu's logic on a machine without a GPU: the CUDA C is compiled by the host C++
//! compiler against a CPU emulation of the execution model (kernels/src/cuda/emu/emu.h: real
//! threads per block, barriers for __syncthreads and warp shuffles) and every kind of kernel is
//! checked against plain reference loops (emu/check.cpp), including grids smaller than the work.
//! It checks indexing, reductions, block formats and launch-shape assumptions, not the GPU's
//! floating point or timing. Skipped, with a notice, where no g++ is installed.
#![cfg(feature = "cuda")]

use std::process::Command;

const EMU_H: &str = include_str!("../../kernels/src/cuda/emu/emu.h");
const CHECK_CPP: &str = include_str!("../../kernels/src/cuda/emu/check.cpp");

#[test]
fn kernels_pass_their_checks_under_the_cpu_emulation() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "g++".into());
    if Command::new(&cxx).arg("--version").output().is_err() {
        eprintln!("skipped: no C++ compiler '{cxx}' to build the emulation");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::write(p.join("kernels.cu"), tessera_kernels::cuda::SOURCE).unwrap();
    std::fs::write(p.join("emu.h"), EMU_H).unwrap();
    std::fs::write(p.join("check.cpp"), CHECK_CPP).unwrap();
    let exe = p.join("check");
    let out = Command::new(&cxx)
        .args(["-std=c++17", "-O1", "-pthread", "-DTESSERA_CUDA_EMU", "-o"])
        .arg(&exe)
        .arg(p.join("check.cpp"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "building the emulation failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().unwrap();
    let text = String::from_utf8_lossy(&run.stdout);
    eprintln!("{text}");
    assert!(run.status.success() && text.contains("all ok"), "{text}");
    // Every kind of kernel was exercised.
    for k in [
        "get_rows",
        "mul_mat_q4_0",
        "mul_mat_f16",
        "rms_norm",
        "rope_normal",
        "attention",
        "swiglu",
    ] {
        assert!(text.contains(k), "no check of {k}:\n{text}");
    }
}
