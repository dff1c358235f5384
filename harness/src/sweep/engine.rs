//! How a point becomes a command line for each engine, and how the engine's stdout becomes
//! result rows: the built-in engine (`tessera bench` of this binary), llama.cpp /
//! ik_llama.cpp `llama-bench -o json`, and `cmd=TEMPLATE` for anything that prints rows in
//! tessera's schema.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Result, bail};
use serde_json::Value;

use crate::grid::Point;
use crate::results::BenchRow;
use tessera_engine::affinity::{self, PinPolicy};

/// A parsed `--engine` value.
#[derive(Clone, Debug, PartialEq)]
pub enum Engine {
    Builtin,
    LlamaBench(PathBuf),
    Cmd(String),
}

impl std::str::FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "builtin" {
            Ok(Engine::Builtin)
        } else if let Some(p) = s.strip_prefix("llama-bench=") {
            if p.is_empty() {
                return Err("llama-bench= needs the path of a llama-bench binary".into());
            }
            Ok(Engine::LlamaBench(PathBuf::from(p)))
        } else if let Some(c) = s.strip_prefix("cmd=") {
            if c.trim().is_empty() {
                return Err("cmd= needs a command template".into());
            }
            Ok(Engine::Cmd(c.to_string()))
        } else {
            Err(format!(
                "'{s}' is not an engine; valid: builtin, llama-bench=PATH, cmd='COMMAND {{threads}} ...'"
            ))
        }
    }
}

/// Per-run settings every command needs.
pub struct RunSettings<'a> {
    pub reps: usize,
    pub counters: &'a [String],
    pub repeat: usize,
    /// `--profile`: the run directory and the profile's file name in it. The built-in
    /// engine samples its own timed repetitions and writes there; external engines are
    /// sampled by the sweep (see [`Engine::command`]).
    pub profile: Option<(&'a std::path::Path, &'a str)>,
}

/// The CPUs `numactl --physcpubind` gets for an external engine, or None.
fn cpu_list(p: &Point) -> Result<Option<String>> {
    let pin: PinPolicy = p.pin.parse().map_err(|e| anyhow::anyhow!("--pin: {e}"))?;
    Ok(affinity::plan(&pin, p.threads, &affinity::topology())
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .map(|v| {
            let mut v = v;
            v.sort();
            v.dedup();
            v.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(",")
        }))
}

/// numactl arguments for an external engine's NUMA and pinning, empty when neither is set.
fn numactl_args(p: &Point) -> Result<Vec<String>> {
    let mut a = Vec::new();
    match p.numa.as_str() {
        "none" => {}
        "local" => a.push("--localalloc".to_string()),
        "interleave" => a.push("--interleave=all".to_string()),
        other => match other.strip_prefix("bind:") {
            Some(n) => {
                a.push(format!("--membind={n}"));
                if p.pin == "none" {
                    a.push(format!("--cpunodebind={n}"));
                }
            }
            None => bail!("--numa: '{other}' is not valid"),
        },
    }
    if let Some(cpus) = cpu_list(p)? {
        a.push(format!("--physcpubind={cpus}"));
    }
    Ok(a)
}

/// Fills `{name}` placeholders of a cmd template.
pub fn substitute(template: &str, p: &Point, s: &RunSettings) -> Result<String> {
    let cpus = cpu_list(p)?.unwrap_or_default();
    let pairs: [(&str, String); 16] = [
        ("threads", p.threads.to_string()),
        ("n_prompt", p.test.n_prompt.to_string()),
        ("n_gen", p.test.n_gen.to_string()),
        ("model", p.model.clone()),
        ("test", p.test.name()),
        ("isa", p.isa.clone()),
        ("tile", p.tile.clone()),
        ("numa", p.numa.clone()),
        ("pin", p.pin.clone()),
        ("cpus", cpus),
        ("n_batch", p.n_batch.to_string()),
        ("ubatch", p.ubatch.to_string()),
        ("kv_type", p.type_k.name().to_string()),
        ("reps", s.reps.to_string()),
        ("repeat", s.repeat.to_string()),
        ("counters", s.counters.join(",")),
    ];
    let mut out = template.to_string();
    for (k, v) in pairs {
        out = out.replace(&format!("{{{k}}}"), &v);
    }
    Ok(out)
}

