//! A llama-architecture model loaded from GGUF: hyperparameters from the metadata, every
//! tensor checked against the shape those imply, weights copied out of the memory map into
//! owned, typed buffers (the place where NUMA placement and repacking will apply).

use std::path::Path;

use half::f16;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0};
use tessera_kernels::{GgmlType, WeightData, WeightMat};

use crate::error::{EngineError, Result};
use crate::gguf::{GgufFile, TensorInfo};

/// Hyperparameters of a llama model.
#[derive(Clone, Debug, PartialEq)]
pub struct Hparams {
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_rot: usize,
    pub n_ctx_train: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
}

impl Hparams {
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }
    /// Width of K and V rows: `n_head_kv * head_dim`.
    pub fn n_embd_kv(&self) -> usize {
        self.n_head_kv * self.head_dim()
    }
}

/// Owned weight storage of one tensor.
#[derive(Debug)]
pub enum Store {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Q8_0(Vec<BlockQ8_0>),
    Q4_0(Vec<BlockQ4_0>),
    /// Repacked for a kernel table ([`Model::repack_for`]); replaces the original.
    Packed(tessera_kernels::matrix::Packed),
}

/// A 2-D weight: `n` rows of `k`.
#[derive(Debug)]
pub struct Weight {
    pub name: String,
    pub store: Store,
    pub n: usize,
    pub k: usize,
}

impl Weight {
    pub fn ty(&self) -> GgmlType {
        match self.store {
            Store::F32(_) => GgmlType::F32,
            Store::F16(_) => GgmlType::F16,
            Store::Q8_0(_) => GgmlType::Q8_0,
            Store::Q4_0(_) => GgmlType::Q4_0,
            Store::Packed(ref p) => p.ty(),
        }
    }

    /// The weight in `layout` (`None`: the plain layout), in place: a repacked copy replaces
    /// the original buffer, which is freed, so the weight stays resident once. Weights with
    /// no form in `layout` stay as they are.
    pub fn relayout(&mut self, layout: Option<tessera_kernels::matrix::Layout>) {
        use tessera_kernels::matrix::{Packed, PlainQuant};
        if let Store::Packed(p) = &self.store {
            if Some(p.layout()) == layout {
                return;
            }
            self.store = match p.to_plain(self.n, self.k) {
                PlainQuant::Q4_0(v) => Store::Q4_0(v),
                PlainQuant::Q8_0(v) => Store::Q8_0(v),
            };
        }
        if let Some(l) = layout
            && let Some(p) = Packed::new(&self.mat(), l)
        {
            self.store = Store::Packed(p);
        }
    }

    fn try_mat(&self) -> Result<WeightMat<'_>, tessera_kernels::matrix::ShapeError> {
        let data = match &self.store {
            Store::F32(v) => WeightData::F32(v),
            Store::F16(v) => WeightData::F16(v),
            Store::Q8_0(v) => WeightData::Q8_0(v),
            Store::Q4_0(v) => WeightData::Q4_0(v),
            Store::Packed(p) => p.data(),
        };
        WeightMat::new(data, self.n, self.k)
    }

    pub fn mat(&self) -> WeightMat<'_> {
        self.try_mat().expect("weight shape was validated at load")
    }
}

#[derive(Debug)]
pub struct Layer {
    pub attn_norm: Vec<f32>,
    pub wq: Weight,
    pub wk: Weight,
    pub wv: Weight,
    pub wo: Weight,
    pub ffn_norm: Vec<f32>,
    pub w_gate: Weight,
    pub w_up: Weight,
    pub w_down: Weight,
}

#[derive(Debug)]
pub struct Model {
    pub hp: Hparams,
    pub tok_embd: Weight,
    pub layers: Vec<Layer>,
    pub output_norm: Vec<f32>,
    /// `None`: the output head is tied to `tok_embd`.
    pub output: Option<Weight>,
    /// Bytes of tensor data in the file (llama-bench's `model_size`).
    pub size_bytes: u64,
    /// Elements of all tensors (llama-bench's `model_n_params`).
    pub n_params: u64,
    /// The dominant weight type, from `general.file_type` or the Q projection.
    pub ftype: String,
    pub name: String,
}

impl Model {
    /// Opens, checks and copies the model at `path`. Errors name the file once: those of
    /// opening it already do, the others are prefixed with it.
    pub fn load(path: &Path) -> Result<Model> {
        let in_file = |e: EngineError| EngineError::InFile {
            path: path.to_path_buf(),
            error: Box::new(e),
        };
        let file = GgufFile::open(path).map_err(|e| {
            if e.names_path() {
                e.into()
            } else {
                in_file(e.into())
            }
        })?;
        Model::from_gguf(&file).map_err(in_file)
    }

