#!/usr/bin/env bash
# mfc test-ssl vs testssl.sh on the same three services (API, dashboard, WSS streamer) of a real
# `mfc serve --daemon`. Baseline (testssl.sh) and mfc run in the same session; ratios are reported.
# Usage: bench/test-ssl.sh [RUNS]   (needs: hyperfine, testssl, bc, a built mfc: npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
OUT=$(mktemp -d)
export MFC_CONFIG_DIR="$OUT/config" MFC_STATE_DIR="$OUT/state"
trap 'node bin/run.js stop >/dev/null 2>&1 || true; rm -rf "$OUT"' EXIT

# A fresh serve: it bootstraps a local-CA certificate and an API token, listens on free ports.
node bin/run.js serve --daemon --api-port 0 --dashboard-port 0 --stream-port 0 --no-http >/dev/null
read -r API FRONT WSS < <(node -e 'const p=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8")).ports;console.log(p.api,p.dashboard,p.streamer)' "$MFC_STATE_DIR/mfc.pid")
CA="$MFC_STATE_DIR/ca/ca.crt"
TARGETS=("https://127.0.0.1:$API/health" "https://127.0.0.1:$FRONT/" "127.0.0.1:$WSS")

echo "machine: $(nproc) vCPU, $(. /etc/os-release; echo "$PRETTY_NAME"), node $(node --version), testssl.sh $(dpkg-query -W -f='${Version}' testssl.sh 2>/dev/null || echo "?")"
# No arguments: the three services of the running serve, its token for the WSS upgrade.
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/mfc.json" "node bin/run.js test-ssl --json" >/dev/null
MFC=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).results[0];console.log(r.median.toFixed(3))' "$OUT/mfc.json")

scan() { # $1: label, rest: testssl args; one run per target, sequential (testssl scans one host at a time)
  local label=$1; shift; local start end
  start=$(date +%s.%N)
  for i in 0 1 2; do
    testssl --quiet --color 0 --warnings off --add-ca "$CA" "$@" --jsonfile "$OUT/$label-$i.json" "${TARGETS[$i]}" >/dev/null 2>&1 || true
  done
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
SCOPED=$(scan scoped -p -s -S -h)
FULL=$(scan full)

node bin/run.js test-ssl --json > "$OUT/mfc-all.json" || true
echo
echo "| Tool (3 targets of mfc serve) | wall time | ratio to mfc |"
echo "|---|---|---|"
printf '| mfc test-ssl (median of %s) | %.2f s | 1 |\n' "$RUNS" "$MFC"
printf '| testssl.sh -p -s -S -h (about mfc'"'"'s scope) | %.1f s | %.0fx |\n' "$SCOPED" "$(echo "$SCOPED / $MFC" | bc -l)"
printf '| testssl.sh default (full) | %.1f s | %.0fx |\n' "$FULL" "$(echo "$FULL / $MFC" | bc -l)"
echo
npx tsx bench/lib/test-ssl-findings.ts "$OUT/mfc-all.json" "$OUT/full-0.json" "$OUT/full-2.json"
