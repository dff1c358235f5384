#!/usr/bin/env bash
# Runs tessera's built-in engine and upstream llama.cpp's llama-bench side by side on the same
# synthesized model with the same thread count, interleaved (tessera, llama-bench, tessera,
# ...), and prints tokens/s per engine and test and the ratio to the first llama.cpp build.
#
# usage: scripts/vs-llama-cpp.sh [-m MODEL] [-t THREADS] [-p 512] [-n 128] [-r 3] [--rounds 3]
#                                [--isa auto] [--amx auto|on|off|both]
#
#   -m MODEL    GGUF file (default: tessera's built-in 150m Q4_0 model, synthesized once)
#   -t N        threads for both engines (default: 2)
#   -p / -n     prompt and generation lengths (llama-bench semantics; default 512 / 128)
#   -r N        repetitions per engine run (default 3)
#   --rounds K  interleaved rounds; each engine's samples are pooled over rounds (default 3)
#   --isa LIST  comma list of tessera ISAs (`tessera bench --isa`), e.g. avx2,avx512,amx;
#               each is its own row (default: auto)
#   --amx MODE  which llama.cpp builds (scripts/build-llama-cpp.sh --amx) to compare against:
#               auto (default): on an AMX CPU both the AMX and the no-AMX build, or only the
#                 no-AMX build when the AMX build faults (the build script probes it once);
#                 elsewhere the native build
#               on: the native/AMX build; off: the no-AMX build; both: both, no probe
#
# Each round runs every tessera ISA, then every llama.cpp build (tessera isa1, tessera isa2,
# ..., llama.cpp AMX, llama.cpp no-AMX). The table has one row per (engine, test): t/s mean ±
# stddev over all repetitions of all rounds, and the ratio to the first llama.cpp build.
#
# Env: LLAMA_BENCH=PATH to use one existing llama-bench (then --amx is not used) instead of
# scripts/build-llama-cpp.sh (which builds into the cache the first time, ~4-12 minutes per
# build on 2 cores); TESSERA=PATH for the tessera binary (default: cargo build --release).
# Only ratios measured in one run mean anything on a shared machine. Bad arguments: exit 2.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
me=vs-llama-cpp.sh
bad() { echo "$me: $*" >&2; exit 2; }
need() { [ "$2" -ge 2 ] || bad "$1 needs a value (see --help)"; }

model="" threads=2 np=512 ng=128 reps=3 rounds=3 amx=auto amx_given=0 isas=auto
while [ $# -gt 0 ]; do
  case "$1" in
    -m|-t|-p|-n|-r|--rounds|--amx|--isa) need "$1" $# ;;
  esac
  case "$1" in
    -m) model=$2; shift 2 ;;
    -t) threads=$2; shift 2 ;;
    -p) np=$2; shift 2 ;;
    -n) ng=$2; shift 2 ;;
    -r) reps=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --amx) amx=$2; amx_given=1; shift 2 ;;
    --amx=*) amx=${1#--amx=}; amx_given=1; shift ;;
    --isa) isas=$2; shift 2 ;;
    --isa=*) isas=${1#--isa=}; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) bad "unknown argument '$1' (see --help)" ;;
  esac
done

case "$amx" in
  auto|on|off|both) ;;
  *) bad "--amx: invalid value '$amx' (valid: auto, on, off, both)" ;;
esac
for v in "-t:$threads" "-r:$reps" "--rounds:$rounds"; do
  [[ "${v#*:}" =~ ^[1-9][0-9]*$ ]] || bad "${v%%:*}: expected a positive integer, got '${v#*:}'"
done
for v in "-p:$np" "-n:$ng"; do
  [[ "${v#*:}" =~ ^[0-9]+(,[0-9]+)*$ ]] || bad "${v%%:*}: expected a comma list of integers, got '${v#*:}'"
done
[ -z "$model" ] || [ -f "$model" ] || bad "-m: no such file '$model'"

if [ -z "${TESSERA:-}" ]; then
  (cd "$root" && cargo build --release -q -p tessera)
  TESSERA="$root/target/release/tessera"
fi
[ -x "$TESSERA" ] || { echo "$me: TESSERA=$TESSERA is not an executable" >&2; exit 1; }
export TESSERA   # build-llama-cpp.sh synthesizes its AMX probe model with it

