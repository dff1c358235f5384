//! Seeded, time-bounded mutation fuzzing of the GGUF reader: mutated valid files must give
//! an error or a file whose every tensor lies inside it; never a panic.

mod gguf_common;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use tessera_engine::gguf::{GgufFile, GgufWriter, Value, ValueType};
use tessera_engine::rng::Rng;
use tessera_engine::synth::{Shape, SynthSpec, write_to};
use tessera_kernels::GgmlType;

const TIME_BUDGET: Duration = Duration::from_secs(2);
const MAX_ITERATIONS: u64 = 20_000;

/// Valid files to start from, each with the size of its header (where mutations matter
/// most: the data section is opaque bytes).
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let mut files = vec![("small", gguf_common::small_file())];

    let mut w = GgufWriter::new(64);
    w.add_kv("general.architecture", "llama");
    w.add_kv("n", Value::U64(3));
    w.add_kv("f", Value::F32(0.5));
    w.add_kv("b", Value::Bool(true));
    w.add_kv(
        "nested",
        Value::Array(
            ValueType::Array,
            vec![
                Value::Array(ValueType::String, vec!["x".into(), "yz".into()]),
                Value::Array(ValueType::I16, vec![Value::I16(-1)]),
            ],
        ),
    );
    w.add_tensor("q", &[64, 2], GgmlType::Q4_0);
    w.add_tensor("h", &[3, 2, 2], GgmlType::F16);
    w.add_tensor("k", &[256], GgmlType::Q4_K);
    let mut bytes = Vec::new();
    w.write(&mut bytes, |i, t, buf| {
        buf.resize(t.size as usize, i as u8 + 1);
        Ok(())
    })
    .unwrap();
    files.push(("writer", bytes));

    // A synthetic llama model, small enough to copy thousands of times.
    let spec = SynthSpec {
        shape: Shape {
            n_vocab: 264,
            n_embd: 64,
            n_layer: 1,
            n_head: 4,
            n_head_kv: 2,
            n_ff: 96,
            n_ctx_train: 128,
            rope_freq_base: 10_000.0,
            rms_eps: 1e-5,
        },
        ty: GgmlType::Q4_0,
        seed: 3,
        tie_output: false,
    };
    let mut model = Vec::new();
    write_to(&mut model, &spec).unwrap();
    files.push(("synth-q4_0", model));
    files
}

const U64_EDGES: [u64; 12] = [
    0,
    1,
    7,
    31,
    0x7FFF_FFFF,
    0xFFFF_FFFF,
    1 << 32,
    1 << 40,
    1 << 63,
    u64::MAX - 7,
    u64::MAX,
    0x8000_0000,
];
const U32_EDGES: [u32; 9] = [0, 1, 4, 5, 9, 13, 99, 0x8000_0000, u32::MAX];

/// A position, usually inside the header (the first `hot` bytes).
fn pos(rng: &mut Rng, len: usize, hot: usize) -> usize {
    let span = if rng.below(10) < 9 { hot.min(len) } else { len };
    rng.below(span.max(1) as u64) as usize
}

