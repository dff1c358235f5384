//! An independent reference forward pass for llama models: f64, plain loops, full causal
//! recomputation at every position. It shares nothing with the engine but the GGUF reader:
//! its own dequantization (from the byte layouts in FACTS.md), norm, RoPE, attention, FFN.

// Plain index loops are the point of a reference written to be read.
#![allow(clippy::needless_range_loop)]

use tessera_engine::gguf::GgufFile;

fn f16_to_f64(bits: u16) -> f64 {
    let sign = if bits >> 15 == 1 { -1.0 } else { 1.0 };
    let exp = ((bits >> 10) & 0x1f) as i32;
    let frac = (bits & 0x3ff) as f64;
    match exp {
        0 => sign * frac * 2f64.powi(-24),
        31 => {
            if frac == 0.0 {
                sign * f64::INFINITY
            } else {
                f64::NAN
            }
        }
        _ => sign * (1.0 + frac / 1024.0) * 2f64.powi(exp - 15),
    }
}

/// All values of a tensor as f64, row-major over ggml's ne order (ne0 fastest).
pub fn dequant(f: &GgufFile, name: &str) -> (Vec<f64>, Vec<usize>) {
    let t = f
        .tensor(name)
        .unwrap_or_else(|| panic!("tensor {name} missing"));
    let b = f.tensor_data(t);
    let dims: Vec<usize> = t.dims.iter().map(|&d| d as usize).collect();
    let n: usize = dims.iter().product();
    let u16le = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
    let mut out = Vec::with_capacity(n);
    match t.ty.id() {
        0 => {
            for i in 0..n {
                out.push(f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()) as f64);
            }
        }
        1 => {
            for i in 0..n {
                out.push(f16_to_f64(u16le(2 * i)));
            }
        }
        2 => {
            // Q4_0: {f16 d; u8 qs[16]}, low nibbles are elements 0..16, high 16..32.
            for blk in 0..n / 32 {
                let o = blk * 18;
                let d = f16_to_f64(u16le(o));
                let mut vals = [0.0; 32];
                for j in 0..16 {
                    let q = b[o + 2 + j];
                    vals[j] = d * ((q & 15) as f64 - 8.0);
                    vals[j + 16] = d * ((q >> 4) as f64 - 8.0);
                }
                out.extend_from_slice(&vals);
            }
        }
        8 => {
            // Q8_0: {f16 d; i8 qs[32]}.
            for blk in 0..n / 32 {
                let o = blk * 34;
                let d = f16_to_f64(u16le(o));
                for j in 0..32 {
                    out.push(d * (b[o + 2 + j] as i8) as f64);
                }
            }
        }
        id => panic!("reference cannot dequantize type id {id}"),
    }
    assert_eq!(out.len(), n);
    (out, dims)
}

fn key_u(f: &GgufFile, k: &str) -> usize {
    f.get(k)
        .and_then(|v| v.as_u64())
        .unwrap_or_else(|| panic!("key {k}")) as usize
}

pub struct RefModel {
    n_vocab: usize,
    n_embd: usize,
    n_head: usize,
    n_head_kv: usize,
    n_rot: usize,
    base: f64,
    eps: f64,
    embd: Vec<f64>,
    layers: Vec<[Vec<f64>; 9]>,
    out_norm: Vec<f64>,
    output: Vec<f64>,
}

impl RefModel {
    pub fn load(f: &GgufFile) -> RefModel {
        let n_embd = key_u(f, "llama.embedding_length");
        let n_head = key_u(f, "llama.attention.head_count");
        let n_layer = key_u(f, "llama.block_count");
        let (embd, dims) = dequant(f, "token_embd.weight");
        let names = [
            "attn_norm",
            "attn_q",
            "attn_k",
            "attn_v",
            "attn_output",
            "ffn_norm",
            "ffn_gate",
            "ffn_up",
            "ffn_down",
        ];
        let layers = (0..n_layer)
            .map(|l| names.map(|n| dequant(f, &format!("blk.{l}.{n}.weight")).0))
            .collect();
        let output = if f.tensor("output.weight").is_some() {
            dequant(f, "output.weight").0
        } else {
            embd.clone()
        };
        RefModel {
            n_vocab: dims[1],
            n_embd,
            n_head,
            n_head_kv: key_u(f, "llama.attention.head_count_kv"),
            n_rot: key_u(f, "llama.rope.dimension_count"),
            base: f
                .get("llama.rope.freq_base")
                .and_then(|v| v.as_f32())
                .unwrap_or(10000.0) as f64,
            eps: f
                .get("llama.attention.layer_norm_rms_epsilon")
                .and_then(|v| v.as_f32())
                .unwrap() as f64,
            embd,
            layers,
            out_norm: dequant(f, "output_norm.weight").0,
            output,
        }
    }

