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
}

export const DATA_SETTING_KEYS = [
  'data_retention_days', 'simulation_speed', 'simulation_autostart', 'simulation_sample_ms', 'simulation_seed', 'data_follow_dir', 'stack_cells', 'ingest_max_batch',
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
}

type Rule = {kind: 'int' | 'number'; min: number; max: number} | {kind: 'bool'} | {kind: 'path'}
const RULES: Record<keyof DataSettings, Rule> = {
  data_retention_days: {kind: 'int', min: 0, max: 36_500},
  simulation_speed: {kind: 'number', min: 0.001, max: 100_000},
  simulation_autostart: {kind: 'bool'},
  simulation_sample_ms: {kind: 'int', min: 50, max: 60_000},
  simulation_seed: {kind: 'int', min: 0, max: 2 ** 32 - 1},
  data_follow_dir: {kind: 'path'},
  stack_cells: {kind: 'int', min: 1, max: 20},
  ingest_max_batch: {kind: 'int', min: 1, max: 100_000},
}

/** Reads the data keys from the resolved config's file; a bad value names the key and file. */
export function dataSettings(config: Pick<MfcConfig, 'file'>): DataSettings {
  const result: Record<string, unknown> = {...DEFAULT_DATA_SETTINGS}
  for (const key of DATA_SETTING_KEYS) {
    const value = config.file.raw[key]
    if (value === undefined) continue
    result[key] = check(key, value, RULES[key], config.file.path)
  }

  return result as unknown as DataSettings
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
