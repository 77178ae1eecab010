import {spawn} from 'node:child_process'

import {childEnvironment} from '../../lib/config.js'

export type HookKind = 'pre' | 'deploy' | 'post' | 'manual-auth' | 'manual-cleanup'

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

/**
 * All a hook inherits from mfc's environment (besides its own RENEWED_* / FAILED_DOMAINS):
 * what a shell needs to find programs and speak the user's locale, and the paths that make an
 * `mfc` inside the hook act on the same installation. Never the secrets (MFC_API_TOKEN, the
 * ACME EAB key, session secrets), unlike certbot, whose hooks get everything.
 */
export const HOOK_ENV_KEYS = ['PATH', 'HOME', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'USER', 'LOGNAME', 'SHELL', 'TMPDIR', 'MFC_CONFIG_DIR', 'MFC_STATE_DIR', 'MFC_SSL_CONFIG'] as const

/** The environment a hook runs with: HOOK_ENV_KEYS from `base` (when set), then `vars`. */
export function hookEnvironment(base: NodeJS.ProcessEnv, vars: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const key of HOOK_ENV_KEYS) if (base[key] !== undefined) env[key] = base[key]!
  return {...env, ...vars}
}

export const HOOK_TIMEOUT_MS = 120_000
const OUTPUT_LIMIT = 4000

/**
 * Runs `command` with /bin/sh in its own process group, with `hookEnvironment` (a short list
 * of mfc's variables, no secrets) plus `vars`. After `timeoutMs` (lego's 2
 * minutes) the whole group is killed, so a hung `systemctl reload` cannot stall a cron run.
 */
export function runHook(kind: HookKind, command: string, vars: Record<string, string>, timeoutMs = HOOK_TIMEOUT_MS): Promise<HookRun> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {env: hookEnvironment(childEnvironment(), vars), detached: true, stdio: ['ignore', 'pipe', 'pipe']})
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
