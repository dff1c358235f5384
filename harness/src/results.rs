//! The result row: one JSON object per measurement, shaped so that tools reading
//! llama-bench's JSON read ours, plus the statistics that fill its timing fields.
//!
//! Field names and JSON types follow llama-bench wherever the meaning is the same;
//! tessera's own fields come after them. `results/README.md` documents every field.
//! Reading is lenient on purpose: unknown fields are ignored (llama.cpp and
//! ik_llama.cpp add different ones) and fields that some producers omit default, so
//! a llama-bench row deserializes into [`BenchRow`] as it is.

use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

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

    /// Parses one row (ours or llama-bench's) and derives `test` when absent.
    pub fn from_json(json: &str) -> Result<BenchRow, RowError> {
        Self::parse_object(json).map(|(_, row)| row)
    }

    /// Like [`BenchRow::from_json`], also returning the object's fields as written.
    pub fn parse_object(
        json: &str,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, BenchRow), RowError> {
        let value: serde_json::Value = serde_json::from_str(json).map_err(RowError::NotJson)?;
        let row = Self::from_value_ref(&value)?;
        match value {
            serde_json::Value::Object(fields) => Ok((fields, row)),
            _ => Ok((serde_json::Map::new(), row)),
        }
    }

    /// Like [`BenchRow::from_json`], from an already parsed value.
    pub fn from_value(value: serde_json::Value) -> Result<BenchRow, RowError> {
        Self::from_value_ref(&value)
    }

    /// The row of a JSON object. A `schema_version` above [`SCHEMA_VERSION`] is refused
    /// before anything else is read: its fields may mean something else now.
    pub fn from_value_ref(value: &serde_json::Value) -> Result<BenchRow, RowError> {
        let Some(fields) = value.as_object() else {
            return Err(RowError::NotARow(serde::de::Error::custom(
                "not a JSON object",
            )));
        };
        if let Some(v) = fields.get("schema_version").and_then(|v| v.as_u64())
            && v > u64::from(SCHEMA_VERSION)
        {
            return Err(RowError::NewerSchema(v));
        }
        let mut row = BenchRow::deserialize(value).map_err(RowError::NotARow)?;
        row.fill_test_name();
        Ok(row)
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

/// Why a row could not be read.
#[derive(Debug)]
pub enum RowError {
    /// The text is not JSON (a torn or damaged line).
    NotJson(serde_json::Error),
    /// JSON, but not a result row: not an object, a required field missing, a wrong type.
    NotARow(serde_json::Error),
    /// A row of a newer, unknown schema: refused rather than misread.
    NewerSchema(u64),
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::NotJson(e) => {
                // serde_json says "at line 1 column 31" of the text it was given, which is
                // one line of a file whose own line number the reader prints.
                let text = e.to_string();
                let what = text
                    .strip_suffix(&format!(" at line {} column {}", e.line(), e.column()))
                    .unwrap_or(&text);
                match e.line() {
                    0 => write!(f, "not JSON ({what})"),
                    1 => write!(f, "not JSON at column {} ({what})", e.column()),
                    l => write!(f, "not JSON at line {l}, column {} ({what})", e.column()),
                }
            }
            RowError::NotARow(e) => write!(f, "not a result row ({e})"),
            RowError::NewerSchema(v) => write!(
                f,
                "schema_version {v} is newer than this tessera reads (schema_version {SCHEMA_VERSION}); \
                 read it with a newer tessera"
            ),
        }
    }
}

impl std::error::Error for RowError {}

impl RowError {
    /// Whether a reader may skip the row (with a warning) and go on: true for damaged or
    /// foreign lines, false for a newer schema, which must not be half-read.
    pub fn is_skippable(&self) -> bool {
        !matches!(self, RowError::NewerSchema(_))
    }
}

/// One row read from a results file: the 1-based line (or record) it came from, the
/// fields exactly as the file wrote them (so a reader can tell "absent" from "default"),
/// and the row.
#[derive(Debug, Clone)]
pub struct ReadRow {
    pub line: usize,
    pub fields: serde_json::Map<String, serde_json::Value>,
    pub row: BenchRow,
}

/// A line (or CSV record) that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub line: usize,
    pub reason: String,
}

