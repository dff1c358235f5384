//! The sweep plan: axes from flags or a TOML file, expanded into points by the grid's one
//! expander ([`crate::grid::expand`]), each with a stable key, and split into shards.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use serde::{Deserialize, Serialize};
use tessera_kernels::{Isa, TileConfig};

use crate::grid::{self, Axis, DEFAULT_BATCH, Point, Test, engine_label};
use crate::probe::fnv1a;

/// Every axis and setting of a sweep. A TOML plan file has exactly these keys; flags
/// override the keys they name. Serialized into the run manifest, so `--resume` and
/// `merge` see the same points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Plan {
    /// "builtin", "llama-bench=PATH", "cmd=TEMPLATE".
    pub engine: Vec<String>,
    /// GGUF paths; empty = the default synthetic model.
    pub model: Vec<String>,
    pub threads: Vec<usize>,
    /// Kernel ISAs for the built-in engine: "auto", a name, or "all" (every ISA this CPU runs).
    pub isa: Vec<String>,
    /// Tiles "MxNxK"; "default" = the ISA's default; "all" = every valid tile of each ISA.
    pub tile: Vec<String>,
    pub numa: Vec<String>,
    pub pin: Vec<String>,
    /// Prompt lengths of pp tests.
    pub pp: Vec<usize>,
    /// Generation lengths of tg tests.
    pub tg: Vec<usize>,
    /// "PP,TG" pairs of pp+tg tests.
    pub pg: Vec<String>,
    /// Logical batch sizes (`-b`); at llama-bench's default, 2048, a point has the key it
    /// had before this axis existed. Not written at the default, so such a manifest is the
    /// one an older tessera wrote and can resume (its plan refuses unknown keys).
    #[serde(skip_serializing_if = "is_default_batch")]
    pub n_batch: Vec<usize>,
    pub ubatch: Vec<usize>,
    /// KV cache type (keys and values).
    pub kv_type: Vec<String>,
    /// Child processes per point (each a separate row with its `repeat_index`).
    pub repeat: usize,
    /// Unrecorded child runs per point before its first repeat.
    pub warmup: usize,
    /// Timed repetitions inside one child (`-r`).
    pub reps: usize,
    /// Seconds a child may run before it is killed.
    pub timeout: f64,
    /// Counters: "none", "default", or a comma list.
    pub counters: String,
    /// Backends of the built-in engine: "cpu", "cuda".
    pub backend: Vec<String>,
    /// GPU layers (`-ngl`) of the cuda backend points.
    pub ngl: Vec<usize>,
    /// Sample every point (`--profile`): top symbols in the rows, folded stacks and
    /// flamegraphs under `profiles/` in the run directory.
    pub profile: bool,
}

impl Default for Plan {
    /// The default grid: threads 1,2 × pp256, tg64 × 3 repetitions on the default model,
    /// sized to finish within about 5 minutes on a 2-core VM even with the scalar kernels
    /// (estimated ≈ 3 min there; measured 1-2 min with the AVX2 kernels, see docs/sweep.md).
    fn default() -> Self {
        Plan {
            engine: vec!["builtin".into()],
            model: Vec::new(),
            threads: vec![1, 2],
            isa: vec!["auto".into()],
            tile: vec!["default".into()],
            numa: vec!["none".into()],
            pin: vec!["none".into()],
            pp: vec![256],
            tg: vec![64],
            pg: Vec::new(),
            n_batch: vec![DEFAULT_BATCH],
            ubatch: vec![512],
            kv_type: vec!["f16".into()],
            repeat: 1,
            warmup: 0,
            reps: 3,
            timeout: 600.0,
            counters: "default".into(),
            backend: vec!["cpu".into()],
            ngl: vec![99],
            profile: false,
        }
    }
}

fn is_default_batch(b: &[usize]) -> bool {
    b == [DEFAULT_BATCH]
}

impl Plan {
    /// Reads a TOML plan; unknown keys are errors naming the key.
    pub fn from_toml_file(path: &Path) -> Result<Plan> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("--plan: cannot read '{}'", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("--plan: '{}'", path.display()))
    }

    /// Parses a TOML plan. Errors are one line: "line L, column C: the problem" (the toml
    /// crate's own rendering quotes the source over several lines).
    pub fn from_toml(text: &str) -> Result<Plan> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", toml_error_line(text, &e)))
    }
}

