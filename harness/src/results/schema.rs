//! The row schema: [`BenchRow`] and the types of its fields, the field lists that flat
//! formats need, llama-bench's defaults, and the row's derived fields (timing from samples,
//! `test` from the token counts, build info).
//!
//! Field names and JSON types follow llama-bench wherever the meaning is the same;
//! tessera's own fields come after them. `results/README.md` documents every field.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::build::build_info;
use super::signal::signal_name;
use super::timing::summarize;

/// Version of the row schema. Bump it on any incompatible change (a field renamed,
/// removed, or its type or unit changed); adding a field is compatible.
pub const SCHEMA_VERSION: u32 = 1;

/// Every field of a serialized [`BenchRow`], in serialization order. The CSV header is
/// exactly this list.
pub const FIELDS: &[&str] = &[
    "schema_version",
    "build_commit",
    "build_number",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "model_size",
    "model_n_params",
    "n_batch",
    "n_ubatch",
    "n_threads",
    "type_k",
    "type_v",
    "n_gpu_layers",
    "n_prompt",
    "n_gen",
    "n_depth",
    "test",
    "test_time",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "samples_ns",
    "samples_ts",
    "engine",
    "build_dirty",
    "build_features",
    "isa",
    "isa_requested",
    "isa_reason",
    "tile",
    "kernels_used",
    "status",
    "fault",
    "error",
    "run_id",
    "point_key",
    "repeat_index",
    "fingerprint",
    "numa",
    "pin",
    "cpus",
    "counters_scope",
    "counters",
    "derived",
    "profile",
    "profile_error",
];

/// Fields whose JSON value is a string (or null, for `error`). A flat format such as
/// CSV needs this to tell the string "1" from the number 1 when reading back.
pub const STRING_FIELDS: &[&str] = &[
    "build_commit",
    "cpu_info",
    "gpu_info",
    "backends",
    "model_filename",
    "model_type",
    "type_k",
    "type_v",
    "test",
    "test_time",
    "engine",
    "isa",
    "isa_requested",
    "isa_reason",
    "tile",
    "status",
    "error",
    "run_id",
    "point_key",
    "fingerprint",
    "numa",
    "pin",
    "cpus",
    "counters_scope",
    "profile_error",
];

/// llama-bench's defaults for the columns its markdown table hides unless they vary.
pub const LLAMA_BENCH_DEFAULT_N_BATCH: u32 = 2048;
/// See [`LLAMA_BENCH_DEFAULT_N_BATCH`].
pub const LLAMA_BENCH_DEFAULT_N_UBATCH: u32 = 512;
/// See [`LLAMA_BENCH_DEFAULT_N_BATCH`]; the default for both `type_k` and `type_v`.
pub const LLAMA_BENCH_DEFAULT_TYPE_KV: &str = "f16";

/// Outcome of one measurement.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The measurement completed; the timing fields are valid.
    #[default]
    Ok,
    /// The process under test crashed (signal, CUDA error, non-zero exit); see `fault`.
    Fault,
    /// The process under test ran past its time limit and was killed.
    Timeout,
    /// tessera could not run the measurement (bad config, missing file); see `error`.
    Error,
}

