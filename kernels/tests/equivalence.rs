//! Every ISA this machine has, with every valid tile, against the scalar reference dot
//! products, for every format and for ragged shapes. ISAs the CPU lacks are printed by name.

use half::f16;
use tessera_kernels::cpu::scalar;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{ActBuf, Isa, IsaRequest, Kernels, OutMat, WeightData, WeightMat};

/// A small deterministic generator (tests only).
struct Lcg(u64);
impl Lcg {
    fn f32(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }
}

enum Owned {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Q8(Vec<BlockQ8_0>),
    Q4(Vec<BlockQ4_0>),
}

fn make(kind: &str, w: &[f32]) -> Owned {
    match kind {
        "f32" => Owned::F32(w.to_vec()),
        "f16" => Owned::F16(w.iter().map(|&v| f16::from_f32(v)).collect()),
        "q8_0" => {
            let mut b = vec![BlockQ8_0::default(); w.len() / 32];
            q8_0::quantize_row(w, &mut b);
            Owned::Q8(b)
        }
        _ => {
            let mut b = vec![BlockQ4_0::default(); w.len() / 32];
            q4_0::quantize_row(w, &mut b);
            Owned::Q4(b)
        }
    }
}

fn view(o: &Owned) -> WeightData<'_> {
    match o {
        Owned::F32(v) => WeightData::F32(v),
        Owned::F16(v) => WeightData::F16(v),
        Owned::Q8(v) => WeightData::Q8_0(v),
        Owned::Q4(v) => WeightData::Q4_0(v),
    }
}

/// The reference: one scalar dot product per output, whole rows, no tiling.
fn reference(w: &WeightMat, x: &[f32], m: usize) -> Vec<f32> {
    let (n, k) = (w.n(), w.k());
    let mut buf = ActBuf::default();
    buf.convert(w.act_kind(), x, k);
    let acts = buf.view(w.act_kind(), x);
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = match (w.data(), acts) {
                (WeightData::F32(d), tessera_kernels::Acts::F32(a)) => {
                    scalar::dot_f32(&d[j * k..(j + 1) * k], &a[i * k..(i + 1) * k])
                }
                (WeightData::F16(d), tessera_kernels::Acts::F16(a)) => {
                    scalar::dot_f16(&d[j * k..(j + 1) * k], &a[i * k..(i + 1) * k])
                }
                (WeightData::Q8_0(d), tessera_kernels::Acts::Q8_0(a)) => {
                    let b = k / 32;
                    scalar::dot_q8_0_q8_0(&d[j * b..(j + 1) * b], &a[i * b..(i + 1) * b])
                }
                (WeightData::Q4_0(d), tessera_kernels::Acts::Q8_0(a)) => {
                    let b = k / 32;
                    scalar::dot_q4_0_q8_0(&d[j * b..(j + 1) * b], &a[i * b..(i + 1) * b])
                }
                _ => unreachable!(),
            };
        }
    }
    out
}

/// Every output within the tolerance of its reference value: tiling over k changes only
/// the order of f32 partial sums, so the bound grows with the square root of the blocks.
fn assert_close(got: &[f32], want: &[f32], k: usize, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (idx, (g, r)) in got.iter().zip(want).enumerate() {
        let tol = 1e-5 * (1.0 + r.abs()) * (k as f32 / 32.0).sqrt();
        assert!((g - r).abs() <= tol, "{what} [{idx}]: {g} vs {r}");
    }
}

fn print_skipped() {
    for isa in Isa::ALL.iter().filter(|i| !i.is_available()) {
        eprintln!(
            "skipped ISA {} (not on this CPU: {})",
            isa.name(),
            isa.unavailable_reason().unwrap_or_default()
        );
    }
}

