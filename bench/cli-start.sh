#!/usr/bin/env bash
# Cold start of whole processes, mfc against its baselines in the same run (hyperfine):
#   mfc --version, mfc cert monitor --json   vs  certbot certificates (and node -e 0, the floor)
#   mfc ssl init --domain localhost --yes    vs  openssl req -x509 -newkey ec (one self-signed cert)
# Usage: bench/cli-start.sh [runs]   (build first: npm run build). Prints medians and ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export MFC_CONFIG_DIR="$work/config" MFC_STATE_DIR="$work/state"
mfc="node $PWD/bin/run.js"
certbot_dirs="--config-dir $work/le/config --work-dir $work/le/work --logs-dir $work/le/logs"

$mfc ssl init --domain localhost --yes >/dev/null
mkdir -p "$work/le/config"

hyperfine --style none --warmup 2 --runs "$runs" --export-json "$work/start.json" \
  -n 'mfc --version' "$mfc --version" \
  -n 'mfc cert monitor --json' "$mfc cert monitor --json" \
  -n 'certbot certificates' "certbot certificates $certbot_dirs" \
  -n 'node -e 0 (the floor)' "node -e 0" >/dev/null

hyperfine --style none --warmup 1 --runs "$runs" --export-json "$work/issue.json" \
  -n 'mfc ssl init (CA exists)' "$mfc ssl init --domain localhost --yes --force" \
  -n 'mfc ssl init (new CA + leaf)' --prepare "rm -rf $work/fresh" "MFC_STATE_DIR=$work/fresh MFC_CONFIG_DIR=$work/fresh/c $mfc ssl init --domain localhost --yes" \
  -n 'openssl req -x509 -newkey ec' "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 90 -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout $work/o.key -out $work/o.crt 2>/dev/null" >/dev/null

node - "$work/start.json" "$work/issue.json" <<'JS'
const fs = require('node:fs')
const [start, issue] = process.argv.slice(2).map((f) => JSON.parse(fs.readFileSync(f, 'utf8')).results)
const ms = (r) => (r.median * 1000).toFixed(0)
const line = (r, base) => `  ${r.command.padEnd(32)} median ${ms(r).padStart(5)} ms   ${(r.median / base.median).toFixed(2)}x ${base.command}`
const certbot = start.find((r) => r.command === 'certbot certificates')
console.log(`Machine: ${require('node:os').cpus().length} vCPU ${require('node:os').cpus()[0].model}, Node ${process.version}`)
for (const r of start) console.log(line(r, certbot))
const openssl = issue.find((r) => r.command.startsWith('openssl'))
for (const r of issue) console.log(line(r, openssl))
JS
