//! Opening a GPU: library presence first (cudarc panics without its libraries), then the
//! driver, the device, the kernels for the device's own architecture from the on-disk cache or
//! NVRTC, and the launchers. One [`Device`] per ordinal per process.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{CudaContext, CudaStream};
use cudarc::nvrtc::Ptx;
use tessera_kernels::cuda::nvrtc::{self, Target};
use tessera_kernels::cuda::ops::{Launcher, driver_error_text};
use tessera_kernels::cuda::{SOURCE, cache_file_name};

use super::{CudaProbe, GpuInfo};
use crate::error::EngineError;

/// An opened GPU with the kernels loaded.
pub struct Device {
    pub info: GpuInfo,
    pub driver_version: String,
    pub nvrtc_version: (i32, i32),
    pub target: Target,
    /// Where the module came from: "cache" or "nvrtc".
    pub module_source: &'static str,
    ctx: Arc<CudaContext>,
    launcher: Launcher,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("info", &self.info)
            .field("target", &self.target)
            .finish()
    }
}

/// Why the driver cannot be used, or `None` when it can.
fn driver_missing() -> Option<String> {
    if !nvrtc::driver_present() {
        return Some(
            "the CUDA driver library (libcuda.so) was not found; install the NVIDIA driver".into(),
        );
    }
    None
}

fn nvrtc_missing() -> Option<String> {
    // A toolkit outside the loader path (CUDA_PATH, /usr/local/cuda) is found too.
    nvrtc::preload_nvrtc(&nvrtc::nvrtc_search_dirs());
    if !nvrtc::nvrtc_present() {
        return Some(
            "NVRTC (libnvrtc.so) was not found on the loader path, in $TESSERA_NVRTC_DIR, \
             $CUDA_PATH/lib64 or /usr/local/cuda/lib64; install the CUDA toolkit, or `pip \
             install nvidia-cuda-nvrtc` and set TESSERA_NVRTC_DIR to its nvidia/cu13/lib"
                .into(),
        );
    }
    None
}

fn init() -> Result<i32, String> {
    if let Some(r) = driver_missing() {
        return Err(r);
    }
    cudarc::driver::result::init().map_err(|e| format!("cuInit: {}", driver_error_text(&e)))?;
    let n = cudarc::driver::result::device::get_count()
        .map_err(|e| format!("cuDeviceGetCount: {}", driver_error_text(&e)))?;
    if n <= 0 {
        return Err("the driver reports no CUDA-capable device".into());
    }
    Ok(n)
}

fn driver_version() -> String {
    let mut v = 0;
    // SAFETY: out-pointer to a live int; the driver library is loaded (checked by `init`).
    let r = unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) };
    if r == cudarc::driver::sys::CUresult::CUDA_SUCCESS {
        format!("{}.{}", v / 1000, (v % 1000) / 10)
    } else {
        "unknown".into()
    }
}