# --isa: comma list, checked against `tessera kernels --list` (plus auto), duplicates dropped.
valid_isas=$("$TESSERA" kernels --list 2>/dev/null | sed -n 's/^\([A-Za-z0-9_-]*\)\( ([^)]*)\)\{0,1\}:.*/\1/p' | tr '\n' ' ' || true)
isa_list=()
IFS=, read -r -a isa_in <<<"$isas"
[ ${#isa_in[@]} -gt 0 ] || bad "--isa: empty list"
for isa in "${isa_in[@]}"; do
  [ -n "$isa" ] || bad "--isa: empty entry in '$isas'"
  if [ "$isa" != auto ] && [ -n "$valid_isas" ] && [[ " $valid_isas " != *" $isa "* ]]; then
    bad "--isa: unknown ISA '$isa' (valid: auto, $(echo $valid_isas | sed 's/ /, /g'))"
  fi
  dup=0
  for seen in ${isa_list[@]+"${isa_list[@]}"}; do [ "$seen" = "$isa" ] && dup=1; done
  [ $dup -eq 1 ] || isa_list+=("$isa")
done

# The llama.cpp builds to compare against: labels and binaries, in run order.
peer_label=() peer_bin=()
build() {  # build AMX_MODE -> last stdout line of build-llama-cpp.sh
  local p
  p=$("$here/build-llama-cpp.sh" --amx "$1" | tail -n 1) \
    || { echo "$me: scripts/build-llama-cpp.sh --amx $1 failed (see above)" >&2; exit 1; }
  [ -x "$p" ] || { echo "$me: scripts/build-llama-cpp.sh --amx $1 printed '$p', not an executable" >&2; exit 1; }
  printf '%s\n' "$p"
}
cpu_amx=0
grep -qw amx_int8 /proc/cpuinfo 2>/dev/null && cpu_amx=1
if [ -n "${LLAMA_BENCH:-}" ]; then
  [ $amx_given -eq 0 ] || echo "$me: LLAMA_BENCH is set; ignoring --amx $amx" >&2
  peer_label=("llama.cpp") peer_bin=("$LLAMA_BENCH")
else
  native_label="llama.cpp"
  [ $cpu_amx -eq 1 ] && native_label="llama.cpp AMX"
  case "$amx" in
    on)  amx_bin=$(build on); peer_label=("$native_label") peer_bin=("$amx_bin") ;;
    off) noamx=$(build off); peer_label=("llama.cpp no-AMX") peer_bin=("$noamx") ;;
    both)
      [ $cpu_amx -eq 1 ] || echo "$me: note: this CPU has no AMX, so both builds lack it" >&2
      amx_bin=$(build on)
      noamx=$(build off)
      peer_label=("$native_label" "llama.cpp no-AMX") peer_bin=("$amx_bin" "$noamx") ;;
    auto)
      chosen=$(build auto)
      if [ $cpu_amx -eq 1 ]; then
        noamx=$(build off)
        if [ "$chosen" = "$noamx" ]; then
          echo "$me: the llama.cpp AMX build faults on this CPU (see above); comparing against the no-AMX build only" >&2
          peer_label=("llama.cpp no-AMX") peer_bin=("$noamx")
        else
          peer_label=("llama.cpp AMX" "llama.cpp no-AMX") peer_bin=("$chosen" "$noamx")
        fi
      else
        peer_label=("llama.cpp") peer_bin=("$chosen")
      fi ;;
  esac
fi

if [ -z "$model" ]; then
  cache=${TESSERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}
  model="$cache/models/synth-150m-q4_0-seed1.gguf"
  [ -f "$model" ] || "$TESSERA" model synth --preset 150m --type q4_0 --seed 1 -o "$model"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for i in $(seq 1 "$rounds"); do
  for k in "${!isa_list[@]}"; do
    echo "round $i/$rounds: tessera --isa ${isa_list[$k]}" >&2
    "$TESSERA" bench -m "$model" -p "$np" -n "$ng" -t "$threads" -r "$reps" --isa "${isa_list[$k]}" \
      -o jsonl >> "$out/tessera$k.jsonl"
  done
  for j in "${!peer_bin[@]}"; do
    echo "round $i/$rounds: ${peer_label[$j]} (${peer_bin[$j]})" >&2
    st=0
    "${peer_bin[$j]}" -m "$model" -p "$np" -n "$ng" -t "$threads" -r "$reps" -o jsonl \
      >> "$out/llama$j.jsonl" || st=$?
    if [ $st -ne 0 ]; then
      how="exit $st"
      [ $st -gt 128 ] && how="SIG$(kill -l $((st - 128)) 2>/dev/null || echo '?') (exit $st)"
      echo "$me: ${peer_label[$j]} (${peer_bin[$j]}) failed: $how; try --amx off or --amx auto" >&2
      exit 1
    fi
  done
done

args=()
for k in "${!isa_list[@]}"; do args+=("tessera --isa ${isa_list[$k]}" "$out/tessera$k.jsonl"); done
for j in "${!peer_bin[@]}"; do args+=("${peer_label[$j]}" "$out/llama$j.jsonl"); done

python3 - "$threads" "${#isa_list[@]}" "${args[@]}" <<'PY'
import json, statistics, sys
threads, n_tessera, rest = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
engines = []  # (label, {test: [samples_ts]})
for idx, (label, path) in enumerate(zip(rest[0::2], rest[1::2])):
    per, resolved = {}, set()
    for line in open(path):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        test = r.get("test") or (f"pp{r['n_prompt']}" if r["n_gen"] == 0 else
                                 f"tg{r['n_gen']}" if r["n_prompt"] == 0 else
                                 f"pp{r['n_prompt']}+tg{r['n_gen']}")
        per.setdefault(test, []).extend(r["samples_ts"])
        if idx < n_tessera and r.get("isa"):
            resolved.add(r["isa"])
    requested = label.rsplit(" ", 1)[-1]
    if idx < n_tessera and resolved and resolved != {requested}:
        label += " (" + ",".join(sorted(resolved)) + ")"
    engines.append((label, per))
ref_label, ref = engines[n_tessera]
fmt = lambda s: f"{statistics.mean(s):.2f} ± {statistics.stdev(s) if len(s) > 1 else 0:.2f}" if s else "n/a"
print(f"threads {threads}; t/s = mean ± stddev over all repetitions of all rounds; "
      f"ratio = t/s / {ref_label} t/s")
print(f"| engine | test | t/s | / {ref_label} |")
print("| --- | --- | ---: | ---: |")
tests = sorted({t for _, per in engines for t in per})
for test in tests:
    b = ref.get(test, [])
    for label, per in engines:
        a = per.get(test, [])
        ratio = f"{statistics.mean(a) / statistics.mean(b):.3f}" if a and b else "n/a"
        print(f"| {label} | {test} | {fmt(a)} | {ratio} |")
PY