    pub fn from_gguf(f: &GgufFile) -> Result<Model> {
        let arch = f.get_str("general.architecture")?;
        if arch != "llama" {
            return Err(EngineError::Architecture(arch.to_string()));
        }
        let tok = tensor(f, "token_embd.weight")?;
        let n_embd = usize_key(f, "llama.embedding_length")?;
        let n_head = usize_key(f, "llama.attention.head_count")?;
        let n_head_kv = match f.get("llama.attention.head_count_kv") {
            Some(_) => usize_key(f, "llama.attention.head_count_kv")?,
            None => n_head,
        };
        if n_embd == 0
            || n_head == 0
            || n_head_kv == 0
            || n_embd % n_head != 0
            || n_head % n_head_kv != 0
        {
            return Err(EngineError::Hparams(format!(
                "embedding_length {n_embd}, head_count {n_head}, head_count_kv {n_head_kv}: \
                 need head_count | embedding_length and head_count_kv | head_count"
            )));
        }
        let head_dim = n_embd / n_head;
        let n_rot = match f.get("llama.rope.dimension_count") {
            Some(_) => usize_key(f, "llama.rope.dimension_count")?,
            None => head_dim,
        };
        if n_rot % 2 != 0 || n_rot > head_dim {
            return Err(EngineError::Hparams(format!(
                "rope.dimension_count {n_rot} must be even and at most the head size {head_dim}"
            )));
        }
        let hp = Hparams {
            n_vocab: *tok.dims.get(1).unwrap_or(&0) as usize,
            n_embd,
            n_layer: usize_key(f, "llama.block_count")?,
            n_head,
            n_head_kv,
            n_ff: usize_key(f, "llama.feed_forward_length")?,
            n_rot,
            n_ctx_train: usize_key(f, "llama.context_length")?,
            rope_freq_base: match f.get("llama.rope.freq_base") {
                Some(_) => f.get_f32("llama.rope.freq_base")?,
                None => 10000.0,
            },
            rms_eps: f.get_f32("llama.attention.layer_norm_rms_epsilon")?,
        };
        if hp.n_layer == 0 || hp.n_ff == 0 || hp.n_vocab == 0 {
            return Err(EngineError::Hparams(format!(
                "block_count {}, feed_forward_length {}, vocabulary {} must all be positive",
                hp.n_layer, hp.n_ff, hp.n_vocab
            )));
        }
        if !(hp.rope_freq_base.is_finite()
            && hp.rope_freq_base > 0.0
            && hp.rms_eps.is_finite()
            && hp.rms_eps >= 0.0)
        {
            return Err(EngineError::Hparams(format!(
                "rope.freq_base {} and layer_norm_rms_epsilon {} must be finite and positive",
                hp.rope_freq_base, hp.rms_eps
            )));
        }
        // Each layer is 9 tensors of the file: a block_count beyond them is refused here,
        // before anything is sized by it (a mutated count once asked for 16 M layers).
        if hp.n_layer > f.tensors.len() / 9 {
            return Err(EngineError::Hparams(format!(
                "block_count {} needs {} layer tensors, but the file holds only {} tensors",
                hp.n_layer,
                hp.n_layer.saturating_mul(9),
                f.tensors.len()
            )));
        }
        let (e, kv, ff, v) = (hp.n_embd, hp.n_embd_kv(), hp.n_ff, hp.n_vocab);
        let tok_embd = weight(f, "token_embd.weight", e, v)?;
        let mut layers = Vec::with_capacity(hp.n_layer);
        for i in 0..hp.n_layer {
            let n = |s: &str| format!("blk.{i}.{s}.weight");
            layers.push(Layer {
                attn_norm: norm(f, &n("attn_norm"), e)?,
                wq: weight(f, &n("attn_q"), e, e)?,
                wk: weight(f, &n("attn_k"), e, kv)?,
                wv: weight(f, &n("attn_v"), e, kv)?,
                wo: weight(f, &n("attn_output"), e, e)?,
                ffn_norm: norm(f, &n("ffn_norm"), e)?,
                w_gate: weight(f, &n("ffn_gate"), e, ff)?,
                w_up: weight(f, &n("ffn_up"), e, ff)?,
                w_down: weight(f, &n("ffn_down"), ff, e)?,
            });
        }
        let output_norm = norm(f, "output_norm.weight", e)?;
        let output = match f.tensor("output.weight") {
            Some(_) => Some(weight(f, "output.weight", e, v)?),
            None => None,
        };
        let ftype = match f.get("general.file_type").and_then(|v| v.as_u64()) {
            Some(0) => "F32".to_string(),
            Some(1) => "F16".to_string(),
            Some(2) => "Q4_0".to_string(),
            Some(7) => "Q8_0".to_string(),
            _ => layers[0].wq.ty().name().to_uppercase(),
        };
        let name = f
            .get("general.name")
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string();
        Ok(Model {
            size_bytes: f.tensors.iter().map(|t| t.size).sum(),
            n_params: f.tensors.iter().map(|t| t.n_elements()).sum(),
            hp,
            tok_embd,
            layers,
            output_norm,
            output,
            ftype,
            name,
        })
    }