fn info(ctx: &Arc<CudaContext>, index: usize) -> Result<GpuInfo, String> {
    let err = |e: cudarc::driver::DriverError| driver_error_text(&e);
    let major = ctx
        .attribute(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
        .map_err(err)?;
    let minor = ctx
        .attribute(Attr::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
        .map_err(err)?;
    Ok(GpuInfo {
        index,
        name: ctx.name().map_err(err)?,
        cc: (major.max(0) as u32, minor.max(0) as u32),
        total_mem: ctx.total_mem().map_err(err)? as u64,
    })
}

/// NVRTC's version ("13.5"), or why it cannot be used; needs no driver.
pub(super) fn nvrtc_status() -> Result<String, String> {
    match nvrtc_missing() {
        Some(r) => Err(r),
        None => nvrtc::version().map(|(a, b)| format!("{a}.{b}")),
    }
}

pub(super) fn probe() -> Result<CudaProbe, String> {
    let n = init()?;
    let mut devices = Vec::new();
    for i in 0..n as usize {
        let ctx =
            CudaContext::new(i).map_err(|e| format!("device {i}: {}", driver_error_text(&e)))?;
        devices.push(info(&ctx, i)?);
    }
    Ok(CudaProbe {
        driver_version: driver_version(),
        nvrtc: nvrtc_status(),
        devices,
    })
}

/// `<tessera cache>/cuda`: compiled kernel modules, one file per (target, NVRTC version,
/// source hash) — see `tessera_kernels::cuda::cache_file_name`.
pub fn kernel_cache_dir() -> PathBuf {
    crate::cache_dir::cache_dir().join("cuda")
}

/// The module image for `target`: from the cache, else compiled and stored (atomically, so
/// concurrent processes never read half a file). A cache that cannot be written only costs a
/// recompile next time.
fn module_image(
    target: Target,
    ver: (i32, i32),
    fresh: bool,
) -> Result<(Vec<u8>, &'static str), String> {
    let dir = kernel_cache_dir();
    let path = dir.join(cache_file_name(target, ver, SOURCE));
    if !fresh
        && let Ok(bytes) = std::fs::read(&path)
        && !bytes.is_empty()
    {
        return Ok((bytes, "cache"));
    }
    let image = nvrtc::compile(SOURCE, target)?;
    if std::fs::create_dir_all(&dir).is_ok() {
        let tmp = dir.join(format!(
            ".{}.{}",
            std::process::id(),
            path.file_name().and_then(|n| n.to_str()).unwrap_or("k")
        ));
        if std::fs::write(&tmp, &image).is_ok() && std::fs::rename(&tmp, &path).is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
    }
    Ok((image, "nvrtc"))
}

fn to_ptx(target: Target, image: Vec<u8>) -> Ptx {
    match target {
        Target::Cubin(_) => Ptx::from_binary(image),
        Target::Ptx(_) => {
            let text = String::from_utf8_lossy(&image)
                .trim_end_matches('\0')
                .to_string();
            Ptx::from_src(text)
        }
    }
}

/// `CUDA_LAUNCH_BLOCKING=1`: synchronise after every launch so a fault names its own op.
pub fn launch_blocking() -> bool {
    std::env::var("CUDA_LAUNCH_BLOCKING").is_ok_and(|v| v.trim() == "1")
}

impl Device {
    /// Device `ordinal`, opened once per process and shared.
    pub fn shared(ordinal: usize) -> Result<Arc<Device>, EngineError> {
        static DEVICES: OnceLock<Mutex<HashMap<usize, Arc<Device>>>> = OnceLock::new();
        let map = DEVICES.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = map.get(&ordinal) {
            return Ok(d.clone());
        }
        let d = Arc::new(Device::open(ordinal).map_err(EngineError::NoCudaDevice)?);
        map.insert(ordinal, d.clone());
        Ok(d)
    }

    fn open(ordinal: usize) -> Result<Device, String> {
        let n = init()?;
        if ordinal >= n as usize {
            return Err(format!(
                "device {ordinal} does not exist; this machine has {n} (0..={})",
                n - 1
            ));
        }
        if let Some(r) = nvrtc_missing() {
            return Err(r);
        }
        let ctx = CudaContext::new(ordinal)
            .map_err(|e| format!("device {ordinal}: {}", driver_error_text(&e)))?;
        let info = info(&ctx, ordinal)?;
        let ver = nvrtc::version()?;
        let supported = nvrtc::supported_archs()?;
        let cc = info.cc.0 * 10 + info.cc.1;
        let target = nvrtc::choose_target(cc, &supported).ok_or_else(|| {
            format!(
                "{} has compute capability {}.{}, older than anything NVRTC {}.{} compiles for ({})",
                info.name,
                info.cc.0,
                info.cc.1,
                ver.0,
                ver.1,
                supported.iter().map(|a| format!("sm_{a}")).collect::<Vec<_>>().join(", ")
            )
        })?;
        let (image, mut source) = module_image(target, ver, false)?;
        let module = match ctx.load_module(to_ptx(target, image)) {
            Ok(m) => m,
            Err(_) if source == "cache" => {
                // A stale or damaged cache file: compile afresh (and overwrite it) once.
                let (image, s) = module_image(target, ver, true)?;
                source = s;
                ctx.load_module(to_ptx(target, image))
                    .map_err(|e| format!("loading the kernels: {}", driver_error_text(&e)))?
            }
            Err(e) => return Err(format!("loading the kernels: {}", driver_error_text(&e))),
        };
        let stream: Arc<CudaStream> = ctx.default_stream();
        let launcher =
            Launcher::new(stream, &module, launch_blocking()).map_err(|e| e.to_string())?;
        Ok(Device {
            info,
            driver_version: driver_version(),
            nvrtc_version: ver,
            target,
            module_source: source,
            ctx,
            launcher,
        })
    }

    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    pub fn stream(&self) -> &Arc<CudaStream> {
        self.launcher.stream()
    }

    pub fn context(&self) -> &Arc<CudaContext> {
        &self.ctx
    }

    /// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB, driver 13.0)".
    pub fn describe(&self) -> String {
        format!(
            "{} (cc {}.{}, {:.1} GiB, driver {}, NVRTC {}.{}, {} from {})",
            self.info.name,
            self.info.cc.0,
            self.info.cc.1,
            self.info.total_mem as f64 / (1u64 << 30) as f64,
            self.driver_version,
            self.nvrtc_version.0,
            self.nvrtc_version.1,
            self.target
                .arch_flag()
                .trim_start_matches("--gpu-architecture="),
            self.module_source
        )
    }
}
