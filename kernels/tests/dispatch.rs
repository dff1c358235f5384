//! Dispatch behaviour seen from outside: what `auto` picks, how refusals read, what the
//! record says about fallbacks, and that the vectorised conversions and element-wise ops of
//! every available ISA agree with the scalar reference.

use half::f16;
use tessera_kernels::cpu::scalar;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q8_0};
use tessera_kernels::{DispatchError, Isa, IsaRequest, Kernels, TileConfig, WeightData, WeightMat};

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

#[test]
fn auto_picks_the_first_available_of_its_order_and_never_amx() {
    let k = Kernels::new(IsaRequest::Auto, None).unwrap();
    let want = Isa::AUTO_ORDER
        .into_iter()
        .find(|i| i.is_available())
        .unwrap();
    assert_eq!(k.isa(), want);
    assert!(!matches!(k.isa(), Isa::Amx | Isa::AmxEmu));
    assert_eq!(k.request(), IsaRequest::Auto);
}

#[test]
fn every_isa_name_parses_and_amx_emu_is_always_available() {
    for isa in Isa::ALL {
        assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
    }
    assert!(Isa::AmxEmu.is_available() && Isa::Scalar.is_available());
    assert!(Isa::available().contains(&Isa::AmxEmu));
}

#[test]
fn an_unavailable_isa_is_refused_with_the_reason_and_what_the_cpu_has() {
    let Some(missing) = Isa::ALL.into_iter().find(|i| !i.is_available()) else {
        eprintln!("skipped: this CPU runs every ISA");
        return;
    };
    let err = Kernels::new(IsaRequest::Named(missing), None)
        .err()
        .unwrap();
    assert_eq!(err, DispatchError::Unavailable(missing));
    let msg = err.to_string();
    let reason = missing.unavailable_reason().unwrap();
    assert!(
        msg.contains(missing.name()) && msg.contains(&reason),
        "{msg}"
    );
    for have in Isa::available() {
        assert!(msg.contains(have.name()), "{msg}");
    }
}

#[test]
fn default_tiles_are_valid_and_invalid_ones_list_the_valid() {
    for isa in Isa::ALL {
        assert!(isa.valid_tiles().contains(&isa.default_tile()), "{isa}");
    }
    let e = Kernels::new(
        IsaRequest::Named(Isa::AmxEmu),
        Some(TileConfig::new(4, 4, 4096)),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("4x4x4096") && e.contains("16x16x4096") && e.contains("32x32x4096"),
        "{e}"
    );
}

/// GEMV and float matmuls on the AMX tables run on the fallback ISA, and the record says
/// so: the ISA that ran, its kernel name and its tile.
#[test]
fn amx_emu_fallbacks_are_visible_in_the_record() {
    let k = Kernels::new(IsaRequest::Named(Isa::AmxEmu), None).unwrap();
    let fb = Isa::AmxEmu.fallback();
    assert!(!matches!(fb, Isa::Amx | Isa::AmxEmu));
    let q = vec![BlockQ4_0::default(); 4];
    let wq = WeightMat::new(WeightData::Q4_0(&q), 4, 32).unwrap();
    let h = vec![f16::ZERO; 64];
    let wh = WeightMat::new(WeightData::F16(&h), 2, 32).unwrap();
    let gemv = k.matmul("ffn_up", &wq, 1);
    let gemm = k.matmul("ffn_up", &wq, 40);
    let fgemm = k.matmul("attn_q", &wh, 40);
    assert_eq!(gemv.tile, fb.default_tile().for_gemv());
    assert_eq!(gemm.tile, k.tile());
    assert_eq!(fgemm.tile, fb.default_tile());
    let r = k.record();
    let got: Vec<_> = r.iter().map(|u| (u.op, u.isa, u.kernel, u.calls)).collect();
    assert_eq!(
        got,
        vec![
            ("ffn_up", fb, "gemv_q4_0_q8_0", 1),
            ("ffn_up", Isa::AmxEmu, "gemm_q4_0_q8_0_amx_emu", 1),
            ("attn_q", fb, "gemm_f16_f16", 1),
        ]
    );
}

#[test]
fn record_keeps_isas_apart_and_counts_calls() {
    let k = Kernels::new(IsaRequest::Named(Isa::AmxEmu), None).unwrap();
    let q = vec![BlockQ8_0::default(); 2];
    let w = WeightMat::new(WeightData::Q8_0(&q), 2, 32).unwrap();
    for _ in 0..3 {
        k.matmul("output", &w, 1);
    }
    k.matmul("output", &w, 2);
    let r = k.record();
    assert_eq!(r.len(), 2);
    assert_eq!((r[0].calls, r[1].calls), (3, 1));
    assert_ne!(r[0].isa, r[1].isa);
    k.reset_record();
    assert!(k.record().is_empty());
}

