//! Argument helpers shared by commands: comma lists, llama-bench-style values and the one
//! `--threshold` parser.

use std::ops::RangeInclusive;
use std::str::FromStr;

use anyhow::Result;
use tessera_engine::context::MAX_CTX;
use tessera_engine::pool::MAX_THREADS;
use tessera_kernels::{IsaRequest, Kernels, TileConfig};

/// Token counts (`-p`, `-n`, `-pg`, generate's `-n`): 0 up to the longest context.
pub const TOKENS: RangeInclusive<usize> = 0..=MAX_CTX;
/// Batch and micro-batch sizes (`-b`, `-ub`).
pub const BATCH: RangeInclusive<usize> = 1..=MAX_CTX;
/// Thread counts (`-t` of every command).
pub const THREADS: RangeInclusive<usize> = 1..=MAX_THREADS;
/// Timed repetitions (`-r`): a million is days of measuring for the smallest test.
pub const REPS: RangeInclusive<usize> = 1..=1_000_000;

/// One count in `range`; the error says what is valid ("give a positive number of threads,
/// at most 1024"). Values too long for any integer get the same message, not an overflow.
pub fn count_in(s: &str, range: &RangeInclusive<usize>, unit: &str) -> Result<usize, String> {
    let (lo, hi) = (*range.start(), *range.end());
    let hint = if lo == 1 {
        format!("give a positive number of {unit}, at most {hi}")
    } else {
        format!("give a number of {unit} from {lo} to {hi}")
    };
    match s.trim().parse::<usize>() {
        Ok(v) if range.contains(&v) => Ok(v),
        _ => Err(hint),
    }
}

/// Clap value parser of a thread count in [`THREADS`].
pub fn threads_arg(s: &str) -> Result<usize, String> {
    count_in(s, &THREADS, "threads")
}

/// Clap value parser of a token count in [`TOKENS`].
pub fn tokens_arg(s: &str) -> Result<usize, String> {
    count_in(s, &TOKENS, "tokens")
}

/// Clap value parser of a repetition count in [`REPS`].
pub fn reps_arg(s: &str) -> Result<usize, String> {
    count_in(s, &REPS, "repetitions")
}

/// All values of a repeatable comma list of counts in `range`, or `default` when the flag
/// was not given; an error names the flag, the bad element and the valid range.
pub fn counts_or(
    flag: &str,
    given: &[String],
    default: &[usize],
    range: RangeInclusive<usize>,
    unit: &str,
) -> Result<Vec<usize>> {
    if given.is_empty() {
        return Ok(default.to_vec());
    }
    let mut out = Vec::new();
    for g in given {
        for p in g.split(',') {
            let v = count_in(p, &range, unit)
                .map_err(|hint| anyhow::anyhow!("{flag}: invalid value '{}': {hint}", p.trim()))?;
            out.push(v);
        }
    }
    Ok(out)
}

/// What a `--threshold` percentage may be: the two kinds of threshold tessera has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threshold {
    /// A noise threshold (compare, history, nightly, report): smaller changes count as
    /// unchanged; 0 ≤ t < 100, where 0 means every significant change counts.
    Noise,
    /// The smallest change `bisect` searches for (perf and speedup mode): 0 < t < 100. At 0
    /// the "within the threshold" test of a step would have to show the commit significantly
    /// *better* than the baseline, so an unchanged commit could never be judged: refusing 0
    /// is deliberate, not an inconsistency with [`Threshold::Noise`].
    Effect,
}

/// The one threshold parser: a percentage ("5%", "5", " 2.5 ") as a fraction (0.05), in the
/// range `kind` allows. The error texts are the ones each kind's commands printed before
/// they shared this parser (tests and scripts match them), hence their two styles.
pub fn parse_threshold(s: &str, kind: Threshold) -> Result<f64> {
    let v = s.trim().trim_end_matches('%').trim().parse::<f64>();
    match kind {
        Threshold::Noise => match v {
            Ok(v) if (0.0..100.0).contains(&v) => Ok(v / 100.0),
            _ => anyhow::bail!(
                "bad --threshold '{s}': give a percentage from 0 to 100, e.g. 2 or 2%"
            ),
        },
        Threshold::Effect => {
            let v = v.map_err(|_| {
                anyhow::anyhow!("--threshold: '{s}' is not valid; give a percentage such as 5%")
            })?;
            if !(v > 0.0 && v < 100.0) {
                anyhow::bail!(
                    "--threshold: '{s}' is not valid; give a percentage between 0 and 100 \
                     (exclusive)"
                );
            }
            Ok(v / 100.0)
        }
    }
}