/// Applies one random mutation and says which.
fn mutate(rng: &mut Rng, b: &mut Vec<u8>, hot: usize, donors: &[(&str, Vec<u8>)]) -> String {
    if b.is_empty() {
        b.push(0);
        return "grow".into();
    }
    let at = pos(rng, b.len(), hot);
    match rng.below(8) {
        0 => {
            let bit = rng.below(8);
            b[at] ^= 1 << bit;
            format!("flip bit {bit} at {at}")
        }
        1 => {
            let v = [0x00, 0xFF, 0x7F, 0x80][rng.below(4) as usize];
            b[at] = v;
            format!("byte {v:#x} at {at}")
        }
        2 => {
            let v = U64_EDGES[rng.below(U64_EDGES.len() as u64) as usize];
            let v = if rng.below(4) == 0 {
                (b.len() - at) as u64
            } else {
                v
            };
            let end = (at + 8).min(b.len());
            b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            format!("u64 {v} at {at}")
        }
        3 => {
            let v = U32_EDGES[rng.below(U32_EDGES.len() as u64) as usize];
            let end = (at + 4).min(b.len());
            b[at..end].copy_from_slice(&v.to_le_bytes()[..end - at]);
            format!("u32 {v} at {at}")
        }
        4 => {
            let len = rng.below(b.len() as u64) as usize;
            b.truncate(len);
            format!("truncate to {len}")
        }
        5 => {
            // Splice: copy a run from a donor over this file, or insert it.
            let (name, donor) = &donors[rng.below(donors.len() as u64) as usize];
            let from = pos(rng, donor.len(), hot);
            let n = (rng.below(64) as usize + 1).min(donor.len() - from);
            let chunk = &donor[from..from + n];
            if rng.below(2) == 0 {
                let end = (at + n).min(b.len());
                b[at..end].copy_from_slice(&chunk[..end - at]);
                format!("overwrite {n} bytes of {name}@{from} at {at}")
            } else {
                b.splice(at..at, chunk.iter().copied());
                format!("insert {n} bytes of {name}@{from} at {at}")
            }
        }
        6 => {
            let n = (rng.below(16) as usize + 1).min(b.len() - at);
            b.drain(at..at + n);
            format!("delete {n} bytes at {at}")
        }
        _ => {
            // Duplicate a run in place: repeated keys and tensor infos.
            let n = (rng.below(48) as usize + 1).min(b.len() - at);
            let chunk = b[at..at + n].to_vec();
            b.splice(at..at, chunk);
            format!("repeat {n} bytes at {at}")
        }
    }
}

/// Parses and, on success, uses everything a loader would.
fn exercise(bytes: Vec<u8>) -> Result<(), String> {
    let f = GgufFile::from_bytes(bytes).map_err(|e| {
        let msg = e.to_string();
        assert!(!msg.is_empty() && !msg.contains('\n'), "message: {msg:?}");
        let debug = format!("{e:?}");
        debug
            .split([' ', '{', '('])
            .next()
            .unwrap_or_default()
            .to_owned()
    })?;
    for t in &f.tensors {
        let end = f.data_offset + t.offset + t.size;
        assert!(
            end <= f.file_size(),
            "{} ends at {end} > {}",
            t.name,
            f.file_size()
        );
        assert_eq!(f.tensor_data(t).len() as u64, t.size, "{}", t.name);
        assert_eq!(t.offset % f.alignment, 0);
    }
    for (k, _) in &f.metadata {
        let _ = (f.get_u64(k), f.get_f32(k), f.get_str(k));
    }
    Ok(())
}

#[test]
fn mutated_files_never_panic_and_ok_results_stay_in_bounds() {
    let corpus = corpus();
    let hot: Vec<usize> = corpus
        .iter()
        .map(|(_, b)| GgufFile::from_bytes(b.clone()).unwrap().data_offset as usize)
        .collect();
    let mut rng = Rng::new(0x5EED_6675);
    let start = Instant::now();
    let mut iterations = 0u64;
    let mut oks = 0u64;
    let mut kinds: BTreeMap<String, u64> = BTreeMap::new();
    while iterations < MAX_ITERATIONS && start.elapsed() < TIME_BUDGET {
        iterations += 1;
        let which = rng.below(corpus.len() as u64) as usize;
        let mut bytes = corpus[which].1.clone();
        let mut steps = Vec::new();
        for _ in 0..=rng.below(3) {
            steps.push(mutate(&mut rng, &mut bytes, hot[which], &corpus));
        }
        let input = bytes.clone();
        match catch_unwind(AssertUnwindSafe(|| exercise(bytes))) {
            Ok(Ok(())) => oks += 1,
            Ok(Err(kind)) => *kinds.entry(kind).or_default() += 1,
            Err(_) => {
                let dump =
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gguf_fuzz_crash.gguf");
                let _ = std::fs::write(&dump, &input);
                panic!(
                    "iteration {iterations} on '{}' after {steps:?} panicked; input saved to {}",
                    corpus[which].0,
                    dump.display()
                );
            }
        }
    }
    eprintln!(
        "gguf fuzz: {iterations} iterations in {:.2?}, {oks} parsed, {} error kinds: {kinds:?}",
        start.elapsed(),
        kinds.len()
    );
    assert!(iterations >= 200, "only {iterations} iterations ran");
    // The mutations must reach past the first checks: both outcomes, many error kinds.
    assert!(oks > 0, "no mutated file parsed");
    assert!(
        kinds.len() >= 8,
        "only {} error kinds: {kinds:?}",
        kinds.len()
    );
}
