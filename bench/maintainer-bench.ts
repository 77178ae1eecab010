/**
 * `npx tsx bench/maintainer-bench.ts [--seconds 20] [--rounds 3]` (build first: it runs the real
 * `bin/run.js serve`). The cost of serve's CertificateMaintainer, each figure against the same
 * serve with `auto_renew: false`, in one run:
 *   1. idle: CPU seconds per hour and RSS of two serves side by side (local-CA certificate, the
 *      usual case), sampled over the same interval from /proc, medians of the rounds
 *   2. keep-alive p99 latency (wrk --latency, GET /health) on a serve that renews in-process
 *      during the window (Pebble, 20-second certificates: a renewal every ~10 s) vs one that
 *      does not (same Pebble certificate, auto_renew false), rounds interleaved
 *   3. reload latency: from the moment a renewal switches the store's `live` link to the moment
 *      all three ports present the new certificate (TLS handshakes compared by SHA-256), per
 *      renewal; checked against the issue's goal of 1 s, not a figure to quote
 * Prints a markdown table of ratios (with / without). No absolute figure is meant to be quoted.
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {X509Certificate} from 'node:crypto'
import {mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {connect} from 'node:tls'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {type Pebble, startPebble} from '../test/helpers/pebble.js'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const BIN = join(ROOT, 'bin', 'run.js')
const run = promisify(execFile)
const argValue = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}

const SECONDS = argValue('seconds', 20)
const ROUNDS = argValue('rounds', 3)
const TICKS = 100
const dir = mkdtempSync(join(tmpdir(), 'mfc-bench-maint-'))
const children: ChildProcess[] = []
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

interface Instance {
  name: string
  env: NodeJS.ProcessEnv
  child?: ChildProcess
  api?: number
  ports?: {api: number; dashboard: number; streamer: number}
}

function instance(name: string, extra: NodeJS.ProcessEnv = {}): Instance {
  const base = join(dir, name)
  return {name, env: {PATH: process.env.PATH, HOME: base, MFC_CONFIG_DIR: join(base, 'config'), MFC_STATE_DIR: join(base, 'state'),
    MFC_API_TOKEN: 'bench-token-0123456789abcdefghijklmnopqrstuv', MFC_RATE_LIMIT_PER_MINUTE: '1000000000', ...extra}}
}

function setConfig(inst: Instance, changes: Record<string, unknown>): void {
  const file = join(inst.env.MFC_CONFIG_DIR!, 'ssl-config.json')
  writeFileSync(file, JSON.stringify({...JSON.parse(readFileSync(file, 'utf8')), ...changes}, null, 2))
}

async function cli(inst: Instance, args: string[]): Promise<void> {
  await run(process.execPath, [BIN, ...args], {env: inst.env, cwd: ROOT})
}

async function serve(inst: Instance, httpPort?: number): Promise<void> {
  const http = httpPort === undefined ? ['--no-http'] : ['--http', '--http-port', String(httpPort)]
  const child = spawn(process.execPath, [BIN, 'serve', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', ...http], {env: inst.env, stdio: 'ignore', cwd: ROOT})
  children.push(child)
  inst.child = child
  const pidFile = join(inst.env.MFC_STATE_DIR!, 'mfc.pid')
  for (let i = 0; i < 400; i++) {
    try {
      const record = JSON.parse(readFileSync(pidFile, 'utf8')) as {pid: number; ready: boolean; ports: {api: number; dashboard: number; streamer: number}}
      if (record.pid === child.pid && record.ready) {
        inst.api = record.ports.api
        inst.ports = record.ports
        return
      }
    } catch {}

    await sleep(50)
  }

  throw new Error(`${inst.name}: serve did not become ready`)
}

/** utime+stime (s) and RSS (bytes) of a process, from /proc. */
function usage(pid: number): {cpu: number; rss: number} {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  const rssPages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1])
  return {cpu: (Number(fields[11]) + Number(fields[12])) / TICKS, rss: rssPages * 4096}
}

async function idle(): Promise<{cpu: number; rss: number}> {
  const [on, off] = [instance('idle-on'), instance('idle-off')]
  for (const inst of [on, off]) await cli(inst, ['ssl', 'init', '--domain', 'localhost', '--yes'])
  setConfig(off, {auto_renew: false})
  await Promise.all([serve(on), serve(off)])
  await sleep(3000)
  const cpu: number[] = []
  const rss: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const [a0, b0] = [usage(on.child!.pid!), usage(off.child!.pid!)]
    await sleep(SECONDS * 1000)
    const [a1, b1] = [usage(on.child!.pid!), usage(off.child!.pid!)]
    // CPU per hour: a ratio of two tiny numbers, so a floor of one tick keeps it finite.
    cpu.push(Math.max(a1.cpu - a0.cpu, 1 / TICKS) / Math.max(b1.cpu - b0.cpu, 1 / TICKS))
    rss.push(a1.rss / b1.rss)
  }

  for (const inst of [on, off]) inst.child!.kill('SIGTERM')
  return {cpu: median(cpu), rss: median(rss)}
}