/// A TOML error as one line: its position (1-based line and column, in characters) in
/// `text` and its message with any line breaks folded.
fn toml_error_line(text: &str, e: &toml::de::Error) -> String {
    let message = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let Some(span) = e.span() else {
        return message;
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("line {line}, column {column}: {message}")
}

/// A point's key and label are the sweep's (resume and merge match rows by key); the
/// point itself is the grid's.
impl Point {
    /// The canonical text the key hashes; adding a field changes every key, so new axes
    /// must only append here, and only when not at their default.
    pub fn canonical(&self) -> String {
        format!(
            "engine={};model={};test={};threads={};isa={};tile={};numa={};pin={};ubatch={};kv={}",
            self.engine,
            self.model,
            self.test.name(),
            self.threads,
            self.isa,
            self.tile,
            self.numa,
            self.pin,
            self.ubatch,
            self.type_k.name()
        ) + &if self.backend == tessera_engine::Backend::Cpu {
            // CPU points keep the keys they had before the backend axis existed.
            String::new()
        } else {
            format!(";backend={};ngl={}", self.backend.name(), self.ngl)
        } + &if self.n_batch == DEFAULT_BATCH {
            // Likewise points at the default batch, for the batch axis.
            String::new()
        } else {
            format!(";batch={}", self.n_batch)
        }
    }

    /// Identifies the configuration without the repeat (for summaries).
    pub fn config_key(&self) -> String {
        format!("{:016x}", fnv1a(self.canonical().as_bytes()))
    }

    /// The stable key of one repeat of this point.
    pub fn key(&self, repeat: usize) -> String {
        format!(
            "{:016x}",
            fnv1a(format!("{};repeat={repeat}", self.canonical()).as_bytes())
        )
    }

    /// A short label for the progress bar.
    pub fn label(&self) -> String {
        let mut s = format!("{} t{}", self.test.name(), self.threads);
        if self.is_builtin() {
            s.push_str(&format!(" {}", self.isa));
            if !self.tile.is_empty() {
                s.push_str(&format!(" {}", self.tile));
            }
        } else {
            s.push_str(&format!(" {}", engine_label(&self.engine)));
        }
        if self.numa != "none" {
            s.push_str(&format!(" numa={}", self.numa));
        }
        if self.pin != "none" {
            s.push_str(&format!(" pin={}", self.pin));
        }
        if self.n_batch != DEFAULT_BATCH {
            s.push_str(&format!(" b={}", self.n_batch));
        }
        if self.backend != tessera_engine::Backend::Cpu {
            s.push_str(&format!(" {} ngl={}", self.backend.name(), self.ngl));
        }
        s
    }
}

/// One unit of work: a point and a repeat index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    pub point: Point,
    pub repeat: usize,
    pub key: String,
}

/// The tests of a plan, pp then tg then pg, as llama-bench orders them.
pub fn tests(plan: &Plan) -> Result<Vec<Test>> {
    let mut t: Vec<Test> = Vec::new();
    t.extend(plan.pp.iter().filter(|&&p| p > 0).map(|&p| Test {
        n_prompt: p,
        n_gen: 0,
    }));
    t.extend(plan.tg.iter().filter(|&&g| g > 0).map(|&g| Test {
        n_prompt: 0,
        n_gen: g,
    }));
    for pg in &plan.pg {
        let v: Vec<usize> = crate::cli::parse_list("--pg", pg)?;
        match v[..] {
            [p, g] if p > 0 && g > 0 => t.push(Test {
                n_prompt: p,
                n_gen: g,
            }),
            _ => {
                bail!("--pg: '{pg}' is not valid; give two positive numbers PP,TG such as 512,128")
            }
        }
    }
    if t.is_empty() {
        bail!("no tests: --pp, --tg and --pg are all empty or 0");
    }
    Ok(t)
}