impl Status {
    /// The lowercase name used in JSON and CSV.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Fault => "fault",
            Status::Timeout => "timeout",
            Status::Error => "error",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a crash looked like, recorded when `status` is `fault` (and, where known,
/// `timeout`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Fault {
    /// Short machine-readable kind: "signal", "cuda", "exit", "panic", ...
    pub class: String,
    /// The signal that ended the process, if one did (11 = SIGSEGV).
    pub signal: Option<i32>,
    /// The exit code, if the process exited rather than being killed.
    pub exit_code: Option<i32>,
    /// One-line human summary, e.g. "GET_ROWS failed: an illegal memory access was encountered".
    pub message: String,
    /// The last lines of the child's stderr.
    pub stderr_tail: String,
}

impl Fault {
    /// A short label for tables: the signal name if there is one, else the class,
    /// else the exit code.
    pub fn label(&self) -> String {
        if let Some(sig) = self.signal {
            signal_name(sig)
        } else if !self.class.is_empty() {
            self.class.clone()
        } else if let Some(code) = self.exit_code {
            format!("exit {code}")
        } else {
            "unknown".to_string()
        }
    }
}

/// One entry of the dispatch record: how often one kernel ran during the measurement.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KernelUse {
    /// The operation, e.g. "mul_mat", "get_rows".
    pub op: String,
    /// The ISA table the kernel came from, e.g. "avx512", "amx-emu".
    pub isa: String,
    /// The kernel's name within that table, e.g. "gemm_q4_0_q8_0".
    pub kernel: String,
    /// Tile configuration "MxNxK", empty for kernels without one.
    pub tile: String,
    /// Number of calls.
    pub calls: u64,
    /// Wall time spent in this op during the timed repetitions, summed over calls, ns.
    /// Ops that share one parallel region (Q, K and V; gate and up) split its wall time
    /// by their threads' time in each. 0 when not measured (older rows, `source:
    /// "profile"` rows carry their share in `share` instead).
    #[serde(default)]
    pub ns: u64,
    /// Arithmetic the op must do over those calls (2 per multiply-add), counted from the
    /// shapes, not measured.
    #[serde(default)]
    pub flop: u64,
    /// Bytes the op must move over those calls: weights in the layout it runs, activations
    /// in and out, KV cache reads.
    #[serde(default)]
    pub bytes: u64,
    /// Where the entry comes from: `""` (the built-in engine's own record) or `"profile"`
    /// (inferred from a sampled profile of an external engine, by symbol family).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source: String,
    /// For `source: "profile"`: the fraction of samples in this kernel class (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

/// A sampled profile of the measured process (`--profile`): the event, how many samples,
/// the hottest symbols, and where the folded stacks and flamegraph were written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Profile {
    /// `"cycles"` where the machine has a PMU, `"cpu-clock"` otherwise.
    pub event: String,
    /// Sampling frequency, Hz.
    pub freq_hz: u64,
    pub samples: u64,
    /// Hottest symbols (self time), share of all samples, highest first.
    pub top: Vec<ProfileSymbol>,
    /// Folded stacks (`a;b;c count` lines), relative to the run directory.
    pub folded: String,
    /// Flamegraph SVG, relative to the run directory.
    pub flamegraph: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProfileSymbol {
    pub symbol: String,
    /// The object file the address is in (binary or shared library), file name only.
    pub dso: String,
    /// Fraction of all samples, 0..1.
    pub share: f64,
}

/// One measurement: one config × one test, as one JSON object.
///
/// The first block of fields mirrors llama-bench's JSON row (same names, same JSON
/// types); the second block is tessera's. Fields that some producers omit carry
/// `#[serde(default)]`; `n_threads`, `n_prompt`, `n_gen`, `avg_ns` and `avg_ts` are
/// required, since a row without them does not describe a measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchRow {
    #[serde(default = "default_schema_version")]
    pub schema_version: u32,

    // --- fields shared with llama-bench ---
    #[serde(default)]
    pub build_commit: String,
    #[serde(default)]
    pub build_number: i64,
    #[serde(default)]
    pub cpu_info: String,
    #[serde(default)]
    pub gpu_info: String,
    #[serde(default)]
    pub backends: String,
    #[serde(default)]
    pub model_filename: String,
    #[serde(default)]
    pub model_type: String,
    /// Bytes of tensor data.
    #[serde(default)]
    pub model_size: u64,
    #[serde(default)]
    pub model_n_params: u64,
    #[serde(default)]
    pub n_batch: u32,
    #[serde(default)]
    pub n_ubatch: u32,
    pub n_threads: u32,
    #[serde(default)]
    pub type_k: String,
    #[serde(default)]
    pub type_v: String,
    #[serde(default)]
    pub n_gpu_layers: i32,
    pub n_prompt: u32,
    pub n_gen: u32,
    #[serde(default)]
    pub n_depth: u32,
    /// "pp512", "tg128", "pp512+tg128", with " @ d512" when `n_depth` > 0. Upstream
    /// llama-bench omits it; [`BenchRow::from_json`] derives it then.
    #[serde(default)]
    pub test: String,
    /// RFC 3339 UTC, e.g. "2026-11-25T20:15:42Z".
    #[serde(default)]
    pub test_time: String,
    pub avg_ns: u64,
    #[serde(default)]
    pub stddev_ns: u64,
    pub avg_ts: f64,
    #[serde(default)]
    pub stddev_ts: f64,
    #[serde(default)]
    pub samples_ns: Vec<u64>,
    #[serde(default)]
    pub samples_ts: Vec<f64>,

    // --- tessera's own fields ---
    #[serde(default)]
    pub engine: String,
    #[serde(default)]
    pub build_dirty: bool,
    #[serde(default)]
    pub build_features: Vec<String>,
    #[serde(default)]
    pub isa: String,
    #[serde(default)]
    pub isa_requested: String,
    /// How `isa` was chosen when `isa_requested` is `auto` (the calibration and its
    /// timings, or the fixed order); empty for a named ISA.
    #[serde(default)]
    pub isa_reason: String,
    /// "MxNxK".
    #[serde(default)]
    pub tile: String,
    #[serde(default)]
    pub kernels_used: Vec<KernelUse>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub fault: Option<Fault>,
    #[serde(default)]
    pub error: Option<String>,

