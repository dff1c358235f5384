//! The rows and the export helper that every format's tests share.

use super::{OutputFormat, TableColumns, exporter};
use crate::results::{BenchRow, Fault, KernelUse, Status};

/// A measured pp512 row and a crashed tg128 row of one model.
pub(super) fn rows() -> Vec<BenchRow> {
    let base = BenchRow {
        build_commit: "05728aa1b2c3".into(),
        build_number: 1,
        cpu_info: "AMD EPYC 9B14".into(),
        model_filename: "models/llama-150m-q4_0.gguf".into(),
        model_type: "llama 150M Q4_0".into(),
        model_size: 87_662_592,
        model_n_params: 150_000_000,
        n_threads: 2,
        test_time: "2026-11-25T20:15:42Z".into(),
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
        build_features: vec!["cuda".into()],
        ..BenchRow::default()
    };
    let pp = BenchRow {
        n_prompt: 512,
        test: "pp512".into(),
        avg_ns: 441_295_000,
        avg_ts: 1160.234,
        stddev_ts: 10.1149,
        samples_ns: vec![437_000_000, 445_590_000],
        samples_ts: vec![1171.6247139588102, 1149.043740882874],
        ..base.clone()
    };
    let tg = BenchRow {
        n_gen: 128,
        test: "tg128".into(),
        status: Status::Fault,
        fault: Some(Fault {
            class: "signal".into(),
            signal: Some(11),
            exit_code: None,
            message: "Segmentation fault, \"core\" dumped".into(),
            stderr_tail: "line one\nline two, with comma".into(),
        }),
        error: None,
        ..base
    };
    vec![pp, tg]
}

/// Everything `format` writes for `rows`, begin to end.
pub(super) fn export(format: OutputFormat, columns: &TableColumns, rows: &[BenchRow]) -> String {
    let mut out = Vec::new();
    let mut exporter = exporter(format, columns);
    exporter.begin(&mut out).unwrap();
    for row in rows {
        exporter.row(&mut out, row).unwrap();
    }
    exporter.end(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}