    /// The output head: `output.weight`, or the token embedding when tied.
    pub fn head(&self) -> &Weight {
        self.output.as_ref().unwrap_or(&self.tok_embd)
    }

    /// Puts the weights the CPU multiplies in `kernels`' repacked layout, in place (each
    /// copy replaces its original, so they are resident once, not twice as when a context
    /// repacks beside a borrowed model): layers `..cpu_layers` and, with `head_on_cpu`, the
    /// output head. Everything else returns to the plain layout, which the GPU and the
    /// other tables read. A context over the result repacks nothing.
    pub fn repack_for(
        &mut self,
        kernels: &tessera_kernels::Kernels,
        cpu_layers: usize,
        head_on_cpu: bool,
    ) {
        let layout = kernels.repack_layout();
        for (i, l) in self.layers.iter_mut().enumerate() {
            let want = if i < cpu_layers { layout } else { None };
            for w in [
                &mut l.wq,
                &mut l.wk,
                &mut l.wv,
                &mut l.wo,
                &mut l.w_gate,
                &mut l.w_up,
                &mut l.w_down,
            ] {
                w.relayout(want);
            }
        }
        let head = match self.output.as_mut() {
            Some(w) => w,
            None => &mut self.tok_embd,
        };
        head.relayout(if head_on_cpu { layout } else { None });
    }

    /// llama-bench's `model_type`, e.g. "llama 150M Q4_0".
    pub fn type_name(&self) -> String {
        let p = self.n_params as f64;
        let size = if p >= 1e9 {
            format!("{:.0}B", p / 1e9)
        } else {
            format!("{:.0}M", p / 1e6)
        };
        format!("llama {size} {}", self.ftype)
    }
}

fn usize_key(f: &GgufFile, key: &str) -> Result<usize> {
    let v = f.get_u64(key)?;
    // Bounds far above any real model keep later size arithmetic from overflowing.
    if v > (1 << 24) {
        return Err(EngineError::Hparams(format!(
            "{key} = {v} is implausibly large (limit {})",
            1 << 24
        )));
    }
    Ok(v as usize)
}

fn tensor<'f>(f: &'f GgufFile, name: &str) -> Result<&'f TensorInfo> {
    f.tensor(name)
        .ok_or_else(|| EngineError::MissingTensor(name.to_string()))
}

/// A 2-D weight of `n` rows of `k`, checked and copied into owned storage.
fn weight(f: &GgufFile, name: &str, k: usize, n: usize) -> Result<Weight> {
    let t = tensor(f, name)?;
    let expected = vec![k as u64, n as u64];
    if t.dims != expected {
        return Err(EngineError::TensorShape {
            name: name.to_string(),
            expected,
            found: t.dims.clone(),
        });
    }
    if !t.ty.is_supported() {
        return Err(EngineError::UnsupportedType {
            name: name.to_string(),
            ty: t.ty,
        });
    }
    let bytes = f.tensor_data(t);
    let store = match t.ty {
        GgmlType::F32 => Store::F32(copy_pod(bytes)),
        GgmlType::F16 => Store::F16(copy_pod(bytes)),
        GgmlType::Q8_0 => Store::Q8_0(copy_pod(bytes)),
        GgmlType::Q4_0 => Store::Q4_0(copy_pod(bytes)),
        ty => {
            return Err(EngineError::UnsupportedType {
                name: name.to_string(),
                ty,
            });
        }
    };
    f.release(t);
    let w = Weight {
        name: name.to_string(),
        store,
        n,
        k,
    };
    // The reader checked bytes against shape; this also checks rows of whole blocks, and
    // guards the `expect` in `mat`.
    w.try_mat()
        .map_err(|e| EngineError::Invalid(format!("tensor '{name}': {e}")))?;
    Ok(w)
}

/// A norm gain vector of `n` values, as f32.
fn norm(f: &GgufFile, name: &str, n: usize) -> Result<Vec<f32>> {
    let t = tensor(f, name)?;
    if t.dims != [n as u64] {
        return Err(EngineError::TensorShape {
            name: name.to_string(),
            expected: vec![n as u64],
            found: t.dims.clone(),
        });
    }
    let bytes = f.tensor_data(t);
    match t.ty {
        GgmlType::F32 => Ok(copy_pod(bytes)),
        GgmlType::F16 => Ok(copy_pod::<f16>(bytes).iter().map(|v| v.to_f32()).collect()),
        ty => Err(EngineError::UnsupportedType {
            name: name.to_string(),
            ty,
        }),
    }
}

/// Copies little-endian bytes into an aligned, owned vector (the mapped data may be
/// unaligned for `T` when a file uses an odd `general.alignment`).
fn copy_pod<T: bytemuck::Pod + Default>(bytes: &[u8]) -> Vec<T> {
    let mut v = vec![T::default(); bytes.len() / std::mem::size_of::<T>()];
    let n = v.len() * std::mem::size_of::<T>();
    bytemuck::cast_slice_mut::<T, u8>(&mut v).copy_from_slice(&bytes[..n]);
    v
}