/// The rows of a results file and the lines skipped as unreadable.
#[derive(Debug, Clone, Default)]
pub struct ReadRows {
    pub rows: Vec<ReadRow>,
    pub skipped: Vec<Skipped>,
}

/// At most this many skipped lines are named one by one; the rest are counted.
const MAX_SKIP_WARNINGS: usize = 10;

impl ReadRows {
    /// Prints [`warn_skipped`]'s warnings for this file.
    pub fn warn(&self, source: &Path) {
        warn_skipped(source, &self.skipped);
    }

    /// The rows alone.
    pub fn into_rows(self) -> Vec<BenchRow> {
        self.rows.into_iter().map(|r| r.row).collect()
    }
}

/// Prints one warning line per skipped line, naming `source` and the line ("tessera:
/// warning: runs/x/results.jsonl line 6: not JSON (...); line skipped"), then a count
/// once ten are out, so a file of garbage stays readable.
pub fn warn_skipped(source: &Path, skipped: &[Skipped]) {
    for s in skipped.iter().take(MAX_SKIP_WARNINGS) {
        eprintln!(
            "tessera: warning: {} line {}: {}; line skipped",
            source.display(),
            s.line,
            s.reason
        );
    }
    if skipped.len() > MAX_SKIP_WARNINGS {
        eprintln!(
            "tessera: warning: {}: {} more unreadable lines skipped",
            source.display(),
            skipped.len() - MAX_SKIP_WARNINGS
        );
    }
}

/// Parses JSON Lines rows (ours or llama-bench `-o jsonl`). This is the one policy for
/// damaged results files, shared by every command that reads them (`sweep --resume`,
/// `merge`, `compare`, `report`, `history add`, `nightly`): blank lines are ignored; a
/// line that is not JSON or not a result row (a torn write, a stray log line) is skipped
/// and listed in [`ReadRows::skipped`], never deleted from the file; a row of a newer
/// schema is an error naming its line, since it cannot be read correctly. Errors are
/// otherwise only I/O.
pub fn parse_jsonl(reader: impl BufRead) -> anyhow::Result<ReadRows> {
    let mut out = ReadRows::default();
    for (i, line) in reader.split(b'\n').enumerate() {
        let line_no = i + 1;
        let bytes = line.with_context(|| format!("reading line {line_no}"))?;
        let text = String::from_utf8_lossy(&bytes);
        if text.trim().is_empty() {
            continue;
        }
        match BenchRow::parse_object(&text) {
            Ok((fields, row)) => out.rows.push(ReadRow {
                line: line_no,
                fields,
                row,
            }),
            Err(e) if e.is_skippable() => out.skipped.push(Skipped {
                line: line_no,
                reason: e.to_string(),
            }),
            Err(e) => return Err(e).with_context(|| format!("line {line_no}")),
        }
    }
    Ok(out)
}

/// [`parse_jsonl`]'s rows alone, without printing its warnings.
pub fn read_jsonl(reader: impl BufRead) -> anyhow::Result<Vec<BenchRow>> {
    Ok(parse_jsonl(reader)?.into_rows())
}

/// Reads a JSONL results file by [`parse_jsonl`]'s policy, printing its warnings.
pub fn read_jsonl_file(path: &Path) -> anyhow::Result<Vec<BenchRow>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("reading '{}'", path.display()))?;
    let read = parse_jsonl(std::io::BufReader::new(file))
        .with_context(|| format!("in '{}'", path.display()))?;
    read.warn(path);
    Ok(read.into_rows())
}

