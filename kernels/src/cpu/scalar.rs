//! Scalar kernels: the reference every other ISA is tested against. Plain loops, written for
//! clarity; the fast ISAs keep the same function names in their own files.

use std::ops::Range;

use half::f16;

use crate::matrix::{Acts, OutMat, WeightData, WeightMat};
use crate::quant::{BlockQ4_0, BlockQ8_0, QK};
use crate::tile::TileConfig;

/// Largest tile side the scalar kernel keeps accumulators for.
pub const MAX_TILE: usize = 8;

/// `sum_b d_w*d_a * sum_j (q_w[j]-8) * q_a[j]` in integers per block, as llama.cpp does.
pub fn dot_q4_0_q8_0(w: &[BlockQ4_0], a: &[BlockQ8_0]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let mut sum = 0.0f32;
    for (bw, ba) in w.iter().zip(a) {
        // Widening both sides to i16 first lets the compiler use 16-bit multiply-adds
        // (SSE2 pmaddwd) even for the baseline target: ~5x faster than byte-wise code,
        // same integers.
        let mut wq = [0i16; QK];
        for j in 0..QK / 2 {
            wq[j] = i16::from(bw.qs[j] & 15) - 8;
            wq[j + QK / 2] = i16::from(bw.qs[j] >> 4) - 8;
        }
        sum += bw.d.to_f32() * ba.d.to_f32() * isum_i16(&wq, &ba.qs) as f32;
    }
    sum
}

pub fn dot_q8_0_q8_0(w: &[BlockQ8_0], a: &[BlockQ8_0]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    let mut sum = 0.0f32;
    for (bw, ba) in w.iter().zip(a) {
        let wq: [i16; QK] = std::array::from_fn(|j| i16::from(bw.qs[j]));
        sum += bw.d.to_f32() * ba.d.to_f32() * isum_i16(&wq, &ba.qs) as f32;
    }
    sum
}

#[inline(always)]
fn isum_i16(w: &[i16; QK], a: &[i8; QK]) -> i32 {
    let mut acc = 0i32;
    for j in 0..QK {
        acc += i32::from(w[j]) * i32::from(i16::from(a[j]));
    }
    acc
}

/// F16 × F16 products accumulated in f32.
pub fn dot_f16(w: &[f16], a: &[f16]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    w.iter().zip(a).map(|(x, y)| x.to_f32() * y.to_f32()).sum()
}

pub fn dot_f32(w: &[f32], a: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), a.len());
    w.iter().zip(a).map(|(x, y)| x * y).sum()
}

/// Dot of an f32 query with an f16 key (attention over an f16 KV cache).
pub fn dot_f32_f16(a: &[f32], b: &[f16]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| x * y.to_f32()).sum()
}

/// `y += alpha * x`.
pub fn axpy_f32(y: &mut [f32], alpha: f32, x: &[f32]) {
    for (o, v) in y.iter_mut().zip(x) {
        *o += alpha * v;
    }
}

/// `y += alpha * x` with x in f16.
pub fn axpy_f16(y: &mut [f32], alpha: f32, x: &[f16]) {
    for (o, v) in y.iter_mut().zip(x) {
        *o += alpha * v.to_f32();
    }
}

/// Attention scores of one query head against `out.len()` cached keys: key `t` is
/// `k[t * stride..t * stride + q.len()]`, `out[t] = scale * q · key t`.
pub fn attn_scores_f16(q: &[f32], k: &[f16], stride: usize, scale: f32, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = scale * dot_f32_f16(q, &k[t * stride..t * stride + q.len()]);
    }
}

/// As [`attn_scores_f16`] over an f32 cache.
pub fn attn_scores_f32(q: &[f32], k: &[f32], stride: usize, scale: f32, out: &mut [f32]) {
    for (t, o) in out.iter_mut().enumerate() {
        *o = scale * dot_f32(q, &k[t * stride..t * stride + q.len()]);
    }
}

/// `out = Σ_t p[t] · value t`, value `t` being `v[t * stride..t * stride + out.len()]`.
pub fn attn_values_f16(p: &[f32], v: &[f16], stride: usize, out: &mut [f32]) {
    out.fill(0.0);
    let hd = out.len();
    for (t, &w) in p.iter().enumerate() {
        axpy_f16(out, w, &v[t * stride..t * stride + hd]);
    }
}

/// As [`attn_values_f16`] over an f32 cache.
pub fn attn_values_f32(p: &[f32], v: &[f32], stride: usize, out: &mut [f32]) {
    out.fill(0.0);
    let hd = out.len();
    for (t, &w) in p.iter().enumerate() {
        axpy_f32(out, w, &v[t * stride..t * stride + hd]);
    }
}

/// `out = x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let ss: f32 = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
    let scale = 1.0 / (ss + eps).sqrt();
    for ((o, v), g) in out.iter_mut().zip(x).zip(w) {
        *o = v * scale * g;
    }
}

/// RoPE "normal" mode on one head: rotates adjacent pairs `(x[2i], x[2i+1])` by
/// `pos * theta[i]`, where `theta[i] = base^(-2i/n_rot)` is precomputed by the caller.
pub fn rope_normal(x: &mut [f32], pos: usize, theta: &[f32]) {
    for (i, &t) in theta.iter().enumerate() {
        let (s, c) = (pos as f32 * t).sin_cos();
        let (a, b) = (x[2 * i], x[2 * i + 1]);
        x[2 * i] = a * c - b * s;
        x[2 * i + 1] = a * s + b * c;
    }
}