/// Values that land exactly on .5 after scaling must round away from zero, as roundf does.
#[test]
fn vectorised_q8_0_quantization_is_bit_identical() {
    let mut rng = Lcg(5);
    let mut x = rng.vec(32 * 40);
    // Block 0: amax 127 so x * id hits exact halves; block 1 all zero; block 2 tiny values.
    for (j, v) in x[..32].iter_mut().enumerate() {
        *v = j as f32 - 15.5;
    }
    x[31] = 127.0;
    x[32..64].fill(0.0);
    for v in x[64..96].iter_mut() {
        *v *= 1e-30;
    }
    let mut want = vec![BlockQ8_0::default(); 40];
    q8_0::quantize_row(&x, &mut want);
    assert_eq!(want[0].qs[0], -16); // -15.5 rounds away from zero
    assert_eq!(want[0].qs[1], -15); // -14.5 too
    for isa in Isa::available() {
        let k = Kernels::new(IsaRequest::Named(isa), None).unwrap();
        let mut got = vec![BlockQ8_0::default(); 40];
        k.quantize_q8_0(&x, &mut got);
        assert_eq!(got, want, "{isa}");
    }
}

#[test]
fn vectorised_f16_conversion_matches_half() {
    let mut rng = Lcg(6);
    let mut x = rng.vec(37);
    x[3] = 65519.0; // rounds to the largest finite f16
    x[4] = 1e-7; // subnormal in f16
    let want: Vec<_> = x.iter().map(|&v| f16::from_f32(v)).collect();
    for isa in Isa::available() {
        let k = Kernels::new(IsaRequest::Named(isa), None).unwrap();
        let mut act = tessera_kernels::ActBuf::with_capacity(1, 64);
        assert!(
            k.convert(&mut act, tessera_kernels::ActKind::F16, &x, 37)
                .is_some()
        );
        let tessera_kernels::Acts::F16(got) = act.view(tessera_kernels::ActKind::F16, &x) else {
            panic!("{isa}: not f16 activations");
        };
        assert_eq!(got, &want[..], "{isa}");
        assert_eq!(k.record()[0].kernel, "convert_f16", "{isa}");
    }
}

#[test]
fn every_isas_ops_match_the_scalar_ones() {
    let mut rng = Lcg(8);
    for isa in Isa::available() {
        let ops = Kernels::new(IsaRequest::Named(isa), None).unwrap().ops();
        for n in [1, 7, 8, 33, 128, 1000] {
            let a = rng.vec(n);
            let b = rng.vec(n);
            let bh: Vec<f16> = b.iter().map(|&v| f16::from_f32(v)).collect();
            let tol = 1e-5 * (n as f32).sqrt();
            let close = |g: f32, w: f32| (g - w).abs() <= tol * (1.0 + w.abs());
            assert!(
                close((ops.dot_f32)(&a, &b), scalar::dot_f32(&a, &b)),
                "{isa} dot {n}"
            );
            assert!(
                close((ops.dot_f32_f16)(&a, &bh), scalar::dot_f32_f16(&a, &bh)),
                "{isa} dot_f16 {n}"
            );
            let (mut y1, mut y2) = (b.clone(), b.clone());
            (ops.axpy_f32)(&mut y1, 0.3, &a);
            scalar::axpy_f32(&mut y2, 0.3, &a);
            assert!(
                y1.iter().zip(&y2).all(|(g, w)| close(*g, *w)),
                "{isa} axpy {n}"
            );
            let (mut y1, mut y2) = (a.clone(), a.clone());
            (ops.axpy_f16)(&mut y1, -1.5, &bh);
            scalar::axpy_f16(&mut y2, -1.5, &bh);
            assert!(
                y1.iter().zip(&y2).all(|(g, w)| close(*g, *w)),
                "{isa} axpy_f16 {n}"
            );
            let (mut o1, mut o2) = (vec![0.0; n], vec![0.0; n]);
            (ops.rms_norm)(&a, &b, 1e-5, &mut o1);
            scalar::rms_norm(&a, &b, 1e-5, &mut o2);
            assert!(
                o1.iter().zip(&o2).all(|(g, w)| close(*g, *w)),
                "{isa} rms {n}"
            );
            let (mut s1, mut s2) = (a.clone(), a.clone());
            (ops.softmax)(&mut s1);
            scalar::softmax(&mut s2);
            assert!(
                s1.iter().zip(&s2).all(|(g, w)| close(*g, *w)),
                "{isa} softmax {n}"
            );
            let (mut g1, mut g2) = (a.clone(), a.clone());
            (ops.swiglu)(&mut g1, &b);
            scalar::swiglu(&mut g2, &b);
            assert!(
                g1.iter().zip(&g2).all(|(g, w)| close(*g, *w)),
                "{isa} swiglu {n}"
            );
        }
    }
}

