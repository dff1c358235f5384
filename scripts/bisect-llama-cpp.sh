#!/usr/bin/env bash
# bisect-llama-cpp.sh -- find the llama.cpp / ik_llama.cpp commit that made llama-bench
# slower, made it crash (segfault, CUDA illegal memory access, ...), or fixed such a crash,
# with `tessera bisect`: each commit is built with cmake in its own cached git worktree
# and measured with `llama-bench -o json`.
#
# NOT RUN HERE: this needs a llama.cpp or ik_llama.cpp *git checkout* (with history) and
# a GGUF model, which the tessera CI machines do not have (and they cannot download one).
# `bash -n` checks its syntax; the machinery it drives (`tessera bisect` with a build and
# a run command, the llama-bench JSON import, first-parent bisection, cached worktrees) is
# tested in harness/tests/bisect.rs on throw-away repositories.
#
# USAGE
#   scripts/bisect-llama-cpp.sh GOOD BAD [extra tessera bisect flags...]
#
#   LLAMA_CPP_DIR=~/src/llama.cpp MODEL=~/models/llama-8b-q4_0.gguf \
#     scripts/bisect-llama-cpp.sh b5000 master
#   # -> the first commit whose tg128 is >5% slower (Welch t-test, A/B interleaved with
#   #    the GOOD build), as markdown on stdout, JSON in $OUT_JSON.
#
#   MODE=fault CUDA=1 NGL=99 FAULT='illegal memory access' \
#     LLAMA_CPP_DIR=~/src/ik_llama.cpp MODEL=~/models/m.gguf \
#     scripts/bisect-llama-cpp.sh v1.0 HEAD --sanitizer
#   # -> the first commit where the CUDA run faults; MODE=fix with GOOD/BAD swapped
#   #    (BAD = an older faulty commit, GOOD = a newer fixed one) finds the fix.
#
#   Interrupted? Run `tessera bisect --repo "$LLAMA_CPP_DIR" --resume`.
#   Steps so far: `tessera bisect log --repo "$LLAMA_CPP_DIR"`.
#   Disk: one worktree + build per tested commit under
#   $LLAMA_CPP_DIR/.git/tessera-bisect/worktrees (about log2(N) of them);
#   `tessera bisect reset --repo "$LLAMA_CPP_DIR" --worktrees` removes them.
#
# ENVIRONMENT
#   LLAMA_CPP_DIR  the git checkout to bisect (required; its working tree, index and
#                  branch are left as they are)
#   MODEL          GGUF model for llama-bench (required)
#   MODE           perf (default) | fault | fix | output
#   TEST           llama-bench test whose avg_ts is the metric in perf mode (default tg128;
#                  pp512 also works); upstream rows without a `test` field are matched by
#                  n_prompt/n_gen
#   THREADS        llama-bench -t (default: nproc)
#   REPS           llama-bench -r per run (default 3)
#   REPEAT         runs per side per perf step (default 5; more when ambiguous)
#   THRESHOLD      smallest regression that counts (default 5%)
#   CUDA           1 = build with -DGGML_CUDA=ON (default 0 = CPU only)
#   NGL            llama-bench -ngl (default 99 with CUDA=1, else 0)
#   FAULT          regex a fault must match to count in fault/fix mode (default: any)
#   CMAKE_ARGS     extra cmake configure arguments (word-split)
#   JOBS           parallel compile jobs (default: nproc)
#   TIMEOUT        seconds per llama-bench run (default 900)
#   TESSERA        tessera binary (default: tessera on PATH)
#   OUT_JSON       where the result JSON goes (default: bisect-result.json)

set -euo pipefail

if [[ $# -lt 2 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -euo/d' >&2
    exit 2
fi
good=$1
bad=$2
shift 2

: "${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp or ik_llama.cpp git checkout}"
: "${MODEL:?set MODEL to a GGUF model file}"
[[ -d "$LLAMA_CPP_DIR/.git" || -f "$LLAMA_CPP_DIR/.git" ]] ||
    { echo "error: LLAMA_CPP_DIR=$LLAMA_CPP_DIR is not a git checkout" >&2; exit 2; }
[[ -f "$MODEL" ]] || { echo "error: MODEL=$MODEL does not exist" >&2; exit 2; }

MODE=${MODE:-perf}
TEST=${TEST:-tg128}
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-3}
REPEAT=${REPEAT:-5}
THRESHOLD=${THRESHOLD:-5%}
CUDA=${CUDA:-0}
JOBS=${JOBS:-$(nproc)}
TIMEOUT=${TIMEOUT:-900}
TESSERA=${TESSERA:-tessera}
OUT_JSON=${OUT_JSON:-bisect-result.json}
if [[ "$CUDA" == 1 ]]; then
    NGL=${NGL:-99}
    cuda_flag="-DGGML_CUDA=ON"
else
    NGL=${NGL:-0}
    cuda_flag="-DGGML_CUDA=OFF"
fi

# The build runs inside each commit's worktree. Only the llama-bench target is built;
# CURL is off so no network library is needed. Flags that an old commit does not know
# are ignored by cmake with a warning, so one command fits the whole range.
build="cmake -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
-DBUILD_SHARED_LIBS=OFF $cuda_flag ${CMAKE_ARGS:-} >/dev/null && \
cmake --build build --target llama-bench -j $JOBS >/dev/null"

# Older trees put binaries in build/bin, very old ones in build/; take whichever exists.
bench='b=build/bin/llama-bench; [ -x "$b" ] || b=build/llama-bench; "$b"'
model_q=$(printf '%q' "$MODEL")
case "$TEST" in
    pp*) run_args="-p ${TEST#pp} -n 0" ;;
    tg*) run_args="-p 0 -n ${TEST#tg}" ;;
    *) echo "error: TEST=$TEST is not valid; give ppN or tgN" >&2; exit 2 ;;
esac

args=(bisect --repo "$LLAMA_CPP_DIR" --good "$good" --bad "$bad" --mode "$MODE"
      --build "$build" --timeout "$TIMEOUT" --json "$OUT_JSON")
case "$MODE" in
    perf)
        args+=(--run "$bench -m $model_q $run_args -r $REPS -t $THREADS -ngl $NGL -o json"
               --metric "$TEST" --threshold "$THRESHOLD" --repeat "$REPEAT")
        ;;
    fault|fix)
        # One short run is enough to see a crash; CUDA_LAUNCH_BLOCKING=1 is set by tessera.
        args+=(--run "$bench -m $model_q -p 512 -n 16 -r 1 -t $THREADS -ngl $NGL -o json")
        [[ -n "${FAULT:-}" ]] && args+=(--fault "$FAULT")
        ;;
    output)
        echo "error: MODE=output needs a generation command; call tessera bisect directly" >&2
        exit 2
        ;;
    *) echo "error: MODE=$MODE is not valid; give perf, fault or fix" >&2; exit 2 ;;
esac

exec "$TESSERA" "${args[@]}" "$@"
