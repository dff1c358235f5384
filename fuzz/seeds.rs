//! Writes the seed corpora: small valid GGUF files from tessera's synthesizer (every weight
//! type, tied and untied) for `gguf`, and result files in every dialect for `results`.
//! usage: seeds CORPUS_DIR   (writes CORPUS_DIR/gguf/* and CORPUS_DIR/results/*)

use std::path::PathBuf;

use tessera_engine::synth::{Shape, SynthSpec, write_to};
use tessera_kernels::GgmlType;

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: seeds CORPUS_DIR"));
    let g = dir.join("gguf");
    let r = dir.join("results");
    std::fs::create_dir_all(&g).unwrap();
    std::fs::create_dir_all(&r).unwrap();
    let shape = Shape {
        n_vocab: 260,
        n_embd: 32,
        n_layer: 1,
        n_head: 2,
        n_head_kv: 1,
        n_ff: 64,
        n_ctx_train: 64,
        rope_freq_base: 10000.0,
        rms_eps: 1e-5,
    };
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0, GgmlType::Q4_0] {
        for tie in [false, true] {
            let spec = SynthSpec {
                shape: shape.clone(),
                ty,
                seed: 7,
                tie_output: tie,
            };
            let mut buf = Vec::new();
            write_to(&mut buf, &spec).unwrap();
            std::fs::write(g.join(format!("synth-{ty}-{tie}.gguf")), buf).unwrap();
        }
    }
    let row = tessera::results::BenchRow::default();
    let json = serde_json::to_string(&row).unwrap();
    std::fs::write(r.join("one.jsonl"), format!("{json}\n{json}\n")).unwrap();
    std::fs::write(r.join("array.json"), format!("[{json}]")).unwrap();
    let mut csv = Vec::new();
    let none: &[&str] = &[];
    let mut exp = tessera::export::exporter(tessera::export::OutputFormat::Csv, none);
    exp.begin(&mut csv).unwrap();
    exp.row(&mut csv, &row).unwrap();
    exp.end(&mut csv).unwrap();
    std::fs::write(r.join("rows.csv"), csv).unwrap();
    // llama-bench's own JSON dialect (its field names, none of tessera's).
    std::fs::write(
        r.join("llama-bench.json"),
        r#"[{"build_commit":"0c1e570","build_number":0,"cpu_info":"x","gpu_info":"","backends":"CPU","model_filename":"m.gguf","model_type":"llama 150M Q4_0","model_size":1,"model_n_params":1,"n_batch":2048,"n_ubatch":512,"n_threads":2,"cpu_mask":"0x0","cpu_strict":false,"poll":50,"type_k":"f16","type_v":"f16","n_gpu_layers":99,"split_mode":"layer","main_gpu":0,"no_kv_offload":false,"flash_attn":false,"tensor_split":"0.00","use_mmap":true,"embeddings":false,"n_prompt":512,"n_gen":0,"n_depth":0,"test_time":"2026-12-03T12:00:00Z","avg_ns":1,"stddev_ns":0,"avg_ts":512.0,"stddev_ts":0.0,"samples_ns":[1],"samples_ts":[512.0]}]"#,
    )
    .unwrap();
}
