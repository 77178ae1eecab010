#!/usr/bin/env bash
# mfc test-ssl vs testssl.sh on the same three services (API, dashboard, WSS streamer).
# Baseline (testssl.sh) and mfc run in the same session; ratios are reported.
# Usage: bench/test-ssl.sh [RUNS]   (needs: hyperfine, testssl, a built mfc: npm run build)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}
OUT=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$OUT"' EXIT

# Stand-ins with serve's TLS settings (test/helpers/backends.ts); swap for `mfc serve` once it exists.
node --import tsx bench/lib/standins.ts "$OUT" > "$OUT/standins.json" &
PID=$!
for _ in $(seq 100); do [ -s "$OUT/standins.json" ] && break; sleep 0.1; done
read -r API FRONT WSS CA < <(node -e 'const s=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));console.log(s.ports.api,s.ports.frontend,s.ports.streamer,s.caFile)' "$OUT/standins.json")
TARGETS=("https://127.0.0.1:$API/health" "https://127.0.0.1:$FRONT/" "wss://127.0.0.1:$WSS/")

echo "machine: $(nproc) vCPU, $(. /etc/os-release; echo "$PRETTY_NAME"), node $(node --version), testssl.sh $(dpkg-query -W -f="${Version}" testssl.sh 2>/dev/null || echo "?")"
hyperfine --warmup 1 --runs "$RUNS" --export-json "$OUT/mfc.json" \
  "node bin/run.js test-ssl ${TARGETS[*]} --ca-file $CA --json" >/dev/null
MFC=$(node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).results[0];console.log(r.median.toFixed(3))' "$OUT/mfc.json")

scan() { # $1: label, rest: testssl args; one run per target, sequential (testssl scans one host at a time)
  local label=$1; shift; local start end
  start=$(date +%s.%N)
  for i in 0 1 2; do
    local t=${TARGETS[$i]}; [ "$i" = 2 ] && t="127.0.0.1:$WSS"
    testssl --quiet --color 0 --warnings off --add-ca "$CA" "$@" --jsonfile "$OUT/$label-$i.json" "$t" >/dev/null 2>&1 || true
  done
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
SCOPED=$(scan scoped -p -s -S -h)
FULL=$(scan full)

node bin/run.js test-ssl "${TARGETS[0]}" --ca-file "$CA" --json > "$OUT/mfc-api.json" || true
echo
echo "| Tool (3 targets) | wall time | ratio to mfc |"
echo "|---|---|---|"
printf '| mfc test-ssl (median of %s) | %.2f s | 1.0 |\n' "$RUNS" "$MFC"
printf '| testssl.sh -p -s -S -h (same scope) | %.1f s | %.0fx |\n' "$SCOPED" "$(echo "$SCOPED / $MFC" | bc -l)"
printf '| testssl.sh default (full) | %.1f s | %.0fx |\n' "$FULL" "$(echo "$FULL / $MFC" | bc -l)"
echo
npx tsx bench/lib/test-ssl-findings.ts "$OUT/mfc-api.json" "$OUT/full-0.json"
