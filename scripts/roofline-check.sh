#!/usr/bin/env bash
# Acceptance check of `tessera kernels`' cache-aware roofline: two consecutive runs of
#   tessera kernels --preset 150m --isa avx2,avx512 -o json        (--m 1, then the default m)
# must agree within 15 % per row (GFLOP/s), and no row may read above 110 % of its roof (a
# figure above 100 % means the roof is wrong). Prints the worst rows of both checks.
#
# usage: scripts/roofline-check.sh [TESSERA]     (default: target/release/tessera)
#   ROOFLINE_TOL=0.15      largest relative difference of a row between the two runs
#   ROOFLINE_MAX_PCT=110   largest roofline % of any row
# The roofline comes from the probe cached in tessera's cache directory ($TESSERA_CACHE,
# else ~/.cache/tessera); the first run measures it when absent. On a machine shared with
# others, run it under the same lock as other measurements (flock /tmp/tessera-cpu.lock ...).
# Exit status: 0 both checks hold, 1 one fails, 2 usage error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$root/target/release/tessera}
tol=${ROOFLINE_TOL:-0.15}
max_pct=${ROOFLINE_MAX_PCT:-110}
if [ ! -x "$bin" ]; then
  echo "roofline-check.sh: '$bin' is not an executable; build it with 'cargo build --release -p tessera'" >&2
  exit 2
fi
command -v python3 >/dev/null || { echo "roofline-check.sh: python3 is needed to compare the runs" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs; $(date -u +%Y-%m-%d)"
status=0
for ms in 1 default; do
  args=(kernels --preset 150m --isa avx2,avx512 -o json)
  [ "$ms" = default ] || args+=(--m "$ms")
  for run in 1 2; do
    "$bin" "${args[@]}" >"$tmp/$ms-$run.json"
  done
  python3 - "$tmp/$ms-1.json" "$tmp/$ms-2.json" "$ms" "$tol" "$max_pct" <<'PY' || status=1
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ms, tol, max_pct = sys.argv[3], float(sys.argv[4]), float(sys.argv[5])
key = lambda r: (r["isa"], r["weight"], r["m"])
b = {key(r): r for r in b}
rows = [(r, b[key(r)]) for r in a if key(r) in b]
if len(rows) != len(a) or len(rows) != len(b):
    print(f"--m {ms}: the two runs have different rows ({len(a)} and {len(b)})")
    sys.exit(1)
def name(r):
    return f"{r['isa']:<6} {r['weight']:<8} m={r['m']:<4} {r.get('bound') or '-':<8}"
diff = sorted(((max(x["gflops"], y["gflops"]) / min(x["gflops"], y["gflops"]) - 1, x, y)
               for x, y in rows), key=lambda t: -t[0])
pct = sorted(((max(x["roofline_pct"] or 0, y["roofline_pct"] or 0), x, y) for x, y in rows),
             key=lambda t: -t[0])
print(f"--m {ms}: {len(rows)} rows")
print("  worst agreement (run 1 vs run 2, GFLOP/s):")
for d, x, y in diff[:3]:
    print(f"    {name(x)} {x['gflops']:9.2f} {y['gflops']:9.2f}  {100 * d:5.1f} %")
print("  highest roofline %:")
for p, x, y in pct[:3]:
    print(f"    {name(x)} {x['roofline_pct'] or 0:6.1f} {y['roofline_pct'] or 0:6.1f}  "
          f"roof {x['roof_gflops'] or 0:.1f} GOP/s, working set {x['working_set_bytes'] / 2**20:.2f} MiB")
bad_diff = [t for t in diff if t[0] > tol]
bad_pct = [t for t in pct if t[0] > max_pct]
missing = [x for x, _ in rows if x["roofline_pct"] is None]
ok = not bad_diff and not bad_pct and not missing
print(f"  agreement within {100 * tol:.0f} %: {'yes' if not bad_diff else f'no, {len(bad_diff)} rows'};"
      f" every row at most {max_pct:.0f} % of its roof: {'yes' if not bad_pct else f'no, {len(bad_pct)} rows'}"
      + (f"; {len(missing)} rows have no roof" if missing else ""))
sys.exit(0 if ok else 1)
PY
done
[ "$status" = 0 ] && echo "roofline check: ok" || echo "roofline check: FAILED"
exit "$status"
