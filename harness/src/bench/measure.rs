//! One bench point measured in this process: the kernels resolved (calibrated for `auto`),
//! the weights repacked for them, the worker threads pinned, then the engine's timed
//! repetitions with counters and profile sampling enabled over exactly the timed region
//! ([`TimedRegion`]), and the row filled from what they measured.

use tessera_engine::affinity;
use tessera_engine::bench::{TimedHook, run_test_with_hook};
use tessera_engine::{Backend, Context, Model};
use tessera_kernels::Kernels;

use super::Config;
use crate::counters::{CounterSet, Peaks, Scope};
use crate::grid::{self, Point};
use crate::results::{self, BenchRow, KernelUse, Status};

/// The row of a point before it is measured: the grid's starting row ([`grid::row`]) plus
/// what bench knows beyond the point: the loaded model, the GPUs, the resolved kernels.
/// Also the template of a point measured in a child process.
pub(super) fn measure_template(
    cfg: &Config,
    model: &Model,
    p: &Point,
    cpu_info: &str,
    kernels: &Kernels,
    choice: Option<&tessera_engine::calibrate::Choice>,
) -> BenchRow {
    BenchRow {
        gpu_info: if p.backend == Backend::Cuda {
            cfg.gpu_info.clone()
        } else {
            String::new()
        },
        model_type: model.type_name(),
        model_size: model.size_bytes,
        model_n_params: model.n_params,
        isa: kernels.isa().name().to_string(),
        isa_reason: choice.map(|c| c.reason.clone()).unwrap_or_default(),
        tile: kernels.tile().to_string(),
        ..grid::row(p, cpu_info)
    }
}

/// Measures one point here; a failure (calibration, context, a CUDA error) is a row with
/// its status, never an `Err`, so one bad point does not end the run.
pub(super) fn measure(
    cfg: &Config,
    model: &mut Model,
    p: &Point,
    cpu_info: &str,
    seq: usize,
) -> BenchRow {
    // `auto` is resolved by calibration on this model and thread count (cached per machine).
    // The ISA and tile were validated in Config::from_args, so what can fail here is the
    // calibration's thread pool: a row with status error, like a failed context.
    let (kernels, choice) =
        match tessera_engine::calibrate::kernels_for(cfg.isa, cfg.tile, model, p.threads) {
            Ok(k) => k,
            Err(e) => {
                let kernels =
                    Kernels::new(cfg.isa, cfg.tile).expect("validated in Config::from_args");
                let mut row = measure_template(cfg, model, p, cpu_info, &kernels, None);
                row.status = Status::Error;
                row.error = Some(e.to_string());
                return row;
            }
        };
    // CPU points: the weights are repacked in place for this table, resident once. CUDA
    // points keep the plain layout the GPU uploads; their CPU layers are repacked by the
    // context beside the model.
    let n_layer = model.hp.n_layer;
    match p.backend {
        Backend::Cpu => model.repack_for(&kernels, n_layer, true),
        Backend::Cuda => model.repack_for(&kernels, 0, false),
    }
    let model = &*model;
    let mut row = measure_template(cfg, model, p, cpu_info, &kernels, choice.as_ref());
    let topo = affinity::topology();
    let cpus = affinity::plan(&cfg.pin, p.threads, &topo).unwrap_or(None);
    row.pin = cfg.pin.to_string();
    row.cpus = cpus
        .as_ref()
        .map(|c| {
            c.iter()
                .map(|x| x.to_string())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    tessera_engine::pool::set_default_pinning(cpus);
    // Opened before the context so the pool's threads, created with it, inherit them.
    let mut counters =
        (!cfg.counters.is_empty()).then(|| CounterSet::open(&cfg.counters, Scope::Region));
    // Likewise the sampling events, enabled only during the timed repetitions.
    let session = cfg.profile.as_ref().map(|_| {
        crate::profile::Session::start(
            &crate::profile::Settings::default(),
            crate::profile::Target::This,
        )
    });
    let result = Context::new(model, &kernels, p.context_params()).and_then(|mut ctx| {
        let mut hook = TimedRegion {
            counters: counters.as_mut(),
            profile: session.as_ref().and_then(|s| s.as_ref().ok()),
        };
        run_test_with_hook(&mut ctx, p.test.spec(), cfg.reps, cfg.seed, &mut hook)
    });
    tessera_engine::pool::set_default_pinning(None);
    match result {
        Ok(samples) => {
            let s = results::summarize(&samples, p.test.n_tokens() as u64);
            (
                row.avg_ns,
                row.stddev_ns,
                row.avg_ts,
                row.stddev_ts,
                row.samples_ts,
            ) = s;
            row.samples_ns = samples;
        }
        Err(e) => {
            row.status = Status::Error;
            row.error = Some(e.to_string());
            // A CUDA error ("GET_ROWS failed: ...") is a fault, classified as bisect does.
            crate::gpu::classify_row_error(&mut row);
        }
    }
    row.kernels_used = kernels
        .record()
        .into_iter()
        .map(|u| KernelUse {
            op: u.op.to_string(),
            isa: u.isa.name().to_string(),
            kernel: u.kernel.to_string(),
            tile: u.tile.map(|t| t.to_string()).unwrap_or_default(),
            calls: u.calls,
            ns: u.ns,
            flop: u.flop,
            bytes: u.bytes,
            ..KernelUse::default()
        })
        .collect();
    if let Some(set) = &mut counters {
        row.counters = set.read();
        row.counters_scope = set.scope().name().to_string();
    }
    if let (Some(out), Some(session)) = (&cfg.profile, session) {
        let name = out.name_for(seq, &row.test, row.n_threads);
        let rec = session.map(crate::profile::Session::finish);
        crate::profile::apply(
            &mut row,
            &crate::profile::conclude(rec, &out.dir, &name),
            false,
        );
    }
    row.derived = crate::counters::derive(&row, &Peaks::default());
    row
}

/// Counts and samples exactly the timed repetitions.
struct TimedRegion<'a> {
    counters: Option<&'a mut CounterSet>,
    profile: Option<&'a crate::profile::Session>,
}

impl TimedHook for TimedRegion<'_> {
    fn start(&mut self) {
        if let Some(c) = &mut self.counters {
            c.enable();
        }
        if let Some(p) = self.profile {
            p.enable();
        }
    }
    fn stop(&mut self) {
        if let Some(p) = self.profile {
            p.disable();
        }
        if let Some(c) = &mut self.counters {
            c.disable();
        }
    }
}
