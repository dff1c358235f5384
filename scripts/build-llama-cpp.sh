#!/usr/bin/env bash
# build-llama-cpp.sh -- build upstream llama.cpp's `llama-bench` (CPU only) for tessera.
#
# WHAT IT BUILDS
#   The reference engine tessera benchmarks against: upstream llama.cpp's
#   `llama-bench` tool, CPU backend only, Release, -DGGML_NATIVE=ON (tuned for
#   *this* machine's CPU), statically linked against libllama/libggml
#   (-DBUILD_SHARED_LIBS=OFF) so the binary runs from wherever it sits.
#   No CURL, no OpenSSL, no tests/examples/server; only the `llama-bench`
#   target is compiled.
#
#   Source comes from the llama-cpp-python *sdist* on PyPI (the only place source
#   can be downloaded from in our sandboxes): it vendors llama.cpp in
#   vendor/llama.cpp. The llama.cpp commit is taken from the shallow submodule
#   clone that the sdist ships (fallback: CHANGELOG.md "update llama.cpp to
#   ggml-org/llama.cpp@<sha>") and baked into the binary's build info. The
#   upstream build *number* (bNNNN) cannot be recovered from a shallow clone,
#   so it is 0 unless LLAMA_CPP_BUILD_NUMBER is given.
#
# AMX
#   On a CPU with AMX (amx_int8 in /proc/cpuinfo) -march=native makes ggml
#   compile its AMX backend (ggml_backend_amx_mul_mat). On some VMs the CPU
#   advertises AMX but the binary dies with SIGILL at its first AMX instruction.
#   Two builds exist, in separate cache directories:
#     native  -march=native (with AMX where the CPU has it)
#             $TESSERA_CACHE/llama.cpp/<version>/bin/llama-bench
#     noamx   -march=native -mno-amx-tile -mno-amx-int8 -mno-amx-bf16 (as
#             CMAKE_C_FLAGS/CMAKE_CXX_FLAGS; GGML_AMX_* are no-ops under
#             GGML_NATIVE=ON), checked with objdump to hold no AMX instruction
#             $TESSERA_CACHE/llama.cpp/<version>-noamx/bin/llama-bench
#   --amx auto (default): on a CPU without AMX, the native build. On an AMX CPU,
#     the native build is run once on a tiny model (llama-bench -p 32 -n 0 -r 1
#     -t 1); if it dies by a signal, it says so in one line on stderr and
#     builds/prints the no-AMX build instead. The verdict is kept in
#     $TESSERA_CACHE/llama.cpp/<version>/amx-probe.txt, keyed by the native
#     binary (size, mtime), the CPU model and the kernel; --reprobe re-tests.
#   --amx on: the native build, no probe.  --amx off: the no-AMX build.
#
# USAGE
#   scripts/build-llama-cpp.sh [--amx auto|on|off] [--reprobe] [--force]
#   LLAMA_BENCH=$(scripts/build-llama-cpp.sh)   # last stdout line = binary path
#
#   Idempotent: when the binary is already in the cache (built with the same
#   options) it just prints its path. Re-runs after an interrupted build resume
#   the incremental cmake build.
#   Everything except that final path goes to stderr. Bad arguments: exit 2.
#
# ENVIRONMENT
#   LLAMA_CPP_PY_VERSION   llama-cpp-python version to fetch (default: 0.3.36,
#                          which vendors llama.cpp@0c1e57098)
#   LLAMA_CPP_PY_SHA256    expected sha256 of the sdist (default: pinned for the
#                          default version; unchecked for other versions unless set)
#   TESSERA_CACHE          cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tessera)
#                          sdist, source and native build in $TESSERA_CACHE/llama.cpp/<version>/,
#                          binary in  $TESSERA_CACHE/llama.cpp/<version>/bin/llama-bench,
#                          no-AMX build in $TESSERA_CACHE/llama.cpp/<version>-noamx/
#   JOBS                   parallel compile jobs (default: nproc)
#   CMAKE                  cmake executable to use (default: cmake on PATH; if
#                          missing or older than 3.21, it is pip-installed into
#                          $TESSERA_CACHE/tools/cmake-venv)
#   PYTHON                 python used for pip (default: python3)
#   LLAMA_CPP_CMAKE_ARGS   extra cmake configure args (word-split), e.g. "-DGGML_OPENMP=OFF"
#                          (the no-AMX build sets CMAKE_C_FLAGS/CMAKE_CXX_FLAGS after them)
#   LLAMA_CPP_BUILD_NUMBER llama.cpp build number to bake in (default: 0 = unknown)
#   LLAMA_CPP_COMMIT       llama.cpp commit string to bake in (default: detected)
#   LLAMA_CPP_PROBE_MODEL  GGUF model for the AMX probe (default: the tiny Q4_0
#                          model synthesized once by tessera into $TESSERA_CACHE/models/)
#   TESSERA                tessera binary used to synthesize it (default: target/release/tessera)
#
# TIME
#   Download + unpack: ~20-30 s (76 MB sdist). Configure: ~10 s.
#   Compile of llama-bench and its deps (ggml, ggml-cpu, llama, llama-common):
#   12.5 min measured (v0.3.36) with JOBS=2 under `nice -n 19` on a busy shared
#   2-core VM (AMD EPYC); expect a few minutes on a 16-core machine. Cached runs
#   return in well under a second; an incremental re-run takes seconds. The
#   no-AMX build reuses the sdist and source and costs one more compile. The
#   AMX probe takes about a second.
#
# NOTES
#   GGML_NATIVE=ON means the binary uses the build machine's ISA extensions
#   (-march=native). Do not share the cache directory across different CPUs.

