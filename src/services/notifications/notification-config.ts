import {promises as fs} from 'node:fs'
import {dirname} from 'node:path'

import {ConfigError, MfcError, UsageError, errnoCode, fileProblem} from '../../lib/errors.js'
import {ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'
import type {NotificationLevel} from './notifier.js'

/**
 * `notification-config.json`: the Python system's keys (enabled, smtp_*, from_email,
 * to_emails, use_tls; `enabled` switches email on) plus `webhooks` and `level`. Mode 0600:
 * it holds the SMTP password (the original wrote it world-readable).
 */
export interface NotificationConfig {
  enabled: boolean
  smtp_server: string
  smtp_port: number
  smtp_username: string
  smtp_password: string
  from_email: string
  to_emails: string[]
  use_tls: boolean
  webhooks: string[]
  level: NotificationLevel
}

export const NOTIFICATION_DEFAULTS: NotificationConfig = {
  enabled: false,
  smtp_server: 'localhost',
  smtp_port: 587,
  smtp_username: '',
  smtp_password: '',
  from_email: 'mfc-system@localhost',
  to_emails: [],
  use_tls: true,
  webhooks: [],
  level: 'renewals',
}

/** Where the values being checked came from: a file (a config error) or the flags that set each key (a usage error). */
export type NotificationSource = string | {flags: Partial<Record<keyof NotificationConfig, string>>}

function bad(source: NotificationSource, key: string, expected: string): MfcError {
  if (typeof source === 'string') {
    return new ConfigError(`Invalid "${key}" in ${source}: expected ${expected}.`, {code: 'MFC_NOTIFY_CONFIG', suggestions: [`Fix "${key}" in ${source}, or run \`mfc notify setup\`.`]})
  }

  const flag = source.flags[key as keyof NotificationConfig] ?? key
  return new UsageError(`Invalid value for ${flag}: expected ${expected}.`, {code: 'MFC_USAGE', suggestions: [`Fix ${flag} (see \`mfc notify setup --help\`).`]})
}

/**
 * Validates and merges over the defaults (the original's shallow merge), keeping unknown keys in
 * `extra`. A bad value read from a file is a config error naming the file and key; one set by a
 * flag (`source.flags`) a usage error naming the flag.
 */
export function parseNotificationConfig(raw: Record<string, unknown>, source: NotificationSource): NotificationConfig {
  const merged = {...NOTIFICATION_DEFAULTS, ...raw} as Record<string, unknown>
  const check = (key: keyof NotificationConfig, ok: boolean, expected: string) => {
    if (!ok) throw bad(source, key, expected)
  }

  check('enabled', typeof merged.enabled === 'boolean', 'true or false')
  check('use_tls', typeof merged.use_tls === 'boolean', 'true or false')
  check('smtp_port', Number.isInteger(merged.smtp_port) && (merged.smtp_port as number) > 0 && (merged.smtp_port as number) < 65_536, 'a port number')
  for (const key of ['smtp_server', 'smtp_username', 'smtp_password', 'from_email'] as const) check(key, typeof merged[key] === 'string', 'a string')
  check('to_emails', Array.isArray(merged.to_emails) && (merged.to_emails as unknown[]).every((e) => typeof e === 'string' && /^[^\s@]+@[^\s@]+$/.test(e)), 'a list of email addresses')
  check('webhooks', Array.isArray(merged.webhooks) && (merged.webhooks as unknown[]).every((u) => typeof u === 'string' && /^https?:\/\//.test(u)), 'a list of http(s) URLs')
  check('level', ['errors', 'renewals', 'all'].includes(merged.level as string), '"errors", "renewals" or "all"')
  return merged as unknown as NotificationConfig
}

export async function loadNotificationConfig(file: string): Promise<{config: NotificationConfig; exists: boolean}> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return {config: {...NOTIFICATION_DEFAULTS}, exists: false}
    throw new ConfigError(`${fileProblem(file, error)}.`, {code: 'MFC_NOTIFY_CONFIG', cause: error, suggestions: [`Check the permissions of ${file}.`]})
  }

  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`, {code: 'MFC_NOTIFY_CONFIG', cause: error, suggestions: [`Fix ${file} or run \`mfc notify setup\` to rewrite it.`]})
  }

  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw bad(file, '(top level)', 'a JSON object')
  return {config: parseNotificationConfig(raw as Record<string, unknown>, file), exists: true}
}

/** Writes the config (0600, atomic), keeping keys this version does not know. Caller holds the lock. */
export async function saveNotificationConfig(file: string, config: NotificationConfig): Promise<void> {
  let current: Record<string, unknown> = {}
  try {
    current = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>
  } catch {
    // Missing or unreadable: written fresh.
  }

  await ensureDir(dirname(file), 0o700)
  await writeFileAtomic(file, JSON.stringify({...current, ...config}, null, 2) + '\n', 0o600)
}

/** The config without secrets, for --json and logs. */
export function redactNotificationConfig(config: NotificationConfig): Omit<NotificationConfig, 'smtp_password'> & {smtp_password: string} {
  return {...config, smtp_password: config.smtp_password ? '(set)' : '', webhooks: config.webhooks.map(redactUrl)}
}

/** Webhook URLs carry their secret in the path (Slack, Discord): only scheme and host are shown. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    return `${parsed.protocol}//${parsed.host}/…`
  } catch {
    return '(invalid URL)'
  }
}