/// In-place softmax.
pub fn softmax(x: &mut [f32]) {
    let max = x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `gate = silu(gate) * up`.
pub fn swiglu(gate: &mut [f32], up: &[f32]) {
    for (g, u) in gate.iter_mut().zip(up) {
        *g = *g / (1.0 + (-*g).exp()) * u;
    }
}

/// Tiled matmul over output columns `cols`: `out[i][j] = dot(w row j, act row i)`.
///
/// # Safety
/// No other thread may write `out` in the columns `cols` concurrently; `acts` holds
/// `out.m()` rows of `w.k()` elements in the form `w.act_kind()`; `cols.end <= w.n()`.
pub unsafe fn matmul(
    w: &WeightMat,
    acts: Acts,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
) {
    match (w.data(), acts) {
        (WeightData::F32(wd), Acts::F32(ad)) => unsafe {
            tiled(wd, ad, w.k(), 1, out, cols, tile, dot_f32)
        },
        (WeightData::F16(wd), Acts::F16(ad)) => unsafe {
            tiled(wd, ad, w.k(), 1, out, cols, tile, dot_f16)
        },
        (WeightData::Q8_0(wd), Acts::Q8_0(ad)) => unsafe {
            tiled(wd, ad, w.k(), QK, out, cols, tile, dot_q8_0_q8_0)
        },
        (WeightData::Q4_0(wd), Acts::Q8_0(ad)) => unsafe {
            tiled(wd, ad, w.k(), QK, out, cols, tile, dot_q4_0_q8_0)
        },
        (WeightData::Q4_0x8(wd), Acts::Q8_0(ad)) => unsafe {
            matmul_q4_0x8(wd, ad, w.k(), out, cols)
        },
        (WeightData::X16(p), Acts::Q8_0(ad)) => unsafe { matmul_x16(p, ad, out, cols) },
        (wd, _) => panic!("activations do not match {} weights", wd.ty()),
    }
}

/// The repacked Q4_0 layout, one output at a time: each row's blocks are unpacked back to
/// Q4_0 and dotted as [`dot_q4_0_q8_0`] does, block by block in order.
///
/// # Safety
/// As for [`matmul`].
unsafe fn matmul_q4_0x8(
    w: &[crate::matrix::BlockQ4_0x8],
    a: &[BlockQ8_0],
    k: usize,
    out: &OutMat,
    cols: Range<usize>,
) {
    let nb = k / QK;
    for i in 0..out.m() {
        let ar = &a[i * nb..(i + 1) * nb];
        for j in cols.clone() {
            let g = &w[j / 8 * nb..(j / 8 + 1) * nb];
            let mut sum = 0.0f32;
            for (bw, ba) in g.iter().zip(ar) {
                sum += dot_q4_0_q8_0(&[bw.row(j % 8)], std::slice::from_ref(ba));
            }
            // SAFETY: i < m, j < cols.end <= n; the column range is ours alone.
            unsafe { out.write(i, j, sum) };
        }
    }
}

/// The x16 layout, one output at a time: each row's blocks are read back in the plain
/// layout and dotted as [`dot_q4_0_q8_0`] / [`dot_q8_0_q8_0`] do, block by block in order.
///
/// # Safety
/// As for [`matmul`].
unsafe fn matmul_x16(
    w: &crate::quant::Packed16,
    a: &[BlockQ8_0],
    out: &OutMat,
    cols: Range<usize>,
) {
    let nb = w.nb();
    let q4 = w.ty() == crate::quant::GgmlType::Q4_0;
    for i in 0..out.m() {
        let ar = &a[i * nb..(i + 1) * nb];
        for j in cols.clone() {
            let mut sum = 0.0f32;
            for (b, ba) in ar.iter().enumerate() {
                let ba = std::slice::from_ref(ba);
                sum += if q4 {
                    dot_q4_0_q8_0(&[w.q4_block(j, b)], ba)
                } else {
                    dot_q8_0_q8_0(&[w.q8_block(j, b)], ba)
                };
            }
            // SAFETY: i < m, j < cols.end <= n; the column range is ours alone.
            unsafe { out.write(i, j, sum) };
        }
    }
}

/// The scalar loop nest: for each `tile.n` weight rows and `tile.m` tokens, accumulate the
/// dot products `tile.k` elements at a time. `per` is the number of elements per item.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn tiled<W, A, D: Fn(&[W], &[A]) -> f32>(
    w: &[W],
    a: &[A],
    k: usize,
    per: usize,
    out: &OutMat,
    cols: Range<usize>,
    tile: TileConfig,
    dot: D,
) {
    let row = k / per; // items per row
    let k_step = (tile.k / per).clamp(1, row.max(1));
    let (tm, tn) = (tile.m.min(MAX_TILE), tile.n.min(MAX_TILE));
    let m = out.m();
    let mut n0 = cols.start;
    while n0 < cols.end {
        let n1 = (n0 + tn).min(cols.end);
        let mut m0 = 0;
        while m0 < m {
            let m1 = (m0 + tm).min(m);
            let mut acc = [[0.0f32; MAX_TILE]; MAX_TILE];
            let mut kb = 0;
            while kb < row {
                let ke = (kb + k_step).min(row);
                for (i, acc_i) in (m0..m1).zip(acc.iter_mut()) {
                    let ar = &a[i * row + kb..i * row + ke];
                    for (j, acc_ij) in (n0..n1).zip(acc_i.iter_mut()) {
                        *acc_ij += dot(&w[j * row + kb..j * row + ke], ar);
                    }
                }
                kb = ke;
            }
            for (i, acc_i) in (m0..m1).zip(acc.iter()) {
                for (j, &v) in (n0..n1).zip(acc_i.iter()) {
                    // SAFETY: i < m, j < cols.end <= n; the column range is ours alone.
                    unsafe { out.write(i, j, v) };
                }
            }
            m0 = m1;
        }
        n0 = n1;
    }
}