/// (isa, tile) pairs of the built-in engine: "all" expands to every ISA this CPU runs and
/// every valid tile; a named tile invalid for a named ISA is skipped, since the cartesian
/// product of several ISAs with several tiles always contains such pairs.
pub fn isa_tiles(plan: &Plan) -> Result<Vec<(String, String)>> {
    let mut isas: Vec<String> = Vec::new();
    for i in &plan.isa {
        if i == "all" {
            isas.extend(Isa::available().iter().map(|i| i.name().to_string()));
        } else {
            i.parse::<tessera_kernels::IsaRequest>()
                .map_err(|e| anyhow::anyhow!("--isa: {e}"))?;
            isas.push(i.clone());
        }
    }
    let mut out = Vec::new();
    for isa in &isas {
        let known: Option<Isa> = isa.parse().ok();
        for tile in &plan.tile {
            match (tile.as_str(), known) {
                ("default" | "", _) => out.push((isa.clone(), String::new())),
                ("all", Some(k)) => {
                    out.extend(k.valid_tiles().iter().map(|t| (isa.clone(), t.to_string())))
                }
                ("all", None) => out.push((isa.clone(), String::new())),
                (t, k) => {
                    let tc: TileConfig = t.parse().map_err(|e| anyhow::anyhow!("--tile: {e}"))?;
                    if k.is_none_or(|k| k.valid_tiles().contains(&tc)) {
                        out.push((isa.clone(), tc.to_string()));
                    }
                }
            }
        }
    }
    let mut seen = BTreeSet::new();
    out.retain(|p| seen.insert(p.clone()));
    if out.is_empty() {
        bail!(
            "--tile: no tile in {:?} is valid for any ISA in {:?}; see `tessera kernels --list`",
            plan.tile,
            plan.isa
        );
    }
    Ok(out)
}

/// Expands the plan into points, in a deterministic order: engine, model, test, (ISA,
/// tile), NUMA, pinning, batch, ubatch, KV type, threads, backend, the last varying
/// fastest. This order made the keys, shards and manifests of earlier runs; a new axis
/// goes where one value of it leaves the order unchanged. External engines ignore the ISA,
/// tile and backend axes (they have their own kernels and backends), so those points are
/// not duplicated.
pub fn points(plan: &Plan, models: &[String]) -> Result<Vec<Point>> {
    let tests = tests(plan)?;
    let it = isa_tiles(plan)?;
    let mut backends = Vec::new();
    for b in &plan.backend {
        backends.push(
            b.parse::<tessera_engine::Backend>()
                .map_err(|e| anyhow::anyhow!("backend: {e}"))?,
        );
    }
    let backends = grid::backends(&backends, &plan.ngl);
    if backends.is_empty() {
        bail!("backend: no backend given; valid: cpu, cuda");
    }
    let mut kv = Vec::new();
    for k in &plan.kv_type {
        kv.push(
            k.parse::<tessera_engine::KvType>()
                .map_err(|e| anyhow::anyhow!("--kv-type: {e}"))?,
        );
    }
    let all = grid::expand(
        Point::default(),
        &[
            Axis::Engine(plan.engine.clone()),
            Axis::Model(models.to_vec()),
            Axis::Test(tests),
            Axis::IsaTile(it),
            Axis::Numa(plan.numa.clone()),
            Axis::Pin(plan.pin.clone()),
            Axis::Batch(plan.n_batch.clone()),
            Axis::Ubatch(plan.ubatch.clone()),
            Axis::Kv(kv),
            Axis::Threads(plan.threads.clone()),
            Axis::Backend(backends),
        ],
    );
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    for mut p in all {
        if !p.is_builtin() {
            p.isa = "-".into();
            p.tile = String::new();
            p.backend = tessera_engine::Backend::Cpu;
            p.ngl = 0;
        }
        if seen.insert(p.canonical()) {
            out.push(p);
        }
    }
    Ok(out)
}

/// Every point × repeat.
///
/// Repeat-major: every point's repeat 0, then every point's repeat 1, and so on, so a point's
/// repeats are spread over the whole sweep instead of running back to back. Back-to-back
/// repeats share one minute's machine load; two nightly runs of the same binary on a shared
/// VM then differed by −6.6% and +16.8%, "significant" by Welch (docs/compare.md, nightly).
pub fn units(points: &[Point], repeat: usize) -> Vec<Unit> {
    let mut out = Vec::new();
    for r in 0..repeat.max(1) {
        for p in points {
            out.push(Unit {
                point: p.clone(),
                repeat: r,
                key: p.key(r),
            });
        }
    }
    out
}