    // --- sweep, placement and counters (all optional; see results/README.md) ---
    /// The sweep run this row belongs to; empty outside a sweep.
    #[serde(default)]
    pub run_id: String,
    /// Stable hash of the point's configuration and repeat index; how `--resume` and
    /// `merge` recognise a finished point.
    #[serde(default)]
    pub point_key: String,
    /// Which repeat of the point (0-based).
    #[serde(default)]
    pub repeat_index: u32,
    /// Machine fingerprint id from `tessera probe`.
    #[serde(default)]
    pub fingerprint: String,
    /// Effective NUMA memory policy, e.g. "none", "interleave:0-1", "bind:0".
    #[serde(default)]
    pub numa: String,
    /// The pinning requested: "none", "compact", "scatter" or a CPU list.
    #[serde(default)]
    pub pin: String,
    /// CPU of each worker thread in thread order ("0,1"); empty when unpinned.
    #[serde(default)]
    pub cpus: String,
    /// What `counters` covered: "timed-region" or "child-process"; empty without counters.
    #[serde(default)]
    pub counters_scope: String,
    /// Counter name → value (null with a reason when the machine lacks the counter).
    #[serde(default)]
    pub counters: BTreeMap<String, CounterValue>,
    /// Derived metrics (IPC, miss rates, GB/s, % of roofline); null when inputs are missing.
    #[serde(default)]
    pub derived: BTreeMap<String, Option<f64>>,

    // --- profile (only with --profile) ---
    /// The sampled profile; null without `--profile`, and null with `profile_error` saying
    /// why when sampling was asked for but not possible (perf_event_paranoid, containers).
    #[serde(default)]
    pub profile: Option<Profile>,
    /// Why `profile` is null although `--profile` was given.
    #[serde(default)]
    pub profile_error: Option<String>,
}

/// One counter's reading: a count, or null with the reason it could not be counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CounterValue {
    pub value: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl CounterValue {
    pub fn value(v: u64) -> Self {
        CounterValue {
            value: Some(v),
            reason: None,
        }
    }

    pub fn missing(reason: String) -> Self {
        CounterValue {
            value: None,
            reason: Some(reason),
        }
    }
}

fn default_schema_version() -> u32 {
    SCHEMA_VERSION
}

impl Default for BenchRow {
    /// An empty `ok` row of the current schema with llama-bench's default batch sizes
    /// and cache types, the CPU backend and the built-in engine; callers fill the rest
    /// with struct-update syntax.
    fn default() -> Self {
        BenchRow {
            schema_version: SCHEMA_VERSION,
            build_commit: String::new(),
            build_number: 0,
            cpu_info: String::new(),
            gpu_info: String::new(),
            backends: "CPU".to_string(),
            model_filename: String::new(),
            model_type: String::new(),
            model_size: 0,
            model_n_params: 0,
            n_batch: LLAMA_BENCH_DEFAULT_N_BATCH,
            n_ubatch: LLAMA_BENCH_DEFAULT_N_UBATCH,
            n_threads: 0,
            type_k: LLAMA_BENCH_DEFAULT_TYPE_KV.to_string(),
            type_v: LLAMA_BENCH_DEFAULT_TYPE_KV.to_string(),
            n_gpu_layers: 0,
            n_prompt: 0,
            n_gen: 0,
            n_depth: 0,
            test: String::new(),
            test_time: String::new(),
            avg_ns: 0,
            stddev_ns: 0,
            avg_ts: 0.0,
            stddev_ts: 0.0,
            samples_ns: Vec::new(),
            samples_ts: Vec::new(),
            engine: "builtin".to_string(),
            build_dirty: false,
            build_features: Vec::new(),
            isa: String::new(),
            isa_requested: "auto".to_string(),
            isa_reason: String::new(),
            tile: String::new(),
            kernels_used: Vec::new(),
            status: Status::Ok,
            fault: None,
            error: None,
            run_id: String::new(),
            point_key: String::new(),
            repeat_index: 0,
            fingerprint: String::new(),
            numa: String::new(),
            pin: String::new(),
            cpus: String::new(),
            counters_scope: String::new(),
            counters: BTreeMap::new(),
            derived: BTreeMap::new(),
            profile: None,
            profile_error: None,
        }
    }
}

impl BenchRow {
    /// Tokens processed per repetition: `n_prompt + n_gen`, as llama-bench counts them.
    pub fn n_tokens(&self) -> u64 {
        u64::from(self.n_prompt) + u64::from(self.n_gen)
    }

    /// Stores the raw samples and fills every derived timing field from them.
    pub fn set_samples(&mut self, samples_ns: Vec<u64>) {
        let (avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ts) =
            summarize(&samples_ns, self.n_tokens());
        self.avg_ns = avg_ns;
        self.stddev_ns = stddev_ns;
        self.avg_ts = avg_ts;
        self.stddev_ts = stddev_ts;
        self.samples_ts = samples_ts;
        self.samples_ns = samples_ns;
    }

