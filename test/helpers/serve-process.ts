import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {connect} from 'node:tls'

import {resolveConfig} from '../../src/lib/config.js'
import type {PidRecord, ServePorts} from '../../src/services/daemon/pid-file.js'
import {BIN, ROOT} from './cli.js'
import {TEST_TOKEN} from './serve.js'

/** A real `mfc serve` (bin/run.js in the foreground) running as a child process. */
export interface ServeProcess {
  child: ChildProcess
  pid: number
  /** The ports it listens on (from its pid file). */
  ports: ServePorts
  /** MFC_API_TOKEN, else the generated token file's; '' when serve took it from the cluster database. */
  token: string
  /** The local CA that signed its certificate (the config's ca_file; empty for an ACME certificate). */
  caFile: string
  caPem: string
  pidFile: string
  logFile: string
  /** stdout and stderr so far. */
  output(): string
  url(name: 'api' | 'dashboard' | 'streamer'): string
  /** SIGTERM and wait for the exit (SIGKILL after 15 s); resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>
}

export interface ServeProcessOptions {
  /** Listening ports; 0 (the default) lets the kernel choose. */
  ports?: Partial<{api: number; dashboard: number; streamer: number}>
  /** The plain-HTTP port (ACME challenges, redirects); off unless given. */
  httpPort?: number
  /** MFC_API_TOKEN; TEST_TOKEN unless given, null: serve generates its own. */
  token?: string | null
  args?: string[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Starts `mfc serve` with `env` (a tempEnv's MFC_CONFIG_DIR/MFC_STATE_DIR) and resolves once
 * its pid file says every server listens. Rejects with serve's own output when it exits first.
 * With no certificate configured, serve bootstraps one through the local CA, as a user's would.
 */
export async function startServeProcess(env: NodeJS.ProcessEnv, options: ServeProcessOptions = {}): Promise<ServeProcess> {
  const token = options.token === undefined ? TEST_TOKEN : options.token
  const fullEnv = token === null ? {...env} : {...env, MFC_API_TOKEN: token}
  const {paths} = resolveConfig({env: fullEnv, isRoot: false})
  const port = (name: 'api' | 'dashboard' | 'streamer') => String(options.ports?.[name] ?? 0)
  const args = [
    BIN, 'serve', '--api-port', port('api'), '--dashboard-port', port('dashboard'), '--stream-port', port('streamer'),
    ...(options.httpPort === undefined ? ['--no-http'] : ['--http', '--http-port', String(options.httpPort)]),
    ...(options.args ?? []),
  ]
  const child = spawn(process.execPath, args, {env: fullEnv, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout!.on('data', (chunk) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let stopping: Promise<number | null> | undefined
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM')
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000)
        await exited
        clearTimeout(killer)
      }

      return child.exitCode
    })()
    return stopping
  }

  let record: PidRecord | undefined
  while (!record) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mfc serve exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output}`)
    try {
      const current = JSON.parse(readFileSync(paths.pidFile, 'utf8')) as PidRecord
      if (current.pid === child.pid && current.ready) record = current
    } catch {}

    if (!record) await sleep(50)
  }

  const config = resolveConfig({env: fullEnv, isRoot: false})
  const caFile = config.settings.ca_file ?? config.paths.caCertFile
  const {ports} = record
  return {
    child, pid: child.pid!, ports, token: token ?? (existsSync(config.paths.apiTokenFile) ? readFileSync(config.paths.apiTokenFile, 'utf8').trim() : ''), caFile, caPem: existsSync(caFile) ? readFileSync(caFile, 'utf8') : '',
    pidFile: paths.pidFile, logFile: paths.logFile,
    output: () => output,
    url: (name) => `${name === 'streamer' ? 'wss' : 'https'}://127.0.0.1:${ports[name]}`,
    stop,
  }
}

/** The serial number of the certificate a TLS server presents now (a fresh handshake, verified). */
export function servedSerial(port: number, options: {ca: string; servername?: string}): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({host: '127.0.0.1', port, ca: options.ca, servername: options.servername ?? 'localhost'}, () => {
      resolve(socket.getPeerCertificate().serialNumber)
      socket.end()
    })
    socket.on('error', reject)
  })
}