    /// Logits at every position of `tokens`.
    pub fn forward(&self, tokens: &[u32]) -> Vec<Vec<f64>> {
        let e = self.n_embd;
        let hd = e / self.n_head;
        let kvw = self.n_head_kv * hd;
        let t_len = tokens.len();
        let mut x: Vec<Vec<f64>> = tokens
            .iter()
            .map(|&t| self.embd[t as usize * e..(t as usize + 1) * e].to_vec())
            .collect();
        for w in &self.layers {
            let [attn_norm, wq, wk, wv, wo, ffn_norm, wg, wu, wd] = w;
            let xn: Vec<Vec<f64>> = x.iter().map(|r| rmsnorm(r, attn_norm, self.eps)).collect();
            let mut q: Vec<Vec<f64>> = xn.iter().map(|r| matvec(wq, r, e)).collect();
            let mut k: Vec<Vec<f64>> = xn.iter().map(|r| matvec(wk, r, kvw)).collect();
            let v: Vec<Vec<f64>> = xn.iter().map(|r| matvec(wv, r, kvw)).collect();
            for p in 0..t_len {
                for h in 0..self.n_head {
                    self.rope(&mut q[p][h * hd..(h + 1) * hd], p);
                }
                for h in 0..self.n_head_kv {
                    self.rope(&mut k[p][h * hd..(h + 1) * hd], p);
                }
            }
            let group = self.n_head / self.n_head_kv;
            for p in 0..t_len {
                let mut att = vec![0.0; e];
                for h in 0..self.n_head {
                    let kh = h / group;
                    let qh = &q[p][h * hd..(h + 1) * hd];
                    let mut s: Vec<f64> = (0..=p)
                        .map(|t| {
                            qh.iter()
                                .zip(&k[t][kh * hd..(kh + 1) * hd])
                                .map(|(a, b)| a * b)
                                .sum::<f64>()
                                / (hd as f64).sqrt()
                        })
                        .collect();
                    let mx = s.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = s
                        .iter_mut()
                        .map(|v| {
                            *v = (*v - mx).exp();
                            *v
                        })
                        .sum();
                    for (t, sv) in s.iter().enumerate() {
                        for d in 0..hd {
                            att[h * hd + d] += sv / z * v[t][kh * hd + d];
                        }
                    }
                }
                let o = matvec(wo, &att, e);
                for d in 0..e {
                    x[p][d] += o[d];
                }
            }
            let ff = wg.len() / e;
            for p in 0..t_len {
                let xn = rmsnorm(&x[p], ffn_norm, self.eps);
                let g = matvec(wg, &xn, ff);
                let u = matvec(wu, &xn, ff);
                let hsw: Vec<f64> = g
                    .iter()
                    .zip(&u)
                    .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
                    .collect();
                let dn = matvec(wd, &hsw, e);
                for d in 0..e {
                    x[p][d] += dn[d];
                }
            }
        }
        x.iter()
            .map(|r| {
                matvec(
                    &self.output,
                    &rmsnorm(r, &self.out_norm, self.eps),
                    self.n_vocab,
                )
            })
            .collect()
    }

    fn rope(&self, x: &mut [f64], pos: usize) {
        for i in 0..self.n_rot / 2 {
            let ang = pos as f64 * self.base.powf(-2.0 * i as f64 / self.n_rot as f64);
            let (a, b) = (x[2 * i], x[2 * i + 1]);
            x[2 * i] = a * ang.cos() - b * ang.sin();
            x[2 * i + 1] = a * ang.sin() + b * ang.cos();
        }
    }
}

fn rmsnorm(x: &[f64], w: &[f64], eps: f64) -> Vec<f64> {
    let ms = x.iter().map(|v| v * v).sum::<f64>() / x.len() as f64;
    let s = 1.0 / (ms + eps).sqrt();
    x.iter().zip(w).map(|(v, g)| v * s * g).collect()
}

/// `w` has `n` rows of `x.len()`.
fn matvec(w: &[f64], x: &[f64], n: usize) -> Vec<f64> {
    let k = x.len();
    assert_eq!(w.len(), n * k);
    (0..n)
        .map(|r| {
            w[r * k..(r + 1) * k]
                .iter()
                .zip(x)
                .map(|(a, b)| a * b)
                .sum()
        })
        .collect()
}

/// Largest absolute difference over the largest reference magnitude.
pub fn rel_err(got: &[f32], want: &[f64]) -> f64 {
    let scale = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let diff = got
        .iter()
        .zip(want)
        .fold(0.0f64, |m, (g, w)| m.max((*g as f64 - w).abs()));
    diff / scale
}
