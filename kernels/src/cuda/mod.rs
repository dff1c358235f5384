//! The CUDA side of the kernels crate (feature `cuda`): the kernels' CUDA C source, compiled at
//! run time by NVRTC for the device's own architecture ([`nvrtc`]), the launch shapes and host
//! checks ([`launch`]), and one launcher per GPU op ([`ops`]). Needs no CUDA toolkit to build:
//! cudarc loads libcuda and libnvrtc at run time, and panics if they are missing, so callers
//! check [`nvrtc::driver_present`] and [`nvrtc::nvrtc_present`] before any other call.

pub mod launch;
pub mod nvrtc;
pub mod ops;

/// The CUDA C source of every kernel.
pub const SOURCE: &str = include_str!("kernels.cu");

/// 64-bit FNV-1a, the hash of the kernel cache key (stable across builds and platforms).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// File name of a compiled module in the kernel cache: target (cubin/PTX and architecture),
/// NVRTC version, and a hash of the source and options, so that any change to either, a new
/// NVRTC or another GPU compiles afresh.
pub fn cache_file_name(target: nvrtc::Target, nvrtc_version: (i32, i32), source: &str) -> String {
    let mut key = Vec::with_capacity(source.len() + 64);
    key.extend_from_slice(source.as_bytes());
    key.push(0);
    key.extend_from_slice(target.arch_flag().as_bytes());
    for o in nvrtc::OPTIONS {
        key.push(0);
        key.extend_from_slice(o.as_bytes());
    }
    format!(
        "kernels-{}{}-nvrtc{}.{}-{:016x}.{}",
        match target {
            nvrtc::Target::Cubin(_) => "sm",
            nvrtc::Target::Ptx(_) => "compute",
        },
        target.cc(),
        nvrtc_version.0,
        nvrtc_version.1,
        fnv1a(&key),
        target.extension()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use nvrtc::Target;

    #[test]
    fn every_kernel_name_is_in_the_source() {
        for n in ops::KERNEL_NAMES {
            assert!(
                SOURCE.contains(&format!("__global__ void {n}(")),
                "kernel {n} is listed but not defined in kernels.cu"
            );
        }
        let defined = SOURCE.matches("extern \"C\" __global__ void ").count();
        assert_eq!(
            defined,
            ops::KERNEL_NAMES.len(),
            "a kernel of kernels.cu is not listed"
        );
    }

    #[test]
    fn cache_key_changes_with_each_input() {
        let base = cache_file_name(Target::Cubin(90), (13, 0), SOURCE);
        assert!(base.starts_with("kernels-sm90-nvrtc13.0-"), "{base}");
        assert!(base.ends_with(".cubin"));
        assert_eq!(base, cache_file_name(Target::Cubin(90), (13, 0), SOURCE));
        let others = [
            cache_file_name(Target::Cubin(89), (13, 0), SOURCE),
            cache_file_name(Target::Ptx(90), (13, 0), SOURCE),
            cache_file_name(Target::Cubin(90), (13, 1), SOURCE),
            cache_file_name(Target::Cubin(90), (13, 0), &format!("{SOURCE}\n")),
        ];
        for o in &others {
            assert_ne!(&base, o);
        }
        assert!(others[1].ends_with(".ptx"));
    }

    #[test]
    fn fnv1a_known_values() {
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