#[test]
fn every_isa_and_tile_matches_the_scalar_reference() {
    print_skipped();
    let mut rng = Lcg(12345);
    // (n rows, k, m tokens): ragged n and m, k of one block up to many.
    let shapes = [
        (1, 32, 1),
        (7, 64, 3),
        (13, 96, 5),
        (16, 256, 1),
        (33, 288, 9),
        (5, 1056, 2),
        // Past one AMX tile in both directions, ragged in both (16/32-row tiles).
        (37, 64, 35),
        // More than one 4096-element k pass.
        (3, 4160, 2),
    ];
    // Float formats also take rows that are no multiple of the SIMD width.
    let float_shapes = [(9, 37, 3), (5, 200, 6), (2, 7, 1)];
    let mut checked = 0;
    for isa in Isa::available() {
        for tile in isa.valid_tiles() {
            let kernels = Kernels::new(IsaRequest::Named(isa), Some(tile)).unwrap();
            let cases = shapes
                .iter()
                .flat_map(|&s| ["f32", "f16", "q8_0", "q4_0"].map(|f| (s, f)))
                .chain(
                    float_shapes
                        .iter()
                        .flat_map(|&s| ["f32", "f16"].map(|f| (s, f))),
                );
            for ((n, k, m), fmt) in cases {
                {
                    let wf = rng.vec(n * k);
                    let x = rng.vec(m * k);
                    let owned = make(fmt, &wf);
                    let w = WeightMat::new(view(&owned), n, k).unwrap();
                    let want = reference(&w, &x, m);
                    let mut buf = ActBuf::default();
                    buf.convert(w.act_kind(), &x, k);
                    let acts = buf.view(w.act_kind(), &x);
                    let mut got = vec![f32::NAN; m * n];
                    let kern = kernels.matmul("test", &w, m);
                    {
                        let out = OutMat::new(&mut got, m, n);
                        // Two column ranges, as two threads would split them.
                        let mid = n / 2;
                        // SAFETY: disjoint ranges, run one after the other.
                        unsafe {
                            kern.run(&w, acts, &out, 0..mid);
                            kern.run(&w, acts, &out, mid..n);
                        }
                    }
                    assert_close(
                        &got,
                        &want,
                        k,
                        &format!("{isa} tile {tile} {fmt} n{n} k{k} m{m}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

#[test]
fn quantized_dots_match_dequantized_f64() {
    let mut rng = Lcg(99);
    let k = 256;
    let w = rng.vec(k);
    let a = rng.vec(k);
    let mut qa = vec![BlockQ8_0::default(); k / 32];
    q8_0::quantize_row(&a, &mut qa);
    let mut adq = vec![0.0; k];
    q8_0::dequantize_row(&qa, &mut adq);
    let mut q4 = vec![BlockQ4_0::default(); k / 32];
    q4_0::quantize_row(&w, &mut q4);
    let mut q8 = vec![BlockQ8_0::default(); k / 32];
    q8_0::quantize_row(&w, &mut q8);
    let mut w4 = vec![0.0; k];
    q4_0::dequantize_row(&q4, &mut w4);
    let mut w8 = vec![0.0; k];
    q8_0::dequantize_row(&q8, &mut w8);
    let exact = |x: &[f32]| {
        x.iter()
            .zip(&adq)
            .map(|(a, b)| *a as f64 * *b as f64)
            .sum::<f64>()
    };
    let d4 = scalar::dot_q4_0_q8_0(&q4, &qa) as f64;
    let d8 = scalar::dot_q8_0_q8_0(&q8, &qa) as f64;
    assert!((d4 - exact(&w4)).abs() < 1e-4, "{d4} vs {}", exact(&w4));
    assert!((d8 - exact(&w8)).abs() < 1e-4, "{d8} vs {}", exact(&w8));
}

/// Runs `kernels` on `w` × `x` (`m` rows) as two threads would, column halves in turn.
fn run(kernels: &Kernels, w: &WeightMat, x: &[f32], m: usize) -> Vec<f32> {
    let mut buf = ActBuf::default();
    buf.convert(w.act_kind(), x, w.k());
    let acts = buf.view(w.act_kind(), x);
    let mut got = vec![f32::NAN; m * w.n()];
    let kern = kernels.matmul("test", w, m);
    {
        let out = OutMat::new(&mut got, m, w.n());
        let mid = w.n() / 2;
        // SAFETY: disjoint ranges, run one after the other.
        unsafe {
            kern.run(w, acts, &out, 0..mid);
            kern.run(w, acts, &out, mid..w.n());
        }
    }
    got
}

/// The AMX algorithm scales each block's integer product with the same f32 operations in the
/// same order as the scalar reference, so any packing or tiling slip shows as a changed bit.
#[test]
fn amx_emu_gemm_is_bit_identical_to_the_reference() {
    let mut rng = Lcg(777);
    for tile in Isa::AmxEmu.valid_tiles() {
        let kernels = Kernels::new(IsaRequest::Named(Isa::AmxEmu), Some(tile)).unwrap();
        for &(n, k, m) in &[(37, 96, 35), (16, 32, 16), (50, 64, 2), (3, 320, 40)] {
            for fmt in ["q8_0", "q4_0"] {
                let owned = make(fmt, &rng.vec(n * k));
                let w = WeightMat::new(view(&owned), n, k).unwrap();
                let x = rng.vec(m * k);
                let got = run(&kernels, &w, &x, m);
                let want = reference(&w, &x, m);
                for (idx, (g, r)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g.to_bits(),
                        r.to_bits(),
                        "tile {tile} {fmt} n{n} k{k} m{m} [{idx}]: {g} vs {r}"
                    );
                }
            }
        }
    }
}

/// Q4_0 repacked eight rows at a time (what `Kernels::repack` hands avx2) gives the same
/// products as the plain layout, on every ISA and tile (the ones without a repacked kernel
/// take the scalar path), for column splits that cut groups in two.
#[test]
fn repacked_q4_0_matches_the_scalar_reference_on_every_isa_and_tile() {
    use tessera_kernels::matrix::Repacked;
    print_skipped();
    let mut rng = Lcg(4242);
    let mut checked = 0;
    for isa in Isa::available() {
        for tile in isa.valid_tiles() {
            let kernels = Kernels::new(IsaRequest::Named(isa), Some(tile)).unwrap();
            for &(n, k, m) in &[
                (8, 32, 1),
                (16, 96, 3),
                (40, 1056, 1),
                (24, 4160, 5),
                (64, 256, 9),
            ] {
                let owned = make("q4_0", &rng.vec(n * k));
                let w = WeightMat::new(view(&owned), n, k).unwrap();
                let mut rp = Repacked::default();
                assert!(rp.add(&w));
                let wp = rp.view(w);
                assert!(matches!(wp.data(), WeightData::Q4_0x8(_)));
                let x = rng.vec(m * k);
                let want = reference(&w, &x, m);
                // Three ranges, two of them cutting an 8-row group.
                let got = run_split(&kernels, &wp, &x, m, 3);
                assert_close(
                    &got,
                    &want,
                    k,
                    &format!("{isa} tile {tile} q4_0x8 n{n} k{k} m{m}"),
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 0);
}

/// `Kernels::repack` repacks for the avx2 table with its 8-row default tile, records the
/// repacked kernel, and leaves other tables and tiles alone.
#[test]
fn avx2_repacks_by_default_and_records_it() {
    let owned = make("q4_0", &Lcg(5).vec(16 * 64));
    let w = WeightMat::new(view(&owned), 16, 64).unwrap();
    if Isa::Avx2.is_available() && std::env::var_os("TESSERA_REPACK").is_none() {
        let k = Kernels::new(IsaRequest::Named(Isa::Avx2), None).unwrap();
        assert!(k.repacks());
        let rp = k.repack([w]);
        assert_eq!(rp.len(), 1);
        k.matmul("ffn_up", &rp.view(w), 1);
        k.matmul("ffn_up", &rp.view(w), 4);
        let names: Vec<_> = k.record().iter().map(|u| u.kernel).collect();
        assert_eq!(names, ["gemv_q4_0x8_q8_0", "gemm_q4_0x8_q8_0"]);
        let k4 = Kernels::new(
            IsaRequest::Named(Isa::Avx2),
            Some(tessera_kernels::TileConfig::new(4, 4, 1024)),
        )
        .unwrap();
        assert!(k4.repack([w]).is_empty());
    } else {
        eprintln!("skipped: avx2 repack (no AVX2, or TESSERA_REPACK set)");
    }
    let s = Kernels::new(IsaRequest::Named(Isa::Scalar), None).unwrap();
    assert!(!s.repacks() && s.repack([w]).is_empty());
}

/// Runs `kernels` on the repacked `wp` in three column ranges: `0..first`, up to just past
/// the middle, and the rest, so that the cuts fall inside 8- and 16-row groups.
fn run_split(kernels: &Kernels, wp: &WeightMat, x: &[f32], m: usize, first: usize) -> Vec<f32> {
    let (n, k) = (wp.n(), wp.k());
    let mut buf = ActBuf::default();
    buf.convert(wp.act_kind(), x, k);
    let acts = buf.view(wp.act_kind(), x);
    let kern = kernels.matmul("test", wp, m);
    let mut got = vec![f32::NAN; m * n];
    {
        let out = OutMat::new(&mut got, m, n);
        let (a, b) = (first.min(n), (n / 2 + first).min(n));
        // SAFETY: disjoint ranges, run one after the other.
        unsafe {
            kern.run(wp, acts, &out, 0..a);
            kern.run(wp, acts, &out, a..b);
            kern.run(wp, acts, &out, b..n);
        }
    }
    got
}

const X16_SHAPES: [(usize, usize, usize); 7] = [
    (16, 32, 1),
    (32, 96, 3),
    (48, 1056, 1),
    (16, 4160, 5),
    (64, 256, 17),
    (32, 64, 35),
    (16, 96, 9),
];

/// Q4_0 and Q8_0 repacked sixteen rows at a time (what `Kernels::repack` hands avx512 and
/// the AMX tables) give the reference's products on every ISA and tile, for token counts
/// that leave partial register and AMX tiles and column splits that cut groups.
#[test]
fn x16_repacked_weights_match_the_scalar_reference_on_every_isa_and_tile() {
    use tessera_kernels::matrix::{Layout, Repacked};
    print_skipped();
    let mut rng = Lcg(1616);
    let mut checked = 0;
    for isa in Isa::available() {
        for tile in isa.valid_tiles() {
            let kernels = Kernels::new(IsaRequest::Named(isa), Some(tile)).unwrap();
            for &(n, k, m) in &X16_SHAPES {
                for fmt in ["q4_0", "q8_0"] {
                    let owned = make(fmt, &rng.vec(n * k));
                    let w = WeightMat::new(view(&owned), n, k).unwrap();
                    let mut rp = Repacked::new(Layout::X16);
                    assert!(rp.add(&w));
                    let wp = rp.view(w);
                    assert!(matches!(wp.data(), WeightData::X16(_)));
                    let x = rng.vec(m * k);
                    let want = reference(&w, &x, m);
                    let got = run_split(&kernels, &wp, &x, m, 5);
                    assert_close(
                        &got,
                        &want,
                        k,
                        &format!("{isa} tile {tile} {fmt}x16 n{n} k{k} m{m}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 0);
}

/// The hardware tiles and the emulator run one loop and one scaling arithmetic on the x16
/// layout: their GEMM results agree bit for bit.
#[test]
fn amx_and_amx_emu_agree_bit_for_bit_on_x16() {
    use tessera_kernels::matrix::{Layout, Repacked};
    if !Isa::Amx.is_available() {
        eprintln!(
            "skipped: amx vs amx-emu ({})",
            Isa::Amx.unavailable_reason().unwrap_or_default()
        );
        return;
    }
    let hw = Kernels::new(IsaRequest::Named(Isa::Amx), None).unwrap();
    let emu = Kernels::new(IsaRequest::Named(Isa::AmxEmu), None).unwrap();
    let mut rng = Lcg(31337);
    for &(n, k, m) in &X16_SHAPES {
        if m == 1 {
            continue; // GEMV runs on the vector ISA in both tables
        }
        for fmt in ["q4_0", "q8_0"] {
            let owned = make(fmt, &rng.vec(n * k));
            let w = WeightMat::new(view(&owned), n, k).unwrap();
            let mut rp = Repacked::new(Layout::X16);
            assert!(rp.add(&w));
            let wp = rp.view(w);
            let x = rng.vec(m * k);
            let (a, b) = (
                run_split(&hw, &wp, &x, m, 5),
                run_split(&emu, &wp, &x, m, 5),
            );
            for (idx, (g, r)) in a.iter().zip(&b).enumerate() {
                assert_eq!(
                    g.to_bits(),
                    r.to_bits(),
                    "{fmt}x16 n{n} k{k} m{m} [{idx}]: amx {g} vs amx-emu {r}"
                );
            }
        }
    }
}
