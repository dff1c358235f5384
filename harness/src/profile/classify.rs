//! Symbol families → kernel classes, so an external engine's profile says which kind of
//! kernel its time went to (AMX tiles, repacked GEMM, plain dot products, iqk, ...) the
//! way the built-in engine's dispatch record does. [`FAMILIES`] is the one table.

use std::collections::BTreeMap;

use crate::results::KernelUse;

/// How a family is recognised in a (short, demangled) symbol name.
#[derive(Clone, Copy, Debug)]
pub enum Pat {
    /// A `::`-separated component of the name, template arguments removed, starts with it.
    Component(&'static str),
    /// The whole name starts with it (a Rust path).
    Path(&'static str),
    /// The name contains it.
    Contains(&'static str),
}

/// One family: the symbols that belong to it and the kernel class they stand for.
#[derive(Clone, Copy, Debug)]
pub struct Family {
    pub pat: Pat,
    /// The class, stored as the entry's `kernel`.
    pub class: &'static str,
    /// The op, when the family says it; "mul_mat" for matmul kernels.
    pub op: &'static str,
    /// The ISA, when the family says it ("amx"); empty otherwise.
    pub isa: &'static str,
}

const fn fam(pat: Pat, class: &'static str, op: &'static str, isa: &'static str) -> Family {
    Family {
        pat,
        class,
        op,
        isa,
    }
}

/// The families, first match wins, so specific patterns come before general ones.
///
/// - `ggml-amx`: ggml-cpu's `amx/` sources (llama.cpp `ggml/src/ggml-cpu/amx/mmq.cpp`,
///   `amx.cpp`): the AMX tile kernels `tinygemm_kernel_amx`, the AVX-512 VNNI kernels the
///   same file uses for one-row batches (`tinygemm_kernel_vnni`) and its AVX-512 float
///   ones (`tinygemm_kernel_avx`), the `ggml_backend_amx_*` entry points and the
///   `ggml::cpu::amx` namespace. The ISA says which of these really ran.
/// - `ggml-repack`: the interleaved ("repacked") GEMM/GEMV kernels of ggml-cpu
///   `repack.cpp` and `arch/*/repack.cpp`: `ggml_gemm_*`, `ggml_gemv_*`, the x86 helpers
///   `gemm_q4_b32_8x8_q8_0_lut_avx` / `gemv_...`, `ggml::cpu::repack` methods; their
///   activation quantizers `ggml_quantize_mat_*` are op `quantize`.
/// - `ggml-vec-dot`: the plain row-by-row dot products `ggml_vec_dot_*`.
/// - `ggml-sgemm`: llamafile's tinyBLAS (`llamafile_sgemm`, `tinyBLAS*`).
/// - `iqk`: ik_llama.cpp's `iqk_mul_mat*` and the `mul_mat_*` kernels of its `iqk/`
///   sources (mainline ggml prefixes all of its own with `ggml_`), and `iqk_flash_attn*`.
/// - `tessera`: tessera's own kernels, `tessera_kernels::cpu::<isa>::<fn>` (an older
///   tessera run as an external engine, e.g. in a bisection); see [`tessera_kernel`].
/// - anything else is `other`.
pub const FAMILIES: &[Family] = &[
    fam(
        Pat::Component("tinygemm_kernel_amx"),
        "ggml-amx",
        "mul_mat",
        "amx",
    ),
    fam(
        Pat::Component("tinygemm_kernel_vnni"),
        "ggml-amx",
        "mul_mat",
        "avx512-vnni",
    ),
    fam(
        Pat::Component("tinygemm_kernel_avx"),
        "ggml-amx",
        "mul_mat",
        "avx512",
    ),
    fam(
        Pat::Component("ggml_backend_amx_convert_weight"),
        "ggml-amx",
        "repack",
        "amx",
    ),
    fam(
        Pat::Component("ggml_backend_amx_"),
        "ggml-amx",
        "mul_mat",
        "amx",
    ),
    fam(
        Pat::Component("ggml_tile_config_init"),
        "ggml-amx",
        "mul_mat",
        "amx",
    ),
    fam(
        Pat::Contains("ggml::cpu::amx::"),
        "ggml-amx",
        "mul_mat",
        "amx",
    ),
    fam(
        Pat::Component("ggml_quantize_mat_"),
        "ggml-repack",
        "quantize",
        "",
    ),
    fam(Pat::Component("ggml_gemm_"), "ggml-repack", "mul_mat", ""),
    fam(Pat::Component("ggml_gemv_"), "ggml-repack", "mul_mat", ""),
    fam(Pat::Component("gemm_q4_b32_"), "ggml-repack", "mul_mat", ""),
    fam(Pat::Component("gemv_q4_b32_"), "ggml-repack", "mul_mat", ""),
    fam(
        Pat::Contains("ggml::cpu::repack::"),
        "ggml-repack",
        "mul_mat",
        "",
    ),
    fam(
        Pat::Component("ggml_vec_dot_"),
        "ggml-vec-dot",
        "mul_mat",
        "",
    ),
    fam(
        Pat::Component("llamafile_sgemm"),
        "ggml-sgemm",
        "mul_mat",
        "",
    ),
    fam(Pat::Component("tinyBLAS"), "ggml-sgemm", "mul_mat", ""),
    fam(
        Pat::Component("iqk_flash_attn"),
        "iqk",
        "flash_attn_ext",
        "",
    ),
    fam(Pat::Component("iqk_mul_mat"), "iqk", "mul_mat", ""),
    fam(Pat::Component("mul_mat_"), "iqk", "mul_mat", ""),
    fam(Pat::Path("tessera_kernels::cpu::"), "tessera", "", ""),
];

/// The class of symbols no family claims.
pub const OTHER: &str = "other";

/// The `::` components of a name with template arguments removed:
/// `(anonymous namespace)::tinygemm_kernel_vnni<a, b>::apply` → its three parts.
fn components(name: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0i32;
    let mut chars = name.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            ':' if depth == 0 && chars.peek() == Some(&':') => {
                chars.next();
                out.push(String::new());
            }
            _ if depth == 0 => out.last_mut().expect("never empty").push(c),
            _ => {}
        }
    }
    out
}

/// The family of a symbol, if any claims it.
pub fn family(symbol: &str) -> Option<&'static Family> {
    let parts = components(symbol);
    FAMILIES.iter().find(|f| match f.pat {
        Pat::Component(p) => parts.iter().any(|c| c.starts_with(p)),
        Pat::Path(p) => symbol.starts_with(p),
        Pat::Contains(p) => symbol.contains(p),
    })
}

