#!/usr/bin/env bash
# Runs tessera's built-in engine and upstream llama.cpp's llama-bench side by side on the same
# synthesized model with the same thread count, interleaved (tessera, llama-bench, tessera,
# ...), and prints tokens/s per test and the ratio tessera / llama.cpp.
#
# usage: scripts/vs-llama-cpp.sh [-m MODEL] [-t THREADS] [-p 512] [-n 128] [-r 3] [--rounds 3]
#
#   -m MODEL    GGUF file (default: tessera's built-in 150m Q4_0 model, synthesized once)
#   -t N        threads for both engines (default: 2)
#   -p / -n     prompt and generation lengths (llama-bench semantics; default 512 / 128)
#   -r N        repetitions per engine run (default 3)
#   --rounds K  interleaved rounds; each engine's samples are pooled over rounds (default 3)
#
# Env: LLAMA_BENCH=PATH to use an existing llama-bench instead of scripts/build-llama-cpp.sh
# (which builds one into the cache the first time, ~12 minutes on 2 cores);
# TESSERA=PATH for the tessera binary (default: cargo build --release).
# Only ratios measured in one run mean anything on a shared machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
model="" threads=2 np=512 ng=128 reps=3 rounds=3
while [ $# -gt 0 ]; do
  case "$1" in
    -m) model=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -p) np=$2; shift 2 ;;
    -n) ng=$2; shift 2 ;;
    -r) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "vs-llama-cpp.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "${TESSERA:-}" ]; then
  (cd "$root" && cargo build --release -q -p tessera)
  TESSERA="$root/target/release/tessera"
fi
LLAMA_BENCH=${LLAMA_BENCH:-$("$here/build-llama-cpp.sh" | tail -n 1)}
if [ -z "$model" ]; then
  cache=${TESSERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}
  model="$cache/models/synth-150m-q4_0-seed1.gguf"
  [ -f "$model" ] || "$TESSERA" model synth --preset 150m --type q4_0 --seed 1 -o "$model"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$rounds"); do
  echo "round $i/$rounds: tessera" >&2
  "$TESSERA" bench -m "$model" -p "$np" -n "$ng" -t "$threads" -r "$reps" -o jsonl >> "$out/tessera.jsonl"
  echo "round $i/$rounds: llama-bench" >&2
  "$LLAMA_BENCH" -m "$model" -p "$np" -n "$ng" -t "$threads" -r "$reps" -o jsonl >> "$out/llama.jsonl"
done

python3 - "$out/tessera.jsonl" "$out/llama.jsonl" "$threads" <<'PY'
import json, statistics, sys
def load(path):
    per = {}
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        test = r.get("test") or (f"pp{r['n_prompt']}" if r["n_gen"] == 0 else
                                 f"tg{r['n_gen']}" if r["n_prompt"] == 0 else
                                 f"pp{r['n_prompt']}+tg{r['n_gen']}")
        per.setdefault(test, []).extend(r["samples_ts"])
    return per
t, l = load(sys.argv[1]), load(sys.argv[2])
print(f"threads {sys.argv[3]}; t/s = mean ± stddev over all repetitions of all rounds")
print("| test | tessera t/s | llama.cpp t/s | tessera / llama.cpp |")
print("| --- | ---: | ---: | ---: |")
for test in sorted(set(t) | set(l)):
    a, b = t.get(test, []), l.get(test, [])
    fmt = lambda s: f"{statistics.mean(s):.2f} ± {statistics.stdev(s) if len(s) > 1 else 0:.2f}" if s else "n/a"
    ratio = f"{statistics.mean(a) / statistics.mean(b):.3f}" if a and b else "n/a"
    print(f"| {test} | {fmt(a)} | {fmt(b)} | {ratio} |")
PY
