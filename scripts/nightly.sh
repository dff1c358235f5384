#!/usr/bin/env bash
# One night of tessera's cron job: build the checked-out commit, run `tessera nightly`
# (sweep → history → compare → report), keep the report, and exit with its status.
#
# Crontab line (every night at 02:30; `crontab -e`):
#   30 2 * * * /path/to/tessera/scripts/nightly.sh >> $HOME/tessera-nightly/cron.log 2>&1
#
# Environment (all optional):
#   TESSERA_NIGHTLY_DIR   runs/, logs/, history.sqlite and the `latest` link (default ~/tessera-nightly)
#   TESSERA_PLAN          the sweep plan (default: plans/nightly.toml of this checkout)
#   TESSERA_BASELINE      previous (default), none, or a name given to `tessera baseline set`
#   TESSERA_UPDATE=1      `git pull --ff-only` before building (default: build what is checked out)
#   TESSERA_NIGHTLY_BUILD the build command (default: cargo build --release -p tessera)
#   TESSERA_BIN           the tessera binary the build leaves (default: target/release/tessera)
#
# Exit status: tessera nightly's (0 nothing regressed, 1 regression or failed points,
# 2 bad input such as an unknown baseline); 3 when the night could not run (the build
# failed, or the previous night still holds the lock).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=${TESSERA_NIGHTLY_DIR:-$HOME/tessera-nightly}
plan=${TESSERA_PLAN:-$repo/plans/nightly.toml}
baseline=${TESSERA_BASELINE:-previous}
build=${TESSERA_NIGHTLY_BUILD:-cargo build --release -p tessera}
bin=${TESSERA_BIN:-${CARGO_TARGET_DIR:-$repo/target}/release/tessera}
# cron starts with a bare PATH.
export PATH="$HOME/.cargo/bin:/usr/local/bin:/usr/bin:/bin:$PATH"

mkdir -p "$dir/runs" "$dir/logs"
exec 9>"$dir/.lock"
if ! flock -n 9; then
    echo "nightly.sh: another night still runs (lock $dir/.lock); not starting" >&2
    exit 3
fi

cd "$repo"
if [ "${TESSERA_UPDATE:-0}" = 1 ]; then
    git pull --ff-only
fi
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
id="$(date -u +%Y%m%dT%H%M%SZ)-$commit"
log="$dir/logs/$id.log"

echo "nightly.sh: building $commit: $build" | tee "$log"
if ! $build >>"$log" 2>&1; then
    echo "nightly.sh: the build of $commit failed; see $log" >&2
    exit 3
fi

set +e
"$bin" nightly --plan "$plan" --baseline "$baseline" \
    --db "$dir/history.sqlite" --out-dir "$dir/runs" --run-id "$id" 2>&1 | tee -a "$log"
rc=${PIPESTATUS[0]}
set -e

if [ -d "$dir/runs/$id" ]; then
    ln -sfn "runs/$id" "$dir/latest"
    echo "nightly.sh: exit $rc; report $dir/runs/$id/report.html" | tee -a "$log"
else
    echo "nightly.sh: exit $rc; no run was made (see $log)" | tee -a "$log"
fi
exit "$rc"