impl Engine {
    /// The command for one point, and whether the sweep itself must count and sample the
    /// child (external engines; the built-in engine measures its timed region itself).
    pub fn command(&self, p: &Point, s: &RunSettings) -> Result<(Command, bool)> {
        let test_args = |pg_flag: &str| -> Vec<String> {
            let t = p.test;
            if t.n_prompt > 0 && t.n_gen > 0 {
                vec![
                    "-p".into(),
                    "0".into(),
                    "-n".into(),
                    "0".into(),
                    pg_flag.into(),
                    format!("{},{}", t.n_prompt, t.n_gen),
                ]
            } else {
                vec![
                    "-p".into(),
                    t.n_prompt.to_string(),
                    "-n".into(),
                    t.n_gen.to_string(),
                ]
            }
        };
        match self {
            Engine::Builtin => {
                // /proc/self/exe runs exactly this binary even when a rebuild has replaced
                // the file on disk mid-sweep; current_exe() would name the deleted path.
                let proc_exe = PathBuf::from("/proc/self/exe");
                let exe = if proc_exe.exists() {
                    proc_exe
                } else {
                    std::env::current_exe()
                        .map_err(|e| anyhow::anyhow!("cannot find this tessera binary: {e}"))?
                };
                let mut c = Command::new(exe);
                c.arg("bench").args(["-o", "jsonl"]);
                if !p.model.is_empty() {
                    c.args(["-m", &p.model]);
                }
                c.args(["-t", &p.threads.to_string()])
                    .args(["-r", &s.reps.to_string()])
                    .args(["--isa", &p.isa])
                    .args(["--batch-size", &p.n_batch.to_string()])
                    .args(["--ubatch-size", &p.ubatch.to_string()])
                    .args(["--cache-type-k", p.type_k.name()])
                    .args(["--cache-type-v", p.type_v.name()])
                    .args(["--numa", &p.numa, "--pin", &p.pin]);
                if !p.tile.is_empty() {
                    c.args(["--tile", &p.tile]);
                }
                let counters = if s.counters.is_empty() {
                    "none".to_string()
                } else {
                    s.counters.join(",")
                };
                c.args(["--counters", &counters]);
                if let Some((dir, name)) = s.profile {
                    c.arg("--profile")
                        .arg("--profile-dir")
                        .arg(dir)
                        .args(["--profile-name", name]);
                }
                if p.backend != tessera_engine::Backend::Cpu {
                    // The sweep already isolates each point in a child: no second level.
                    c.args(["--backend", p.backend.name()])
                        .args(["--n-gpu-layers", &p.ngl.to_string()])
                        .arg("--no-isolate");
                }
                c.args(test_args("--pg"));
                Ok((c, false))
            }
            Engine::LlamaBench(path) => {
                let numactl = numactl_args(p)?;
                let mut c = if numactl.is_empty() {
                    Command::new(path)
                } else {
                    let mut c = Command::new("numactl");
                    c.args(&numactl).arg(path);
                    c
                };
                c.args(["-o", "json"]);
                if !p.model.is_empty() {
                    c.args(["-m", &p.model]);
                }
                c.args(["-t", &p.threads.to_string()])
                    .args(["-r", &s.reps.to_string()])
                    .args(["-ub", &p.ubatch.to_string()])
                    .args(["-b", &llama_bench_batch(p).to_string()])
                    .args(["-ctk", p.type_k.name(), "-ctv", p.type_v.name()]);
                if !numactl.is_empty() {
                    // The CPU map comes from numactl.
                    c.args(["--numa", "numactl"]);
                }
                c.args(test_args("-pg"));
                Ok((c, !s.counters.is_empty()))
            }
            Engine::Cmd(t) => {
                let mut c = Command::new("sh");
                c.arg("-c").arg(substitute(t, p, s)?);
                Ok((c, !s.counters.is_empty()))
            }
        }
    }
}

