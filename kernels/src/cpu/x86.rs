//! x86-64 feature detection for the dispatch table: AVX2/AVX-512 through std's detection,
//! AMX through CPUID, XCR0 and the Linux permission request, each probed once per process.

use std::sync::OnceLock;

/// AVX2 kernels also need FMA (float accumulation) and F16C (f16 scales and weights).
pub fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c")
}

/// The `avx512` table: AVX-512 F/BW/VL plus VNNI (`vpdpbusd`), on top of the AVX2 set the
/// helpers it shares use.
pub fn has_avx512() -> bool {
    has_avx2()
        && is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vl")
        && is_x86_feature_detected!("avx512vnni")
}

/// Whether AMX tiles may be used by this process: `Ok` or the reason they may not.
///
/// Probed once: the permission request is per process and idempotent, and a refusal does
/// not change while the process runs.
pub fn amx_status() -> &'static Result<(), String> {
    static STATUS: OnceLock<Result<(), String>> = OnceLock::new();
    STATUS.get_or_init(probe_amx)
}

fn probe_amx() -> Result<(), String> {
    use std::arch::x86_64::__cpuid_count;
    // Leaf 0 gives the highest supported leaf.
    let max_leaf = __cpuid_count(0, 0).eax;
    if max_leaf < 7 {
        return Err("CPUID has no leaf 7, so no AMX".into());
    }
    // Leaf 7 sub-leaf 0: structured extended features (exists, checked above).
    let l7 = __cpuid_count(7, 0);
    let (bf16, tile, int8) = (
        l7.edx >> 22 & 1 == 1,
        l7.edx >> 24 & 1 == 1,
        l7.edx >> 25 & 1 == 1,
    );
    if !(tile && int8) {
        return Err(format!(
            "CPU lacks AMX (CPUID.7.0:EDX amx-tile={tile} amx-int8={int8} amx-bf16={bf16})"
        ));
    }
    // Leaf 1 ECX bit 27: OSXSAVE.
    let osxsave = __cpuid_count(1, 0).ecx >> 27 & 1 == 1;
    if !osxsave {
        return Err("the OS has not enabled XSAVE (CPUID.1:ECX.OSXSAVE=0)".into());
    }
    // SAFETY: OSXSAVE is set, so XGETBV is enabled.
    let xcr0 = unsafe { xgetbv0() };
    if xcr0 >> 17 & 3 != 3 {
        return Err(format!(
            "the OS has not enabled the AMX tile state (XCR0 = {xcr0:#x}, bits 17 and 18 needed)"
        ));
    }
    request_tile_permission()
}

#[target_feature(enable = "xsave")]
unsafe fn xgetbv0() -> u64 {
    // SAFETY: the caller checked OSXSAVE.
    unsafe { std::arch::x86_64::_xgetbv(0) }
}

/// Linux (≥ 5.16) hands out the 8 KiB tile data state only on request, per process.
#[cfg(target_os = "linux")]
fn request_tile_permission() -> Result<(), String> {
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // SAFETY: arch_prctl with these arguments only changes this process's permission mask.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        let err = std::io::Error::last_os_error();
        Err(format!(
            "the kernel refused AMX tile data (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): \
             {err}); Linux 5.16 or newer is needed"
        ))
    }
}

#[cfg(not(target_os = "linux"))]
fn request_tile_permission() -> Result<(), String> {
    Err("AMX is only enabled on Linux (needs arch_prctl(ARCH_REQ_XCOMP_PERM))".into())
}

/// An f16 stored (unaligned) at `p`, converted with F16C. Shared by the avx2 and avx512
/// kernels (it inlines into either).
///
/// # Safety
/// The CPU supports F16C; `p` points at two readable bytes.
#[inline]
#[target_feature(enable = "f16c")]
pub(crate) unsafe fn f16_at(p: *const u8) -> f32 {
    use std::arch::x86_64::*;
    // SAFETY: the caller points `p` at two readable bytes.
    let bits = unsafe { p.cast::<u16>().read_unaligned() };
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
}

/// One element at `p` as f32: an f16 (`H`) or an f32.
///
/// # Safety
/// The CPU supports F16C; `p` points at one readable element.
#[inline]
#[target_feature(enable = "f16c")]
pub(crate) unsafe fn load1<const H: bool>(p: *const u8) -> f32 {
    // SAFETY: the caller points `p` at one readable element.
    unsafe {
        if H {
            f16_at(p)
        } else {
            p.cast::<f32>().read_unaligned()
        }
    }
}
