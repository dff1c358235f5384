//! Byte-level GGUF building for tests: files written field by field, independent of
//! `GgufWriter`, so the reader is checked against the format rather than against our own
//! writer, and so broken files can be built on purpose.
#![allow(dead_code)]

pub const F32: u32 = 0;
pub const F16: u32 = 1;
pub const Q4_0: u32 = 2;
pub const Q8_0: u32 = 8;

pub const T_U32: u32 = 4;
pub const T_STRING: u32 = 8;
pub const T_ARRAY: u32 = 9;
pub const T_U64: u32 = 10;

#[derive(Default, Clone)]
pub struct Raw {
    pub buf: Vec<u8>,
}

impl Raw {
    /// Magic, version and the two counts.
    pub fn header(version: u32, n_tensors: u64, n_kv: u64) -> Raw {
        let mut r = Raw::default();
        r.buf.extend_from_slice(b"GGUF");
        r.u32(version).u64(n_tensors).u64(n_kv);
        r
    }

    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn f32(&mut self, v: f32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }

    pub fn kv_u32(&mut self, key: &str, v: u32) -> &mut Self {
        self.str(key).u32(T_U32).u32(v)
    }

    pub fn kv_str(&mut self, key: &str, v: &str) -> &mut Self {
        self.str(key).u32(T_STRING).str(v)
    }

    pub fn tensor(&mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> &mut Self {
        self.str(name).u32(dims.len() as u32);
        for &d in dims {
            self.u64(d);
        }
        self.u32(ty).u64(offset)
    }

    pub fn pad(&mut self, align: usize) -> &mut Self {
        while !self.buf.len().is_multiple_of(align) {
            self.buf.push(0);
        }
        self
    }

    /// `n` bytes counting up from `start`, as recognisable tensor data.
    pub fn data(&mut self, n: usize, start: u8) -> &mut Self {
        for i in 0..n {
            self.buf.push(start.wrapping_add(i as u8));
        }
        self
    }

    pub fn done(&self) -> Vec<u8> {
        self.buf.clone()
    }
}

/// A small valid v3 file: two keys, an f32 [8, 2] tensor (64 bytes) at 0 and a q4_0
/// [32, 2] tensor (36 bytes) at 64.
pub fn small_file() -> Vec<u8> {
    let mut r = Raw::header(3, 2, 2);
    r.kv_str("general.architecture", "llama")
        .kv_u32("llama.block_count", 2);
    r.tensor("a", &[8, 2], F32, 0)
        .tensor("b", &[32, 2], Q4_0, 64);
    r.pad(32).data(64, 0).data(36, 100);
    r.done()
}

/// The tensors of a llama model as llama.cpp names and shapes them (ggml dims, `ne[0]`
/// first), written out independently of the synth module: 2-D weights in `ty`, norms f32.
pub fn llama_tensors(
    vocab: u64,
    embd: u64,
    layers: u64,
    kv_dim: u64,
    ff: u64,
    ty: tessera_kernels::GgmlType,
    tied: bool,
) -> Vec<(String, Vec<u64>, tessera_kernels::GgmlType)> {
    use tessera_kernels::GgmlType::F32 as NORM;
    let mut t = vec![("token_embd.weight".to_string(), vec![embd, vocab], ty)];
    for l in 0..layers {
        t.push((format!("blk.{l}.attn_norm.weight"), vec![embd], NORM));
        t.push((format!("blk.{l}.attn_q.weight"), vec![embd, embd], ty));
        t.push((format!("blk.{l}.attn_k.weight"), vec![embd, kv_dim], ty));
        t.push((format!("blk.{l}.attn_v.weight"), vec![embd, kv_dim], ty));
        t.push((format!("blk.{l}.attn_output.weight"), vec![embd, embd], ty));
        t.push((format!("blk.{l}.ffn_norm.weight"), vec![embd], NORM));
        t.push((format!("blk.{l}.ffn_gate.weight"), vec![embd, ff], ty));
        t.push((format!("blk.{l}.ffn_up.weight"), vec![embd, ff], ty));
        t.push((format!("blk.{l}.ffn_down.weight"), vec![ff, embd], ty));
    }
    t.push(("output_norm.weight".to_string(), vec![embd], NORM));
    if !tied {
        t.push(("output.weight".to_string(), vec![embd, vocab], ty));
    }
    t
}

/// Every value of a tensor as f32, decoding the four types tessera computes with.
pub fn decode(ty: tessera_kernels::GgmlType, bytes: &[u8]) -> Vec<f32> {
    use tessera_kernels::GgmlType;
    use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, q4_0, q8_0};
    match ty {
        GgmlType::F32 => bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        GgmlType::F16 => bytes
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        GgmlType::Q8_0 => {
            let blocks: Vec<BlockQ8_0> = bytes
                .chunks_exact(34)
                .map(bytemuck::pod_read_unaligned)
                .collect();
            let mut out = vec![0.0; blocks.len() * 32];
            q8_0::dequantize_row(&blocks, &mut out);
            out
        }
        GgmlType::Q4_0 => {
            let blocks: Vec<BlockQ4_0> = bytes
                .chunks_exact(18)
                .map(bytemuck::pod_read_unaligned)
                .collect();
            let mut out = vec![0.0; blocks.len() * 32];
            q4_0::dequantize_row(&blocks, &mut out);
            out
        }
        other => panic!("decode: {other} not handled"),
    }
}

/// Mean and standard deviation.
pub fn moments(xs: &[f32]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().map(|&x| f64::from(x)).sum::<f64>() / n;
    let var = xs
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / (n - 1.0);
    (mean, var.sqrt())
}
