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
# USAGE
#   scripts/build-llama-cpp.sh [--force]
#   LLAMA_BENCH=$(scripts/build-llama-cpp.sh)   # last stdout line = binary path
#
#   Idempotent: when the binary is already in the cache (built with the same
#   options) it just prints its path. Re-runs after an interrupted build resume
#   the incremental cmake build.
#   Everything except that final path goes to stderr.
#
# ENVIRONMENT
#   LLAMA_CPP_PY_VERSION   llama-cpp-python version to fetch (default: 0.3.36,
#                          which vendors llama.cpp@0c1e57098)
#   LLAMA_CPP_PY_SHA256    expected sha256 of the sdist (default: pinned for the
#                          default version; unchecked for other versions unless set)
#   TESSERA_CACHE          cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/tessera)
#                          build goes to $TESSERA_CACHE/llama.cpp/<version>/,
#                          binary to        $TESSERA_CACHE/llama.cpp/<version>/bin/llama-bench
#   JOBS                   parallel compile jobs (default: nproc)
#   CMAKE                  cmake executable to use (default: cmake on PATH; if
#                          missing or older than 3.21, it is pip-installed into
#                          $TESSERA_CACHE/tools/cmake-venv)
#   PYTHON                 python used for pip (default: python3)
#   LLAMA_CPP_CMAKE_ARGS   extra cmake configure args (word-split), e.g. "-DGGML_OPENMP=OFF"
#   LLAMA_CPP_BUILD_NUMBER llama.cpp build number to bake in (default: 0 = unknown)
#   LLAMA_CPP_COMMIT       llama.cpp commit string to bake in (default: detected)
#
# TIME
#   Download + unpack: ~20-30 s (76 MB sdist). Configure: ~10 s.
#   Compile of llama-bench and its deps (ggml, ggml-cpu, llama, llama-common):
#   12.5 min measured (v0.3.36) with JOBS=2 under `nice -n 19` on a busy shared
#   2-core VM (AMD EPYC); expect a few minutes on a 16-core machine. Cached runs
#   return in well under a second; an incremental re-run takes seconds.
#
# NOTES
#   GGML_NATIVE=ON means the binary uses the build machine's ISA extensions
#   (-march=native). Do not share the cache directory across different CPUs.

set -euo pipefail

readonly DEFAULT_VERSION="0.3.36"
readonly DEFAULT_SHA256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
readonly MIN_CMAKE="3.21"
readonly PKG="llama-cpp-python"

prog=$(basename "$0")

log()  { printf '[%s] %s\n' "$prog" "$*" >&2; }
die()  { printf '[%s] error: %s\n' "$prog" "$*" >&2; exit 1; }

usage() {
  cat >&2 <<EOF
usage: $prog [--force] [-h|--help]

Builds upstream llama.cpp's llama-bench (CPU, Release, GGML_NATIVE=ON, static)
from the $PKG sdist on PyPI and prints the absolute path of the binary
as the last line on stdout (all other output goes to stderr).

  --force     rebuild even if the cached binary exists
  -h, --help  show this help

Environment: LLAMA_CPP_PY_VERSION (default $DEFAULT_VERSION), LLAMA_CPP_PY_SHA256,
TESSERA_CACHE, XDG_CACHE_HOME, JOBS, CMAKE, PYTHON, LLAMA_CPP_CMAKE_ARGS,
LLAMA_CPP_BUILD_NUMBER. See the header of this script for details.
EOF
}

force=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
  shift
done

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

ver_dir="$cache_root/llama.cpp/$version"
bin_dir="$ver_dir/bin"
binary="$bin_dir/llama-bench"

ncpus() { nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2; }
jobs="${JOBS:-$(ncpus)}"
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || die "JOBS must be a positive integer, got '$jobs'"

