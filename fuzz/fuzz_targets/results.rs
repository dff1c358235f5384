//! The result readers on arbitrary text: tessera's JSONL and CSV readers and `compare`'s
//! loader of every dialect (a JSON array as llama-bench writes, JSON Lines, CSV). Errors
//! are fine; panics are not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = tessera::results::read_jsonl(data);
    let _ = tessera::export::read_csv(data);
    let text = String::from_utf8_lossy(data);
    for name in ["rows.json", "rows.jsonl", "rows.csv"] {
        let _ = tessera::compare::load::parse_rows(&text, std::path::Path::new(name));
    }
});
