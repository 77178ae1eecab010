import {type ChildProcess, spawn} from 'node:child_process'
import {X509Certificate, createPrivateKey} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {join} from 'node:path'

import type {TempEnv} from './cli.js'
import {freePort} from './ports.js'
import {type ServeProcess, startServeProcess} from './serve-process.js'

/**
 * Shared setup of the tests that run several real `mfc serve` processes on one PostgreSQL
 * (cluster-nodes, cluster-maintainers): bounded waits, haproxy in front of the nodes' HTTP-01
 * ports, and the check that a node's live files are one pair.
 */

/** One node of a test cluster: its state and environment, its HTTP-01 port, its serve once started. */
export interface ClusterNode {
  name: string
  t: TempEnv
  env: NodeJS.ProcessEnv
  httpPort: number
  serve?: ServeProcess
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts a node's serve on its HTTP-01 port. A port that was free when picked can be taken by
 * the time serve binds it (an outgoing connection's ephemeral port, to PostgreSQL for one);
 * serve then runs without its HTTP port, as it should, which would fail the test for a reason
 * of the test's own. So a node whose serve did not get its port is stopped and started again on
 * a new one (the node's config and `httpPort` follow), at most three times.
 */
export async function startNode(node: ClusterNode): Promise<ServeProcess> {
  for (let attempt = 1; ; attempt++) {
    const serve = await startServeProcess(node.env, {httpPort: node.httpPort})
    if (serve.ports.http === node.httpPort) return serve
    await serve.stop()
    if (attempt === 3) throw new Error(`${node.name}: serve could not bind an HTTP port three times (last ${node.httpPort})`)
    node.httpPort = await freePort()
    const file = join(node.t.configDir, 'ssl-config.json')
    await fs.writeFile(file, JSON.stringify({...JSON.parse(await fs.readFile(file, 'utf8')) as object, http_port: node.httpPort}))
  }
}

/** Polls `probe` until it gives a value (errors count as "not yet"), at most `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 30_000, everyMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    await sleep(everyMs)
  }

  throw new Error(`gave up waiting for ${what}`)
}

export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

/** haproxy options: `delayMs` holds every connection that long before it is forwarded (a slow network to the CA). */
export interface HaproxyOptions {
  delayMs?: number
}

/**
 * haproxy on 127.0.0.1:`port` in front of `backends` (the CA's plain-HTTP HTTP-01 requests),
 * round robin; a backend that refuses the connection (a node killed) is skipped. With
 * `delayMs` it runs in TCP mode, where `inspect-delay` holds each connection: the real way to
 * slow an HTTP-01 validation down without touching the CA or the nodes.
 */
export async function startHaproxy(dir: string, port: number, backends: number[], options: HaproxyOptions = {}): Promise<{stop(): Promise<void>}> {
  const file = join(dir, 'haproxy.cfg')
  const delay = options.delayMs ? [`  tcp-request inspect-delay ${options.delayMs}ms`, '  tcp-request content accept if WAIT_END'] : []
  await fs.writeFile(file, [
    'global', '  maxconn 200', 'defaults', `  mode ${options.delayMs ? 'tcp' : 'http'}`, '  timeout connect 2s', '  timeout client 10s', '  timeout server 10s', '  retries 3', '  option redispatch',
    'frontend acme', `  bind 127.0.0.1:${port}`, ...delay, '  default_backend nodes',
    'backend nodes', '  balance roundrobin', ...backends.map((p, i) => `  server n${i} 127.0.0.1:${p}`), '',
  ].join('\n'))
  const child = spawn('haproxy', ['-f', file, '-db'], {stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stderr!.on('data', (c) => {
    output += c
  })
  try {
    await until('haproxy to listen', async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited: ${output}`)
      const response = await fetch(`http://127.0.0.1:${port}/.well-known/acme-challenge/probe`).catch(() => undefined)
      return response ? true : undefined
    }, 10_000)
  } catch (error) {
    await stopChild(child)
    throw error
  }

  return {stop: () => stopChild(child)}
}

/**
 * The live cert and key of a node's local copy (`<stateDir>/cluster-certs/<name>/live`) are
 * one pair. The link is resolved once, so a switch to a new version between the two reads
 * cannot mix two versions.
 */
export async function livePairMatches(stateDir: string, name: string): Promise<boolean> {
  const lineage = join(stateDir, 'cluster-certs', name)
  const dir = join(lineage, await fs.readlink(join(lineage, 'live')))
  const [cert, key] = await Promise.all([fs.readFile(join(dir, 'fullchain.pem'), 'utf8'), fs.readFile(join(dir, 'privkey.pem'), 'utf8')])
  return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key))
}