# Build options. Their signature is stored next to the binary, so a cached
# binary built with different options (or LLAMA_CPP_CMAKE_ARGS) is rebuilt.
build_opts=(
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
[[ -n "${LLAMA_CPP_COMMIT:-}" ]] && build_opts+=("-DLLAMA_BUILD_COMMIT=$LLAMA_CPP_COMMIT")
if [[ -n "${LLAMA_CPP_CMAKE_ARGS:-}" ]]; then
  read -r -a extra_args <<<"$LLAMA_CPP_CMAKE_ARGS"
  build_opts+=(${extra_args[@]+"${extra_args[@]}"})
fi
build_sig="$version ${build_opts[*]}"
sig_file="$bin_dir/.build-options"

# A cached binary that runs and was built with the same options is all we need.
binary_ok() {
  [[ -x "$binary" && -f "$sig_file" && "$(cat "$sig_file")" == "$build_sig" ]] \
    && "$binary" --help >/dev/null 2>&1
}

if [[ $force -eq 0 ]] && binary_ok; then
  log "cached: $binary"
  printf '%s\n' "$binary"
  exit 0
fi

mkdir -p "$ver_dir"

# Serialise concurrent invocations for the same version.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$ver_dir/.lock"
  if ! flock -n 9; then
    log "another build of $version is running; waiting for its lock ($ver_dir/.lock)"
    flock 9
  fi
  # It may have finished while we waited.
  if [[ $force -eq 0 ]] && binary_ok; then
    log "cached: $binary"
    printf '%s\n' "$binary"
    exit 0
  fi
fi

start_ts=$(date +%s)

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

command -v tar >/dev/null 2>&1 || die "tar not found"
command -v c++ >/dev/null 2>&1 || command -v g++ >/dev/null 2>&1 || command -v clang++ >/dev/null 2>&1 \
  || die "no C++ compiler found (need a C++17 compiler: g++ or clang++)"

cmake_bin=$(find_cmake)
log "using $("$cmake_bin" --version | head -n1) at $cmake_bin"

generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
elif ! command -v make >/dev/null 2>&1; then
  die "neither ninja nor make found; install one (apt-get install make / pip install ninja)"
fi

# ------------------------------------------------------------- download ----

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256 "$1" | cut -d' ' -f1
  else "$python" -c 'import hashlib,sys;print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest())' "$1"
  fi
}

sdist_dir="$ver_dir/sdist"
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
    index="${PIP_INDEX_URL:-https://pypi.org/simple}"
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
  got_sha=$(sha256_of "$sdist")
  [[ "$got_sha" == "$expected_sha" ]] || die "sha256 mismatch for $sdist: got $got_sha, expected $expected_sha"
  log "sdist sha256 OK ($got_sha)"
else
  log "warning: no pinned sha256 for version $version; not verifying (set LLAMA_CPP_PY_SHA256 to check)"
fi

# --------------------------------------------------------------- unpack ----

src_root="$ver_dir/src"
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

# ---------------------------------------------------------------- build ----

build_dir="$ver_dir/build"
cmake_args=(-S "$llama_src" -B "$build_dir" ${generator[@]+"${generator[@]}"} "${build_opts[@]}")
if [[ -z "${LLAMA_CPP_COMMIT:-}" && -n "$llama_commit" ]]; then
  cmake_args+=("-DLLAMA_BUILD_COMMIT=$llama_commit")
fi

# A cache from another generator would make configure fail.
if [[ -f "$build_dir/CMakeCache.txt" ]]; then
  want_gen="Unix Makefiles"; [[ ${#generator[@]} -gt 0 ]] && want_gen="Ninja"
  grep -q "^CMAKE_GENERATOR:INTERNAL=$want_gen\$" "$build_dir/CMakeCache.txt" || rm -rf "$build_dir"
fi
[[ $force -eq 1 ]] && rm -rf "$build_dir"

log "configuring: $cmake_bin ${cmake_args[*]}"
"$cmake_bin" "${cmake_args[@]}" >&2 || die "cmake configure failed (see output above)"

log "building target llama-bench with $jobs jobs (this takes a while)"
build_start=$(date +%s)
"$cmake_bin" --build "$build_dir" --config Release --target llama-bench -j "$jobs" >&2 \
  || die "build failed (see output above); re-run with JOBS=1 for readable errors"
build_end=$(date +%s)

built=""
for cand in "$build_dir/bin/llama-bench" "$build_dir/bin/Release/llama-bench"; do
  [[ -x "$cand" ]] && { built="$cand"; break; }
done
[[ -n "$built" ]] || die "build reported success but no llama-bench binary under $build_dir/bin"

mkdir -p "$bin_dir"
cp -f "$built" "$binary.tmp"
chmod 755 "$binary.tmp"
mv -f "$binary.tmp" "$binary"
printf '%s\n' "$build_sig" >"$sig_file"

"$binary" --help >/dev/null 2>&1 || die "built $binary but '$binary --help' fails; check 'ldd $binary'"

{
  echo "llama_cpp_python_version=$version"
  echo "llama_cpp_commit=${llama_commit:-unknown}"
  echo "llama_cpp_commit_full=${llama_commit_full:-unknown}"
  echo "sdist_sha256=$(sha256_of "$sdist")"
  echo "built_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "host=$(uname -srm)"
  echo "compile_seconds=$((build_end - build_start))"
  echo "jobs=$jobs"
  echo "cmake=$("$cmake_bin" --version | head -n1)"
  echo "cmake_args=${cmake_args[*]}"
} >"$ver_dir/build-info.txt"

end_ts=$(date +%s)
log "built $binary in $((end_ts - start_ts)) s (compile $((build_end - build_start)) s, JOBS=$jobs)"
printf '%s\n' "$binary"
