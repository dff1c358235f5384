#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz, libFuzzer) of the GGUF reader + model loader and of
# the result readers (JSONL, CSV, and compare's loader of every dialect).
#
# usage: scripts/fuzz.sh [gguf|results ...]       (default: both)
#   FUZZ_RUNS=N   executions per target (default 200000: about a minute each on 2 cores)
#   FUZZ_JOBS=N   parallel fuzzing jobs per target (default 1)
#
# Seeds come from tessera's synthesizer (small models of every weight type, tied and
# untied), from llama.cpp's own GGUF writer when `python3 -c 'import gguf'` works
# (shared/tools/mkmodel.py), and from result files in every dialect. The corpus grows in
# fuzz/corpus/<target>; a crash is saved in fuzz/artifacts/<target>/ and the script exits 1.
# cargo-fuzz's sanitizer flags are nightly-only; RUSTC_BOOTSTRAP=1 lets this machine's one
# stable toolchain accept them (no other toolchain can be installed here).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runs=${FUZZ_RUNS:-200000}
jobs=${FUZZ_JOBS:-1}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(gguf results)
for t in "${targets[@]}"; do
  case "$t" in gguf|results) ;; *) echo "fuzz.sh: unknown target '$t'; valid: gguf, results" >&2; exit 2 ;; esac
done
case "$runs" in ''|*[!0-9]*) echo "fuzz.sh: FUZZ_RUNS '$runs' is not a number" >&2; exit 2 ;; esac

command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
export RUSTC_BOOTSTRAP=1
cd "$root/fuzz"
seed="$root/fuzz/corpus/seed"
cargo run --quiet --release --bin seeds -- "$seed"
shared="$root/../shared/tools/mkmodel.py"
if [ -f "$shared" ] && python3 -c 'import gguf, numpy' 2>/dev/null; then
  for ty in f32 q8_0 q4_0; do
    python3 "$shared" "$seed/gguf/mkmodel-$ty.gguf" --vocab 32 --embd 32 --layers 1 \
      --heads 2 --kv-heads 1 --ff 64 --ctx 64 --type "$ty" >/dev/null
  done
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  start=$(date +%s)
  cargo fuzz run "$t" "corpus/$t" "$seed/$t" -- \
    -runs="$runs" -jobs="$jobs" -max_len=131072 -timeout=20 -print_final_stats=1
  echo "fuzz.sh: $t: $runs runs in $(( $(date +%s) - start )) s, no crash" >&2
done
