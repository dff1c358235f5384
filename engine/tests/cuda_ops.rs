//! GPU vs CPU, op by op, with llama.cpp test-backend-ops' NMSE budgets: about 1e-7 for the
//! element-wise ops and GET_ROWS, 5e-4 for matmuls and attention. Runs where a CUDA device is
//! present (with NVRTC); elsewhere each test prints `skipped: no CUDA device (<reason>)`.
#![cfg(feature = "cuda")]

mod cuda_common;

use cuda_common::{device_or_skip, nmse};
use half::f16;
use tessera_engine::KvType;
use tessera_engine::model::{Store, Weight};
use tessera_kernels::cpu::scalar;
use tessera_kernels::cuda::ops::AttnDims;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
use tessera_kernels::{GgmlType, WeightData, WeightMat};

const ELEMWISE: f64 = 1e-7;
const MATMUL: f64 = 5e-4;

struct Lcg(u64);
impl Lcg {
    fn f(&mut self) -> f32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
}

fn weight(ty: GgmlType, n: usize, k: usize, seed: u64) -> Weight {
    let x = Lcg(seed).vec(n * k);
    let store = match ty {
        GgmlType::F32 => Store::F32(x),
        GgmlType::F16 => Store::F16(x.iter().map(|&v| f16::from_f32(v)).collect()),
        GgmlType::Q8_0 => {
            let mut b = vec![BlockQ8_0::default(); n * k / 32];
            q8_0::quantize_row(&x, &mut b);
            Store::Q8_0(b)
        }
        GgmlType::Q4_0 => {
            let mut b = vec![BlockQ4_0::default(); n * k / 32];
            q4_0::quantize_row(&x, &mut b);
            Store::Q4_0(b)
        }
        t => panic!("no GPU type {t}"),
    };
    Weight {
        name: format!("w-{}", ty.name()),
        store,
        n,
        k,
    }
}

fn mat(w: &Weight) -> WeightMat<'_> {
    let d = match &w.store {
        Store::F32(v) => WeightData::F32(v),
        Store::F16(v) => WeightData::F16(v),
        Store::Q8_0(v) => WeightData::Q8_0(v),
        Store::Q4_0(v) => WeightData::Q4_0(v),
        Store::Packed(p) => p.data(),
    };
    WeightMat::new(d, w.n, w.k).unwrap()
}

const TYPES: [GgmlType; 4] = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0];

#[test]
fn get_rows_matches_cpu() {
    let Some(dev) = device_or_skip("get_rows_matches_cpu") else {
        return;
    };
    for ty in TYPES {
        let w = weight(ty, 300, 96, 1);
        let ids = [0u32, 299, 5, 5, 150, 1];
        let got = dev.get_rows(&w, &ids).unwrap();
        let mut want = vec![0.0f32; ids.len() * w.k];
        for (i, &id) in ids.iter().enumerate() {
            mat(&w)
                .get_row(id as usize, &mut want[i * w.k..(i + 1) * w.k])
                .unwrap();
        }
        let e = nmse(&got, &want);
        assert!(e <= ELEMWISE, "GET_ROWS {ty}: nmse {e:.3e}");
        // An id out of range is refused on the host, before any launch.
        let err = dev.get_rows(&w, &[0, 300]).unwrap_err().to_string();
        assert!(
            err.starts_with("GET_ROWS failed:") && err.contains("id 300"),
            "{err}"
        );
    }
}

#[test]
fn mul_mat_matches_reference() {
    let Some(dev) = device_or_skip("mul_mat_matches_reference") else {
        return;
    };
    for ty in TYPES {
        let (n, k) = (70, 256);
        let w = weight(ty, n, k, 2);
        let mut rows = vec![0.0f32; n * k];
        for r in 0..n {
            mat(&w).get_row(r, &mut rows[r * k..(r + 1) * k]).unwrap();
        }
        // GEMV (1 token), a partial token tile (5), and several tiles (19).
        for m in [1usize, 5, 19] {
            let x = Lcg(3 + m as u64).vec(m * k);
            let got = dev.mul_mat(&w, &x, m).unwrap();
            let mut want = vec![0.0f32; m * n];
            for t in 0..m {
                for j in 0..n {
                    let s: f64 = (0..k)
                        .map(|i| f64::from(rows[j * k + i]) * f64::from(x[t * k + i]))
                        .sum();
                    want[t * n + j] = s as f32;
                }
            }
            let e = nmse(&got, &want);
            assert!(e <= MATMUL, "MUL_MAT {ty} m={m}: nmse {e:.3e}");
        }
    }
}

