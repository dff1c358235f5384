//! The grid of configurations that `tessera bench` and `tessera sweep` both measure: its
//! [`Point`], the one expander ([`expand`]: the cartesian product of axes, outermost first,
//! with the backend rule of [`backends`]) and the one constructor of a point's starting row
//! ([`row`]).
//!
//! Why a module of its own and not `sweep::plan` made general: bench is not a sweep (no
//! keys, no shards, no child per point), and a domain module must not need `cmd/`. The
//! point is the union of both commands' axes; each command lists the axes it varies, in
//! its own order (bench: llama-bench's row order; sweep: the order its point keys, shards
//! and manifests were made in, which must not change), and fills the others once from
//! run-level settings. What only one command needs stays there: point keys and labels in
//! `sweep::plan`, the engine context of a point here (both measure in it).
//!
//! [`row`] is a free function over [`BenchRow`] rather than a `BenchRow` method because
//! `results` belongs to the schema; it could move there as `BenchRow::for_point`.

use tessera_engine::bench::TestSpec;
use tessera_engine::{Backend, ContextParams, KvType};

use crate::results::{self, BenchRow};

/// llama-bench's default logical batch (`-b`): a point at this batch is the point it was
/// before sweeps had a batch axis (same key, same rows).
pub const DEFAULT_BATCH: usize = results::LLAMA_BENCH_DEFAULT_N_BATCH as usize;

/// One llama-bench test.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Test {
    pub n_prompt: usize,
    pub n_gen: usize,
}

impl Test {
    pub fn name(&self) -> String {
        results::test_name(self.n_prompt as u32, self.n_gen as u32, 0)
    }

    /// Tokens per repetition.
    pub fn n_tokens(&self) -> usize {
        self.n_prompt + self.n_gen
    }

    /// The engine's test of the same tokens.
    pub fn spec(&self) -> TestSpec {
        TestSpec {
            n_prompt: self.n_prompt,
            n_gen: self.n_gen,
        }
    }
}

/// One configuration of the grid: every axis of bench and sweep.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Point {
    /// "builtin", "llama-bench=PATH", "cmd=TEMPLATE".
    pub engine: String,
    /// The model path as given ("" for a `cmd=` engine without a model).
    pub model: String,
    pub test: Test,
    pub threads: usize,
    /// The ISA as requested ("auto", a name; "-" for an external engine).
    pub isa: String,
    /// "" = the ISA's default.
    pub tile: String,
    pub numa: String,
    pub pin: String,
    /// Logical batch (`-b`).
    pub n_batch: usize,
    /// Micro-batch (`-ub`).
    pub ubatch: usize,
    pub type_k: KvType,
    pub type_v: KvType,
    pub backend: Backend,
    /// GPU layers of a cuda point; 0 on the CPU.
    pub ngl: usize,
}

impl Default for Point {
    /// llama-bench's defaults on the built-in engine's CPU backend; every axis a command
    /// does not vary keeps its value here or the command's run-level setting.
    fn default() -> Self {
        Point {
            engine: "builtin".into(),
            model: String::new(),
            test: Test {
                n_prompt: 512,
                n_gen: 0,
            },
            threads: 1,
            isa: "auto".into(),
            tile: String::new(),
            numa: "none".into(),
            pin: "none".into(),
            n_batch: DEFAULT_BATCH,
            ubatch: results::LLAMA_BENCH_DEFAULT_N_UBATCH as usize,
            type_k: KvType::F16,
            type_v: KvType::F16,
            backend: Backend::Cpu,
            ngl: 0,
        }
    }
}

impl Point {
    pub fn is_builtin(&self) -> bool {
        self.engine == "builtin"
    }

    /// The context the built-in engine measures this point in: exactly the test's tokens.
    pub fn context_params(&self) -> ContextParams {
        ContextParams {
            n_ctx: self.test.n_tokens(),
            n_batch: self.n_batch,
            n_ubatch: self.ubatch,
            n_threads: self.threads,
            type_k: self.type_k,
            type_v: self.type_v,
            logits_all: false,
            backend: self.backend,
            n_gpu_layers: self.ngl,
        }
    }
}

/// One axis of the grid and its values.
#[derive(Clone, Debug)]
pub enum Axis {
    Engine(Vec<String>),
    Model(Vec<String>),
    Test(Vec<Test>),
    /// (isa, tile) pairs: not every tile is valid for every ISA, so they vary together.
    IsaTile(Vec<(String, String)>),
    Numa(Vec<String>),
    Pin(Vec<String>),
    Batch(Vec<usize>),
    Ubatch(Vec<usize>),
    TypeK(Vec<KvType>),
    TypeV(Vec<KvType>),
    /// Keys and values of one type (a sweep's `kv_type`).
    Kv(Vec<KvType>),
    Threads(Vec<usize>),
    /// (backend, ngl) pairs, from [`backends`].
    Backend(Vec<(Backend, usize)>),
}

