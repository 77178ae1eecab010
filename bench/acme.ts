/**
 * Issuance and "nothing due" renewal speed of mfc, certbot and lego against one local Pebble
 * (NOSLEEP, no nonce rejection, no authorization reuse: every client solves one HTTP-01
 * challenge per certificate), measured in the same run, reported as medians and ratios.
 *
 *   npm run bench:acme            # 5 issuances per client
 *   npm run bench:acme -- 9       # 9 issuances per client
 */
import {mkdtemp, rm} from 'node:fs/promises'
import {cpus, tmpdir} from 'node:os'
import {join, resolve} from 'node:path'

import {startPebble} from '../test/helpers/pebble.js'
import {type Sample, check, median, timed} from './lib/timed.js'

const ROOT = resolve(import.meta.dirname, '..')
const N = Number(process.argv[2] ?? 5)
const EMAIL = 'bench@mfc.example'

const pebble = await startPebble({nonceReject: 0, authzReuse: 0, validityPeriod: 7_776_000})
const work = await mkdtemp(join(tmpdir(), 'mfc-bench-acme-'))
try {
  const mfcEnv = {...pebble.env, MFC_CONFIG_DIR: join(work, 'mfc', 'config'), MFC_STATE_DIR: join(work, 'mfc', 'state')}
  const certbotDirs = ['--config-dir', join(work, 'certbot', 'config'), '--work-dir', join(work, 'certbot', 'work'), '--logs-dir', join(work, 'certbot', 'logs')]
  const certbotEnv = {REQUESTS_CA_BUNDLE: pebble.tls.caFile}
  const legoEnv = {LEGO_CA_CERTIFICATES: pebble.tls.caFile}
  const port = String(pebble.httpPort)
  const clients = {
    mfc: (name: string) => timed(process.execPath, [join(ROOT, 'bin', 'run.js'), 'ssl', 'init', '--agree-tos', '--domain', name, '--email', EMAIL, '--acme-directory', pebble.directory, '--http-port', port, '--json'], mfcEnv),
    certbot: (name: string) => timed('certbot', ['certonly', '--standalone', '--non-interactive', '--agree-tos', '-m', EMAIL, '--server', pebble.directory, '--http-01-port', port, ...certbotDirs, '-d', name], certbotEnv),
    lego: (name: string) => timed('lego', ['--server', pebble.directory, '--http', '--http.port', `:${port}`, '--accept-tos', '--email', EMAIL, '--path', join(work, 'lego'), '-d', name, 'run'], legoEnv),
  }
  const issuance: Record<keyof typeof clients, number[]> = {mfc: [], certbot: [], lego: []}
  // One warm-up issuance each registers the account, so the timed runs compare orders only.
  for (const [tool, issue] of Object.entries(clients)) check(tool, await issue(`warmup-${tool}.mfc.example`))
  for (let i = 0; i < N; i++) {
    // Interleaved, so drift on a shared machine hits every client alike.
    for (const [tool, issue] of Object.entries(clients) as [keyof typeof clients, (n: string) => Promise<Sample>][]) {
      issuance[tool].push(check(tool, await issue(`bench-${tool}-${i}.mfc.example`)))
    }
  }

  const idle = {mfc: [] as number[], certbot: [] as number[]}
  for (let i = 0; i < N; i++) {
    idle.mfc.push(check('mfc renew-if-needed', await timed(process.execPath, [join(ROOT, 'bin', 'run.js'), 'cert', 'renew-if-needed', '--no-random-sleep'], mfcEnv)))
    idle.certbot.push(check('certbot renew', await timed('certbot', ['renew', '--no-random-sleep-on-renew', ...certbotDirs], certbotEnv)))
  }

  const row = (label: string, values: number[], base: number) =>
    `| ${label} | ${(median(values) / 1000).toFixed(3)} s | ${(Math.min(...values) / 1000).toFixed(3)}-${(Math.max(...values) / 1000).toFixed(3)} s | ${(median(values) / base).toFixed(2)}x |`
  const cb = median(issuance.certbot)
  console.log(`\nmachine: ${cpus().length} vCPU ${cpus()[0]?.model ?? ''}, Node ${process.version}; Pebble NOSLEEP, NONCEREJECT=0, AUTHZREUSE=0; ${N} runs each, ${N + 1} certificates in each client's store\n`)
  console.log('| issuance (one name, HTTP-01, whole CLI run) | median | range | vs certbot |\n|---|---|---|---|')
  console.log(row('mfc ssl init --acme-directory', issuance.mfc, cb))
  console.log(row('certbot certonly --standalone', issuance.certbot, cb))
  console.log(row('lego run --http', issuance.lego, cb))
  console.log(`\nmfc / lego: ${(median(issuance.mfc) / median(issuance.lego)).toFixed(2)}x\n`)
  const idleBase = median(idle.certbot)
  console.log('| nothing due | median | range | vs certbot |\n|---|---|---|---|')
  console.log(row('mfc cert renew-if-needed', idle.mfc, idleBase))
  console.log(row('certbot renew', idle.certbot, idleBase))
} finally {
  await pebble.stop()
  await rm(work, {force: true, recursive: true})
}