async function p99(url: string): Promise<number> {
  const {stdout} = await run('wrk', ['-t1', '-c8', `-d${SECONDS}s`, '--latency', url])
  const match = /\s99%\s+([\d.]+)(us|ms|s)\b/.exec(stdout)
  if (!match) throw new Error(`no p99 in wrk output:\n${stdout}`)
  const unit = {us: 1e-3, ms: 1, s: 1000}[match[2] as 'us' | 'ms' | 's']
  return Number(match[1]) * unit
}

async function renewing(pebble: Pebble): Promise<{p99: number; renewals: number}> {
  const [on, off] = [instance('renew-on', pebble.env), instance('renew-off', pebble.env)]
  for (const inst of [on, off]) {
    await cli(inst, ['ssl', 'init', '--agree-tos', '--domain', `${inst.name}.mfc.example`, '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--yes'])
  }

  setConfig(off, {auto_renew: false})
  // Only one of them can answer HTTP-01 on Pebble's port: the one that renews.
  await serve(on, pebble.httpPort)
  await serve(off)
  const ratios: number[] = []
  const versions = () => readFileSync(join(on.env.MFC_STATE_DIR!, 'certs', 'renew-on.mfc.example', 'live', 'meta.json'), 'utf8')
  let renewals = 0
  for (let round = 0; round < ROUNDS; round++) {
    const before = versions()
    const with_ = await p99(`https://127.0.0.1:${on.api}/health`)
    if (versions() !== before) renewals++
    const without = await p99(`https://127.0.0.1:${off.api}/health`)
    ratios.push(with_ / without)
  }

  for (const inst of [on, off]) inst.child!.kill('SIGTERM')
  return {p99: median(ratios), renewals}
}

/** SHA-256 of the leaf a port presents (pinned comparison: no trust decision involved). */
function servedFingerprint(port: number, servername: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = connect({host: '127.0.0.1', port, servername, rejectUnauthorized: false}, () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.end()
    })
    socket.once('error', () => resolve(undefined))
  })
}

/** Milliseconds from each in-process renewal (the live link switching) to all three ports serving it. */
async function reloadLatency(pebble: Pebble): Promise<number[]> {
  const inst = instance('reload', pebble.env)
  const domain = `${inst.name}.mfc.example`
  await cli(inst, ['ssl', 'init', '--agree-tos', '--domain', domain, '--acme-directory', pebble.directory, '--http-port', String(pebble.httpPort), '--yes'])
  await serve(inst, pebble.httpPort)
  const live = join(inst.env.MFC_STATE_DIR!, 'certs', domain, 'live')
  const latencies: number[] = []
  let current = readlinkSync(live)
  const deadline = Date.now() + (ROUNDS * 20 + 60) * 1000
  while (latencies.length < ROUNDS && Date.now() < deadline) {
    const target = readlinkSync(live)
    if (target === current) {
      await sleep(5)
      continue
    }

    const switchedAt = performance.now()
    current = target
    const wanted = new X509Certificate(readFileSync(join(live, 'cert.pem'))).fingerprint256
    const {api, dashboard, streamer} = inst.ports!
    const pending = new Set([api, dashboard, streamer])
    while (pending.size > 0 && performance.now() - switchedAt < 10_000) {
      for (const port of [...pending]) if (await servedFingerprint(port, domain) === wanted) pending.delete(port)
      if (pending.size > 0) await sleep(10)
    }

    latencies.push(pending.size === 0 ? performance.now() - switchedAt : Number.POSITIVE_INFINITY)
  }

  inst.child!.kill('SIGTERM')
  return latencies
}

async function main(): Promise<void> {
  const cpu = (await run('lscpu')).stdout.match(/Model name:\s*(.+)/)?.[1] ?? 'unknown CPU'
  const pebble = await startPebble({validityPeriod: 20})
  try {
    const idleResult = await idle()
    const renewResult = await renewing(pebble)
    const reloads = await reloadLatency(pebble)
    console.log(`\nCertificate maintainer cost (${cpu}; ${ROUNDS} rounds of ${SECONDS} s; medians of per-round ratios, with / without)\n`)
    console.log('| measure | ratio |')
    console.log('|---|---|')
    console.log(`| idle CPU seconds per hour | ${idleResult.cpu.toFixed(2)}x |`)
    console.log(`| idle RSS | ${idleResult.rss.toFixed(2)}x |`)
    console.log(`| keep-alive p99, renewing in-process (${renewResult.renewals}/${ROUNDS} windows held a renewal) | ${renewResult.p99.toFixed(2)}x |`)
    const slowest = Math.max(...reloads)
    console.log(`\nReload after ${reloads.length} in-process renewal(s): the new certificate on all three ports within ${Number.isFinite(slowest) ? `${Math.ceil(slowest)} ms` : 'more than 10 s'} of the live link switching at the slowest (goal: within 1 s): ${slowest <= 1000 ? 'met' : 'NOT met'}.`)
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
    await pebble.stop()
    rmSync(dir, {recursive: true, force: true})
  }
}

await main()
