import type {MfcConfig} from '../../lib/config.js'
import {ConfigError} from '../../lib/errors.js'

/**
 * The monitoring keys of `ssl-config.json` (snake_case like the rest of the file). They are
 * owned here rather than in lib/config's SPECS because only the data services read them;
 * config.ts lists them as known so they never warn.
 */
export interface DataSettings {
  /** The original's "Data Retention (days)"; 0 keeps everything. */
  data_retention_days: number
  /** Simulated hours per wall-clock second. */
  simulation_speed: number
  /** Start a default simulation (5 cells, 1 year) when the servers start, so there is live data. */
  simulation_autostart: boolean
  /** Wall milliseconds between published simulator readings. */
  simulation_sample_ms: number
  simulation_seed: number
  /** A directory of the original's gui_simulation_data_*.csv.gz files to follow, or null. */
  data_follow_dir: string | null
  /** Cells of the stack that POST /data/ingest accepts per-cell arrays for. */
  stack_cells: number
  ingest_max_batch: number
  /** A source silent this long shows as stale on the dashboard. */
  source_stale_after_s: number
  /** A source silent this long is offline: its "no data" alert is raised. */
  source_offline_after_s: number
  /** mqtt:// or mqtts:// broker to subscribe to, or null (no MQTT ingest). */
  mqtt_url: string | null
  /** Topic pattern with one `<source>` level, e.g. mfc/<source>/readings. */
  mqtt_topic: string
  mqtt_username: string | null
  /** File holding the broker password (else MFC_MQTT_PASSWORD). */
  mqtt_password_file: string | null
  /** PEM CA bundle that signed an mqtts:// broker's certificate (else the system's). */
  mqtt_ca_file: string | null
  /** Client id for a persistent session (QoS 1 messages queued while serve is down); default mfc-<host>. */
  mqtt_client_id: string | null
}

export const DATA_SETTING_KEYS = [
  'data_retention_days', 'simulation_speed', 'simulation_autostart', 'simulation_sample_ms', 'simulation_seed', 'data_follow_dir', 'stack_cells', 'ingest_max_batch',
  'source_stale_after_s', 'source_offline_after_s', 'mqtt_url', 'mqtt_topic', 'mqtt_username', 'mqtt_password_file', 'mqtt_ca_file', 'mqtt_client_id',
] as const

export const DEFAULT_DATA_SETTINGS: DataSettings = {
  data_retention_days: 30,
  simulation_speed: 1,
  simulation_autostart: true,
  simulation_sample_ms: 1000,
  simulation_seed: 42,
  data_follow_dir: null,
  stack_cells: 5,
  ingest_max_batch: 10_000,
  source_stale_after_s: 30,
  source_offline_after_s: 120,
  mqtt_url: null,
  mqtt_topic: 'mfc/<source>/readings',
  mqtt_username: null,
  mqtt_password_file: null,
  mqtt_ca_file: null,
  mqtt_client_id: null,
}

type Rule = {kind: 'int' | 'number'; min: number; max: number} | {kind: 'bool'} | {kind: 'path'} | {kind: 'text'; pattern: RegExp; expected: string}
const RULES: Record<keyof DataSettings, Rule> = {
  data_retention_days: {kind: 'int', min: 0, max: 36_500},
  simulation_speed: {kind: 'number', min: 0.001, max: 100_000},
  simulation_autostart: {kind: 'bool'},
  simulation_sample_ms: {kind: 'int', min: 50, max: 60_000},
  simulation_seed: {kind: 'int', min: 0, max: 2 ** 32 - 1},
  data_follow_dir: {kind: 'path'},
  stack_cells: {kind: 'int', min: 1, max: 20},
  ingest_max_batch: {kind: 'int', min: 1, max: 100_000},
  source_stale_after_s: {kind: 'int', min: 1, max: 86_400},
  source_offline_after_s: {kind: 'int', min: 1, max: 604_800},
  mqtt_url: {kind: 'text', pattern: /^mqtts?:\/\/[^\s/]+(?::\d+)?\/?$/, expected: 'mqtt://host:port or mqtts://host:port, or null'},
  mqtt_topic: {kind: 'text', pattern: /^([^#+\s]+\/)*<source>(\/[^#+\s]+)*$/, expected: 'a topic with one <source> level and no wildcards, e.g. "mfc/<source>/readings"'},
  mqtt_username: {kind: 'text', pattern: /^\S{1,256}$/, expected: 'a user name or null'},
  mqtt_password_file: {kind: 'path'},
  mqtt_ca_file: {kind: 'path'},
  mqtt_client_id: {kind: 'text', pattern: /^[\w.-]{1,64}$/, expected: 'a client id (letters, digits, . _ -) or null'},
}

/** Reads the data keys from the resolved config's file; a bad value names the key and file. */
export function dataSettings(config: Pick<MfcConfig, 'file'>): DataSettings {
  const result: Record<string, unknown> = {...DEFAULT_DATA_SETTINGS}
  for (const key of DATA_SETTING_KEYS) {
    const value = config.file.raw[key]
    if (value === undefined) continue
    result[key] = check(key, value, RULES[key], config.file.path)
  }

  const settings = result as unknown as DataSettings
  if (settings.source_offline_after_s < settings.source_stale_after_s) {
    throw new ConfigError(`"source_offline_after_s" (${settings.source_offline_after_s}) is below "source_stale_after_s" (${settings.source_stale_after_s}) in ${config.file.path}.`, {
      code: 'MFC_CONFIG_VALUE', suggestions: [`Make source_offline_after_s at least source_stale_after_s in ${config.file.path}.`],
    })
  }

  return settings
}

function check(key: string, value: unknown, rule: Rule, file: string): unknown {
  const fail = (expected: string) => new ConfigError(`Invalid value ${JSON.stringify(value)} for "${key}" in ${file}: expected ${expected}.`, {
    code: 'MFC_CONFIG_VALUE', suggestions: [`Fix "${key}" in ${file}, or remove it to use the default (${JSON.stringify(DEFAULT_DATA_SETTINGS[key as keyof DataSettings])}).`],
  })
  switch (rule.kind) {
    case 'bool': {
      if (typeof value !== 'boolean') throw fail('true or false')
      return value
    }

    case 'text': {
      if (value === null && key !== 'mqtt_topic') return null
      if (typeof value !== 'string' || !rule.pattern.test(value)) throw fail(rule.expected)
      return value
    }

    case 'path': {
      if (value === null) return null
      if (typeof value !== 'string' || value.trim() === '') throw fail('a directory path or null')
      return value.trim()
    }

    default: {
      const ok = typeof value === 'number' && Number.isFinite(value) && (rule.kind === 'number' || Number.isInteger(value))
      if (!ok || (value as number) < rule.min || (value as number) > rule.max) throw fail(`a ${rule.kind === 'int' ? 'whole number' : 'number'} from ${rule.min} to ${rule.max}`)
      return value
    }
  }
}
