import {CONFIG_SCHEMA} from '../../lib/config-schema.js'
import type {MfcConfig, Settings} from '../../lib/config.js'
import {ConfigError} from '../../lib/errors.js'

/** The monitoring keys of the config (rows of group `monitoring` in src/lib/config-schema.ts). */
export const DATA_SETTING_KEYS = [
  'data_retention_days', 'simulation_speed', 'simulation_autostart', 'simulation_sample_ms', 'simulation_seed', 'data_follow_dir', 'stack_cells', 'ingest_max_batch', 'ingest_fast_path',
  'source_stale_after_s', 'source_offline_after_s', 'mqtt_url', 'mqtt_topic', 'mqtt_username', 'mqtt_password_file', 'mqtt_ca_file', 'mqtt_cert_file', 'mqtt_key_file', 'mqtt_client_id',
] as const satisfies readonly (keyof Settings)[]

/**
 * The settings the data services read. They are ordinary config keys: validated by the one
 * schema and resolved with the same precedence as the rest (defaults < file < env < flags).
 */
export type DataSettings = Pick<Settings, (typeof DATA_SETTING_KEYS)[number]>

export const DEFAULT_DATA_SETTINGS: DataSettings = Object.freeze(Object.fromEntries(DATA_SETTING_KEYS.map((key) => [key, CONFIG_SCHEMA[key].default]))) as unknown as DataSettings

/** The data keys of the resolved config (already validated by resolveConfig). */
export function dataSettings(config: Pick<MfcConfig, 'settings'> & Partial<Pick<MfcConfig, 'file'>>): DataSettings {
  const settings = Object.fromEntries(DATA_SETTING_KEYS.map((key) => [key, config.settings[key]])) as unknown as DataSettings
  const where = config.file?.path ?? 'the configuration'
  const fail = (key: string, expected: string) => new ConfigError(`Invalid value ${JSON.stringify(settings[key as keyof DataSettings])} for "${key}" in ${where}: expected ${expected}.`, {
    code: 'MFC_CONFIG_VALUE', suggestions: [`Fix "${key}" in ${where}, or remove it to use the default.`],
  })
  // Shapes the schema's kinds cannot say: checked here, once, with the key named.
  if (settings.mqtt_url !== null && !/^mqtts?:\/\/[^\s/]+(?::\d+)?\/?$/.test(settings.mqtt_url)) throw fail('mqtt_url', 'mqtt://host:port or mqtts://host:port, or null')
  if (!/^([^#+\s]+\/)*<source>(\/[^#+\s]+)*$/.test(settings.mqtt_topic)) throw fail('mqtt_topic', 'a topic with one <source> level and no wildcards, e.g. "mfc/<source>/readings"')
  if (settings.mqtt_client_id !== null && !/^[\w.-]{1,64}$/.test(settings.mqtt_client_id)) throw fail('mqtt_client_id', 'a client id (letters, digits, . _ -) or null')
  if (settings.source_offline_after_s < settings.source_stale_after_s) throw fail('source_offline_after_s', `at least source_stale_after_s (${settings.source_stale_after_s})`)
  return settings
}