/// llama-bench's `-b` for a point. At the default batch, what it got before sweeps had a
/// batch axis: 2048 raised to the micro-batch. Any other batch as given: llama-bench then
/// runs micro-batches of min(-ub, -b), as the built-in engine does.
fn llama_bench_batch(p: &Point) -> usize {
    if p.n_batch == crate::grid::DEFAULT_BATCH {
        p.ubatch.max(p.n_batch)
    } else {
        p.n_batch
    }
}

/// Rows from an engine's stdout: a JSON array (llama-bench `-o json`), one object, or one
/// object per line. Anything else is an error quoting the start of the output.
pub fn parse_rows(stdout: &[u8]) -> Result<Vec<BenchRow>> {
    let text = String::from_utf8_lossy(stdout);
    let trimmed = text.trim();
    let head = || {
        let h: String = trimmed.chars().take(120).collect();
        format!("output starts: {h:?}")
    };
    if trimmed.is_empty() {
        bail!("the engine printed nothing on stdout");
    }
    let values: Vec<Value> = match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Array(v)) => v,
        Ok(v @ Value::Object(_)) => vec![v],
        Ok(_) => bail!("not result rows; {}", head()),
        Err(_) => {
            let mut v = Vec::new();
            for (i, line) in trimmed.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                v.push(serde_json::from_str::<Value>(line).map_err(|e| {
                    anyhow::anyhow!("line {} is not JSON ({e}); {}", i + 1, head())
                })?);
            }
            v
        }
    };
    if values.is_empty() {
        bail!("no rows in the output; {}", head());
    }
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            BenchRow::from_value(v)
                .map_err(|e| anyhow::anyhow!("row {} is not a result row: {e}; {}", i + 1, head()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grid::Test;

    fn point() -> Point {
        Point {
            engine: "builtin".into(),
            model: "/m.gguf".into(),
            test: Test {
                n_prompt: 512,
                n_gen: 128,
            },
            threads: 4,
            isa: "auto".into(),
            tile: String::new(),
            numa: "none".into(),
            pin: "none".into(),
            n_batch: 2048,
            ubatch: 256,
            type_k: tessera_engine::KvType::F32,
            type_v: tessera_engine::KvType::F32,
            backend: tessera_engine::Backend::Cpu,
            ngl: 0,
        }
    }

    fn args(c: &Command) -> Vec<String> {
        c.get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn engine_parsing() {
        assert_eq!("builtin".parse::<Engine>().unwrap(), Engine::Builtin);
        assert_eq!(
            "llama-bench=/x/llama-bench".parse::<Engine>().unwrap(),
            Engine::LlamaBench("/x/llama-bench".into())
        );
        assert_eq!(
            "cmd=echo {threads}".parse::<Engine>().unwrap(),
            Engine::Cmd("echo {threads}".into())
        );
        assert!(
            "llama"
                .parse::<Engine>()
                .unwrap_err()
                .contains("valid: builtin")
        );
    }

    #[test]
    fn llama_bench_flags() {
        let s = RunSettings {
            reps: 3,
            counters: &[],
            repeat: 0,
            profile: None,
        };
        let (c, count) = Engine::LlamaBench("/lb".into())
            .command(&point(), &s)
            .unwrap();
        assert_eq!(c.get_program(), "/lb");
        assert!(!count);
        assert_eq!(
            args(&c).join(" "),
            "-o json -m /m.gguf -t 4 -r 3 -ub 256 -b 2048 -ctk f32 -ctv f32 -p 0 -n 0 -pg 512,128"
        );
        let mut p = point();
        p.numa = "interleave".into();
        p.test = Test {
            n_prompt: 0,
            n_gen: 64,
        };
        let (c, _) = Engine::LlamaBench("/lb".into()).command(&p, &s).unwrap();
        assert_eq!(c.get_program(), "numactl");
        let a = args(&c).join(" ");
        assert!(a.starts_with("--interleave=all /lb -o json"), "{a}");
        assert!(a.ends_with("--numa numactl -p 0 -n 64"), "{a}");
    }

    #[test]
    fn builtin_flags() {
        let names = vec!["task-clock".to_string()];
        let s = RunSettings {
            reps: 2,
            counters: &names,
            repeat: 0,
            profile: Some((std::path::Path::new("runs/r1"), "profiles/k-0")),
        };
        let (c, count) = Engine::Builtin.command(&point(), &s).unwrap();
        assert!(!count);
        let a = args(&c).join(" ");
        assert!(
            a.starts_with("bench -o jsonl -m /m.gguf -t 4 -r 2 --isa auto"),
            "{a}"
        );
        assert!(a.contains("--counters task-clock"), "{a}");
        assert!(
            a.contains("--profile --profile-dir runs/r1 --profile-name profiles/k-0"),
            "{a}"
        );
        assert!(a.ends_with("-p 0 -n 0 --pg 512,128"), "{a}");
        assert!(!a.contains("--backend"), "{a}");
        let cuda = Point {
            backend: tessera_engine::Backend::Cuda,
            ngl: 4,
            ..point()
        };
        let a = args(&Engine::Builtin.command(&cuda, &s).unwrap().0).join(" ");
        assert!(
            a.contains("--backend cuda --n-gpu-layers 4 --no-isolate"),
            "{a}"
        );
    }

    #[test]
    fn the_batch_reaches_every_engine() {
        let s = RunSettings {
            reps: 1,
            counters: &[],
            repeat: 0,
            profile: None,
        };
        let b256 = Point {
            n_batch: 256,
            ..point()
        };
        let a = args(&Engine::Builtin.command(&b256, &s).unwrap().0).join(" ");
        assert!(a.contains("--batch-size 256 --ubatch-size 256"), "{a}");
        let a = args(&Engine::Builtin.command(&point(), &s).unwrap().0).join(" ");
        assert!(a.contains("--batch-size 2048 --ubatch-size 256"), "{a}");
        // llama-bench: the default batch as before the axis (2048 raised to -ub), any
        // other as given.
        let lb =
            |p: &Point| args(&Engine::LlamaBench("/lb".into()).command(p, &s).unwrap().0).join(" ");
        assert!(lb(&b256).contains("-ub 256 -b 256 "), "{}", lb(&b256));
        let big_ub = Point {
            ubatch: 4096,
            ..point()
        };
        assert!(lb(&big_ub).contains("-ub 4096 -b 4096 "), "{}", lb(&big_ub));
        let small = Point {
            n_batch: 128,
            ..big_ub
        };
        assert!(lb(&small).contains("-ub 4096 -b 128 "), "{}", lb(&small));
        assert_eq!(substitute("b={n_batch}", &b256, &s).unwrap(), "b=256");
    }

    #[test]
    fn placeholders() {
        let s = RunSettings {
            reps: 5,
            counters: &[],
            repeat: 2,
            profile: None,
        };
        let out = substitute(
            "run {model} -t {threads} -p {n_prompt} -n {n_gen} {test} r{repeat} {unknown}",
            &point(),
            &s,
        )
        .unwrap();
        assert_eq!(
            out,
            "run /m.gguf -t 4 -p 512 -n 128 pp512+tg128 r2 {unknown}"
        );
    }

    #[test]
    fn output_parsing() {
        let row = r#"{"n_threads": 2, "n_prompt": 0, "n_gen": 16, "avg_ns": 5, "avg_ts": 3.5, "extra": 1}"#;
        assert_eq!(parse_rows(row.as_bytes()).unwrap()[0].test, "tg16");
        assert_eq!(
            parse_rows(format!("[{row},{row}]").as_bytes())
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            parse_rows(format!("{row}\n\n{row}\n").as_bytes())
                .unwrap()
                .len(),
            2
        );
        for bad in [
            "",
            "hello world",
            "[]",
            "42",
            "{\"n_prompt\": 1}",
            "{\"a\":1}\nnot json",
        ] {
            assert!(parse_rows(bad.as_bytes()).is_err(), "{bad:?}");
        }
    }
}
