import {spawn} from 'node:child_process'

import {childEnvironment} from '../../lib/config.js'

export type HookKind = 'pre' | 'deploy' | 'post'

/** Shell commands run around renewals, with certbot's semantics (see `CertManager.renew`). */
export interface RenewalHooks {
  /** Once, before the first renewal, only if something will be renewed. */
  pre?: string | null
  /** Once per renewed certificate, with RENEWED_LINEAGE and RENEWED_DOMAINS. */
  deploy?: string | null
  /** Once after all attempts, with RENEWED_DOMAINS and FAILED_DOMAINS. */
  post?: string | null
}

/** What happened to one hook run; a failure is reported, never thrown. */
export interface HookRun {
  kind: HookKind
  command: string
  ok: boolean
  exitCode: number | null
  timedOut: boolean
  /** The end of its stdout and stderr, for the report. */
  output: string
  /** The lineage a deploy hook ran for. */
  name?: string
}

export const HOOK_TIMEOUT_MS = 120_000
const OUTPUT_LIMIT = 4000

/**
 * Runs `command` with /bin/sh in its own process group, with mfc's environment plus `vars`
 * (hooks inherit the caller's environment, as certbot's do). After `timeoutMs` (lego's 2
 * minutes) the whole group is killed, so a hung `systemctl reload` cannot stall a cron run.
 */
export function runHook(kind: HookKind, command: string, vars: Record<string, string>, timeoutMs = HOOK_TIMEOUT_MS): Promise<HookRun> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {env: {...childEnvironment(), ...vars}, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    let timedOut = false
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-OUTPUT_LIMIT)
    }

    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    const timer = setTimeout(() => {
      timedOut = true
      try {
        process.kill(-child.pid!, 'SIGKILL')
      } catch {
        child.kill('SIGKILL')
      }
    }, timeoutMs)
    const finish = (exitCode: number | null, error?: Error) => {
      clearTimeout(timer)
      resolve({kind, command, ok: !timedOut && exitCode === 0, exitCode, timedOut, output: (error ? `${error.message}\n` : '') + output.trim()})
    }

    child.on('error', (error) => finish(null, error))
    child.on('close', (code) => finish(code))
  })
}