/// The attention primitives over a strided cache (a KV head inside rows of all heads), for
/// head sizes that are and are not multiples of the SIMD width and key counts around the
/// 4-key step.
#[test]
fn every_isas_attention_ops_match_the_scalar_ones() {
    let mut rng = Lcg(11);
    for isa in Isa::available() {
        let ops = Kernels::new(IsaRequest::Named(isa), None).unwrap().ops();
        for (hd, n_kv, stride, off) in [
            (64usize, 2usize, 64usize, 0usize),
            (64, 1, 256, 64),
            (64, 7, 256, 192),
            (128, 9, 512, 0),
            (100, 5, 300, 200),
            (8, 4, 16, 8),
            (3, 6, 5, 1),
            (64, 0, 64, 0),
        ] {
            let len = off + n_kv.saturating_sub(1) * stride + hd;
            let cache = rng.vec(len);
            let cache_h: Vec<f16> = cache.iter().map(|&v| f16::from_f32(v)).collect();
            let q = rng.vec(hd);
            let p = rng.vec(n_kv);
            let tol = 1e-5 * (hd.max(n_kv) as f32).sqrt();
            let close = |g: &[f32], w: &[f32]| {
                g.len() == w.len()
                    && g.iter()
                        .zip(w)
                        .all(|(g, w)| (g - w).abs() <= tol * (1.0 + w.abs()))
            };
            let (mut g, mut w) = (vec![0.0; n_kv], vec![0.0; n_kv]);
            (ops.attn_scores_f16)(&q, &cache_h[off..], stride, 0.125, &mut g);
            scalar::attn_scores_f16(&q, &cache_h[off..], stride, 0.125, &mut w);
            assert!(
                close(&g, &w),
                "{isa} scores f16 hd{hd} n{n_kv}: {g:?} vs {w:?}"
            );
            (ops.attn_scores_f32)(&q, &cache[off..], stride, 0.125, &mut g);
            scalar::attn_scores_f32(&q, &cache[off..], stride, 0.125, &mut w);
            assert!(close(&g, &w), "{isa} scores f32 hd{hd} n{n_kv}");
            let (mut g, mut w) = (vec![f32::NAN; hd], vec![f32::NAN; hd]);
            (ops.attn_values_f16)(&p, &cache_h[off..], stride, &mut g);
            scalar::attn_values_f16(&p, &cache_h[off..], stride, &mut w);
            assert!(close(&g, &w), "{isa} values f16 hd{hd} n{n_kv}");
            (ops.attn_values_f32)(&p, &cache[off..], stride, &mut g);
            scalar::attn_values_f32(&p, &cache[off..], stride, &mut w);
            assert!(close(&g, &w), "{isa} values f32 hd{hd} n{n_kv}");
        }
    }
}

/// Q4_0 weights whose nibbles hit both ends (0 and 15) against activations at ±127: the
/// largest pair sums the 16-bit multiply-add paths must hold without saturating.
#[test]
fn extreme_quantized_values_agree_with_the_reference() {
    let k = 256;
    let mut w4 = vec![BlockQ4_0::default(); 3 * k / 32];
    for (i, b) in w4.iter_mut().enumerate() {
        b.d = f16::from_f32(0.5);
        b.qs = [if i % 2 == 0 { 0xFF } else { 0x00 }; 16];
    }
    let mut w8 = vec![BlockQ8_0::default(); 3 * k / 32];
    for (i, b) in w8.iter_mut().enumerate() {
        b.d = f16::from_f32(0.25);
        b.qs = [if i % 2 == 0 { 127 } else { -127 }; 32];
    }
    let x: Vec<f32> = (0..2 * k)
        .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 })
        .collect();
    let mut xq = vec![BlockQ8_0::default(); 2 * k / 32];
    q8_0::quantize_row(&x, &mut xq);
    assert!(xq.iter().all(|b| b.qs.iter().all(|q| q.abs() == 127)));
    for isa in Isa::available() {
        let kernels = Kernels::new(IsaRequest::Named(isa), None).unwrap();
        for w in [
            WeightMat::new(WeightData::Q4_0(&w4), 3, k).unwrap(),
            WeightMat::new(WeightData::Q8_0(&w8), 3, k).unwrap(),
        ] {
            for m in [1, 2] {
                let mut buf = tessera_kernels::ActBuf::default();
                buf.convert(w.act_kind(), &x[..m * k], k);
                let acts = buf.view(w.act_kind(), &x[..m * k]);
                let mut got = vec![0.0; m * 3];
                let kern = kernels.matmul("t", &w, m);
                {
                    let out = tessera_kernels::OutMat::new(&mut got, m, 3);
                    // SAFETY: one caller, all columns.
                    unsafe { kern.run(&w, acts, &out, 0..3) };
                }
                for i in 0..m {
                    for j in 0..3 {
                        let a = &xq[i * k / 32..(i + 1) * k / 32];
                        let want = match w.data() {
                            WeightData::Q4_0(d) => {
                                scalar::dot_q4_0_q8_0(&d[j * k / 32..(j + 1) * k / 32], a)
                            }
                            WeightData::Q8_0(d) => {
                                scalar::dot_q8_0_q8_0(&d[j * k / 32..(j + 1) * k / 32], a)
                            }
                            _ => unreachable!(),
                        };
                        let g = got[i * 3 + j];
                        assert!(
                            (g - want).abs() <= 1e-4 * (1.0 + want.abs()),
                            "{isa} {} m{m} [{i},{j}]: {g} vs {want}",
                            w.ty()
                        );
                    }
                }
            }
        }
    }
}