#[test]
fn row_and_elementwise_ops_match_cpu() {
    let Some(dev) = device_or_skip("row_and_elementwise_ops_match_cpu") else {
        return;
    };
    let mut g = Lcg(9);
    let (rows, cols) = (7, 320);
    let x = g.vec(rows * cols);
    let w = g.vec(cols);
    let got = dev.rms_norm(&x, &w, 1e-5).unwrap();
    let mut want = vec![0.0f32; rows * cols];
    for r in 0..rows {
        scalar::rms_norm(
            &x[r * cols..(r + 1) * cols],
            &w,
            1e-5,
            &mut want[r * cols..(r + 1) * cols],
        );
    }
    assert!(
        nmse(&got, &want) <= ELEMWISE,
        "RMS_NORM {:.3e}",
        nmse(&got, &want)
    );

    let (tokens, heads, hd, n_rot, pos0) = (5, 4, 64, 64, 37);
    let theta: Vec<f32> = (0..n_rot / 2)
        .map(|i| 10000f32.powf(-2.0 * i as f32 / n_rot as f32))
        .collect();
    let q = g.vec(tokens * heads * hd);
    let got = dev
        .rope(&q, &theta, tokens, heads, hd, n_rot, pos0)
        .unwrap();
    let mut want = q.clone();
    for t in 0..tokens {
        for h in 0..heads {
            let at = t * heads * hd + h * hd;
            scalar::rope_normal(&mut want[at..at + n_rot], pos0 + t, &theta);
        }
    }
    assert!(
        nmse(&got, &want) <= ELEMWISE,
        "ROPE {:.3e}",
        nmse(&got, &want)
    );

    let (a, b) = (g.vec(1000), g.vec(1000));
    let got = dev.swiglu(&a, &b).unwrap();
    let mut want = a.clone();
    scalar::swiglu(&mut want, &b);
    assert!(
        nmse(&got, &want) <= ELEMWISE,
        "GLU {:.3e}",
        nmse(&got, &want)
    );
    let got = dev.add(&a, &b).unwrap();
    let want: Vec<f32> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert!(
        nmse(&got, &want) <= ELEMWISE,
        "ADD {:.3e}",
        nmse(&got, &want)
    );
}

#[test]
fn attention_matches_reference() {
    let Some(dev) = device_or_skip("attention_matches_reference") else {
        return;
    };
    let (tokens, n_head, n_head_kv, hd, pos0) = (6, 8, 2, 32, 10);
    let n_ctx = pos0 + tokens + 3;
    let n_kv = pos0 + tokens;
    let kvw = n_head_kv * hd;
    let mut g = Lcg(11);
    let q = g.vec(tokens * n_head * hd);
    let k = g.vec(n_kv * kvw);
    let v = g.vec(n_kv * kvw);
    for kv in [KvType::F32, KvType::F16] {
        let round = |x: &[f32]| -> Vec<f32> {
            match kv {
                KvType::F16 => x.iter().map(|&v| f16::from_f32(v).to_f32()).collect(),
                KvType::F32 => x.to_vec(),
            }
        };
        let (kr, vr) = (round(&k), round(&v));
        let dims = AttnDims {
            tokens,
            n_head,
            n_head_kv,
            head_dim: hd,
            pos0,
            n_ctx,
        };
        let got = dev.attention(&q, &k, &v, kv, dims).unwrap();
        let mut want = vec![0.0f32; q.len()];
        let scale = 1.0 / (hd as f64).sqrt();
        for t in 0..tokens {
            for h in 0..n_head {
                let kvh = h / (n_head / n_head_kv);
                let qh = &q[(t * n_head + h) * hd..(t * n_head + h + 1) * hd];
                let upto = pos0 + t + 1; // causal
                let s: Vec<f64> = (0..upto)
                    .map(|p| {
                        scale
                            * (0..hd)
                                .map(|d| f64::from(qh[d]) * f64::from(kr[p * kvw + kvh * hd + d]))
                                .sum::<f64>()
                    })
                    .collect();
                let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = s.iter().map(|x| (x - mx).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..hd {
                    let o: f64 = (0..upto)
                        .map(|p| e[p] / z * f64::from(vr[p * kvw + kvh * hd + d]))
                        .sum();
                    want[(t * n_head + h) * hd + d] = o as f32;
                }
            }
        }
        let err = nmse(&got, &want);
        assert!(err <= MATMUL, "FLASH_ATTN_EXT kv {kv}: nmse {err:.3e}");
    }
}