/// Parses `"1,2,3"` into values, naming the bad element and the flag on error.
pub fn parse_list<T: FromStr>(flag: &str, s: &str) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    s.split(',')
        .map(|p| {
            let p = p.trim();
            p.parse::<T>()
                .map_err(|e| anyhow::anyhow!("{flag}: invalid value '{p}' in '{s}': {e}"))
        })
        .collect()
}

/// All values of a repeatable comma-list flag, or `default` when it was not given.
pub fn list_or<T: FromStr + Clone>(flag: &str, given: &[String], default: &[T]) -> Result<Vec<T>>
where
    T::Err: std::fmt::Display,
{
    if given.is_empty() {
        return Ok(default.to_vec());
    }
    let mut out = Vec::new();
    for g in given {
        out.extend(parse_list(flag, g)?);
    }
    Ok(out)
}

/// `--isa` and `--tile` as bench and generate take them: parsed, then checked together
/// against this CPU (an ISA it lacks, a tile that ISA cannot do), so a bad value fails
/// before a model is made or loaded. The errors name the flag and what would be valid.
pub fn kernels_arg(isa: &str, tile: Option<&str>) -> Result<(IsaRequest, Option<TileConfig>)> {
    let isa: IsaRequest = isa.parse().map_err(|e| anyhow::anyhow!("--isa: {e}"))?;
    let tile = match tile {
        Some(t) => Some(
            t.parse::<TileConfig>()
                .map_err(|e| anyhow::anyhow!("--tile: {e}"))?,
        ),
        None => None,
    };
    Kernels::new(isa, tile).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((isa, tile))
}

/// Token ids from `"1,2,3"`: non-negative integers.
pub fn parse_tokens(s: &str) -> Result<Vec<u32>> {
    let ids: Vec<i64> = parse_list("--prompt-tokens", s)?;
    ids.iter()
        .map(|&t| {
            u32::try_from(t)
                .map_err(|_| anyhow::anyhow!("--prompt-tokens: token id {t} is invalid: ids are integers from 0 to the vocabulary size - 1"))
        })
        .collect()
}

/// Physical cores by default, as llama-bench does; `available_parallelism` counts logical
/// CPUs, so halve it when /sys says SMT is active. At most [`MAX_THREADS`].
pub fn default_threads() -> usize {
    let logical = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let smt = std::fs::read_to_string("/sys/devices/system/cpu/smt/active")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    let physical = if smt { (logical / 2).max(1) } else { logical };
    physical.min(MAX_THREADS)
}