set -euo pipefail

readonly DEFAULT_VERSION="0.3.36"
readonly DEFAULT_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
readonly MIN_CMAKE="3.21"
readonly PKG="llama-cpp-python"
readonly NOAMX_FLAGS="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
readonly PROBE_TIMEOUT_S=300

prog=$(basename "$0")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)

log()  { printf '[%s] %s\n' "$prog" "$*" >&2; }
die()  { printf '[%s] error: %s\n' "$prog" "$*" >&2; exit 1; }
bad_arg() { printf '[%s] error: %s (see --help)\n' "$prog" "$*" >&2; exit 2; }

usage() {
  cat >&2 <<EOF
usage: $prog [--amx auto|on|off] [--reprobe] [--force] [-h|--help]

Builds upstream llama.cpp's llama-bench (CPU, Release, GGML_NATIVE=ON, static)
from the $PKG sdist on PyPI and prints the absolute path of the binary
as the last line on stdout (all other output goes to stderr).

  --amx auto  (default) native build; on an AMX CPU, run it once and fall back
              to a no-AMX build (-mno-amx-*) if it dies by a signal (SIGILL)
  --amx on    native build (with AMX where the CPU has it), no probe
  --amx off   no-AMX build (x86-64 only)
  --reprobe   with --amx auto: forget the cached probe verdict and run it again
  --force     rebuild even if the cached binary exists
  -h, --help  show this help

Environment: LLAMA_CPP_PY_VERSION (default $DEFAULT_VERSION), LLAMA_CPP_PY_SHA256,
TESSERA_CACHE, XDG_CACHE_HOME, JOBS, CMAKE, PYTHON, LLAMA_CPP_CMAKE_ARGS,
LLAMA_CPP_BUILD_NUMBER, LLAMA_CPP_PROBE_MODEL, TESSERA. See the header of this
script for details.
EOF
}

force=0
reprobe=0
amx_mode=auto
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --reprobe) reprobe=1 ;;
    --amx)
      [[ $# -ge 2 ]] || bad_arg "--amx needs a value: auto, on or off"
      amx_mode=$2; shift ;;
    --amx=*) amx_mode=${1#--amx=} ;;
    -h|--help) usage; exit 0 ;;
    *) bad_arg "unknown argument: $1" ;;
  esac
  shift
