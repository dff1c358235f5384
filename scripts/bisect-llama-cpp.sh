#!/usr/bin/env bash
# bisect-llama-cpp.sh -- find the llama.cpp / ik_llama.cpp commit that made llama-bench
# slower, made it faster (the speedup to port or cherry-pick), made it crash (segfault, CUDA
# illegal memory access, ...), or fixed such a crash, with `tessera bisect`: each commit is
# built with cmake in a cached git worktree (ccache across commits when it is installed)
# and measured with `llama-bench -o json`, A/B interleaved with the old endpoint's build.
#
# Run for real on ik_llama.cpp (a `fetch` mirror without its largest blobs, 28 first-parent
# commits of 2024-09, MODE=speedup, pp512 of a synthetic 150m Q4_0 model): see docs/bisect.md,
# section "A real run". The machinery is tested in harness/tests/bisect*.rs on throw-away
# repositories.
#
# USAGE
#   scripts/bisect-llama-cpp.sh OLD NEW [extra tessera bisect flags...]
#
#   OLD is the older revision and NEW the newer one, in every mode (tessera's --old/--new):
#   perf: the first commit after OLD that is measurably slower than OLD; speedup: the
#   first one measurably faster; fault: the first one that crashes (OLD runs cleanly);
#   fix: the first one that no longer crashes (OLD crashes).
#
#   LLAMA_CPP_DIR=~/src/llama.cpp MODEL=~/models/llama-8b-q4_0.gguf \
#     scripts/bisect-llama-cpp.sh b5000 master
#   # -> the first commit whose tg128 is >5% slower (Welch t-test, A/B interleaved with
#   #    the OLD build), as markdown on stdout, JSON in $OUT_JSON.
#
#   MODE=speedup TEST=pp512 LLAMA_CPP_DIR=~/mirrors/ik_llama.cpp MODEL=/tmp/m150.gguf \
#     scripts/bisect-llama-cpp.sh 0449090ae 15b231cb7
#   # -> the first commit whose pp512 is >5% faster than 0449090ae's.
#
#   MODE=fault CUDA=1 NGL=99 FAULT='illegal memory access' \
#     LLAMA_CPP_DIR=~/src/ik_llama.cpp MODEL=~/models/m.gguf \
#     scripts/bisect-llama-cpp.sh v1.0 HEAD --sanitizer
#   # -> the first commit where the CUDA run faults; MODE=fix with OLD = a faulty commit
#   #    and NEW = a fixed one finds the fix.
#
#   Interrupted, or stopped by BUDGET/MAX_STEPS? Run the same command with RESUME=1 (or
#   `tessera bisect --repo "$LLAMA_CPP_DIR" --resume`); finished commits are not rebuilt.
#   Steps so far: `tessera bisect log --repo "$LLAMA_CPP_DIR"`.
#   Disk: one worktree + build per tested commit under
#   <git dir>/tessera-bisect/worktrees (about log2(N) + 2 of them, ~60 MB each for a
#   CPU-only llama-bench build) and the ccache there;
#   `tessera bisect reset --repo "$LLAMA_CPP_DIR" --worktrees` removes them.
#
# ENVIRONMENT
#   LLAMA_CPP_DIR  the repository to bisect (required): a checkout, a bare mirror or a
#                  partial clone; its working tree, index, HEAD and stash are left as
#                  they are
#   MODEL          GGUF model for llama-bench (required)
#   MODE           perf (default) | speedup | fault | fix
#   TEST           llama-bench test whose avg_ts is the metric in perf/speedup mode
#                  (default tg128; pp512 also works); upstream rows without a `test` field
#                  are matched by n_prompt/n_gen
#   THREADS        llama-bench -t (default: nproc)
#   REPS           llama-bench -r per run (default 3)
#   REPEAT         runs per side per perf step (default 5; more when ambiguous)
#   THRESHOLD      smallest change that counts (default 5%)
#   CUDA           1 = build with -DGGML_CUDA=ON (default 0 = CPU only)
#   NGL            llama-bench -ngl (default 99 with CUDA=1, else 0)
#   FAULT          regex a fault must match to count in fault/fix mode (default: any)
#   CMAKE_ARGS     extra cmake configure arguments (word-split)
#   CMAKE          cmake >= 3.21 to use (default: cmake on PATH if new enough, else
#                  $TESSERA_CACHE/tools/cmake-venv/bin/cmake, pip-installed there on first
#                  use, as scripts/build-llama-cpp.sh does)
#   JOBS           parallel compile jobs (default: nproc); tessera --jobs
#   BUILD_CACHE    auto (default: ccache when installed, else one reused worktree) |
#                  ccache | reuse | none; tessera --build-cache
#   EXCLUDE        paths left out of the worktrees, space-separated globs (default
#                  'models/*.gguf': the vocab test models, which mirrors and partial clones
#                  lack and llama-bench does not need; EXCLUDE= keeps everything)
#   BUDGET         stop before a step that would end later (e.g. 45m), with the range left
#   MAX_STEPS      stop after this many tests, with the range left
#   RESUME         1 = continue the saved bisection (the other settings are the saved ones)
#   TIMEOUT        seconds per llama-bench run (default 900)
#   TESSERA        tessera binary (default: tessera on PATH)
#   TESSERA_CACHE  cache root for the cmake venv (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tessera)
#   OUT_JSON       where the result JSON goes (default: bisect-result.json)

