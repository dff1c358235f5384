#!/usr/bin/env bash
# Overhead of the built-in engine's per-op timers: the same `tessera bench` with
# TESSERA_OP_TIMERS=0 and =1, interleaved round by round so drift and neighbours hit both
# sides alike; prints each side's median t/s over the rounds and the ratio on / off.
#
#   scripts/op-timer-overhead.sh [ROUNDS] [-- extra tessera bench args]
#
# Defaults: 5 rounds of `-p 0 -n 128 -r 5` (tg128, where per-op timers cost the most per
# second of work) on the built-in 150m q4_0 model. Needs target/release/tessera (or
# TESSERA=path).
set -euo pipefail
rounds=${1:-5}
shift || true
[[ ${1:-} == -- ]] && shift
extra=("$@")
[[ ${#extra[@]} -gt 0 ]] || extra=(-p 0 -n 128 -r 5)
bin=${TESSERA:-target/release/tessera}
[[ -x $bin ]] || { echo "op-timer-overhead: $bin not found; run cargo build --release first" >&2; exit 2; }
[[ $rounds =~ ^[1-9][0-9]*$ ]] || { echo "op-timer-overhead: ROUNDS '$rounds' is not a positive integer" >&2; exit 2; }
off=() on=()
ts() { TESSERA_OP_TIMERS=$1 "$bin" bench "${extra[@]}" -o jsonl 2>/dev/null |
  python3 -c 'import json,sys; print(" ".join(str(json.loads(l)["avg_ts"]) for l in sys.stdin))'; }
for ((i = 1; i <= rounds; i++)); do
  a=$(ts 0); b=$(ts 1)
  off+=("$a"); on+=("$b")
  echo "round $i: timers off $a t/s, on $b t/s"
done
python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
a, b = statistics.median(off), statistics.median(on)
print(f"median t/s: off {a:.1f}, on {b:.1f}; on/off = {b / a:.4f} ({100 * (b / a - 1):+.2f}%)")
PY