/// llama-bench spells some long flags with one dash (`-ctk`, `-ub`, `-pg`), which clap reads
/// as clusters of short flags. They are rewritten to their `--long` names before parsing;
/// only exact matches (or `-ctk=VALUE`) are touched, so values are never rewritten.
pub fn llama_bench_aliases(
    args: impl IntoIterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    const ALIASES: [(&str, &str); 5] = [
        ("-ctk", "--cache-type-k"),
        ("-ctv", "--cache-type-v"),
        ("-ub", "--ubatch-size"),
        ("-pg", "--pg"),
        ("-ngl", "--n-gpu-layers"),
    ];
    let mut prev_takes_value = false;
    args.into_iter()
        .map(|a| {
            let rewritten = match a.to_str() {
                Some(s) if !prev_takes_value => ALIASES.iter().find_map(|(short, long)| {
                    if s == *short {
                        Some(std::ffi::OsString::from(*long))
                    } else {
                        s.strip_prefix(short)
                            .and_then(|rest| rest.strip_prefix('='))
                            .map(|v| std::ffi::OsString::from(format!("{long}={v}")))
                    }
                }),
                _ => None,
            };
            // A value such as `--prompt-tokens -ub` stays as given: only flag positions change.
            prev_takes_value = rewritten
                .as_ref()
                .is_some_and(|r| !r.to_string_lossy().contains('='));
            rewritten.unwrap_or(a)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: &[&str]) -> Vec<String> {
        llama_bench_aliases(v.iter().map(std::ffi::OsString::from))
            .iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn rewrites_llama_bench_single_dash_flags() {
        assert_eq!(
            run(&["t", "bench", "-ctk", "f16", "-ub=256", "-pg", "512,128"]),
            [
                "t",
                "bench",
                "--cache-type-k",
                "f16",
                "--ubatch-size=256",
                "--pg",
                "512,128"
            ]
        );
    }

    #[test]
    fn leaves_values_and_other_flags_alone() {
        assert_eq!(
            run(&["t", "-ctk", "-ub", "-p", "512"]),
            ["t", "--cache-type-k", "-ub", "-p", "512"]
        );
    }

    #[test]
    fn counts_out_of_range_name_the_value_and_the_limit() {
        let e = counts_or(
            "-p",
            &["8,18446744073709551615".into()],
            &[],
            TOKENS,
            "tokens",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "-p: invalid value '18446744073709551615': give a number of tokens from 0 to 16777216"
        );
        // Past u64 too: the same message, not "number too large to fit in target type".
        let e = counts_or(
            "-t",
            &["99999999999999999999999".into()],
            &[],
            THREADS,
            "threads",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.ends_with("give a positive number of threads, at most 1024"),
            "{e}"
        );
        assert!(counts_or("-t", &["0".into()], &[], THREADS, "threads").is_err());
        assert_eq!(
            counts_or(
                "-b",
                &["1, 16777216".into(), "2".into()],
                &[],
                BATCH,
                "tokens"
            )
            .unwrap(),
            [1, 1 << 24, 2]
        );
        assert_eq!(counts_or("-b", &[], &[7], BATCH, "tokens").unwrap(), [7]);
        assert_eq!(threads_arg("1024"), Ok(1024));
        assert!(threads_arg("1025").is_err() && tokens_arg("-1").is_err());
    }

    #[test]
    fn parse_list_names_the_bad_element() {
        let e = parse_list::<usize>("-p", "1,x,3").unwrap_err().to_string();
        assert!(e.contains("'x'") && e.contains("-p"), "{e}");
    }

    #[test]
    fn noise_thresholds_take_zero() {
        let ok = |s| parse_threshold(s, Threshold::Noise).unwrap();
        assert!((ok("5%") - 0.05).abs() < 1e-12);
        assert!((ok(" 2.5 ") - 0.025).abs() < 1e-12);
        assert_eq!(ok("0"), 0.0);
        assert_eq!(ok("0%"), 0.0);
        assert!((ok("99.9") - 0.999).abs() < 1e-12);
        for bad in ["-3", "-3%", "100", "100%", "lots", "", "NaN", "inf", "5%%x"] {
            let e = parse_threshold(bad, Threshold::Noise)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("bad --threshold '{bad}': give a percentage from 0 to 100, e.g. 2 or 2%"),
            );
        }
    }

    #[test]
    fn effect_thresholds_refuse_zero() {
        let ok = |s| parse_threshold(s, Threshold::Effect).unwrap();
        assert!((ok("5%") - 0.05).abs() < 1e-12);
        assert!((ok(" 2.5 ") - 0.025).abs() < 1e-12);
        for bad in ["0", "0%", "-3", "-3%", "100%", "NaN"] {
            let e = parse_threshold(bad, Threshold::Effect)
                .unwrap_err()
                .to_string();
            assert!(e.ends_with("between 0 and 100 (exclusive)"), "{bad}: {e}");
        }
        for bad in ["fast", "", "5%%x"] {
            let e = parse_threshold(bad, Threshold::Effect)
                .unwrap_err()
                .to_string();
            assert_eq!(
                e,
                format!("--threshold: '{bad}' is not valid; give a percentage such as 5%")
            );
        }
    }
}
