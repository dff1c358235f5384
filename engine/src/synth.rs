//! Synthetic llama models: seeded Gaussian weights in the layout, key set and types of a
//! llama.cpp-converted model (the same recipe as `shared/tools/mkmodel.py`), so benchmarks
//! need nothing downloaded and both tessera and llama-bench can load the same file.
//!
//! Every row of every tensor draws from its own random stream keyed by (seed, tensor,
//! row), so a file is identical for the same (shape, type, seed) whatever the number of
//! threads generating it.

use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::thread;

use half::f16;
use tessera_kernels::GgmlType;
use tessera_kernels::quant::{BlockQ4_0, BlockQ8_0, QK, q4_0, q8_0};

use crate::gguf::{DEFAULT_ALIGNMENT, GgufError, GgufWriter, TensorInfo, Value, ValueType};
use crate::rng::Rng;

/// A named model size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Preset {
    Tiny,
    M150,
    B1,
    B8,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::Tiny, Preset::M150, Preset::B1, Preset::B8];

    pub fn name(self) -> &'static str {
        match self {
            Preset::Tiny => "tiny",
            Preset::M150 => "150m",
            Preset::B1 => "1b",
            Preset::B8 => "8b",
        }
    }

    pub fn shape(self) -> Shape {
        let (n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff) = match self {
            Preset::Tiny => (512, 256, 2, 8, 4, 768),
            Preset::M150 => (32000, 1024, 8, 16, 4, 2816),
            Preset::B1 => (32000, 2048, 16, 32, 8, 5632),
            Preset::B8 => (128256, 4096, 32, 32, 8, 14336),
        };
        let big = self == Preset::B8;
        Shape {
            n_vocab,
            n_embd,
            n_layer,
            n_head,
            n_head_kv,
            n_ff,
            n_ctx_train: if big { 8192 } else { 4096 },
            rope_freq_base: if big { 500_000.0 } else { 10_000.0 },
            rms_eps: 1e-5,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown model preset '{name}': valid presets are tiny, 150m, 1b, 8b")]
pub struct UnknownPreset {
    pub name: String,
}

impl FromStr for Preset {
    type Err = UnknownPreset;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Preset::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownPreset { name: s.to_owned() })
    }
}

/// Hyperparameters of a llama model.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    pub n_vocab: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_head_kv: usize,
    pub n_ff: usize,
    pub n_ctx_train: usize,
    pub rope_freq_base: f32,
    pub rms_eps: f32,
}

impl Shape {
    /// Per-head dimension (also the RoPE dimension count).
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// The preset with exactly this shape, if any.
    pub fn preset(&self) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.shape() == *self)
    }
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthSpec {
    pub shape: Shape,
    /// Type of the 2-D weights: f32, f16, q8_0 or q4_0. Norm gains are always f32.
    pub ty: GgmlType,
    pub seed: u64,
    /// `true`: no `output.weight`; the output head reuses `token_embd.weight`.
    pub tie_output: bool,
}

impl SynthSpec {
    pub fn new(preset: Preset, ty: GgmlType, seed: u64) -> Self {
        SynthSpec {
            shape: preset.shape(),
            ty,
            seed,
            tie_output: false,
        }
    }

    /// `general.name` of the file: `tessera-synth-<preset>` or `tessera-synth-custom`.
    pub fn model_name(&self) -> String {
        let which = self.shape.preset().map_or("custom", Preset::name);
        format!("tessera-synth-{which}")
    }

