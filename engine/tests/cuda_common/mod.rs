//! Shared by the CUDA tests: finding libnvrtc when it is not on the loader path (the pip wheel
//! `nvidia-cuda-nvrtc` puts it under site-packages/nvidia/cu13/lib), and the device-or-skip
//! helper.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;

use tessera_engine::cuda::Device;
use tessera_kernels::cuda::nvrtc;

/// The pip wheels' lib directories under python3's site-packages (`nvidia-cuda-nvrtc` puts
/// libnvrtc in nvidia/cu13/lib, `nvidia-cuda-nvrtc-cu12` in nvidia/cuda_nvrtc/lib).
fn pip_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(out) = std::process::Command::new("python3")
        .args([
            "-c",
            "import site; print('\\n'.join(site.getsitepackages()+[site.getusersitepackages()]))",
        ])
        .output()
    {
        for sp in String::from_utf8_lossy(&out.stdout).lines() {
            for sub in [
                "nvidia/cu13/lib",
                "nvidia/cuda_nvrtc/lib",
                "nvidia/cu12/lib",
            ] {
                dirs.push(PathBuf::from(sp).join(sub));
            }
        }
    }
    dirs
}

/// Makes libnvrtc loadable by cudarc: the loader path, the toolkit directories the engine
/// searches, then the pip wheels. Returns where it came from, or why it is unavailable.
pub fn ensure_nvrtc() -> Result<String, String> {
    if nvrtc::nvrtc_present() {
        return Ok("the loader path".into());
    }
    let mut dirs = nvrtc::nvrtc_search_dirs();
    dirs.extend(pip_dirs());
    match nvrtc::preload_nvrtc(&dirs) {
        Some(p) => Ok(p.display().to_string()),
        // Another test thread may have loaded it meanwhile.
        None if nvrtc::nvrtc_present() => Ok("a library loaded by another test".into()),
        None => Err(
            "libnvrtc not found (pip install nvidia-cuda-nvrtc, or set TESSERA_NVRTC_DIR)".into(),
        ),
    }
}

/// GPU 0, or `None` after printing why the test is skipped.
pub fn device_or_skip(test: &str) -> Option<Arc<Device>> {
    let _ = ensure_nvrtc();
    match Device::shared(0) {
        Ok(d) => {
            eprintln!("{test}: on {}", d.describe());
            Some(d)
        }
        Err(e) => {
            eprintln!(
                "{test}: skipped: no CUDA device ({})",
                e.to_string().trim_start_matches("no CUDA device: ")
            );
            None
        }
    }
}

/// Normalised mean squared error, llama.cpp test-backend-ops' metric:
/// sum((a-b)^2) / sum(b^2).
pub fn nmse(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len(), "length mismatch");
    let (mut num, mut den) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        let d = f64::from(g) - f64::from(w);
        num += d * d;
        den += f64::from(w) * f64::from(w);
    }
    if den == 0.0 { num } else { num / den }
}