/// The ISA and op of a tessera kernel symbol: `tessera_kernels::cpu::avx512::tile_q` is
/// ("avx512", "mul_mat"). The module names the ISA table; the function name the op.
pub fn tessera_kernel(symbol: &str) -> (&'static str, &'static str) {
    let rest = symbol.strip_prefix("tessera_kernels::cpu::").unwrap_or("");
    let mut it = rest.split("::");
    let isa = match it.next().unwrap_or("") {
        "scalar" => "scalar",
        "avx2" => "avx2",
        "avx512" => "avx512",
        "amx" => "amx",
        "amx_emu" => "amx-emu",
        _ => "",
    };
    let f = it.next().unwrap_or("");
    let op = if f.starts_with("quantize") {
        "quantize"
    } else if f.starts_with("attn") {
        "attention"
    } else if f.starts_with("rms_norm") {
        "rms_norm"
    } else if f.starts_with("softmax") || f.starts_with("exp") {
        "softmax"
    } else if f.starts_with("swiglu") {
        "swiglu"
    } else {
        "mul_mat"
    };
    (isa, op)
}

/// The (op, isa, class) of one symbol.
pub fn classify(symbol: &str) -> (&'static str, &'static str, &'static str) {
    match family(symbol) {
        Some(f) if f.class == "tessera" => {
            let (isa, op) = tessera_kernel(symbol);
            (op, isa, f.class)
        }
        Some(f) => (f.op, f.isa, f.class),
        None => (OTHER, "", OTHER),
    }
}

