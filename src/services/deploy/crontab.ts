import {spawn} from 'node:child_process'
import {hostname} from 'node:os'

import {MfcError} from '../../lib/errors.js'
import {type CrontabChange, type CronSchedule, type RenewalCommand, installCronLine, hostSchedule, removeCronLines} from './cron.js'

/**
 * A user's crontab. `read` returns '' when the user has none. `write` replaces it whole;
 * there is no locking beyond what crontab(1) does, as with `crontab -e`.
 */
export interface Crontab {
  read(): Promise<string>
  write(text: string): Promise<void>
}

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(bin: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr!.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
    if (input !== undefined) {
      // crontab may exit (refusing the user) before reading its input.
      child.stdin!.on('error', () => {})
      child.stdin!.end(input)
    }
  })
}

function crontabError(action: string, detail: string, cause?: unknown): MfcError {
  return new MfcError(`Could not ${action} the crontab: ${detail}`, {
    code: 'MFC_CRONTAB',
    cause,
    suggestions: [
      'Check that cron is installed (Debian: `apt-get install cron`) and that you may use crontab (/etc/cron.allow, /etc/cron.deny).',
      'Or use a systemd timer instead: `mfc setup systemd`.',
    ],
  })
}

/** The real crontab(1) of the user running mfc. */
export class SystemCrontab implements Crontab {
  constructor(private readonly bin = 'crontab') {}

  async read(): Promise<string> {
    const result = await run(this.bin, ['-l']).catch((error: Error) => {
      throw crontabError('read', error.message, error)
    })
    if (result.code === 0) return result.stdout
    // Debian and cronie both say "no crontab for <user>" and exit 1 when there is none.
    if (/no crontab for/i.test(result.stderr)) return ''
    throw crontabError('read', result.stderr.trim() || `crontab -l exited ${result.code}`)
  }

  async write(text: string): Promise<void> {
    const result = await run(this.bin, ['-'], text).catch((error: Error) => {
      throw crontabError('write', error.message, error)
    })
    if (result.code !== 0) throw crontabError('write', result.stderr.trim() || `crontab - exited ${result.code}`)
  }
}

export interface CronSetupOptions {
  remove?: boolean
  /** Compute the change, write nothing. */
  dryRun?: boolean
  schedule?: CronSchedule
}

export interface CronSetupResult extends CrontabChange {
  action: 'installed' | 'removed' | 'unchanged'
  dryRun: boolean
}

/** Installs (or removes) mfc's renewal line; writes only when the crontab really changes. */
export async function setupCron(crontab: Crontab, command: RenewalCommand, options: CronSetupOptions = {}): Promise<CronSetupResult> {
  const current = await crontab.read()
  const change = options.remove ? removeCronLines(current) : installCronLine(current, command, options.schedule ?? hostSchedule(hostname()))
  if (change.changed && !options.dryRun) await crontab.write(change.text)
  const action = !change.changed ? 'unchanged' : options.remove ? 'removed' : 'installed'
  return {...change, action, dryRun: Boolean(options.dryRun)}
}