/// Summary statistics of one test's repetitions, computed as llama-bench does:
/// `samples_ts[i] = n_tokens * 1e9 / samples_ns[i]`, `avg_ts` is the mean of
/// `samples_ts` (not `n_tokens / avg_ns`), standard deviations are sample standard
/// deviations (n − 1; 0 for fewer than two samples). `avg_ns` and `stddev_ns` are
/// rounded to the nearest integer (llama-bench truncates in integer arithmetic; the
/// difference is below a nanosecond).
///
/// A 0 ns sample (a broken clock) gives 0 t/s rather than infinity, which JSON cannot
/// carry.
///
/// Returns `(avg_ns, stddev_ns, avg_ts, stddev_ts, samples_ts)`.
pub fn summarize(samples_ns: &[u64], n_tokens: u64) -> (u64, u64, f64, f64, Vec<f64>) {
    let samples_ts: Vec<f64> = samples_ns
        .iter()
        .map(|&ns| {
            if ns == 0 {
                0.0
            } else {
                n_tokens as f64 * 1e9 / ns as f64
            }
        })
        .collect();
    let ns: Vec<f64> = samples_ns.iter().map(|&x| x as f64).collect();
    let (avg_ns, stddev_ns) = mean_stddev(&ns);
    let (avg_ts, stddev_ts) = mean_stddev(&samples_ts);
    (
        round_to_u64(avg_ns),
        round_to_u64(stddev_ns),
        avg_ts,
        stddev_ts,
        samples_ts,
    )
}

/// Mean and sample standard deviation by `crate::stats` (two-pass, so large equal values
/// give exactly 0), with llama-bench's values for too few samples: 0 where there is none.
fn mean_stddev(v: &[f64]) -> (f64, f64) {
    (
        crate::stats::mean(v).unwrap_or(0.0),
        crate::stats::stddev(v).unwrap_or(0.0),
    )
}

fn round_to_u64(x: f64) -> u64 {
    // `as` saturates and maps NaN to 0, so no input can panic here.
    x.round() as u64
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

/// Linux signal number → name ("SIGSEGV", from the `nix` crate's table; real-time
/// signals "SIGRTMIN" and "SIGRTMIN+N", which nix does not name); other numbers give
/// "signal N" (32 and 33, which glibc keeps for itself, among them).
pub fn signal_name(sig: i32) -> String {
    match sig {
        34 => "SIGRTMIN".to_string(),
        35..=MAX_SIGNAL => format!("SIGRTMIN+{}", sig - 34),
        _ => nix::sys::signal::Signal::try_from(sig)
            .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_string()),
    }
}

/// The highest Linux signal number (SIGRTMAX).
pub const MAX_SIGNAL: i32 = 64;

/// The signal a shell reports as exit code 128+N: `sh -c CMD` whose command was killed by
/// signal N exits 128+N, and so do most wrappers. `None` outside 129..=192. Every
/// classifier (sweep rows, bisect runs) maps exit codes through this one function.
pub fn signal_of_shell_exit(code: i32) -> Option<i32> {
    let sig = code.checked_sub(128)?;
    (1..=MAX_SIGNAL).contains(&sig).then_some(sig)
}

/// This binary's build: `(commit, dirty, number)` = short git hash of HEAD ("unknown"
/// outside git), whether tracked files differed from HEAD at build time, and the
/// commit count of HEAD (0 when unknown). Set by `harness/build.rs`.
pub fn build_info() -> (&'static str, bool, i64) {
    let commit = option_env!("TESSERA_BUILD_COMMIT").unwrap_or("unknown");
    let dirty = option_env!("TESSERA_BUILD_DIRTY") == Some("true");
    let number = option_env!("TESSERA_BUILD_NUMBER")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (commit, dirty, number)
}