    /// Sets `test` from `n_prompt`, `n_gen` and `n_depth` when it is empty (upstream
    /// llama-bench rows have no `test` field).
    pub fn fill_test_name(&mut self) {
        if self.test.is_empty() {
            self.test = test_name(self.n_prompt, self.n_gen, self.n_depth);
        }
    }

    /// Fills `build_commit`, `build_number` and `build_dirty` from this binary's build.
    pub fn set_build_info(&mut self) {
        let (commit, dirty, number) = build_info();
        self.build_commit = commit.to_string();
        self.build_dirty = dirty;
        self.build_number = number;
    }

    /// The t/s cell of a table: "1160.23 ± 10.11" for an `ok` row, else the status
    /// ("fault: SIGSEGV", "timeout", "error").
    pub fn ts_display(&self) -> String {
        match self.status {
            Status::Ok => format!("{:.2} ± {:.2}", self.avg_ts, self.stddev_ts),
            Status::Fault => match &self.fault {
                Some(fault) => format!("fault: {}", fault.label()),
                None => "fault".to_string(),
            },
            Status::Timeout => "timeout".to_string(),
            Status::Error => "error".to_string(),
        }
    }
}

/// The test name as llama-bench prints it: "pp512", "tg128", "pp512+tg128", with
/// " @ d512" appended when `n_depth` > 0.
pub fn test_name(n_prompt: u32, n_gen: u32, n_depth: u32) -> String {
    let mut name = if n_prompt > 0 && n_gen == 0 {
        format!("pp{n_prompt}")
    } else if n_gen > 0 && n_prompt == 0 {
        format!("tg{n_gen}")
    } else {
        format!("pp{n_prompt}+tg{n_gen}")
    };
    if n_depth > 0 {
        name.push_str(&format!(" @ d{n_depth}"));
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_samples_uses_prompt_plus_gen() {
        let mut row = BenchRow {
            n_prompt: 512,
            n_gen: 128,
            ..BenchRow::default()
        };
        row.set_samples(vec![2_000_000_000, 2_000_000_000]);
        assert_eq!(row.avg_ts, 320.0);
        assert_eq!(row.samples_ts, vec![320.0, 320.0]);
        assert_eq!(row.avg_ns, 2_000_000_000);
        assert_eq!(row.samples_ns.len(), 2);
    }

    #[test]
    fn test_names_follow_llama_bench() {
        assert_eq!(test_name(512, 0, 0), "pp512");
        assert_eq!(test_name(0, 128, 0), "tg128");
        assert_eq!(test_name(512, 128, 0), "pp512+tg128");
        assert_eq!(test_name(512, 0, 4096), "pp512 @ d4096");
        assert_eq!(test_name(0, 128, 512), "tg128 @ d512");
        assert_eq!(test_name(0, 0, 0), "pp0+tg0");
    }

    #[test]
    fn status_serializes_lowercase() {
        for (s, name) in [
            (Status::Ok, "\"ok\""),
            (Status::Fault, "\"fault\""),
            (Status::Timeout, "\"timeout\""),
            (Status::Error, "\"error\""),
        ] {
            assert_eq!(serde_json::to_string(&s).unwrap(), name);
            assert_eq!(serde_json::from_str::<Status>(name).unwrap(), s);
        }
        assert!(serde_json::from_str::<Status>("\"crashed\"").is_err());
    }

    #[test]
    fn fields_list_matches_serialization_order() {
        let json = serde_json::to_string(&BenchRow::default()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let obj = value.as_object().unwrap();
        assert_eq!(obj.len(), FIELDS.len());
        let mut last = 0;
        for field in FIELDS {
            let pos = json
                .find(&format!("\"{field}\":"))
                .unwrap_or_else(|| panic!("{field} missing"));
            assert!(pos >= last, "{field} out of order");
            last = pos;
        }
        for field in STRING_FIELDS {
            assert!(FIELDS.contains(field), "{field}");
            let v = &obj[*field];
            assert!(v.is_string() || v.is_null(), "{field} is {v}");
        }
    }

    #[test]
    fn fault_labels() {
        let mut f = Fault {
            class: "cuda".into(),
            ..Fault::default()
        };
        assert_eq!(f.label(), "cuda");
        f.signal = Some(6);
        assert_eq!(f.label(), "SIGABRT");
        let f = Fault {
            exit_code: Some(3),
            ..Fault::default()
        };
        assert_eq!(f.label(), "exit 3");
        assert_eq!(signal_name(99), "signal 99");
        let row = BenchRow {
            status: Status::Timeout,
            ..BenchRow::default()
        };
        assert_eq!(row.ts_display(), "timeout");
    }
}