impl Axis {
    /// `p` once per value of this axis, in the axis's order.
    fn apply(&self, p: &Point) -> Vec<Point> {
        fn each<T: Clone>(p: &Point, vs: &[T], set: impl Fn(&mut Point, T)) -> Vec<Point> {
            vs.iter()
                .map(|v| {
                    let mut q = p.clone();
                    set(&mut q, v.clone());
                    q
                })
                .collect()
        }
        match self {
            Axis::Engine(v) => each(p, v, |q, x| q.engine = x),
            Axis::Model(v) => each(p, v, |q, x| q.model = x),
            Axis::Test(v) => each(p, v, |q, x| q.test = x),
            Axis::IsaTile(v) => each(p, v, |q, (isa, tile)| {
                q.isa = isa;
                q.tile = tile;
            }),
            Axis::Numa(v) => each(p, v, |q, x| q.numa = x),
            Axis::Pin(v) => each(p, v, |q, x| q.pin = x),
            Axis::Batch(v) => each(p, v, |q, x| q.n_batch = x),
            Axis::Ubatch(v) => each(p, v, |q, x| q.ubatch = x),
            Axis::TypeK(v) => each(p, v, |q, x| q.type_k = x),
            Axis::TypeV(v) => each(p, v, |q, x| q.type_v = x),
            Axis::Kv(v) => each(p, v, |q, x| {
                q.type_k = x;
                q.type_v = x;
            }),
            Axis::Threads(v) => each(p, v, |q, x| q.threads = x),
            Axis::Backend(v) => each(p, v, |q, (b, n)| {
                q.backend = b;
                q.ngl = n;
            }),
        }
    }
}

/// The cartesian product of `axes` over `base`: the first axis outermost, the last one
/// varying fastest. An axis with no values yields no points.
pub fn expand(base: Point, axes: &[Axis]) -> Vec<Point> {
    let mut out = vec![base];
    for axis in axes {
        out = out.iter().flat_map(|p| axis.apply(p)).collect();
    }
    out
}

/// (backend, -ngl) pairs: the CPU backend once (with 0 layers offloaded), the CUDA
/// backend once per -ngl value.
pub fn backends(backends: &[Backend], ngl: &[usize]) -> Vec<(Backend, usize)> {
    let mut v = Vec::new();
    for &b in backends {
        match b {
            Backend::Cpu => v.push((b, 0)),
            Backend::Cuda => v.extend(ngl.iter().map(|&n| (b, n))),
        }
    }
    v
}

/// "builtin", "llama-bench" or "cmd".
pub fn engine_label(engine: &str) -> &str {
    engine.split_once('=').map_or(engine, |(k, _)| k)
}

/// The row of a point before it is measured: its configuration, the run's `cpu_info`, the
/// build of this binary when the built-in engine measures it, status ok. What only one
/// command knows it adds itself: bench the loaded model and the resolved kernels, sweep the
/// run id, point key, repeat and machine fingerprint.
pub fn row(p: &Point, cpu_info: &str) -> BenchRow {
    let mut row = BenchRow {
        model_filename: p.model.clone(),
        n_batch: p.n_batch as u32,
        n_ubatch: p.ubatch as u32,
        n_threads: p.threads as u32,
        type_k: p.type_k.name().to_string(),
        type_v: p.type_v.name().to_string(),
        n_gpu_layers: p.ngl.min(i32::MAX as usize) as i32,
        n_prompt: p.test.n_prompt as u32,
        n_gen: p.test.n_gen as u32,
        n_depth: 0,
        test: p.test.name(),
        test_time: crate::timefmt::now_rfc3339(),
        engine: engine_label(&p.engine).to_string(),
        isa_requested: if p.is_builtin() {
            p.isa.clone()
        } else {
            String::new()
        },
        tile: p.tile.clone(),
        backends: p.backend.label().to_string(),
        cpu_info: cpu_info.to_string(),
        numa: p.numa.clone(),
        pin: p.pin.clone(),
        ..BenchRow::default()
    };
    if p.is_builtin() {
        row.set_build_info();
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_axis_is_outermost_and_an_empty_axis_yields_nothing() {
        let pts = expand(
            Point::default(),
            &[Axis::Threads(vec![1, 2]), Axis::Batch(vec![64, 128, 256])],
        );
        let got: Vec<(usize, usize)> = pts.iter().map(|p| (p.threads, p.n_batch)).collect();
        assert_eq!(
            got,
            [(1, 64), (1, 128), (1, 256), (2, 64), (2, 128), (2, 256)]
        );
        assert!(expand(Point::default(), &[Axis::Threads(vec![])]).is_empty());
        assert_eq!(expand(Point::default(), &[]), [Point::default()]);
    }

    #[test]
    fn cpu_once_cuda_once_per_ngl() {
        assert_eq!(
            backends(&[Backend::Cpu, Backend::Cuda], &[0, 99]),
            [(Backend::Cpu, 0), (Backend::Cuda, 0), (Backend::Cuda, 99)]
        );
        assert_eq!(backends(&[Backend::Cpu], &[1, 2]), [(Backend::Cpu, 0)]);
    }

    #[test]
    fn the_starting_row_carries_the_point() {
        let p = Point {
            model: "m.gguf".into(),
            test: Test {
                n_prompt: 16,
                n_gen: 4,
            },
            threads: 3,
            n_batch: 256,
            ubatch: 64,
            type_v: KvType::F32,
            backend: Backend::Cuda,
            ngl: 7,
            ..Point::default()
        };
        let r = row(&p, "cpu x");
        assert_eq!(
            (r.n_batch, r.n_ubatch, r.n_threads, r.n_gpu_layers),
            (256, 64, 3, 7)
        );
        assert_eq!((r.type_k.as_str(), r.type_v.as_str()), ("f16", "f32"));
        assert_eq!((r.test.as_str(), r.backends.as_str()), ("pp16+tg4", "CUDA"));
        assert_eq!(
            (r.engine.as_str(), r.isa_requested.as_str()),
            ("builtin", "auto")
        );
        assert_eq!(r.cpu_info, "cpu x");
        assert_eq!(r.build_commit, results::build_info().0);
        let ext = row(
            &Point {
                engine: "cmd=echo".into(),
                isa: "-".into(),
                ..p
            },
            "",
        );
        assert_eq!(
            (ext.engine.as_str(), ext.isa_requested.as_str()),
            ("cmd", "")
        );
        assert!(ext.build_commit.is_empty());
    }
}