/// Asserts that rows read back equal the rows written. Floats must match exactly
/// when serde_json parses them exactly (its `float_roundtrip` feature); without it,
/// serde_json's fast parser may land one ulp off, so they must agree to 1e-15.
#[cfg(test)]
pub(crate) fn assert_rows_match(got: &[BenchRow], want: &[BenchRow]) {
    let exact = serde_json::from_str::<f64>("1160.9977324263039").ok() == Some(1160.9977324263039);
    let near = |a: f64, b: f64| exact && a == b || !exact && (a - b).abs() <= 1e-15 * b.abs();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!(
            near(g.avg_ts, w.avg_ts),
            "avg_ts {} != {}",
            g.avg_ts,
            w.avg_ts
        );
        assert!(
            near(g.stddev_ts, w.stddev_ts),
            "stddev_ts {} != {}",
            g.stddev_ts,
            w.stddev_ts
        );
        assert_eq!(g.samples_ts.len(), w.samples_ts.len());
        for (a, b) in g.samples_ts.iter().zip(&w.samples_ts) {
            assert!(near(*a, *b), "samples_ts {a} != {b}");
        }
        let g = BenchRow {
            avg_ts: w.avg_ts,
            stddev_ts: w.stddev_ts,
            samples_ts: w.samples_ts.clone(),
            ..g.clone()
        };
        assert_eq!(&g, w);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn summarize_two_samples() {
        // 100 tokens in 1 s and in 2 s: 100 t/s and 50 t/s.
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) = summarize(&[1_000_000_000, 2_000_000_000], 100);
        assert_eq!(ts, vec![100.0, 50.0]);
        assert_eq!(avg_ns, 1_500_000_000);
        // sqrt((0.5e9² + 0.5e9²) / 1) = 0.5e9·√2 = 707106781.19
        assert_eq!(sd_ns, 707_106_781);
        assert_eq!(avg_ts, 75.0);
        // sqrt((25² + 25²) / 1) = 25·√2
        assert!(close(sd_ts, 25.0 * 2f64.sqrt()), "{sd_ts}");
    }

    #[test]
    fn summarize_three_samples() {
        // 200 tokens in 0.4 s, 0.5 s, 0.8 s: 500, 400, 250 t/s.
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) =
            summarize(&[400_000_000, 500_000_000, 800_000_000], 200);
        assert_eq!(ts, vec![500.0, 400.0, 250.0]);
        // mean 1150/3 = 383.33..; squared deviations 13611.1 + 277.8 + 17777.8 =
        // 31666.67, / 2 = 15833.33, sqrt = 125.8305739...
        assert!(close(avg_ts, 1150.0 / 3.0), "{avg_ts}");
        assert!(close(sd_ts, (95000.0f64 / 6.0).sqrt()), "{sd_ts}");
        assert!((sd_ts - 125.830_573_9).abs() < 1e-6, "{sd_ts}");
        // mean 1.7e9/3 = 566666666.67 → 566666667; deviations −166.67M, −66.67M,
        // +233.33M; (27777.8 + 4444.4 + 54444.4)e12 / 2 = 43333.3e12 → 208166599.95
        assert_eq!(avg_ns, 566_666_667);
        assert_eq!(sd_ns, 208_166_600);
        // avg_ts is the mean of the rates, not n_tokens / avg_ns (= 352.94).
        assert!((avg_ts - 200.0 * 1e9 / avg_ns as f64).abs() > 1.0);
    }

    #[test]
    fn summarize_edge_cases() {
        assert_eq!(summarize(&[], 512), (0, 0, 0.0, 0.0, vec![]));
        let (avg_ns, sd_ns, avg_ts, sd_ts, ts) = summarize(&[250_000_000], 128);
        assert_eq!((avg_ns, sd_ns, avg_ts, sd_ts), (250_000_000, 0, 512.0, 0.0));
        assert_eq!(ts, vec![512.0]);
        // Equal samples give exactly zero spread; a zero sample gives 0 t/s, not inf.
        let (_, sd_ns, _, sd_ts, _) = summarize(&[u64::MAX / 2, u64::MAX / 2], 1);
        assert_eq!((sd_ns, sd_ts), (0, 0.0));
        let (_, _, avg_ts, _, ts) = summarize(&[0, 1_000_000_000], 10);
        assert_eq!(ts, vec![0.0, 10.0]);
        assert!(avg_ts.is_finite());
    }

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
    fn json_round_trip() {
        let mut row = BenchRow {
            model_type: "llama 150M Q4_0".into(),
            n_threads: 2,
            n_prompt: 512,
            test: "pp512".into(),
            isa: "avx512".into(),
            tile: "16x16x32".into(),
            kernels_used: vec![KernelUse {
                op: "mul_mat".into(),
                isa: "avx512".into(),
                kernel: "gemm_q4_0_q8_0".into(),
                tile: "16x16x32".into(),
                calls: 4096,
                ..KernelUse::default()
            }],
            ..BenchRow::default()
        };
        row.set_samples(vec![441_000_000, 452_000_000, 437_000_000]);
        let json = serde_json::to_string(&row).unwrap();
        assert_rows_match(
            &[BenchRow::from_json(&json).unwrap()],
            std::slice::from_ref(&row),
        );

        let fault = BenchRow {
            status: Status::Fault,
            fault: Some(Fault {
                class: "signal".into(),
                signal: Some(11),
                exit_code: None,
                message: "Segmentation fault".into(),
                stderr_tail: "...".into(),
            }),
            ..row.clone()
        };
        let json = serde_json::to_string(&fault).unwrap();
        assert!(json.contains("\"status\":\"fault\""));
        assert_rows_match(
            &[BenchRow::from_json(&json).unwrap()],
            std::slice::from_ref(&fault),
        );
        assert_eq!(fault.ts_display(), "fault: SIGSEGV");
    }

    /// A row as ik_llama.cpp's `llama-bench -o json` writes it, with fields we do not
    /// model (`cpu_mask`, `poll`, ...).
    const LLAMA_BENCH_ROW: &str = r#"{
    "build_commit": "2f5c5e9f",
    "build_number": 3610,
    "cpu_info": "AMD EPYC 9B14",
    "gpu_info": "",
    "backends": "CPU",
    "model_filename": "/models/llama-150m-q4_0.gguf",
    "model_type": "llama 150M Q4_0",
    "model_size": 87662592,
    "model_n_params": 151000000,
    "n_batch": 2048,
    "n_ubatch": 512,
    "n_threads": 2,
    "cpu_mask": "0x0",
    "cpu_strict": false,
    "poll": 50,
    "type_k": "f16",
    "type_v": "f16",
    "n_gpu_layers": 99,
    "split_mode": "layer",
    "main_gpu": 0,
    "no_kv_offload": false,
    "flash_attn": false,
    "tensor_split": "0.00",
    "use_mmap": true,
    "embeddings": false,
    "n_prompt": 512,
    "n_gen": 0,
    "n_depth": 0,
    "test": "pp512",
    "test_time": "2026-11-25T20:15:42Z",
    "avg_ns": 443333333,
    "stddev_ns": 7767453,
    "avg_ts": 1155.121936,
    "stddev_ts": 20.095611,
    "samples_ns": [ 441000000, 452000000, 437000000 ],
    "samples_ts": [ 1160.9977, 1132.74, 1171.62 ]
  }"#;

    #[test]
    fn llama_bench_row_deserializes_ignoring_unknown_fields() {
        let row = BenchRow::from_json(LLAMA_BENCH_ROW).unwrap();
        assert_eq!(row.build_commit, "2f5c5e9f");
        assert_eq!(row.build_number, 3610);
        assert_eq!(row.model_size, 87_662_592);
        assert_eq!(row.n_gpu_layers, 99);
        assert_eq!(row.test, "pp512");
        assert_eq!(row.avg_ns, 443_333_333);
        assert_eq!(row.samples_ns, vec![441_000_000, 452_000_000, 437_000_000]);
        assert_eq!(row.samples_ts.len(), 3);
        // tessera-only fields take their defaults.
        assert_eq!(row.schema_version, SCHEMA_VERSION);
        assert_eq!(row.status, Status::Ok);
        assert!(row.kernels_used.is_empty());
        assert!(row.fault.is_none());
        assert_eq!(row.engine, "");
    }

    #[test]
    fn upstream_row_without_test_field_gets_a_derived_name() {
        let mut value: serde_json::Value = serde_json::from_str(LLAMA_BENCH_ROW).unwrap();
        let obj = value.as_object_mut().unwrap();
        obj.remove("test");
        obj.insert("n_gen".into(), 128.into());
        obj.insert("n_depth".into(), 512.into());
        let row = BenchRow::from_value(value).unwrap();
        assert_eq!(row.test, "pp512+tg128 @ d512");
    }

    #[test]
    fn rows_missing_required_fields_are_errors_not_panics() {
        assert!(BenchRow::from_json(r#"{"n_prompt": 512}"#).is_err());
        assert!(BenchRow::from_json("[1, 2]").is_err());
        assert!(
            BenchRow::from_json(
                r#"{"n_threads": -1, "n_prompt": 1, "n_gen": 0, "avg_ns": 1, "avg_ts": 1.0}"#
            )
            .is_err()
        );
        let minimal =
            r#"{"n_threads": 4, "n_prompt": 0, "n_gen": 128, "avg_ns": 1, "avg_ts": 2.5}"#;
        let row = BenchRow::from_json(minimal).unwrap();
        assert_eq!(row.test, "tg128");
    }

    fn row_line(n_prompt: u32) -> String {
        serde_json::to_string(&BenchRow {
            n_prompt,
            ..BenchRow::default()
        })
        .unwrap()
    }

    #[test]
    fn jsonl_reader_skips_unreadable_lines_and_names_them() {
        let good = row_line(512);
        let text = format!("{good}\n\n{good}\n");
        let read = parse_jsonl(text.as_bytes()).unwrap();
        assert_eq!(read.rows.len(), 2);
        assert_eq!(read.rows[1].line, 3);
        assert!(read.skipped.is_empty());
        // A line torn in the middle of the file (it kept its newline), a torn last line,
        // JSON that is not a row, and invalid UTF-8: skipped by line number, rows kept.
        let mut text =
            format!("{good}\n{}\n{good}\n{{\"n_prompt\": 1}}\n", &good[..20]).into_bytes();
        text.extend_from_slice(b"\xff\xfe\n");
        text.extend_from_slice(&good.as_bytes()[..30]);
        let read = parse_jsonl(&text[..]).unwrap();
        assert_eq!(read.rows.len(), 2);
        let lines: Vec<usize> = read.skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [2, 4, 5, 6]);
        assert!(
            read.skipped[0].reason.starts_with("not JSON"),
            "{:?}",
            read.skipped
        );
        assert!(
            read.skipped[1].reason.starts_with("not a result row"),
            "{:?}",
            read.skipped
        );
    }

    #[test]
    fn rows_of_a_newer_schema_are_refused_naming_both_versions() {
        let mut v: serde_json::Value = serde_json::from_str(&row_line(8)).unwrap();
        v["schema_version"] = 99.into();
        let line = v.to_string();
        let e = BenchRow::from_json(&line).unwrap_err();
        assert!(!e.is_skippable());
        assert_eq!(
            e.to_string(),
            "schema_version 99 is newer than this tessera reads (schema_version 1); read it with a newer tessera"
        );
        let text = format!("{}\n{line}\n", row_line(8));
        let err = format!("{:#}", parse_jsonl(text.as_bytes()).unwrap_err());
        assert!(err.starts_with("line 2: schema_version 99"), "{err}");
        // The current version and an absent one read fine.
        v["schema_version"] = 1.into();
        assert!(BenchRow::from_value(v.clone()).is_ok());
        v.as_object_mut().unwrap().remove("schema_version");
        assert_eq!(
            BenchRow::from_value(v).unwrap().schema_version,
            SCHEMA_VERSION
        );
    }

    #[test]
    fn shell_exit_codes_map_to_every_valid_signal() {
        assert_eq!(signal_of_shell_exit(139), Some(11));
        assert_eq!(signal_of_shell_exit(130), Some(2));
        assert_eq!(signal_of_shell_exit(129), Some(1));
        assert_eq!(signal_of_shell_exit(192), Some(64));
        for code in [-1, 0, 1, 2, 127, 128, 193, 255, i32::MIN, i32::MAX] {
            assert_eq!(signal_of_shell_exit(code), None, "{code}");
        }
        assert_eq!(signal_name(11), "SIGSEGV");
        assert_eq!(signal_name(34), "SIGRTMIN");
        assert_eq!(signal_name(64), "SIGRTMIN+30");
        assert_eq!(signal_name(65), "signal 65");
        // Every standard Linux signal has its name; glibc's own 32 and 33 do not.
        for sig in 1..=31 {
            assert!(signal_name(sig).starts_with("SIG"), "{sig}");
        }
        assert_eq!(signal_name(16), "SIGSTKFLT");
        assert_eq!(signal_name(30), "SIGPWR");
        assert_eq!(signal_name(32), "signal 32");
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

    #[test]
    fn build_info_is_set_by_build_script() {
        let (commit, _dirty, number) = build_info();
        assert!(!commit.is_empty());
        assert!(number >= 0);
        assert_eq!(
            option_env!("TESSERA_BUILD_DIRTY").is_some(),
            option_env!("TESSERA_BUILD_COMMIT").is_some()
        );
    }
}