/// `kernels_used` entries from self-time samples per symbol: one per (class, op, ISA)
/// with its share of all `total` samples, highest share first. Only classes that have
/// samples appear; the shares sum to 1 when `leaves` covers every sample.
pub fn kernel_uses<'a>(
    leaves: impl IntoIterator<Item = (&'a str, u64)>,
    total: u64,
) -> Vec<KernelUse> {
    let mut by: BTreeMap<(&str, &str, &str), u64> = BTreeMap::new();
    for (symbol, n) in leaves {
        let (op, isa, class) = classify(symbol);
        *by.entry((class, op, isa)).or_default() += n;
    }
    let mut v: Vec<KernelUse> = by
        .into_iter()
        .filter(|&(_, n)| n > 0 && total > 0)
        .map(|((class, op, isa), n)| KernelUse {
            op: op.to_string(),
            isa: isa.to_string(),
            kernel: class.to_string(),
            calls: 0,
            source: "profile".to_string(),
            share: Some(n as f64 / total as f64),
            ..KernelUse::default()
        })
        .collect();
    v.sort_by(|a, b| {
        b.share
            .partial_cmp(&a.share)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::symbolize::short_name;

    /// Real names as blazesym demangles them from llama.cpp, ik_llama.cpp and tessera
    /// builds, shortened as profiles store them.
    #[test]
    fn real_symbols_fall_in_their_families() {
        let cases: &[(&str, (&str, &str, &str))] = &[
            (
                "void (anonymous namespace)::tinygemm_kernel_amx<block_q4_0, float, 32, 32, 32>(int, int, int, int, void const*, void const*, float*, int)",
                ("mul_mat", "amx", "ggml-amx"),
            ),
            (
                "(anonymous namespace)::tinygemm_kernel_vnni<block_q8_0, block_q4_0, float, 1, 32, 32>::apply(int, void const*, void const*, float*, int)",
                ("mul_mat", "avx512-vnni", "ggml-amx"),
            ),
            ("ggml_backend_amx_mul_mat", ("mul_mat", "amx", "ggml-amx")),
            (
                "ggml_backend_amx_convert_weight",
                ("repack", "amx", "ggml-amx"),
            ),
            (
                "ggml::cpu::amx::tensor_traits::compute_forward(ggml_compute_params*, ggml_tensor*)",
                ("mul_mat", "amx", "ggml-amx"),
            ),
            ("ggml_gemm_q4_0_8x8_q8_0", ("mul_mat", "", "ggml-repack")),
            ("ggml_gemv_q4_0_4x8_q8_0", ("mul_mat", "", "ggml-repack")),
            ("ggml_gemv_iq4_nl_4x4_q8_0", ("mul_mat", "", "ggml-repack")),
            (
                "void gemm_q4_b32_8x8_q8_0_lut_avx<block<4, 8> >(int, float*, unsigned long, void const*, void const*, int, int, long long __vector(4))",
                ("mul_mat", "", "ggml-repack"),
            ),
            (
                "ggml::cpu::repack::tensor_traits<block_q4_0, 8l, 8l, (ggml_type)8>::forward_mul_mat(ggml_compute_params*, ggml_tensor*)",
                ("mul_mat", "", "ggml-repack"),
            ),
            (
                "ggml_quantize_mat_q8_0_4x8",
                ("quantize", "", "ggml-repack"),
            ),
            ("ggml_vec_dot_q4_0_q8_0", ("mul_mat", "", "ggml-vec-dot")),
            ("ggml_vec_dot_f16", ("mul_mat", "", "ggml-vec-dot")),
            (
                "(anonymous namespace)::tinyBLAS_Q0_AVX<block_q8_0, block_q8_0, float>::gemm<4, 2>(long, long, long, long)",
                ("mul_mat", "", "ggml-sgemm"),
            ),
            ("llamafile_sgemm", ("mul_mat", "", "ggml-sgemm")),
            (
                "iqk_mul_mat(long, long, long, int, void const*, long, int, void const*, long, float*, long, int, int)",
                ("mul_mat", "", "iqk"),
            ),
            ("iqk_mul_mat_moe", ("mul_mat", "", "iqk")),
            (
                "void (anonymous namespace)::mul_mat_q4_0_r8_q8_2<8>(int, void const*, unsigned long, (anonymous namespace)::DataInfo const&, int)",
                ("mul_mat", "", "iqk"),
            ),
            (
                "void (anonymous namespace)::mul_mat_qX_K_q8_K_T<(anonymous namespace)::DequantizerQ4K, 4>(int, void const*, unsigned long, (anonymous namespace)::DataInfo const&, int)",
                ("mul_mat", "", "iqk"),
            ),
            ("iqk_flash_attn_noalibi", ("flash_attn_ext", "", "iqk")),
            (
                "tessera_kernels::cpu::avx2::matmul",
                ("mul_mat", "avx2", "tessera"),
            ),
            (
                "tessera_kernels::cpu::avx512::tile_q",
                ("mul_mat", "avx512", "tessera"),
            ),
            (
                "tessera_kernels::cpu::amx_emu::matmul",
                ("mul_mat", "amx-emu", "tessera"),
            ),
            (
                "tessera_kernels::cpu::avx2::quantize_row_q8_0",
                ("quantize", "avx2", "tessera"),
            ),
            (
                "tessera_kernels::cpu::avx2::attn_scores_impl",
                ("attention", "avx2", "tessera"),
            ),
            // Drivers and helpers that are not kernels of a family.
            ("ggml_compute_forward_mul_mat", ("other", "", "other")),
            (
                "ggml_compute_forward_mul_mat_one_chunk",
                ("other", "", "other"),
            ),
            ("ggml_graph_compute_thread", ("other", "", "other")),
            ("quantize_row_q8_0", ("other", "", "other")),
            ("__memmove_avx_unaligned_erms", ("other", "", "other")),
            ("[unknown]", ("other", "", "other")),
            (
                "tessera_kernels::quant::q4_0::dequantize",
                ("other", "", "other"),
            ),
        ];
        for (name, want) in cases {
            let short = short_name(name);
            assert_eq!(classify(&short), *want, "{name} (short: {short})");
        }
    }

    #[test]
    fn entries_aggregate_by_class_with_shares() {
        let leaves = [
            ("ggml_gemm_q4_0_8x8_q8_0", 50),
            ("ggml_gemv_q4_0_8x8_q8_0", 20),
            (
                "(anonymous namespace)::tinygemm_kernel_amx<block_q4_0, float, 32, 32, 32>",
                20,
            ),
            ("main", 10),
        ];
        let v = kernel_uses(leaves, 100);
        let got: Vec<(&str, &str, &str, f64)> = v
            .iter()
            .map(|k| {
                (
                    k.kernel.as_str(),
                    k.op.as_str(),
                    k.isa.as_str(),
                    k.share.unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("ggml-repack", "mul_mat", "", 0.7),
                ("ggml-amx", "mul_mat", "amx", 0.2),
                ("other", "other", "", 0.1),
            ]
        );
        assert!(v.iter().all(|k| k.source == "profile" && k.calls == 0));
        assert!(kernel_uses([("main", 0)], 0).is_empty());
    }
}
