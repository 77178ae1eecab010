/**
 * `npx tsx bench/serve-bench.ts [--seconds 5] [--rounds 5] [--clients 1000] [--connections 32]
 * [--http-only] [--cpu-prof DIR] [--compare ROOT [--compare-env KEY=VALUE]]` (build first: it runs the real `bin/run.js serve`).
 * `--http-only` runs part 1 alone (the keep-alive rows); `--cpu-prof DIR` writes a V8 CPU profile
 * of the `mfc serve` process into DIR (profiling slows it: read ratios from a run without it);
 * `--compare ROOT` also runs ROOT's built `bin/run.js serve` (another checkout or build, e.g. the
 * main branch) in the same rounds and adds its /health rows, for before/after in one run;
 * `--compare-env KEY=VALUE` (repeatable) sets environment for that serve only (`--compare .
 * --compare-env MFC_HEALTH_FAST_PATH=false`: this build with /health through fastify).
 * Side by side in one run, each against its bare-Node baseline:
 *   1. wrk keep-alive throughput: GET /health and authenticated GET / on mfc's API vs a bare
 *      node:https hello-world (same certificate and TLS settings, one process each; wrk -t1 uses
 *      about half a core at these rates, so the server, not wrk, is the bottleneck)
 *   2. new TLS handshakes/s (openssl s_time -new): mfc's API port vs a bare node:tls server
 *   3. WSS fan-out: N clients, 10 broadcasts/s: p99 delivery latency and server CPU, mfc's
 *      streamer vs a bare ws broadcast loop
 *   4. idle RSS of `mfc serve` (three servers) vs a bare node:https process
 * Prints a markdown table of figures and ratios (mfc / bare).
 */
import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const PEERS = join(ROOT, 'bench', 'serve-bench-peers.ts')
const run = promisify(execFile)
const argValue = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`)
  return at > 0 ? Number(process.argv[at + 1]) : fallback
}

const SECONDS = argValue('seconds', 5)
const CLIENTS = argValue('clients', 1000)
const ROUNDS = argValue('rounds', 5)
const CONNECTIONS = argValue('connections', 32)
const HTTP_ONLY = process.argv.includes('--http-only')
const COMPARE = process.argv.includes('--compare') ? process.argv[process.argv.indexOf('--compare') + 1] : undefined
// Environment of the --compare serve only, e.g. `--compare . --compare-env MFC_HEALTH_FAST_PATH=false`.
const COMPARE_ENV = Object.fromEntries(process.argv.flatMap((arg, i) => (process.argv[i - 1] === '--compare-env' ? [arg.split(/=(.*)/s).slice(0, 2)] : [])))
const CPU_PROF = process.argv.includes('--cpu-prof') ? process.argv[process.argv.indexOf('--cpu-prof') + 1] : undefined
const TOKEN = 'bench-token-0123456789abcdefghijklmnopqrstuv'
const dir = mkdtempSync(join(tmpdir(), 'mfc-bench-'))
const env: NodeJS.ProcessEnv = {
  PATH: process.env.PATH, HOME: dir, MFC_CONFIG_DIR: join(dir, 'config'), MFC_STATE_DIR: join(dir, 'state'),
  MFC_API_TOKEN: TOKEN, MFC_RATE_LIMIT_PER_MINUTE: '1000000000', MFC_HTTP_PORT_ENABLED: 'false',
}
const children: ChildProcess[] = []

function start(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{child: ChildProcess; port: number; lines: string[]}> {
  const child = spawn(process.execPath, args, {env: {...env, ...extraEnv}, stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT})
  children.push(child)
  const lines: string[] = []
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (text: string) => {
      for (const line of text.split('\n').filter(Boolean)) {
        lines.push(line)
        const match = /^READY (\d+)$/.exec(line)
        if (match) resolve({child, port: Number(match[1]), lines})
      }
    })
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)))
  })
}

const peer = (role: string, ...args: string[]) => ['--import', 'tsx', PEERS, role, ...args]

async function startMfcServe(root = ROOT, name = 'state'): Promise<{child: ChildProcess; api: number}> {
  const own = name === 'state' ? env : {...env, MFC_CONFIG_DIR: join(dir, `${name}-config`), MFC_STATE_DIR: join(dir, name), ...COMPARE_ENV}
  const profile = CPU_PROF && root === ROOT ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF] : []
  const child = spawn(process.execPath, [...profile, join(root, 'bin', 'run.js'), 'serve', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http'], {env: own, stdio: 'ignore'})
  children.push(child)
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, 200))
    try {
      const record = JSON.parse(readFileSync(join(dir, name, 'mfc.pid'), 'utf8'))
      if (record.ready) return {child, api: record.ports.api}
    } catch {}
  }
}

/** utime + stime of a process, in microseconds (clock ticks of 10 ms). */
function cpuMicros(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return (Number(fields[11]) + Number(fields[12])) * 10_000
}

/**
 * Requests/s, and the server's CPU time per request (less sensitive to other load on a shared
 * machine than req/s). A run with any non-2xx answer (a 429 would be cheap) is an error, not a
 * figure; socket errors (timeouts under load) are reported.
 */
async function wrk(url: string, pid: number, headers: string[] = [], seconds = SECONDS): Promise<{rps: number; cpuUs: number}> {
  const before = cpuMicros(pid)
  const {stdout} = await run('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, ...headers.flatMap((h) => ['-H', h]), url])
  const used = cpuMicros(pid) - before
  const failed = /Non-2xx or 3xx responses: \d+/.exec(stdout)
  if (failed) throw new Error(`wrk ${url}: ${failed[0]}`)
  const socketErrors = /Socket errors: .*/.exec(stdout)
  if (socketErrors) process.stderr.write(`wrk ${url}: ${socketErrors[0]}\n`)
  return {rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)![1]), cpuUs: used / Number(/(\d+) requests in/.exec(stdout)![1])}
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** "median (min-max)" of per-round ratios: each round's runs are adjacent in time. */
function ratioSpread(numerators: number[], denominators: number[]): string {
  const ratios = numerators.map((value, i) => value / denominators[i])
  return `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`
}

async function handshakes(port: number): Promise<number> {
  const {stdout} = await run('openssl', ['s_time', '-connect', `127.0.0.1:${port}`, '-new', '-time', String(SECONDS)], {maxBuffer: 1 << 24})
  const match = /(\d+) connections in ([\d.]+) real seconds/.exec(stdout)!
  return Number(match[1]) / Number(match[2])
}

function rssMb(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024
}

async function fanout(mode: 'mfc' | 'bare', certs: NodeJS.ProcessEnv): Promise<{cpuPercent: number; p50: number; p99: number; max: number; messages: number; dropped: number}> {
  const server = await start(peer('fanout', mode, String(CLIENTS), String(SECONDS)), certs)
  const clients = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, peer('fanout-clients', `wss://127.0.0.1:${server.port}/`, String(CLIENTS), TOKEN), {env: {...env, ...certs}, stdio: ['ignore', 'pipe', 'inherit'], cwd: ROOT})
    children.push(child)
    let out = ''
    child.stdout!.on('data', (chunk) => {
      out += chunk
    })
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`clients exited ${code}`))))
  })
  await new Promise((resolve) => server.child.once('exit', resolve))
  const cpu = JSON.parse(server.lines.find((l) => l.startsWith('{'))!)
  return {...JSON.parse(clients.trim()), cpuPercent: cpu.cpuPercent}
}

