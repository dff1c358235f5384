//! The result row: one JSON object per measurement, shaped so that tools reading
//! llama-bench's JSON read ours; its schema, its readers, and what fills its derived fields.
//!
//! - `schema`: [`BenchRow`] and its field types, the field lists, llama-bench's defaults.
//! - `read`: the reading policy every format shares (a row from a JSON object, a newer
//!   schema refused, damaged lines skipped and named).
//! - `jsonl`, `csv`: the JSON Lines reader and row writer, and the CSV reader (ours or
//!   llama-bench's; CSV is written by `export`).
//! - `timing`: the timing fields from raw samples, by llama-bench's rules.
//! - `signal`: signal names and the shell exit code → signal mapping.
//! - `build`: this binary's build info.
//!
//! Every item is re-exported here, so `crate::results::X` is the one path to use.

mod build;
mod csv;
mod jsonl;
mod read;
mod schema;
mod signal;
mod timing;

pub use build::build_info;
pub use csv::{parse_csv, read_csv};
pub use jsonl::{parse_jsonl, read_jsonl, read_jsonl_file, write_row};
#[cfg(test)]
pub(crate) use read::assert_rows_match;
pub use read::{ReadRow, ReadRows, RowError, Skipped, warn_skipped};
pub use schema::{
    BenchRow, CounterValue, FIELDS, Fault, KernelUse, LLAMA_BENCH_DEFAULT_N_BATCH,
    LLAMA_BENCH_DEFAULT_N_UBATCH, LLAMA_BENCH_DEFAULT_TYPE_KV, Profile, ProfileSymbol,
    SCHEMA_VERSION, STRING_FIELDS, Status, test_name,
};
pub use signal::{MAX_SIGNAL, signal_name, signal_of_shell_exit};
pub use timing::summarize;
