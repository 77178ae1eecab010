import {CONFIG_SCHEMA} from '../../lib/config-schema.js'
import type {MfcConfig, Settings} from '../../lib/config.js'

/** The monitoring keys of the config (rows of group `monitoring` in src/lib/config-schema.ts). */
export const DATA_SETTING_KEYS = [
  'data_retention_days', 'simulation_speed', 'simulation_autostart', 'simulation_sample_ms', 'simulation_seed', 'data_follow_dir', 'stack_cells', 'ingest_max_batch',
] as const satisfies readonly (keyof Settings)[]

/**
 * The settings the data services read. They are ordinary config keys: validated by the one
 * schema and resolved with the same precedence as the rest (defaults < file < env < flags).
 */
export type DataSettings = Pick<Settings, (typeof DATA_SETTING_KEYS)[number]>

export const DEFAULT_DATA_SETTINGS: DataSettings = Object.freeze(Object.fromEntries(DATA_SETTING_KEYS.map((key) => [key, CONFIG_SCHEMA[key].default]))) as unknown as DataSettings

/** The data keys of the resolved config (already validated by resolveConfig). */
export function dataSettings(config: Pick<MfcConfig, 'settings'>): DataSettings {
  return Object.fromEntries(DATA_SETTING_KEYS.map((key) => [key, config.settings[key]])) as unknown as DataSettings
}
