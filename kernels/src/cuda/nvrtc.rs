//! NVRTC: what the loaded library supports, which target a device gets, and compilation of
//! kernels.cu to a cubin (the device's own `sm_XY`) or to PTX (`compute_XY`, for a device newer
//! than the NVRTC, which the driver then JIT-compiles).
//!
//! cudarc loads libnvrtc with `dlopen` by bare name (`libnvrtc.so`, `libnvrtc.so.13`,
//! `libnvrtc.so.12`, ...: `cudarc::get_lib_name_candidates`), so the library must be on the
//! loader's path (LD_LIBRARY_PATH or the ld cache); its calls panic when it is missing, hence
//! [`nvrtc_present`] before anything else.

use std::ffi::{CStr, CString, c_char, c_int};

use cudarc::nvrtc::sys;

/// Whether libnvrtc can be loaded. Every other function here assumes it can.
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the candidate names.
    unsafe { sys::is_culib_present() }
}

/// Toolkit directories that hold libnvrtc but are often not on the loader path:
/// `$TESSERA_NVRTC_DIR`, `$CUDA_PATH/lib64`, `$CUDA_HOME/lib64`, `/usr/local/cuda/lib64`.
pub fn nvrtc_search_dirs() -> Vec<std::path::PathBuf> {
    let mut dirs = Vec::new();
    if let Some(d) = std::env::var_os("TESSERA_NVRTC_DIR").filter(|d| !d.is_empty()) {
        dirs.push(std::path::PathBuf::from(d));
    }
    for var in ["CUDA_PATH", "CUDA_HOME"] {
        if let Some(d) = std::env::var_os(var).filter(|d| !d.is_empty()) {
            dirs.push(std::path::PathBuf::from(d).join("lib64"));
        }
    }
    dirs.push("/usr/local/cuda/lib64".into());
    dirs
}

/// Makes libnvrtc loadable when it is installed but not on the loader path: loads the first
/// `libnvrtc.so*` found in `dirs` by full path with RTLD_GLOBAL, after which cudarc's
/// `dlopen("libnvrtc.so.13")` finds it by its soname. Returns the file loaded, `None` when it
/// was already loadable or nothing was found.
pub fn preload_nvrtc(dirs: &[std::path::PathBuf]) -> Option<std::path::PathBuf> {
    if nvrtc_present() {
        return None;
    }
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut libs: Vec<std::path::PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libnvrtc.so"))
            })
            .collect();
        // The versioned names last: "libnvrtc.so" is usually a link to them.
        libs.sort();
        for lib in libs {
            let Ok(c) = CString::new(lib.to_string_lossy().as_bytes()) else {
                continue;
            };
            // SAFETY: dlopen of a shared library by path; the handle stays open for the
            // process, as cudarc's own handle would.
            let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if !h.is_null() && nvrtc_present() {
                return Some(lib);
            }
        }
    }
    None
}

/// Whether the CUDA driver library (libcuda) can be loaded.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the candidate names.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// A compilation target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Machine code for exactly this compute capability (`--gpu-architecture=sm_XY`).
    Cubin(u32),
    /// PTX for this virtual architecture (`compute_XY`), JIT-compiled by the driver.
    Ptx(u32),
}

impl Target {
    pub fn arch_flag(self) -> String {
        match self {
            Target::Cubin(cc) => format!("--gpu-architecture=sm_{cc}"),
            Target::Ptx(cc) => format!("--gpu-architecture=compute_{cc}"),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Target::Cubin(_) => "cubin",
            Target::Ptx(_) => "ptx",
        }
    }

    pub fn cc(self) -> u32 {
        match self {
            Target::Cubin(cc) | Target::Ptx(cc) => cc,
        }
    }
}

/// The target for a device of compute capability `cc` (major*10+minor) given the
/// architectures this NVRTC supports: the device's own cubin when NVRTC knows it (so a new
/// architecture such as 12.0 never meets "no kernel image"), else PTX of the newest supported
/// architecture not above the device's, else `None` (the device is older than anything this
/// NVRTC emits).
pub fn choose_target(cc: u32, supported: &[u32]) -> Option<Target> {
    if supported.contains(&cc) {
        return Some(Target::Cubin(cc));
    }
    supported
        .iter()
        .copied()
        .filter(|&a| a <= cc)
        .max()
        .map(Target::Ptx)
}

/// Options besides the architecture. No fast-math: results are compared with the CPU path.
pub const OPTIONS: &[&str] = &["--std=c++17"];

/// NVRTC's (major, minor) version.
pub fn version() -> Result<(i32, i32), String> {
    let (mut major, mut minor) = (0, 0);
    // SAFETY: two out-pointers to live ints; the library is present (caller's contract).
    let r = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
    check(r, "nvrtcVersion")?;
    Ok((major, minor))
}

/// The real architectures (`sm_XY` as XY) this NVRTC can compile for.
pub fn supported_archs() -> Result<Vec<u32>, String> {
    let mut n: c_int = 0;
    // SAFETY: out-pointer to a live int.
    check(
        unsafe { sys::nvrtcGetNumSupportedArchs(&mut n) },
        "nvrtcGetNumSupportedArchs",
    )?;
    let mut v = vec![0 as c_int; n.max(0) as usize];
    // SAFETY: the buffer holds the `n` ints the library reported.
    check(
        unsafe { sys::nvrtcGetSupportedArchs(v.as_mut_ptr()) },
        "nvrtcGetSupportedArchs",
    )?;
    Ok(v.into_iter().filter(|&a| a > 0).map(|a| a as u32).collect())
}