done
case "$amx_mode" in
  auto|on|off) ;;
  *) bad_arg "--amx: invalid value '$amx_mode' (valid: auto, on, off)" ;;
esac

version="${LLAMA_CPP_PY_VERSION:-$DEFAULT_VERSION}"
[[ "$version" =~ ^[0-9A-Za-z.+!_-]+$ ]] || die "invalid LLAMA_CPP_PY_VERSION: '$version'"
if [[ -n "${LLAMA_CPP_PY_SHA256:-}" ]]; then
  expected_sha="$LLAMA_CPP_PY_SHA256"
elif [[ "$version" == "$DEFAULT_VERSION" ]]; then
  expected_sha="$DEFAULT_SHA256"
else
  expected_sha=""
fi

python="${PYTHON:-python3}"

if [[ -n "${TESSERA_CACHE:-}" ]]; then
  cache_root="$TESSERA_CACHE"
else
  [[ -n "${XDG_CACHE_HOME:-}" || -n "${HOME:-}" ]] || die "neither TESSERA_CACHE, XDG_CACHE_HOME nor HOME is set"
  cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/tessera"
fi
mkdir -p "$cache_root" || die "cannot create cache dir $cache_root"
cache_root=$(cd "$cache_root" && pwd -P)

# sdist, unpacked source and the native build; the no-AMX build sits next to it.
src_ver_dir="$cache_root/llama.cpp/$version"
probe_file="$src_ver_dir/amx-probe.txt"

ncpus() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2; }
jobs="${JOBS:-$(ncpus)}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, got '$jobs'"

is_x86() { case "$(uname -m)" in x86_64|amd64|i[3-6]86) return 0 ;; esac; return 1; }
cpu_has_amx() { [[ -r /proc/cpuinfo ]] && grep -qw amx_int8 /proc/cpuinfo && grep -qw amx_tile /proc/cpuinfo; }
cpu_model() { sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n1; }

# Build options. Their signature is stored next to the binary, so a cached
# binary built with different options (or LLAMA_CPP_CMAKE_ARGS) is rebuilt.
base_opts=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=ON
  -DGGML_CPU=ON
  -DGGML_CUDA=OFF
  -DGGML_METAL=OFF
  -DGGML_VULKAN=OFF
  -DGGML_BACKEND_DL=OFF
  -DLLAMA_CURL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_COMMON=ON
  -DLLAMA_BUILD_TOOLS=ON
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_SERVER=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_TOOLS_INSTALL=OFF
  # The sdist's shallow clone would make llama.cpp report build number 1 (git
  # rev-list --count); the real upstream number is unknown, so say 0 unless told.
  "-DLLAMA_BUILD_NUMBER=${LLAMA_CPP_BUILD_NUMBER:-0}"
)
[[ -n "${LLAMA_CPP_COMMIT:-}" ]] && base_opts+=("-DLLAMA_BUILD_COMMIT=$LLAMA_CPP_COMMIT")
if [[ -n "${LLAMA_CPP_CMAKE_ARGS:-}" ]]; then
  read -r -a extra_args <<<"$LLAMA_CPP_CMAKE_ARGS"
  base_opts+=(${extra_args[@]+"${extra_args[@]}"})
fi

# ---------------------------------------------------------------- tools ----

version_ge() {  # version_ge A B: A >= B (numeric dotted)
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]
}

cmake_version() { "$1" --version 2>/dev/null | sed -n 's/^cmake version \([0-9][0-9.]*\).*/\1/p' | head -n1; }

cmake_usable() {
  local c="$1" v
  command -v "$c" >/dev/null 2>&1 || return 1
  v=$(cmake_version "$c")
  [[ -n "$v" ]] && version_ge "$v" "$MIN_CMAKE"
}

