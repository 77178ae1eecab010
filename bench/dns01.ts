/**
 * DNS-01 wildcard issuance, whole process: `mfc ssl init` over RFC 2136 against
 * `lego --dns rfc2136` (the baseline), on the same Pebble resolving through the same real BIND9
 * with TSIG updates. Every round orders `*.wN.mfc.example` + `wN.mfc.example` (two
 * authorizations, two TXT values at one name) from each client, interleaved; the report is
 * the ratio of medians. Goal: mfc <= 0.5x lego.
 *
 *   npm run bench:dns01          # 5 rounds
 *   npm run bench:dns01 -- 9     # 9 rounds
 *
 * Fairness: Pebble NOSLEEP, no nonce rejection, no authorization reuse; lego runs with
 * --dns.disable-cp (it skips its own propagation check, its fastest mode), while mfc still
 * checks the zone's NS before answering. Each client registers its account in a warm-up run.
 */
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {cpus, tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {startBind} from '../test/helpers/bind.js'
import {startPebble} from '../test/helpers/pebble.js'
import {type Sample, check, median, timed} from './lib/timed.js'

const ROOT = resolve(import.meta.dirname, '..')
const N = Number(process.argv[2] ?? 5)
const EMAIL = 'bench@mfc.example'

const bind = await startBind()
const pebble = await startPebble({nonceReject: 0, authzReuse: 0, dnsServer: `127.0.0.1:${bind.port}`})
const work = await mkdtemp(join(tmpdir(), 'mfc-bench-dns01-'))
try {
  const credentials = join(work, 'rfc2136.ini')
  await writeFile(credentials, `dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = ${bind.port}\ndns_rfc2136_name = ${bind.keyName}\ndns_rfc2136_secret = ${bind.secret}\ndns_rfc2136_algorithm = HMAC-SHA256\n`, {mode: 0o600})
  const mfcEnv = {...pebble.env, MFC_CONFIG_DIR: join(work, 'mfc', 'config'), MFC_STATE_DIR: join(work, 'mfc', 'state')}
  const legoEnv = {
    LEGO_CA_CERTIFICATES: pebble.tls.caFile, RFC2136_NAMESERVER: `127.0.0.1:${bind.port}`, RFC2136_TSIG_KEY: bind.keyName,
    RFC2136_TSIG_SECRET: bind.secret, RFC2136_TSIG_ALGORITHM: 'hmac-sha256.',
  }
  const names = (label: string) => [`*.${label}.mfc.example`, `${label}.mfc.example`]
  const clients = {
    mfc: (label: string) => timed(process.execPath, [join(ROOT, 'bin', 'run.js'), 'ssl', 'init', ...names(label).flatMap((n) => ['-d', n]), '--email', EMAIL, '--agree-tos',
      '--acme-directory', pebble.directory, '--preferred-challenges', 'dns', '--dns-rfc2136-credentials', credentials, '--json'], mfcEnv),
    lego: (label: string) => timed('lego', ['--server', pebble.directory, '--dns', 'rfc2136', '--dns.disable-cp', '--accept-tos', '--email', EMAIL,
      '--path', join(work, 'lego'), ...names(label).flatMap((n) => ['-d', n]), 'run'], legoEnv),
  }
  const samples: Record<keyof typeof clients, number[]> = {mfc: [], lego: []}
  for (const [tool, issue] of Object.entries(clients)) check(tool, await issue(`warmup-${tool}`))
  for (let i = 0; i < N; i++) {
    // Interleaved, so drift on a shared machine hits both clients alike.
    for (const [tool, issue] of Object.entries(clients) as [keyof typeof clients, (n: string) => Promise<Sample>][]) {
      samples[tool].push(check(tool, await issue(`w${i}-${tool}`)))
    }
  }

  const base = median(samples.lego)
  const row = (label: string, values: number[]) => `| ${label} | ${(median(values) / base).toFixed(2)}x | ${(Math.min(...values) / base).toFixed(2)}-${(Math.max(...values) / base).toFixed(2)}x |`
  console.log(`\nmachine: ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, Node ${process.version}; Pebble NOSLEEP, NONCEREJECT=0, AUTHZREUSE=0, DNS through BIND9 with TSIG; ${N} interleaved rounds\n`)
  console.log('| DNS-01 wildcard + apex issuance (whole CLI run) | median vs lego | range vs lego median |\n|---|---|---|')
  console.log(row('mfc ssl init --dns-rfc2136-credentials', samples.mfc))
  console.log(row('lego --dns rfc2136 --dns.disable-cp run', samples.lego))
  console.log(`\nmfc / lego (ratio of medians): ${(median(samples.mfc) / base).toFixed(2)}x (goal <= 0.50x)`)
} finally {
  await pebble.stop()
  await bind.stop()
  await rm(work, {force: true, recursive: true})
}