/// `--shard I/N` (1-based I).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a shard; give I/N with 1 <= I <= N, e.g. 2/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl Shard {
    /// Whether unit number `i` of the full list belongs to this shard: round-robin, so
    /// every shard gets a similar mix of cheap and expensive points.
    pub fn owns(&self, i: usize) -> bool {
        i % self.count == self.index - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_plan_has_four_points() {
        let p = Plan::default();
        let pts = points(&p, &["m.gguf".to_string()]).unwrap();
        assert_eq!(pts.len(), 4);
        let names: BTreeSet<String> = pts.iter().map(|p| p.label()).collect();
        assert!(
            names.contains("pp256 t1 auto") && names.contains("tg64 t2 auto"),
            "{names:?}"
        );
    }

    #[test]
    fn keys_are_stable_and_distinct() {
        let p = Plan {
            threads: vec![1, 2, 4],
            pp: vec![64, 128],
            ..Plan::default()
        };
        let u = units(&points(&p, &["m".into()]).unwrap(), 2);
        assert_eq!(u.len(), 3 * 3 * 2);
        let keys: BTreeSet<&String> = u.iter().map(|u| &u.key).collect();
        assert_eq!(keys.len(), u.len());
        // Pinned value: the key must not change between versions, or resume breaks.
        let pt = Point {
            engine: "builtin".into(),
            model: "m".into(),
            test: Test {
                n_prompt: 64,
                n_gen: 0,
            },
            threads: 2,
            isa: "auto".into(),
            tile: String::new(),
            numa: "none".into(),
            pin: "none".into(),
            n_batch: 2048,
            ubatch: 512,
            type_k: tessera_engine::KvType::F16,
            type_v: tessera_engine::KvType::F16,
            backend: tessera_engine::Backend::Cpu,
            ngl: 0,
        };
        assert_eq!(pt.key(0), pt.clone().key(0));
        assert_eq!(pt.key(0), format!("{:016x}", fnv1a(b"engine=builtin;model=m;test=pp64;threads=2;isa=auto;tile=;numa=none;pin=none;ubatch=512;kv=f16;repeat=0")));
    }

    #[test]
    fn backend_axis_adds_cuda_points_per_ngl_and_keeps_cpu_keys() {
        let cpu_only = Plan {
            threads: vec![1],
            tg: vec![],
            ..Plan::default()
        };
        let p = Plan {
            backend: vec!["cpu".into(), "cuda".into()],
            ngl: vec![0, 99],
            engine: vec!["builtin".into(), "cmd=echo".into()],
            ..cpu_only.clone()
        };
        let pts = points(&p, &["m".into()]).unwrap();
        let b: Vec<(&str, usize)> = pts
            .iter()
            .filter(|p| p.is_builtin())
            .map(|p| (p.backend.name(), p.ngl))
            .collect();
        assert_eq!(b, [("cpu", 0), ("cuda", 0), ("cuda", 99)]);
        // External engines are not multiplied by the built-in engine's backends.
        assert_eq!(pts.iter().filter(|p| !p.is_builtin()).count(), 1);
        // The CPU point's key is the key it had before the axis existed.
        let before = points(&cpu_only, &["m".into()]).unwrap();
        assert_eq!(before[0].key(0), pts[0].key(0));
        assert_ne!(pts[1].key(0), pts[2].key(0));
        assert!(pts[2].label().contains("cuda ngl=99"), "{}", pts[2].label());
        let bad = Plan {
            backend: vec!["metal".into()],
            ..cpu_only
        };
        assert!(
            points(&bad, &["m".into()])
                .unwrap_err()
                .to_string()
                .contains("'metal'")
        );
    }

    #[test]
    fn the_default_batch_keeps_every_key_and_another_batch_changes_it() {
        let before = Plan {
            threads: vec![1, 2],
            ..Plan::default()
        };
        assert_eq!(before.n_batch, [DEFAULT_BATCH]);
        let with = Plan {
            n_batch: vec![DEFAULT_BATCH, 256],
            ..before.clone()
        };
        let old = points(&before, &["m".into()]).unwrap();
        let new = points(&with, &["m".into()]).unwrap();
        assert_eq!(new.len(), 2 * old.len());
        // The default batch's points keep the keys and labels they had before the axis
        // existed, in their order.
        let keys = |p: &[Point]| p.iter().map(|p| p.key(0)).collect::<Vec<_>>();
        let at_default: Vec<Point> = new
            .iter()
            .filter(|p| p.n_batch == DEFAULT_BATCH)
            .cloned()
            .collect();
        assert_eq!(keys(&at_default), keys(&old));
        assert_eq!(at_default[0].label(), old[0].label());
        assert!(
            !old[0].canonical().contains(";batch="),
            "{}",
            old[0].canonical()
        );
        // Another batch: other keys, and a label that says it.
        let other: Vec<&Point> = new.iter().filter(|p| p.n_batch == 256).collect();
        assert_eq!(other.len(), old.len());
        for (o, p) in old.iter().zip(&other) {
            assert_ne!(o.key(0), p.key(0));
            assert_eq!(p.canonical(), format!("{};batch=256", o.canonical()));
            assert!(p.label().ends_with(" b=256"), "{}", p.label());
        }
        // A manifest or plan file written before the axis existed has no `n_batch`: it
        // reads as the default, so its run resumes and merges with the same keys.
        // And a manifest at the default is written without it, as before.
        let json = serde_json::to_value(&before).unwrap();
        assert!(!json.as_object().unwrap().contains_key("n_batch"), "{json}");
        let read: Plan = serde_json::from_value(json).unwrap();
        assert_eq!(read, before);
        assert_eq!(keys(&points(&read, &["m".into()]).unwrap()), keys(&old));
        assert_eq!(
            Plan::from_toml("threads = [1, 2]\n").unwrap().n_batch,
            [DEFAULT_BATCH]
        );
        let json = serde_json::to_value(&with).unwrap();
        assert_eq!(json["n_batch"], serde_json::json!([2048, 256]));
        assert_eq!(serde_json::from_value::<Plan>(json).unwrap(), with);
    }

    #[test]
    fn external_engines_do_not_multiply_over_isa_and_tile() {
        let p = Plan {
            engine: vec!["builtin".into(), "cmd=echo".into()],
            isa: vec!["auto".into(), "scalar".into()],
            threads: vec![1],
            tg: vec![],
            ..Plan::default()
        };
        let pts = points(&p, &["m".into()]).unwrap();
        assert_eq!(pts.iter().filter(|p| p.is_builtin()).count(), 2);
        assert_eq!(pts.iter().filter(|p| !p.is_builtin()).count(), 1);
    }

    #[test]
    fn every_unit_lands_in_exactly_one_shard() {
        let p = Plan {
            threads: vec![1, 2, 3],
            pp: vec![16, 32, 64],
            tg: vec![8, 16],
            ..Plan::default()
        };
        let u = units(&points(&p, &["m".into()]).unwrap(), 3);
        for n in 1..=7 {
            let mut count = vec![0usize; u.len()];
            for i in 1..=n {
                let s = Shard { index: i, count: n };
                for (j, _) in u.iter().enumerate().filter(|(j, _)| s.owns(*j)) {
                    count[j] += 1;
                }
            }
            assert!(count.iter().all(|&c| c == 1), "n={n}: {count:?}");
        }
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(
            "2/4".parse::<Shard>().unwrap(),
            Shard { index: 2, count: 4 }
        );
        for bad in ["0/4", "5/4", "1/0", "x", "1-4"] {
            assert!(bad.parse::<Shard>().unwrap_err().contains("I/N"), "{bad}");
        }
    }

    #[test]
    fn toml_plans_parse_and_unknown_keys_are_named() {
        let p = Plan::from_toml(
            "threads = [1, 2, 4]\npp = [512]\ntg = [128]\nnuma = [\"interleave\"]\n",
        )
        .unwrap();
        assert_eq!(p.threads, [1, 2, 4]);
        assert_eq!(p.numa, ["interleave"]);
        assert_eq!(p.reps, Plan::default().reps);
        let e = Plan::from_toml("thread = [1]").unwrap_err().to_string();
        assert!(e.contains("thread"), "{e}");
    }

    #[test]
    fn toml_plan_errors_are_one_line_with_line_and_column() {
        for (text, want) in [
            (
                "threads = [1]\n  thread = [1]\n",
                "line 2, column 3: unknown field `thread`",
            ),
            ("threads = [1]\npp = [512\n", "line 2, column 10: "),
            ("threads = \"two\"\n", "line 1, column 11: "),
        ] {
            let e = format!("{:#}", Plan::from_toml(text).unwrap_err());
            assert!(e.starts_with(want), "{text:?}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
    }

    #[test]
    fn the_committed_example_plans_parse() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plans");
        let mut n = 0;
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            if path.extension().is_some_and(|x| x == "toml") {
                let plan = Plan::from_toml_file(&path).unwrap();
                points(&plan, &["m".into()]).unwrap();
                n += 1;
            }
        }
        assert!(n >= 1);
    }
}