set -euo pipefail

if [[ $# -lt 2 && "${RESUME:-0}" != 1 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e 's/^# \{0,1\}//' -e '/^set -euo/d' >&2
    exit 2
fi

: "${LLAMA_CPP_DIR:?set LLAMA_CPP_DIR to a llama.cpp or ik_llama.cpp git repository}"
git -C "$LLAMA_CPP_DIR" rev-parse --git-dir >/dev/null 2>&1 ||
    { echo "error: LLAMA_CPP_DIR=$LLAMA_CPP_DIR is not a git repository" >&2; exit 2; }
TESSERA=${TESSERA:-tessera}
OUT_JSON=${OUT_JSON:-bisect-result.json}

if [[ "${RESUME:-0}" == 1 ]]; then
    [[ $# -ge 2 ]] && shift 2
    args=(bisect --repo "$LLAMA_CPP_DIR" --resume --json "$OUT_JSON")
    [[ -n "${JOBS:-}" ]] && args+=(--jobs "$JOBS")
    [[ -n "${BUDGET:-}" ]] && args+=(--budget "$BUDGET")
    [[ -n "${MAX_STEPS:-}" ]] && args+=(--max-steps "$MAX_STEPS")
    exec "$TESSERA" "${args[@]}" "$@"
fi

old=$1
new=$2
shift 2
: "${MODEL:?set MODEL to a GGUF model file}"
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
BUILD_CACHE=${BUILD_CACHE:-auto}
EXCLUDE=${EXCLUDE-models/*.gguf}
if [[ "$CUDA" == 1 ]]; then
    NGL=${NGL:-99}
    cuda_flag="-DGGML_CUDA=ON"
else
    NGL=${NGL:-0}
    cuda_flag="-DGGML_CUDA=OFF"
fi

# cmake >= 3.21 (llama.cpp trees of 2024 and later need it).
cmake_usable() {
    local v
    v=$("$1" --version 2>/dev/null | sed -n '1s/^cmake version \([0-9]*\.[0-9]*\).*/\1/p')
    [[ -n "$v" ]] && printf '3.21\n%s\n' "$v" | sort -V -C
}
find_cmake() {
    if [[ -n "${CMAKE:-}" ]]; then
        cmake_usable "$CMAKE" || { echo "error: CMAKE=$CMAKE is not a cmake >= 3.21" >&2; exit 2; }
        printf '%s\n' "$CMAKE"; return
    fi
    if cmake_usable cmake; then command -v cmake; return; fi
    local venv="${TESSERA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tessera}/tools/cmake-venv"
    if ! cmake_usable "$venv/bin/cmake"; then
        echo "cmake >= 3.21 not found; pip-installing it into $venv" >&2
        python3 -m venv "$venv" >&2 && "$venv/bin/python" -m pip install --quiet cmake >&2 ||
            { echo "error: could not install cmake; set CMAKE=/path/to/cmake" >&2; exit 2; }
    fi
    printf '%s\n' "$venv/bin/cmake"
}
cmake_bin=$(printf '%q' "$(find_cmake)")

# The build runs inside each commit's worktree. Only the llama-bench target is built;
# CURL is off so no network library is needed. Flags that an old commit does not know
# are ignored by cmake with a warning, so one command fits the whole range. The compiler
# output goes to build.log in the worktree; a failed build shows its last lines (tessera
# keeps the last three in the step). tessera exports CMAKE_C(XX)_COMPILER_LAUNCHER=ccache
# with BUILD_CACHE=ccache/auto, which the first configure of a build directory reads.
build="$cmake_bin -B build -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF \
-DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF $cuda_flag ${CMAKE_ARGS:-} >build.log 2>&1 && \
$cmake_bin --build build --target llama-bench -j $JOBS >>build.log 2>&1 || \
{ tail -n 20 build.log >&2; exit 1; }"

# Older trees put binaries in build/bin, very old ones in build/; take whichever exists.
bench='b=build/bin/llama-bench; [ -x "$b" ] || b=build/llama-bench; "$b"'
model_q=$(printf '%q' "$MODEL")
case "$TEST" in
    pp*) run_args="-p ${TEST#pp} -n 0" ;;
    tg*) run_args="-p 0 -n ${TEST#tg}" ;;
    *) echo "error: TEST=$TEST is not valid; give ppN or tgN" >&2; exit 2 ;;
esac

args=(bisect --repo "$LLAMA_CPP_DIR" --old "$old" --new "$new" --mode "$MODE"
      --build "$build" --timeout "$TIMEOUT" --json "$OUT_JSON"
      --build-cache "$BUILD_CACHE" --jobs "$JOBS")
# read -a splits on blanks without expanding the globs against the current directory.
read -r -a excludes <<<"$EXCLUDE"
for e in ${excludes[@]+"${excludes[@]}"}; do args+=(--exclude "$e"); done
[[ -n "${BUDGET:-}" ]] && args+=(--budget "$BUDGET")
[[ -n "${MAX_STEPS:-}" ]] && args+=(--max-steps "$MAX_STEPS")
case "$MODE" in
    perf|speedup)
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
    *) echo "error: MODE=$MODE is not valid; give perf, speedup, fault or fix" >&2; exit 2 ;;
esac

exec "$TESSERA" "${args[@]}" "$@"