find_cmake() {
  if [[ -n "${CMAKE:-}" ]]; then
    cmake_usable "$CMAKE" || die "CMAKE=$CMAKE is not a usable cmake >= $MIN_CMAKE"
    printf '%s\n' "$CMAKE"; return
  fi
  if cmake_usable cmake; then command -v cmake; return; fi

  local venv="$cache_root/tools/cmake-venv"
  if cmake_usable "$venv/bin/cmake"; then printf '%s\n' "$venv/bin/cmake"; return; fi

  command -v "$python" >/dev/null 2>&1 || die "cmake >= $MIN_CMAKE not found and no '$python' to pip-install it; install cmake (e.g. apt-get install cmake) or set CMAKE"
  log "cmake >= $MIN_CMAKE not found; pip-installing cmake into $venv"
  if "$python" -m venv "$venv" >&2 && "$venv/bin/python" -m pip install --quiet cmake >&2 \
      && cmake_usable "$venv/bin/cmake"; then
    printf '%s\n' "$venv/bin/cmake"; return
  fi
  log "venv install failed; trying 'pip install --user cmake'"
  if "$python" -m pip install --quiet --user cmake >&2 || "$python" -m pip install --quiet cmake >&2; then
    hash -r
    local ub; ub="$("$python" -m site --user-base 2>/dev/null || true)/bin"
    if cmake_usable "$ub/cmake"; then printf '%s\n' "$ub/cmake"; return; fi
    if cmake_usable cmake; then command -v cmake; return; fi
  fi
  if command -v apt-get >/dev/null 2>&1 && [[ $(id -u) -eq 0 ]]; then
    log "trying apt-get install cmake"
    if apt-get install -y -q cmake >&2 && cmake_usable cmake; then command -v cmake; return; fi
  fi
  die "could not obtain cmake >= $MIN_CMAKE; install it and/or set CMAKE=/path/to/cmake"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else "$python" -c 'import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

# Number of AMX instructions in a binary (empty when objdump is unavailable).
amx_insn_count() {
  command -v objdump >/dev/null 2>&1 || return 0
  objdump -d --no-show-raw-insn "$1" 2>/dev/null \
    | grep -c -E '[[:space:]](tilezero|tileloadd|tileloaddt1|tilestored|tilerelease|ldtilecfg|sttilecfg|tdpb[su][su]d|tdpbf16ps|tdpfp16ps)[[:space:]]' || true
}

# -------------------------------------------------------------- source ----
# Download and unpack the sdist into $src_ver_dir (shared by both builds).
# Sets: sdist, src, llama_src, llama_commit, llama_commit_full.

prepare_source() {
  mkdir -p "$src_ver_dir"
  if command -v flock >/dev/null 2>&1; then
    exec 8>"$src_ver_dir/.src-lock"
    flock 8
  fi

  local sdist_dir="$src_ver_dir/sdist"
  mkdir -p "$sdist_dir"
  find_sdist() { find "$sdist_dir" -maxdepth 1 -type f -name "llama_cpp_python-${version}.tar.gz" -print -quit; }

  sdist=$(find_sdist)
  if [[ -n "$sdist" && -n "$expected_sha" && "$(sha256_of "$sdist")" != "$expected_sha" ]]; then
    log "cached sdist $sdist has a wrong sha256; re-downloading"
    rm -f "$sdist"; sdist=""
  fi

  if [[ -z "$sdist" ]]; then
    command -v "$python" >/dev/null 2>&1 || die "'$python' not found (needed for pip download); set PYTHON"
    log "downloading $PKG==$version sdist from PyPI into $sdist_dir"
    # --no-binary for the package itself only: with ':all:' pip would also build
    # the sdist's build backend deps (scikit-build-core, cmake, ...) from source
    # just to read metadata, which takes many minutes.
    if ! "$python" -m pip download --no-deps --no-binary "$PKG" \
          "$PKG==$version" -d "$sdist_dir" >&2; then
      log "pip download failed; falling back to the PyPI simple index with curl"
      command -v curl >/dev/null 2>&1 || die "pip download failed and curl is unavailable"
      local index="${PIP_INDEX_URL:-https://pypi.org/simple}" url index_sha
      url=$(curl -fsSL "${index%/}/$PKG/" \
            | grep -o "href=\"[^\"]*llama_cpp_python-${version//./\\.}\\.tar\\.gz[^\"]*\"" \
            | head -n1 | sed -e 's/^href="//' -e 's/"$//' -e 's/&amp;/\&/g') || true
      [[ -n "$url" ]] || die "no sdist for $PKG==$version on $index (does the version exist? try: pip index versions $PKG)"
      [[ "$url" == http* ]] || url="${index%/}/$PKG/$url"
      index_sha=""
      [[ "$url" == *"#sha256="* ]] && index_sha="${url##*#sha256=}"
      [[ -z "$expected_sha" ]] && expected_sha="$index_sha"
      curl -fsSL --retry 3 -o "$sdist_dir/llama_cpp_python-${version}.tar.gz.part" "${url%%#*}" >&2 \
        || die "download of ${url%%#*} failed"
      mv "$sdist_dir/llama_cpp_python-${version}.tar.gz.part" "$sdist_dir/llama_cpp_python-${version}.tar.gz"
    fi
    sdist=$(find_sdist)
    [[ -n "$sdist" ]] || die "download finished but no llama_cpp_python-${version}.tar.gz in $sdist_dir (is $version only available as a wheel?)"
  fi

  if [[ -n "$expected_sha" ]]; then
    local got_sha
    got_sha=$(sha256_of "$sdist")
    [[ "$got_sha" == "$expected_sha" ]] || die "sha256 mismatch for $sdist: got $got_sha, expected $expected_sha"
    log "sdist sha256 OK ($got_sha)"
  else
    log "warning: no pinned sha256 for version $version; not verifying (set LLAMA_CPP_PY_SHA256 to check)"
  fi

  local src_root="$src_ver_dir/src"
  src="$src_root/llama_cpp_python-${version}"
  llama_src="$src/vendor/llama.cpp"
  if [[ ! -f "$llama_src/CMakeLists.txt" ]] \
     || { [[ ! -f "$llama_src/tools/llama-bench/llama-bench.cpp" ]] && [[ ! -f "$llama_src/examples/llama-bench/llama-bench.cpp" ]]; }; then
    log "unpacking $sdist"
    rm -rf "$src_root.tmp"
    mkdir -p "$src_root.tmp"
    tar -xzf "$sdist" -C "$src_root.tmp" || die "failed to unpack $sdist"
    [[ -f "$src_root.tmp/llama_cpp_python-${version}/vendor/llama.cpp/CMakeLists.txt" ]] \
      || die "sdist has no vendor/llama.cpp/CMakeLists.txt; layout of $PKG $version is not supported"
    rm -rf "$src_root"
    mv "$src_root.tmp" "$src_root"
  fi

  # llama.cpp commit. The sdist ships a shallow clone of the submodule
  # (.git/modules/vendor/llama.cpp), so ask git (read-only) first; fall back to
  # the sdist's changelog entry for this version.
  llama_commit="${LLAMA_CPP_COMMIT:-}"
  llama_commit_full=""
  if command -v git >/dev/null 2>&1; then
    llama_commit_full=$(git -C "$llama_src" rev-parse --verify -q HEAD 2>/dev/null || true)
    # Make sure git did not walk up into some unrelated enclosing repository.
    local top
    top=$(git -C "$llama_src" rev-parse --show-toplevel 2>/dev/null || true)
    if [[ -n "$llama_commit_full" && -n "$top" && "$(cd "$top" && pwd -P)" == "$(cd "$llama_src" && pwd -P)" ]]; then
      [[ -z "$llama_commit" ]] && llama_commit="${llama_commit_full:0:9}"
    else
      llama_commit_full=""
    fi
  fi
  if [[ -z "$llama_commit" && -f "$src/CHANGELOG.md" ]]; then
    llama_commit=$(awk -v v="$version" '
        $0 ~ "^## \\[" v "\\]" { inside = 1; next }
        inside && /^## \[/ { exit }
        inside && match($0, /llama\.cpp@[0-9a-f]+/) { print substr($0, RSTART + 10, RLENGTH - 10); exit }
      ' "$src/CHANGELOG.md" || true)
  fi
  if [[ -n "$llama_commit" ]]; then
    log "vendored llama.cpp commit: $llama_commit"
  else
    log "warning: could not determine the vendored llama.cpp commit from CHANGELOG.md"
  fi

  [[ -e /dev/fd/8 ]] && exec 8>&-
  return 0
}

# ---------------------------------------------------------------- build ----
# ensure_variant native|noamx: build (or reuse) that variant; sets $binary.

ensure_variant() {
  local variant="$1" ver_dir
  local build_opts=("${base_opts[@]}")
  case "$variant" in
    native) ver_dir="$src_ver_dir" ;;
    noamx)
      ver_dir="$src_ver_dir-noamx"
      build_opts+=("-DCMAKE_C_FLAGS=$NOAMX_FLAGS" "-DCMAKE_CXX_FLAGS=$NOAMX_FLAGS") ;;
    *) die "internal: unknown variant $variant" ;;
  esac
  local bin_dir="$ver_dir/bin"
  binary="$bin_dir/llama-bench"
  local build_sig="$version ${build_opts[*]}"
  local sig_file="$bin_dir/.build-options"

  # A cached binary that runs and was built with the same options is all we need.
  binary_ok() {
    [[ -x "$binary" && -f "$sig_file" && "$(cat "$sig_file")" == "$build_sig" ]] \
      && "$binary" --help >/dev/null 2>&1
  }

  if [[ $force -eq 0 ]] && binary_ok; then
    log "cached ($variant): $binary"
    return 0
  fi

  mkdir -p "$ver_dir"

  # Serialise concurrent invocations for the same version and variant.
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$ver_dir/.lock"
    if ! flock -n 9; then
      log "another build of $version ($variant) is running; waiting for its lock ($ver_dir/.lock)"
      flock 9
    fi
    # It may have finished while we waited.
    if [[ $force -eq 0 ]] && binary_ok; then
      log "cached ($variant): $binary"
      exec 9>&-
      return 0
    fi
  fi

  local start_ts
  start_ts=$(date +%s)

  command -v tar >/dev/null 2>&1 || die "tar not found"
  command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 \
    || die "no C++ compiler found (need a C++17 compiler: g++ or clang++)"

  local cmake_bin
  cmake_bin=$(find_cmake)
  log "using $("$cmake_bin" --version | head -n1) at $cmake_bin"

  local generator=()
  if command -v ninja >/dev/null 2>&1; then
    generator=(-G Ninja)
  elif ! command -v make >/dev/null 2>&1; then
    die "neither ninja nor make found; install one (apt-get install make / pip install ninja)"
  fi

  prepare_source

  local build_dir="$ver_dir/build"
  local cmake_args=(-S "$llama_src" -B "$build_dir" ${generator[@]+"${generator[@]}"} "${build_opts[@]}")
  if [[ -z "${LLAMA_CPP_COMMIT:-}" && -n "$llama_commit" ]]; then
    cmake_args+=("-DLLAMA_BUILD_COMMIT=$llama_commit")
  fi

  # A cache from another generator would make configure fail.
  if [[ -f "$build_dir/CMakeCache.txt" ]]; then
    local want_gen="Unix Makefiles"; [[ ${#generator[@]} -gt 0 ]] && want_gen="Ninja"
    grep -q "^CMAKE_GENERATOR:INTERNAL=$want_gen\$" "$build_dir/CMakeCache.txt" || rm -rf "$build_dir"
  fi
  [[ $force -eq 1 ]] && rm -rf "$build_dir"

  log "configuring ($variant): $cmake_bin ${cmake_args[*]}"
  "$cmake_bin" "${cmake_args[@]}" >&2 || die "cmake configure failed (see output above)"

  log "building target llama-bench ($variant) with $jobs jobs (this takes a while)"
  local build_start build_end
  build_start=$(date +%s)
  "$cmake_bin" --build "$build_dir" --config Release --target llama-bench -j "$jobs" >&2 \
    || die "build failed (see output above); re-run with JOBS=1 for readable errors"
  build_end=$(date +%s)

  local built="" cand
  for cand in "$build_dir/bin/llama-bench" "$build_dir/bin/Release/llama-bench"; do
    [[ -x "$cand" ]] && { built="$cand"; break; }
  done
  [[ -n "$built" ]] || die "build reported success but no llama-bench binary under $build_dir/bin"

  local n_amx
  n_amx=$(amx_insn_count "$built")
  if [[ "$variant" == noamx && -n "$n_amx" && "$n_amx" != 0 ]]; then
    die "the no-AMX build $built still contains $n_amx AMX instructions (objdump -d); the compiler ignored $NOAMX_FLAGS?"
  fi

  mkdir -p "$bin_dir"
  cp -f "$built" "$binary.tmp"
  chmod 755 "$binary.tmp"
  mv -f "$binary.tmp" "$binary"
  printf '%s\n' "$build_sig" >"$sig_file"

  "$binary" --help >/dev/null 2>&1 || die "built $binary but '$binary --help' fails; check 'ldd $binary'"

  {
    echo "llama_cpp_python_version=$version"
    echo "variant=$variant"
    echo "llama_cpp_commit=${llama_commit:-unknown}"
    echo "llama_cpp_commit_full=${llama_commit_full:-unknown}"
    echo "sdist_sha256=$(sha256_of "$sdist")"
    echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host=$(uname -srm)"
    echo "cpu=$(cpu_model)"
    echo "compile_seconds=$((build_end - build_start))"
    echo "jobs=$jobs"
    echo "amx_instructions=${n_amx:-unknown (no objdump)}"
    echo "cmake=$("$cmake_bin" --version | head -n1)"
    echo "cmake_args=${cmake_args[*]}"
  } >"$ver_dir/build-info.txt"

  local end_ts
  end_ts=$(date +%s)
  log "built $binary in $((end_ts - start_ts)) s (compile $((build_end - build_start)) s, JOBS=$jobs, AMX instructions: ${n_amx:-?})"
  [[ -e /dev/fd/9 ]] && exec 9>&-
  return 0
}

# ---------------------------------------------------------------- probe ----

probe_model() {
  if [[ -n "${LLAMA_CPP_PROBE_MODEL:-}" ]]; then
    [[ -f "$LLAMA_CPP_PROBE_MODEL" ]] || die "LLAMA_CPP_PROBE_MODEL=$LLAMA_CPP_PROBE_MODEL is not a file"
    printf '%s\n' "$LLAMA_CPP_PROBE_MODEL"; return
  fi
  local m="$cache_root/models/synth-tiny-q4_0-seed1.gguf"
  if [[ ! -f "$m" ]]; then
    local t="${TESSERA:-$root/target/release/tessera}"
    [[ -x "$t" ]] || die "cannot probe the AMX build: no model; set LLAMA_CPP_PROBE_MODEL=FILE.gguf (Q4_0 llama) or TESSERA=/path/to/tessera (cargo build --release -p tessera), or pass --amx on|off"
    mkdir -p "$cache_root/models"
    "$t" model synth --preset tiny --type q4_0 --seed 1 -o "$m.$$.tmp.gguf" >&2 \
      || die "'$t model synth --preset tiny' failed"
    mv -f "$m.$$.tmp.gguf" "$m"
  fi
  printf '%s\n' "$m"
}

probe_key() { printf 'binary=%s size=%s mtime=%s cpu=%s kernel=%s' "$1" \
  "$(stat -c %s "$1")" "$(stat -c %Y "$1")" "$(cpu_model)" "$(uname -r)"; }

# probe_amx BINARY: sets verdict (ok|fault|inconclusive), probe_status,
# probe_signal, probe_detail; caches ok/fault in $probe_file.
probe_amx() {
  local bin="$1" key model tmp
  key=$(probe_key "$bin")
  if [[ $reprobe -eq 0 && -f "$probe_file" ]] && grep -qxF "key=$key" "$probe_file"; then
    verdict=$(sed -n 's/^verdict=//p' "$probe_file")
    probe_status=$(sed -n 's/^status=//p' "$probe_file")
    probe_signal=$(sed -n 's/^signal=//p' "$probe_file")
    probe_detail=$(sed -n 's/^stderr_tail=//p' "$probe_file")
    probe_cached=1
    return 0
  fi
  probe_cached=0
  model=$(probe_model)
  tmp=$(mktemp -d)
  local to=()
  command -v timeout >/dev/null 2>&1 && to=(timeout "$PROBE_TIMEOUT_S")
  log "probing the AMX build: $bin -m $model -p 32 -n 0 -r 1 -t 1"
  probe_status=0
  # The outer redirect swallows bash's own "Illegal instruction" notice.
  { ( ulimit -c 0 2>/dev/null || true
      exec ${to[@]+"${to[@]}"} "$bin" -m "$model" -p 32 -n 0 -r 1 -t 1 -o csv
    ) >"$tmp/out" 2>"$tmp/err"; } 2>/dev/null || probe_status=$?
  probe_detail=$(grep -v '^[[:space:]]*$' "$tmp/err" | tail -n 1 | tr -d '\r' || true)
  probe_signal=""
  if [[ $probe_status -eq 0 ]]; then
    verdict=ok
  elif [[ ${#to[@]} -gt 0 && $probe_status -eq 124 ]]; then
    verdict=inconclusive; probe_detail="timed out after ${PROBE_TIMEOUT_S} s"
  elif [[ $probe_status -gt 128 ]]; then
    verdict=fault
    probe_signal="SIG$(kill -l $((probe_status - 128)) 2>/dev/null || echo "?")"
  else
    verdict=inconclusive
  fi
  cp -f "$tmp/err" "$src_ver_dir/amx-probe.stderr" 2>/dev/null || true
  rm -rf "$tmp"
  if [[ $verdict != inconclusive ]]; then
    {
      echo "key=$key"
      echo "verdict=$verdict"
      echo "status=$probe_status"
      echo "signal=$probe_signal"
      echo "stderr_tail=$probe_detail"
      echo "probed_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
      echo "command=$bin -m $model -p 32 -n 0 -r 1 -t 1 -o csv"
    } >"$probe_file.$$" && mv -f "$probe_file.$$" "$probe_file"
  fi
}

# ----------------------------------------------------------------- main ----

case "$amx_mode" in
  off)
    is_x86 || die "--amx off builds with $NOAMX_FLAGS, which only exist on x86-64 (this is $(uname -m))"
    ensure_variant noamx
    ;;
  on)
    ensure_variant native
    if cpu_has_amx && [[ -f "$probe_file" ]] && grep -qxF "key=$(probe_key "$binary")" "$probe_file" \
       && grep -qx 'verdict=fault' "$probe_file"; then
      log "warning: the cached probe says this AMX build dies with $(sed -n 's/^signal=//p' "$probe_file") on this CPU ($probe_file); --amx on was given, using it anyway"
    fi
    ;;
  auto)
    ensure_variant native
    if cpu_has_amx; then
      probe_amx "$binary"
      case "$verdict" in
        ok)
          if [[ $probe_cached -eq 1 ]]; then
            log "AMX build runs on this CPU (cached verdict in $probe_file)"
          else
            log "AMX build runs on this CPU (probe pp32 OK); using it"
          fi ;;
        fault)
          if [[ $probe_cached -eq 1 ]]; then
            log "llama-bench AMX build died with $probe_signal (exit $probe_status) on this CPU (cached verdict in $probe_file; --reprobe to re-test); using the no-AMX build"
          else
            log "llama-bench AMX build died with $probe_signal (exit $probe_status) on this CPU; falling back to a no-AMX build"
          fi
          ensure_variant noamx ;;
        *)
          log "warning: AMX probe inconclusive (exit $probe_status: ${probe_detail:-no stderr}); not cached, using the AMX build" ;;
      esac
    fi
    ;;
esac

printf '%s\n' "$binary"