async function main(): Promise<void> {
  const mfc = await startMfcServe()
  const other = COMPARE ? await startMfcServe(COMPARE, 'compare-state') : undefined
  const live = join(dir, 'state', 'certs', 'localhost', 'live')
  const certs = {BENCH_CERT: join(live, 'fullchain.pem'), BENCH_KEY: join(live, 'privkey.pem'), BENCH_CA: join(dir, 'state', 'ca', 'ca.crt')}
  await new Promise((resolve) => setTimeout(resolve, 2000))
  const bareHttps = await start(peer('bare-https', certs.BENCH_CERT, certs.BENCH_KEY))
  await new Promise((resolve) => setTimeout(resolve, 1000))
  const idle = {mfc: rssMb(mfc.child.pid!), bare: rssMb(bareHttps.child.pid!)}

  // The machine is shared: runs alternate (bare, mfc, mfc-auth, ...) round after round, and the
  // median of the per-round ratios counts, so a burst of someone else's load hits both sides
  // alike. One discarded warm-up run each first: the JIT needs a few seconds to settle on
  // mfc's longer request path, the bare hello-world much less.
  type Run = {rps: number; cpuUs: number}
  const runs = {otherHealth: [] as Run[], bareHealth: [] as Run[], mfcHealth: [] as Run[], mfcAuth: [] as Run[], bareHs: [] as number[], mfcHs: [] as number[]}
  const auth = [`Authorization: Bearer ${TOKEN}`]
  const [bareUrl, healthUrl, indexUrl] = [`https://127.0.0.1:${bareHttps.port}/`, `https://127.0.0.1:${mfc.api}/health`, `https://127.0.0.1:${mfc.api}/`]
  const [barePid, mfcPid] = [bareHttps.child.pid!, mfc.child.pid!]
  const bareTls = await start(peer('bare-tls', certs.BENCH_CERT, certs.BENCH_KEY))
  await wrk(bareUrl, barePid, [], 3)
  await wrk(healthUrl, mfcPid, [], 3)
  await wrk(indexUrl, mfcPid, auth, 3)
  const otherUrl = other ? `https://127.0.0.1:${other.api}/health` : ''
  if (other) await wrk(otherUrl, other.child.pid!, [], 3)
  // Every other round runs in reverse order, so no side always follows the same neighbour.
  const keepAlive: Array<() => Promise<void>> = [
    async () => void runs.bareHealth.push(await wrk(bareUrl, barePid)),
    async () => void runs.mfcHealth.push(await wrk(healthUrl, mfcPid)),
    async () => void runs.mfcAuth.push(await wrk(indexUrl, mfcPid, auth)),
    ...(other ? [async () => void runs.otherHealth.push(await wrk(otherUrl, other.child.pid!))] : []),
  ]
  for (let round = 0; round < ROUNDS; round++) {
    for (const measure of round % 2 === 0 ? keepAlive : [...keepAlive].reverse()) await measure()
    if (HTTP_ONLY) continue
    runs.bareHs.push(await handshakes(bareTls.port))
    runs.mfcHs.push(await handshakes(mfc.api))
  }

  bareHttps.child.kill()
  bareTls.child.kill()
  mfc.child.kill('SIGTERM')
  other?.child.kill('SIGTERM')
  // A profile is written when the process exits.
  await new Promise((resolve) => (mfc.child.exitCode === null ? mfc.child.once('exit', resolve) : resolve(null)))

  const noFan = {cpuPercent: Number.NaN, p50: Number.NaN, p99: Number.NaN, max: Number.NaN, messages: 0, dropped: 0}
  const bareFan = HTTP_ONLY ? noFan : await fanout('bare', certs)
  const mfcFan = HTTP_ONLY ? noFan : await fanout('mfc', certs)

  const ratio = (a: number, b: number) => (a / b).toFixed(2)
  const rate = (values: number[]) => median(values).toFixed(0)
  const rps = (list: Run[]) => list.map((r) => r.rps)
  const cpu = (list: Run[]) => median(list.map((r) => r.cpuUs)).toFixed(1)
  const cpus = (list: Run[]) => list.map((r) => r.cpuUs)
  const httpRows = [
    [`HTTPS keep-alive req/s, GET /health (wrk -t1 -c${CONNECTIONS})`, rate(rps(runs.mfcHealth)), rate(rps(runs.bareHealth)), ratioSpread(rps(runs.mfcHealth), rps(runs.bareHealth)), '>= 0.8'],
    [`HTTPS keep-alive req/s, authenticated GET / (wrk -t1 -c${CONNECTIONS})`, rate(rps(runs.mfcAuth)), rate(rps(runs.bareHealth)), ratioSpread(rps(runs.mfcAuth), rps(runs.bareHealth)), '>= 0.8'],
    ['Server CPU us per request, GET /health / authenticated GET /', `${cpu(runs.mfcHealth)} / ${cpu(runs.mfcAuth)}`, cpu(runs.bareHealth), '', ''],
    // Inverted so that, like req/s, higher is better: bare's CPU per request over mfc's.
    ['Server CPU per request, bare/mfc, GET /health', '', '', ratioSpread(cpus(runs.bareHealth), cpus(runs.mfcHealth)), ''],
    ...(other ? [
      [`--compare ${COMPARE}: req/s, GET /health`, rate(rps(runs.otherHealth)), rate(rps(runs.bareHealth)), ratioSpread(rps(runs.otherHealth), rps(runs.bareHealth)), ''],
      ['this build / --compare build, GET /health req/s', '', '', ratioSpread(rps(runs.mfcHealth), rps(runs.otherHealth)), ''],
      ['--compare build: server CPU us per request, GET /health', cpu(runs.otherHealth), cpu(runs.bareHealth), '', ''],
      ['--compare build: server CPU per request, bare/mfc, GET /health', '', '', ratioSpread(cpus(runs.bareHealth), cpus(runs.otherHealth)), ''],
    ] : []),
  ]
  const rows = [
    ...httpRows,
    ['New TLS handshakes/s (openssl s_time -new)', rate(runs.mfcHs), rate(runs.bareHs), ratioSpread(runs.mfcHs, runs.bareHs), '>= 0.9'],
    [`WSS fan-out p99 latency ms (${CLIENTS} clients, 10/s)`, String(mfcFan.p99), String(bareFan.p99), ratio(mfcFan.p99 || 1, bareFan.p99 || 1), 'p99 < 50 ms'],
    ['WSS fan-out p50 latency ms', String(mfcFan.p50), String(bareFan.p50), ratio(mfcFan.p50 || 1, bareFan.p50 || 1), ''],
    ['WSS fan-out server CPU %', mfcFan.cpuPercent.toFixed(1), bareFan.cpuPercent.toFixed(1), ratio(mfcFan.cpuPercent, bareFan.cpuPercent), ''],
    ['WSS messages delivered / dropped clients', `${mfcFan.messages} / ${mfcFan.dropped}`, `${bareFan.messages} / ${bareFan.dropped}`, '', ''],
    ['Idle RSS MB (mfc serve: 3 servers; bare: 1 https)', idle.mfc.toFixed(1), idle.bare.toFixed(1), ratio(idle.mfc, idle.bare), 'mfc < 120 MB'],
  ]
  process.stdout.write(`\nmfc serve vs bare Node, medians of ${ROUNDS} alternating ${SECONDS} s rounds (ratio: median of per-round ratios, min-max), node ${process.version}\n\n`)
  process.stdout.write('| measurement | mfc | bare | mfc/bare | goal |\n|---|---|---|---|---|\n')
  for (const row of HTTP_ONLY ? httpRows : rows) process.stdout.write(`| ${row.join(' | ')} |\n`)
}

try {
  await main()
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(dir, {recursive: true, force: true})
}
