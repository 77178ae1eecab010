import {type ChildProcess, spawn} from 'node:child_process'
import {readFileSync, writeFileSync} from 'node:fs'

import {PidFile} from '../../src/services/daemon/pid-file.js'
import type {DataSettings} from '../../src/services/data/data-settings.js'
import {BIN, ROOT} from './cli.js'
import type {TestSite} from './serve.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export type ServiceName = 'api' | 'dashboard' | 'streamer'

/** A real `mfc serve` (bin/run.js, the built CLI) in the foreground, as a user starts it. */
export interface ServeProcess {
  readonly pid: number
  readonly ports: Record<ServiceName, number>
  /** https:// (wss:// for the streamer) on 127.0.0.1, which the test certificate names. */
  url(name: ServiceName): string
  /** Everything it printed so far (stdout and stderr). */
  output(): string
  /** SIGTERM, then waits for the exit; resolves with the exit code. Idempotent. */
  stop(): Promise<number | null>
}

/** Adds data keys (simulation speed, autostart ...) to the site's ssl-config.json. */
export function writeDataSettings(site: TestSite, settings: Partial<DataSettings> & Record<string, unknown>): void {
  const file = site.config.paths.sslConfigFile
  let current: Record<string, unknown> = {}
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {}

  writeFileSync(file, JSON.stringify({...current, ...settings}, null, 2) + '\n')
}

/**
 * Starts `mfc serve --no-http` with the site's environment (temp config/state dirs,
 * MFC_API_TOKEN) on the given ports (0: the kernel picks; the pid file says which) and
 * resolves once the pid file reports it ready. Rejects with its output if it exits first.
 */
export async function spawnServe(site: TestSite, ports: Partial<Record<ServiceName, number>> = {}, timeoutMs = 30_000): Promise<ServeProcess> {
  const args = [BIN, 'serve', '--no-http', '--api-port', String(ports.api ?? 0), '--dashboard-port', String(ports.dashboard ?? 0), '--stream-port', String(ports.streamer ?? 0)]
  const child: ChildProcess = spawn(process.execPath, args, {cwd: ROOT, env: site.env, stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout!.on('data', (chunk) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk) => {
    output += chunk
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  let gone = false
  void exited.then(() => {
    gone = true
  })

  const pidFile = new PidFile(site.config.paths.pidFile)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (gone) throw new Error(`mfc serve exited before it was ready:\n${output}`)
    const state = await pidFile.read().catch(() => undefined)
    if (state?.record.ready && state.record.pid === child.pid) {
      const {api, dashboard, streamer} = state.record.ports
      let stopping: Promise<number | null> | undefined
      return {
        pid: child.pid!,
        ports: {api, dashboard, streamer},
        url: (name) => `${name === 'streamer' ? 'wss' : 'https'}://127.0.0.1:${state.record.ports[name]}`,
        output: () => output,
        stop() {
          stopping ??= (async () => {
            if (!gone) child.kill('SIGTERM')
            return exited
          })()
          return stopping
        },
      }
    }

    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`mfc serve did not become ready within ${timeoutMs} ms:\n${output}`)
    }

    await sleep(100)
  }
}