    /// Refuses shapes llama.cpp could not load or the types could not store.
    pub fn validate(&self) -> Result<(), SynthError> {
        let s = &self.shape;
        let bad = |reason: String| Err(SynthError::BadSpec { reason });
        if file_type(self.ty).is_none() {
            return bad(format!(
                "weight type {} is not one of f32, f16, q8_0, q4_0",
                self.ty
            ));
        }
        let counts = [
            ("n_vocab", s.n_vocab),
            ("n_embd", s.n_embd),
            ("n_layer", s.n_layer),
            ("n_head", s.n_head),
            ("n_head_kv", s.n_head_kv),
            ("n_ff", s.n_ff),
            ("n_ctx_train", s.n_ctx_train),
        ];
        for (name, v) in counts {
            if v == 0 || u32::try_from(v).is_err() {
                return bad(format!("{name} = {v} must be between 1 and {}", u32::MAX));
            }
        }
        if s.n_vocab < FIRST_PIECE {
            return bad(format!(
                "n_vocab = {} is below {FIRST_PIECE}, the 3 control and 256 byte tokens of \
                 the SentencePiece vocabulary",
                s.n_vocab
            ));
        }
        if !s.n_embd.is_multiple_of(s.n_head) || !s.head_dim().is_multiple_of(2) {
            return bad(format!(
                "n_embd = {} must split into n_head = {} heads of even size",
                s.n_embd, s.n_head
            ));
        }
        if !s.n_head.is_multiple_of(s.n_head_kv) {
            return bad(format!(
                "n_head = {} is not a multiple of n_head_kv = {}",
                s.n_head, s.n_head_kv
            ));
        }
        let block = self.ty.block_size();
        for (name, v) in [("n_embd", s.n_embd), ("n_ff", s.n_ff)] {
            if !v.is_multiple_of(block) {
                return bad(format!(
                    "{name} = {v} is not a multiple of the {} block size {block}",
                    self.ty
                ));
            }
        }
        let finite_positive = |x: f32| x.is_finite() && x > 0.0;
        if !finite_positive(s.rope_freq_base) || !finite_positive(s.rms_eps) {
            return bad(format!(
                "rope_freq_base = {} and rms_eps = {} must be finite and positive",
                s.rope_freq_base, s.rms_eps
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("invalid synthetic model: {reason}")]
    BadSpec { reason: String },
    #[error("cannot write synthetic model {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Gguf(#[from] GgufError),
}

/// `general.file_type` (llama.cpp's `LLAMA_FTYPE_ALL_*`) of a synthetic model whose 2-D
/// weights are `ty`; `None` for types this generator does not write.
pub fn file_type(ty: GgmlType) -> Option<u32> {
    match ty {
        GgmlType::F32 => Some(0),
        GgmlType::F16 => Some(1),
        GgmlType::Q4_0 => Some(2),
        GgmlType::Q8_0 => Some(7),
        _ => None,
    }
}

/// Writes the model to `<path>.<pid>.tmp`, then renames it to `path`, so an interrupted
/// run never leaves a partial file under the final name, and two processes generating the
/// same model at once (a shared model cache) never write into one temporary file.
pub fn write_model(path: &Path, spec: &SynthSpec) -> Result<(), SynthError> {
    spec.validate()?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let io_err = |p: &Path| {
        let p = p.to_owned();
        move |source| SynthError::Io { path: p, source }
    };

    let result = (|| {
        let file = File::create(&tmp).map_err(io_err(&tmp))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        match write_to(&mut out, spec) {
            Err(SynthError::Gguf(GgufError::Write { source })) => {
                return Err(io_err(&tmp)(source));
            }
            other => other?,
        };
        let file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
        file.sync_all().map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, path).map_err(io_err(path))
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one being returned.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes the model to any writer and returns the number of bytes written.
pub fn write_to<W: Write>(out: W, spec: &SynthSpec) -> Result<u64, SynthError> {
    spec.validate()?;
    let s = &spec.shape;
    let mut w = GgufWriter::new(DEFAULT_ALIGNMENT as u32);
    let u32_of = |v: usize| Value::U32(v as u32); // validate() bounded every count
    let ftype = file_type(spec.ty).unwrap_or(0);

    w.add_kv("general.architecture", "llama");
    w.add_kv("general.name", spec.model_name());
    w.add_kv("llama.context_length", u32_of(s.n_ctx_train));
    w.add_kv("llama.embedding_length", u32_of(s.n_embd));
    w.add_kv("llama.block_count", u32_of(s.n_layer));
    w.add_kv("llama.feed_forward_length", u32_of(s.n_ff));
    w.add_kv("llama.attention.head_count", u32_of(s.n_head));
    w.add_kv("llama.attention.head_count_kv", u32_of(s.n_head_kv));
    w.add_kv("llama.rope.dimension_count", u32_of(s.head_dim()));
    w.add_kv("llama.attention.layer_norm_rms_epsilon", s.rms_eps);
    w.add_kv("llama.rope.freq_base", s.rope_freq_base);
    w.add_kv("general.file_type", ftype);
    w.add_kv("llama.vocab_size", u32_of(s.n_vocab));
    let vocab = vocabulary(s.n_vocab);
    w.add_kv("tokenizer.ggml.model", "llama");
    w.add_kv(
        "tokenizer.ggml.tokens",
        Value::Array(
            ValueType::String,
            vocab.tokens.into_iter().map(Value::String).collect(),
        ),
    );
    w.add_kv(
        "tokenizer.ggml.scores",
        Value::Array(
            ValueType::F32,
            vocab.scores.into_iter().map(Value::F32).collect(),
        ),
    );
    w.add_kv(
        "tokenizer.ggml.token_type",
        Value::Array(
            ValueType::I32,
            vocab.types.into_iter().map(Value::I32).collect(),
        ),
    );
    w.add_kv("tokenizer.ggml.bos_token_id", 1u32);
    w.add_kv("tokenizer.ggml.eos_token_id", 2u32);
    w.add_kv("tokenizer.ggml.unknown_token_id", 0u32);
    w.add_kv("tessera.synth.seed", spec.seed);

    let plan = plan(spec);
    for p in &plan {
        w.add_tensor(p.name.clone(), &p.dims, p.ty);
    }
    let threads = thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let n = w.write(out, |i, info, buf| {
        generate(spec.seed, i as u64, plan[i].init, info, buf, threads)
    })?;
    Ok(n)
}

/// How a tensor's values are drawn.
#[derive(Clone, Copy, Debug)]
enum Init {
    /// Norm gain: 1 + 0.1 N(0, 1), like trained gains near one.
    Gain,
    /// N(0, std^2).
    Gauss(f64),
}

struct Planned {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    init: Init,
}

/// Tensors in llama.cpp's order, with ggml dims (`ne[0]` = input size first).
fn plan(spec: &SynthSpec) -> Vec<Planned> {
    let s = &spec.shape;
    let (e, f, v) = (s.n_embd as u64, s.n_ff as u64, s.n_vocab as u64);
    let kv = (s.n_head_kv * s.head_dim()) as u64;
    let se = (s.n_embd as f64).powf(-0.5);
    let sf = (s.n_ff as f64).powf(-0.5);
    let mut out = Vec::with_capacity(9 * s.n_layer + 3);
    let weight = |name: String, dims: [u64; 2], std: f64| Planned {
        name,
        dims: dims.to_vec(),
        ty: spec.ty,
        init: Init::Gauss(std),
    };
    let gain = |name: String| Planned {
        name,
        dims: vec![e],
        ty: GgmlType::F32,
        init: Init::Gain,
    };
    out.push(weight("token_embd.weight".into(), [e, v], 1.0));
    for l in 0..s.n_layer {
        out.push(gain(format!("blk.{l}.attn_norm.weight")));
        out.push(weight(format!("blk.{l}.attn_q.weight"), [e, e], se));
        out.push(weight(format!("blk.{l}.attn_k.weight"), [e, kv], se));
        out.push(weight(format!("blk.{l}.attn_v.weight"), [e, kv], se));
        out.push(weight(format!("blk.{l}.attn_output.weight"), [e, e], se));
        out.push(gain(format!("blk.{l}.ffn_norm.weight")));
        out.push(weight(format!("blk.{l}.ffn_gate.weight"), [e, f], se));
        out.push(weight(format!("blk.{l}.ffn_up.weight"), [e, f], se));
        out.push(weight(format!("blk.{l}.ffn_down.weight"), [f, e], sf));
    }
    out.push(gain("output_norm.weight".into()));
    if !spec.tie_output {
        out.push(weight("output.weight".into(), [e, v], se));
    }
    out
}

/// Tensors smaller than this are generated on the calling thread.
const PARALLEL_MIN_ELEMENTS: u64 = 1 << 16;

/// Fills `buf` with tensor `index`: rows are split across `threads` scoped threads, each
/// row drawn from its own stream so the split does not change the bytes.
fn generate(
    seed: u64,
    index: u64,
    init: Init,
    info: &TensorInfo,
    buf: &mut Vec<u8>,
    threads: usize,
) -> io::Result<()> {
    let too_big = || io::Error::other(format!("tensor '{}' does not fit in memory", info.name));
    let size = usize::try_from(info.size).map_err(|_| too_big())?;
    let ne0 = usize::try_from(info.dims[0]).map_err(|_| too_big())?;
    let row_bytes = info
        .ty
        .row_bytes(info.dims[0])
        .and_then(|b| usize::try_from(b).ok())
        .ok_or_else(too_big)?;
    buf.resize(size, 0);
    let rows = size / row_bytes.max(1);
    let threads = if info.n_elements() < PARALLEL_MIN_ELEMENTS {
        1
    } else {
        threads.clamp(1, rows.max(1))
    };
    let rows_per = rows.div_ceil(threads).max(1);
    let ty = info.ty;
    let gen_rows = move |first_row: usize, chunk: &mut [u8]| {
        let mut scratch = vec![0f32; ne0];
        for (r, dst) in chunk.chunks_exact_mut(row_bytes).enumerate() {
            // index < 2^24 and rows < 2^40 for anything that fits in memory.
            let stream = (index << 40) | (first_row + r) as u64;
            let mut rng = Rng::for_stream(seed, stream);
            match init {
                Init::Gain => rng.fill_normal(&mut scratch, 1.0, 0.1),
                Init::Gauss(std) => rng.fill_normal(&mut scratch, 0.0, std),
            }
            encode_row(ty, &scratch, dst);
        }
    };
    if threads == 1 {
        gen_rows(0, buf);
        return Ok(());
    }
    thread::scope(|s| {
        let mut handles = Vec::with_capacity(threads);
        for (i, chunk) in buf.chunks_mut(rows_per * row_bytes).enumerate() {
            let h = thread::Builder::new()
                .name(format!("synth-{i}"))
                .spawn_scoped(s, move || gen_rows(i * rows_per, chunk))?;
            handles.push(h);
        }
        for h in handles {
            h.join()
                .map_err(|_| io::Error::other("a weight-generation thread panicked"))?;
        }
        Ok(())
    })
}

/// Stores one row of f32 values as `ty` (little-endian, ggml block layout).
fn encode_row(ty: GgmlType, x: &[f32], dst: &mut [u8]) {
    match ty {
        GgmlType::F16 => {
            for (d, v) in dst.chunks_exact_mut(2).zip(x) {
                d.copy_from_slice(&f16::from_f32(*v).to_le_bytes());
            }
        }
        GgmlType::Q8_0 => {
            let mut blocks = vec![BlockQ8_0::default(); x.len() / QK];
            q8_0::quantize_row(x, &mut blocks);
            for (d, b) in dst.chunks_exact_mut(34).zip(&blocks) {
                d[..2].copy_from_slice(&b.d.to_le_bytes());
                d[2..].copy_from_slice(bytemuck::cast_slice(&b.qs));
            }
        }
        GgmlType::Q4_0 => {
            let mut blocks = vec![BlockQ4_0::default(); x.len() / QK];
            q4_0::quantize_row(x, &mut blocks);
            for (d, b) in dst.chunks_exact_mut(18).zip(&blocks) {
                d[..2].copy_from_slice(&b.d.to_le_bytes());
                d[2..].copy_from_slice(&b.qs);
            }
        }
        // F32, and the only other case validate() lets through.
        _ => {
            for (d, v) in dst.chunks_exact_mut(4).zip(x) {
                d.copy_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// Index of the first word piece: after `<unk>`, `<s>`, `</s>` and 256 byte tokens.
const FIRST_PIECE: usize = 3 + 256;

struct Vocab {
    tokens: Vec<String>,
    scores: Vec<f32>,
    types: Vec<i32>,
}

/// SentencePiece token types as llama.cpp numbers them.
const NORMAL: i32 = 1;
const UNKNOWN: i32 = 2;
const CONTROL: i32 = 3;
const BYTE: i32 = 6;

/// A minimal SentencePiece vocabulary of `n` tokens: control tokens, byte tokens, then
/// distinct pieces "▁e", "▁t", ... "▁ee", "▁te", ... (the same list mkmodel.py builds).
fn vocabulary(n: usize) -> Vocab {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types = vec![UNKNOWN, CONTROL, CONTROL];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(BYTE);
    }
    let mut scores = vec![0.0f32; tokens.len()];
    let mut seen: HashSet<String> = tokens.iter().cloned().collect();
    const LETTERS: &[u8; 26] = b"etaoinshrdlucmfwypvbgkqjxz";
    let mut i = 0usize;
    while tokens.len() < n {
        let mut piece = String::from("\u{2581}");
        piece.push(char::from(LETTERS[i % 26]));
        if i >= 26 {
            piece.push(char::from(LETTERS[(i / 26) % 26]));
        }
        if seen.contains(&piece) {
            piece.push_str(&i.to_string());
        }
        while seen.contains(&piece) {
            piece.push('_'); // never reached with the scheme above; keeps tokens distinct
        }
        seen.insert(piece.clone());
        tokens.push(piece);
        scores.push(-(i as f32));
        types.push(NORMAL);
        i += 1;
    }
    tokens.truncate(n);
    scores.truncate(n);
    types.truncate(n);
    Vocab {
        tokens,
        scores,
        types,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_names_parse_back() {
        for p in Preset::ALL {
            assert_eq!(p.name().parse::<Preset>().unwrap(), p);
        }
        let e = "7b".parse::<Preset>().unwrap_err().to_string();
        assert!(
            e.contains("'7b'") && e.contains("tiny, 150m, 1b, 8b"),
            "{e}"
        );
    }

    #[test]
    fn vocabulary_is_distinct_and_typed() {
        let v = vocabulary(2000);
        assert_eq!(v.tokens.len(), 2000);
        let set: HashSet<&String> = v.tokens.iter().collect();
        assert_eq!(set.len(), 2000);
        assert_eq!(v.tokens[3], "<0x00>");
        assert_eq!(v.tokens[258], "<0xFF>");
        assert_eq!(v.tokens[259], "\u{2581}e");
        assert_eq!(v.tokens[259 + 26], "\u{2581}et");
        assert_eq!(v.tokens[259 + 27], "\u{2581}tt");
        assert_eq!(v.types[..4], [UNKNOWN, CONTROL, CONTROL, BYTE]);
        assert_eq!(v.scores[260], -1.0);
    }

    #[test]
    fn invalid_specs_are_refused_with_the_reason() {
        let mut s = SynthSpec::new(Preset::Tiny, GgmlType::Q4_0, 1);
        s.shape.n_ff = 770;
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains("n_ff = 770") && e.contains("q4_0"), "{e}");
        let s = SynthSpec::new(Preset::Tiny, GgmlType::Q4_K, 1);
        assert!(s.validate().unwrap_err().to_string().contains("q4_K"));
        let mut s = SynthSpec::new(Preset::Tiny, GgmlType::F32, 1);
        s.shape.n_head_kv = 3;
        assert!(s.validate().is_err());
    }

    #[test]
    fn rows_do_not_depend_on_the_thread_count() {
        let info = TensorInfo {
            name: "t".into(),
            dims: vec![256, 300],
            ty: GgmlType::Q8_0,
            offset: 0,
            size: GgmlType::Q8_0.row_bytes(256).unwrap() * 300,
        };
        let mut one = Vec::new();
        let mut three = Vec::new();
        generate(9, 4, Init::Gauss(0.5), &info, &mut one, 1).unwrap();
        generate(9, 4, Init::Gauss(0.5), &info, &mut three, 3).unwrap();
        assert_eq!(one.len() as u64, info.size);
        assert!(one == three);
    }
}