fn error_string(r: sys::nvrtcResult) -> String {
    // SAFETY: nvrtcGetErrorString returns a static C string for any result code.
    let p = unsafe { sys::nvrtcGetErrorString(r) };
    if p.is_null() {
        return format!("{r:?}");
    }
    // SAFETY: non-null, NUL-terminated static string from the library.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

fn check(r: sys::nvrtcResult, what: &str) -> Result<(), String> {
    if r == sys::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(format!("{what}: {}", error_string(r)))
    }
}

/// Compiles `source` for `target`; returns the cubin or the PTX text (NUL-terminated bytes).
/// The error carries NVRTC's log.
pub fn compile(source: &str, target: Target) -> Result<Vec<u8>, String> {
    let src = CString::new(source).map_err(|_| "kernel source contains a NUL byte".to_string())?;
    let name = c"tessera_kernels.cu";
    let mut prog: sys::nvrtcProgram = std::ptr::null_mut();
    // SAFETY: `src` and `name` outlive the program (destroyed below).
    check(
        unsafe {
            sys::nvrtcCreateProgram(
                &mut prog,
                src.as_ptr(),
                name.as_ptr(),
                0,
                std::ptr::null(),
                std::ptr::null(),
            )
        },
        "nvrtcCreateProgram",
    )?;
    let result = compile_program(prog, target);
    // SAFETY: `prog` was created above and is destroyed once.
    unsafe { sys::nvrtcDestroyProgram(&mut prog) };
    result
}

fn compile_program(prog: sys::nvrtcProgram, target: Target) -> Result<Vec<u8>, String> {
    let opts: Vec<CString> = std::iter::once(target.arch_flag())
        .chain(OPTIONS.iter().map(|s| s.to_string()))
        .map(|s| CString::new(s).expect("option without NUL"))
        .collect();
    let ptrs: Vec<*const c_char> = opts.iter().map(|s| s.as_ptr()).collect();
    // SAFETY: `ptrs` points at live NUL-terminated options.
    let r = unsafe { sys::nvrtcCompileProgram(prog, ptrs.len() as c_int, ptrs.as_ptr()) };
    if r != sys::nvrtcResult::NVRTC_SUCCESS {
        return Err(format!(
            "NVRTC could not compile the kernels for {}: {}\n{}",
            target.arch_flag(),
            error_string(r),
            log(prog)
        ));
    }
    let mut size = 0usize;
    let mut out;
    match target {
        Target::Cubin(_) => {
            // SAFETY: out-pointer to a live usize; then a buffer of exactly that size.
            check(
                unsafe { sys::nvrtcGetCUBINSize(prog, &mut size) },
                "nvrtcGetCUBINSize",
            )?;
            out = vec![0u8; size];
            check(
                unsafe { sys::nvrtcGetCUBIN(prog, out.as_mut_ptr() as *mut c_char) },
                "nvrtcGetCUBIN",
            )?;
        }
        Target::Ptx(_) => {
            // SAFETY: as above, for the PTX text (its size includes the NUL).
            check(
                unsafe { sys::nvrtcGetPTXSize(prog, &mut size) },
                "nvrtcGetPTXSize",
            )?;
            out = vec![0u8; size];
            check(
                unsafe { sys::nvrtcGetPTX(prog, out.as_mut_ptr() as *mut c_char) },
                "nvrtcGetPTX",
            )?;
        }
    }
    if out.is_empty() {
        return Err(format!(
            "NVRTC returned an empty image for {}",
            target.arch_flag()
        ));
    }
    Ok(out)
}

fn log(prog: sys::nvrtcProgram) -> String {
    let mut size = 0usize;
    // SAFETY: out-pointer, then a buffer of the reported size.
    if unsafe { sys::nvrtcGetProgramLogSize(prog, &mut size) } != sys::nvrtcResult::NVRTC_SUCCESS
        || size == 0
    {
        return String::new();
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` holds `size` bytes.
    unsafe { sys::nvrtcGetProgramLog(prog, buf.as_mut_ptr() as *mut c_char) };
    String::from_utf8_lossy(&buf)
        .trim_end_matches('\0')
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_choice() {
        let sup = [75, 80, 86, 89, 90, 100, 120];
        assert_eq!(choose_target(90, &sup), Some(Target::Cubin(90)));
        assert_eq!(choose_target(120, &sup), Some(Target::Cubin(120)));
        // A device newer than the NVRTC: PTX of the newest architecture below it.
        assert_eq!(choose_target(130, &sup), Some(Target::Ptx(120)));
        assert_eq!(choose_target(87, &sup), Some(Target::Ptx(86)));
        // Older than anything supported.
        assert_eq!(choose_target(70, &sup), None);
        assert_eq!(Target::Cubin(90).arch_flag(), "--gpu-architecture=sm_90");
        assert_eq!(Target::Ptx(80).arch_flag(), "--gpu-architecture=compute_80");
    }
}
