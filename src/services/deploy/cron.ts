import {createHash} from 'node:crypto'

/**
 * The renewal line of the user's crontab, as pure functions over crontab text: schedule,
 * line, merge, removal. The command that reads and writes the real crontab is thin.
 */

/** Marks mfc's line; the Python system used the same marker, so its lines are found too. */
export const CRON_TAG = '# mfc-cert-renewal'
const LEGACY_MARKER = 'mfc-cert-renewal'

export interface CronSchedule {
  minute: number
  /** Two hours, 12 apart: renewal is tried twice a day like certbot's timer. */
  hours: [number, number]
}

export interface RenewalCommand {
  /** Absolute path of node (cron's PATH is minimal). */
  nodePath: string
  /** Absolute path of mfc's bin/run.js. */
  mfcPath: string
  /** Exported so the cron job sees the same directories as the user who set it up. */
  env: Record<string, string>
}

/**
 * A minute and hour derived from the host name (sha256), so many installations do not hit the
 * CA at the same instant, yet one host gets the same time on every run (a dry run shows what
 * the real run installs; certbot's and Caddy's jitter would move the line each time).
 */
export function hostSchedule(host: string): CronSchedule {
  const digest = createHash('sha256').update(host).digest()
  const minute = digest.readUInt32BE(0) % 60
  const hour = digest.readUInt32BE(4) % 12
  return {minute, hours: [hour, hour + 12]}
}

/** Single-quotes a word for /bin/sh unless it is plainly safe. */
export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", String.raw`'\''`)}'`
}

/**
 * The crontab line. stdout goes to /dev/null so cron mails only when something is written to
 * stderr, which `cert renew-if-needed` does only on failure (certbot#5149: no mail on success).
 */
export function cronLine(command: RenewalCommand, schedule: CronSchedule): string {
  const env = Object.entries(command.env).map(([key, value]) => `${key}=${shellQuote(value)}`)
  const words = [...env, shellQuote(command.nodePath), shellQuote(command.mfcPath), 'cert', 'renew-if-needed']
  return `${schedule.minute} ${schedule.hours.join(',')} * * * ${words.join(' ')} >/dev/null ${CRON_TAG}`
}

/** mfc's own line (tagged and calling `cert renew-if-needed`), as opposed to the Python system's. */
export function isMfcLine(line: string): boolean {
  return line.trimEnd().endsWith(CRON_TAG) && line.includes(' cert renew-if-needed')
}

/** The schedule of an existing mfc line, so re-running setup keeps it. */
export function parseSchedule(line: string): CronSchedule | undefined {
  const match = /^(\d{1,2}) (\d{1,2}),(\d{1,2}) \* \* \* /.exec(line)
  if (!match) return undefined
  return {minute: Number(match[1]), hours: [Number(match[2]), Number(match[3])]}
}

export interface CrontabChange {
  /** The whole new crontab text. */
  text: string
  changed: boolean
  /** The line now installed (undefined after a removal). */
  line?: string
  /** Lines that were taken out: older mfc lines and the Python system's. */
  removed: string[]
}

function splitLines(text: string): string[] {
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines
}

function joinLines(lines: string[]): string {
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

/**
 * Installs one mfc line in `current`, removing every other line with the marker (the Python
 * system's duplicates, its `mfc-cert-renewal.sh` line, an mfc line with old paths). An existing
 * mfc line keeps its schedule, so a second run with the same paths changes nothing.
 */
export function installCronLine(current: string, command: RenewalCommand, fallback: CronSchedule): CrontabChange {
  const lines = splitLines(current)
  const ours = lines.find((line) => isMfcLine(line))
  const schedule = (ours && parseSchedule(ours)) || fallback
  const line = cronLine(command, schedule)
  const kept = lines.filter((l) => !l.includes(LEGACY_MARKER))
  const removed = lines.filter((l) => l.includes(LEGACY_MARKER) && l !== line)
  const insertAt = lines.findIndex((l) => l.includes(LEGACY_MARKER))
  const next = [...kept]
  // The line goes where the first old one was, so a hand-ordered crontab stays readable.
  next.splice(insertAt === -1 ? next.length : lines.slice(0, insertAt).filter((l) => !l.includes(LEGACY_MARKER)).length, 0, line)
  const text = joinLines(next)
  return {text, changed: text !== joinLines(lines), line, removed}
}

/** Removes every line with the marker (mfc's and the Python system's). */
export function removeCronLines(current: string): CrontabChange {
  const lines = splitLines(current)
  const removed = lines.filter((l) => l.includes(LEGACY_MARKER))
  const text = joinLines(lines.filter((l) => !l.includes(LEGACY_MARKER)))
  return {text, changed: removed.length > 0, removed}
}
