import {existsSync, readFileSync} from 'node:fs'
import {isIP} from 'node:net'
import {dirname} from 'node:path'

import {ConfigError, type MfcError, UsageError, errnoCode} from './errors.js'
import {type MfcPaths, lineageName, livePaths, resolvePaths} from './paths.js'

import {CONFIG_SCHEMA, type SchemaSettings, SETTING_SPECS, type SettingKey, type SettingSpec} from './config-schema.js'

/**
 * Every setting, typed from its row in src/lib/config-schema.ts (the one schema: add keys there,
 * not here). Names keep the snake_case of the guide's `ssl-config.json` everywhere.
 */
export type Settings = SchemaSettings
export type {SettingKey} from './config-schema.js'
export type SettingSource = 'default' | 'file' | 'env' | 'flag'

/** Values given on the command line, keyed like the file; undefined means "not given". */
export type SettingOverrides = {[K in SettingKey]?: Settings[K] | undefined}

export interface Secrets {
  apiToken?: string
  /** ACME External Account Binding for CAs that require it (MFC_ACME_EAB_KID, MFC_ACME_EAB_HMAC_KEY). */
  acmeEabKid?: string
  acmeEabHmacKey?: string
  /** MFC_MQTT_PASSWORD: the broker password when `mqtt_password_file` is not set. */
  mqttPassword?: string
  sessionSecret?: string
  csrfSecret?: string
  jwtSecret?: string
  /** PGPASSWORD: the database password when storage_password_file is not set. */
  storagePassword?: string
  /** MFC_STORAGE_KEY: the key sealing private keys when storage_key_file is not set. */
  storageKey?: string
}

/** The one resolved, frozen configuration of a process. */
export interface MfcConfig {
  readonly settings: Readonly<Settings>
  readonly sources: Readonly<Record<SettingKey, SettingSource>>
  readonly paths: MfcPaths
  /** Never logged, never printed in --json. */
  readonly secrets: Readonly<Secrets>
  readonly file: {readonly path: string; readonly exists: boolean; readonly raw: Readonly<Record<string, unknown>>}
  readonly warnings: readonly string[]
  readonly debug: boolean
  readonly isRoot: boolean
}

/** The schema's defaults; cert_file, key_file and domains (null there) are derived from domain in finish(). */
const DEFAULTS = Object.fromEntries(Object.entries(SETTING_SPECS).map(([key, spec]) => [key, spec.default])) as unknown as Settings

/** Keys other mfc services own in the same file (notifications, servers...): known, not warned. */
const EXTRA_KNOWN_KEYS = new Set<string>([
  '$schema',
])

export function registerConfigKeys(...keys: string[]): void {
  for (const key of keys) EXTRA_KNOWN_KEYS.add(key)
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv
  overrides?: SettingOverrides
  /** `--config FILE`: beats MFC_SSL_CONFIG. */
  configFile?: string
  isRoot?: boolean
  /**
   * A config error (unreadable or invalid file, bad environment value, missing explicit file)
   * becomes a warning and the defaults stand in for what was wrong: for `stop` and `status`,
   * which act on the pid file and must work while the config is broken.
   */
  lenient?: boolean
  /** An explicit config file (--config, MFC_SSL_CONFIG) may be missing: `ssl init` creates it. */
  mayCreateFile?: boolean
}

/**
 * Builds the frozen config: defaults < config file < environment < flags. An explicit config
 * file (--config or MFC_SSL_CONFIG) that does not exist is an error (a typo in a cron line must
 * not silently run on the defaults), unless `mayCreateFile`; see `lenient` for stop/status.
 */
export function resolveConfig(options: ResolveOptions = {}): MfcConfig {
  if (!options.lenient) return resolveStrict(options)
  try {
    return resolveStrict(options)
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error
    const warning = `${error.message.replace(/\.?$/, '.')} Carrying on with the defaults for this command.`
    // First without the file; then without the settings' environment variables too (the path
    // variables MFC_CONFIG_DIR/MFC_STATE_DIR are never invalid, and locate the pid file).
    const env = options.env ?? process.env
    const pathEnv = {MFC_CONFIG_DIR: env.MFC_CONFIG_DIR, MFC_STATE_DIR: env.MFC_STATE_DIR, XDG_CONFIG_HOME: env.XDG_CONFIG_HOME, XDG_STATE_HOME: env.XDG_STATE_HOME, HOME: env.HOME, MFC_DEBUG: env.MFC_DEBUG}
    let fallback: MfcConfig
    try {
      fallback = resolveStrict({...options, ignoreFile: true})
    } catch {
      fallback = resolveStrict({...options, env: pathEnv, ignoreFile: true})
    }

    // The file said which CA signed the served certificate; without it, mfc's own local CA (if
    // any) is the best guess, on top of the system roots the probes always trust.
    const settings = fallback.settings.ca_file === null && existsSync(fallback.paths.caCertFile)
      ? Object.freeze({...fallback.settings, ca_file: fallback.paths.caCertFile})
      : fallback.settings
    return Object.freeze({...fallback, settings, warnings: Object.freeze([warning, ...fallback.warnings])})
  }
}

function resolveStrict(options: ResolveOptions & {ignoreFile?: boolean}): MfcConfig {
  const env = options.env ?? process.env
  const isRoot = options.isRoot ?? (process.getuid?.() === 0)
  const explicit = options.configFile || env.MFC_SSL_CONFIG || undefined
  const paths = resolvePaths({...env, MFC_SSL_CONFIG: explicit}, isRoot)
  const warnings: string[] = []
  const values: Partial<Record<SettingKey, unknown>> = {}
  const sources = {} as Record<SettingKey, SettingSource>

  const raw = options.ignoreFile ? undefined : readConfigFile(paths.sslConfigFile)
  if (raw === undefined && explicit && !options.ignoreFile && !options.mayCreateFile) {
    const given = options.configFile ? '--config' : 'MFC_SSL_CONFIG'
    throw new ConfigError(`Config file ${paths.sslConfigFile} not found (given by ${given}).`, {
      code: 'MFC_CONFIG_NOT_FOUND',
      suggestions: [`Check the path given by ${given}, or create the file with \`mfc ssl init --config ${paths.sslConfigFile}\`.`],
    })
  }

  for (const [key, value] of Object.entries(raw ?? {})) {
    if (key in CONFIG_SCHEMA) {
      values[key as SettingKey] = parseValue(key as SettingKey, value, `${paths.sslConfigFile}`)
      sources[key as SettingKey] = 'file'
    } else if (!EXTRA_KNOWN_KEYS.has(key)) {
      warnings.push(`Unknown key "${key}" in ${paths.sslConfigFile} is ignored (the rest of the file is used).`)
    }
  }

  applyEnvironment(env, values, sources)
  if (/^(dev|development)$/i.test(env.MFC_SSL_MODE ?? '') && sources.use_letsencrypt !== 'env') {
    values.use_letsencrypt = false
    sources.use_letsencrypt = 'env'
  }

  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value === undefined) continue
    values[key as SettingKey] = parseValue(key as SettingKey, value, 'the command line')
    sources[key as SettingKey] = 'flag'
  }

  // Cluster mode: the live files serve reads are this node's copies of the shared store.
  if (values.storage) paths.storeDir = paths.clusterStoreDir
  const settings = finish(values, sources, paths)
  return Object.freeze({
    settings: Object.freeze(settings),
    sources: Object.freeze(sources),
    paths: Object.freeze(paths),
    secrets: Object.freeze(readSecrets(env)),
    file: Object.freeze({path: paths.sslConfigFile, exists: raw !== undefined, raw: Object.freeze(raw ?? {})}),
    warnings: Object.freeze(warnings),
    debug: isTruthy(env.MFC_DEBUG),
    isRoot,
  })
}

function readConfigFile(file: string): Record<string, unknown> | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined
    throw new ConfigError(`Cannot read config file ${file}: ${(error as Error).message}`, {
      code: 'MFC_CONFIG_PARSE',
      cause: error,
      suggestions: [`Check the permissions of ${file}, or point MFC_SSL_CONFIG at another file.`],
    })
  }

  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw new ConfigError(`Config file ${file} is not valid JSON: ${(error as Error).message}`, {
      code: 'MFC_CONFIG_PARSE',
      cause: error,
      suggestions: [`Fix the JSON in ${file} (e.g. \`node -e 'JSON.parse(require("fs").readFileSync(process.argv[1]))' ${file}\`), or move it away to start from defaults.`],
    })
  }

  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`Config file ${file} must hold a JSON object, not ${Array.isArray(parsed) ? 'an array' : typeof parsed}.`, {
      code: 'MFC_CONFIG_PARSE',
      suggestions: [`Write the settings as {"domain": "...", ...} in ${file}.`],
    })
  }

  return parsed as Record<string, unknown>
}

function applyEnvironment(env: NodeJS.ProcessEnv, values: Partial<Record<SettingKey, unknown>>, sources: Record<SettingKey, SettingSource>): void {
  for (const [key, spec] of Object.entries(SETTING_SPECS) as [SettingKey, SettingSpec][]) {
    const text = spec.env ? env[spec.env] : undefined
    if (text === undefined || text === '') continue
    values[key] = parseValue(key, text, `environment variable ${spec.env}`, true)
    sources[key] = 'env'
  }

  // MFC_SSL_DOMAIN may list several names; the first is the primary domain.
  if (sources.domain === 'env') {
    const names = splitDomains(String(values.domain))
    values.domain = names[0]
    values.domains = names
    sources.domains = 'env'
  }
}

/** A bad value in a file or the environment is a config error (3); on the command line a usage error (2). */
function invalid(key: string, where: string, expected: string, value: unknown): MfcError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value)
  if (where === 'the command line') {
    return new UsageError(`Invalid value ${shown} for "${key}" on the command line: expected ${expected}.`, {
      code: 'MFC_USAGE',
      suggestions: [`Fix the flag that sets ${key} (see \`--help\`).`],
    })
  }

  const onFile = !where.startsWith('environment')
  const spec = (SETTING_SPECS as Record<string, SettingSpec | undefined>)[key]
  const fallback = spec === undefined ? '' : `, or remove it to use the default (${spec.defaultNote ?? JSON.stringify(spec.default)})`
  return new ConfigError(`Invalid value ${shown} for "${key}" in ${where}: expected ${expected}.`, {
    code: 'MFC_CONFIG_VALUE',
    suggestions: [onFile ? `Fix "${key}" in ${where}${fallback}.` : `Fix the value of ${where.replace('environment variable ', '')}.`],
  })
}

function parseValue(key: SettingKey, value: unknown, where: string, fromText = false): unknown {
  const spec: SettingSpec | undefined = (SETTING_SPECS as Record<string, SettingSpec | undefined>)[key]
  if (spec === undefined) throw invalid(key, where, 'a known setting (see docs/configuration.md)', value)
  const {kind, min, max} = spec
  const fail = (expected: string) => invalid(key, where, expected, value)
  if (typeof kind === 'object') {
    const candidate = fromText && typeof kind.oneOf[0] === 'number' ? Number(value) : value
    if (!kind.oneOf.includes(candidate as never)) throw fail(`one of ${kind.oneOf.join(', ')}`)
    return candidate
  }

  switch (kind) {
    case 'string':
    case 'path': {
      if (typeof value !== 'string' || value.trim() === '') throw fail('a non-empty string')
      return value.trim()
    }

    case 'email': {
      if (typeof value !== 'string' || (value.trim() !== '' && !/^[^\s@]+@[^\s@]+$/.test(value.trim()))) throw fail('an email address (or "")')
      return value.trim()
    }

    case 'nullable-string': {
      if (value === null) return null
      if (typeof value !== 'string') throw fail('a string or null')
      return value.trim() === '' ? null : value.trim()
    }

    case 'bool': {
      if (typeof value === 'boolean') return value
      if (typeof value === 'string' && fromText) {
        if (/^(true|1|yes|on)$/i.test(value)) return true
        if (/^(false|0|no|off)$/i.test(value)) return false
      }

      throw fail(fromText ? 'true/false (also 1/0, yes/no, on/off)' : 'true or false')
    }

    case 'port':
    case 'int':
    case 'number': {
      const number = typeof value === 'string' && fromText && /^\s*-?\d+(\.\d+)?\s*$/.test(value) ? Number(value) : value
      const noun = kind === 'number' ? 'number' : 'whole number'
      const range = min !== undefined && max !== undefined ? `a ${noun} from ${min} to ${max}` : min === undefined ? `a ${noun}` : `a ${noun} >= ${min}`
      if (kind === 'port' && (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 65_535)) throw fail('a port number (0-65535)')
      if (typeof number !== 'number' || !Number.isFinite(number) || (kind !== 'number' && !Number.isInteger(number))) throw fail(range)
      if ((min !== undefined && number < min) || (max !== undefined && number > max)) throw fail(range)
      return number
    }

    case 'domains': {
      const list = typeof value === 'string' ? splitDomains(value) : value
      if (!Array.isArray(list) || list.length === 0 || list.some((d) => typeof d !== 'string' || d.trim() === '')) {
        throw fail('a non-empty list of domain names')
      }

      return list.map((d: string) => d.trim().toLowerCase())
    }

    case 'storage-url': {
      if (value === null || value === '') return null
      return parseStorageUrl(key, value, where)
    }

    case 'list': {
      const list = typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value
      if (!Array.isArray(list) || list.some((item) => typeof item !== 'string' || item.trim() === '')) throw fail('a list of strings')
      return list.map((item: string) => item.trim())
    }
  }
}

/** A postgres:// URL with host and database, and no password (that belongs in a 0600 file). */
function parseStorageUrl(key: SettingKey, value: unknown, where: string): string {
  let url: URL | undefined
  try {
    url = typeof value === 'string' ? new URL(value.trim()) : undefined
  } catch {
    url = undefined
  }

  if (url?.password) {
    throw new ConfigError(`"${key}" in ${where} contains a password; mfc keeps database passwords out of config files and logs.`, {
      code: 'MFC_CONFIG_VALUE',
      suggestions: ['Remove the password from the URL and put it in a 0600 file named by storage_password_file (or in PGPASSWORD).'],
    })
  }

  if (!url || !/^postgres(ql)?:$/.test(url.protocol) || url.hostname === '' || url.pathname.length < 2) {
    const shown = typeof value === 'string' ? JSON.stringify(value.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@')) : String(value)
    throw new ConfigError(`Invalid value ${shown} for "${key}" in ${where}: expected postgres://user@host:port/database.`, {
      code: 'MFC_CONFIG_VALUE',
      suggestions: [`Fix "${key}" (for example "postgres://mfc@db.example:5432/mfc"), or remove it to keep the embedded storage.`],
    })
  }

  return url.toString()
}

function splitDomains(text: string): string[] {
  return text.split(/[\s,]+/).map((d) => d.trim().toLowerCase()).filter(Boolean)
}

/**
 * The environment a child process of mfc (a renewal hook) starts from: a copy of mfc's own, as
 * certbot's hooks get. Here so that services never read `process.env` themselves.
 */
export function childEnvironment(): NodeJS.ProcessEnv {
  return {...process.env}
}

const DOMAIN_RE = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/

/** A DNS name (optionally one leading wildcard label) or an IP address. */
export function isValidName(name: string): boolean {
  return isIP(name) !== 0 || (name.length <= 253 && DOMAIN_RE.test(name))
}

function finish(values: Partial<Record<SettingKey, unknown>>, sources: Record<SettingKey, SettingSource>, paths: MfcPaths): Settings {
  for (const key of Object.keys(CONFIG_SCHEMA) as SettingKey[]) sources[key] ??= 'default'
  const merged = {...DEFAULTS, ...values} as Settings
  // The more specific source wins: a Python file has only `domain`; `--domain` sets `domains`.
  const rank = (s: SettingSource) => ['default', 'file', 'env', 'flag'].indexOf(s)
  const domains = values.domains !== undefined && rank(sources.domains) >= rank(sources.domain)
    ? values.domains as string[]
    : [merged.domain.toLowerCase()]
  for (const name of domains) {
    if (!isValidName(name)) throw invalid('domain', sourceLabel(sources.domains === 'default' ? sources.domain : sources.domains, paths), 'a DNS name or IP address', name)
  }

  merged.domains = [...new Set(domains)]
  merged.domain = merged.domains[0]
  const live = livePaths(paths, lineageName(merged.domain))
  merged.cert_file ??= live.certFile
  merged.key_file ??= live.keyFile
  return merged
}

function sourceLabel(source: SettingSource, paths: MfcPaths): string {
  if (source === 'file') return paths.sslConfigFile
  if (source === 'env') return 'environment variable MFC_SSL_DOMAIN'
  return 'the command line'
}

function readSecrets(env: NodeJS.ProcessEnv): Secrets {
  return {
    apiToken: env.MFC_API_TOKEN || undefined,
    acmeEabKid: env.MFC_ACME_EAB_KID || undefined,
    acmeEabHmacKey: env.MFC_ACME_EAB_HMAC_KEY || undefined,
    mqttPassword: env.MFC_MQTT_PASSWORD || undefined,
    sessionSecret: env.MFC_SESSION_SECRET || undefined,
    csrfSecret: env.MFC_CSRF_SECRET || undefined,
    jwtSecret: env.MFC_JWT_SECRET || undefined,
    storagePassword: env.PGPASSWORD || undefined,
    storageKey: env.MFC_STORAGE_KEY || undefined,
  }
}

function isTruthy(text: string | undefined): boolean {
  return text !== undefined && /^(1|true|yes|on|\*|mfc.*)$/i.test(text)
}

/** Settings in file order: the Python system's keys first, as it saved them. */
function toFileObject(settings: Partial<Settings>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {}
  for (const key of ['cert_file', 'key_file', 'ca_file', 'use_letsencrypt', 'domain', 'email', 'staging'] as const) ordered[key] = settings[key]
  for (const key of Object.keys(CONFIG_SCHEMA) as SettingKey[]) if (!(key in ordered)) ordered[key] = settings[key]
  return ordered
}


/**
 * Writes `changes` into the config file atomically, keeping every other key (including keys
 * this version of mfc does not know). The caller holds the mfc lock. Returns the file path.
 */
export async function saveSettings(config: MfcConfig, changes: Partial<Settings>): Promise<string> {
  const {writeFileAtomic, ensureDir} = await import('./fs-atomic.js')
  const file = config.paths.sslConfigFile
  let current: Record<string, unknown> | undefined
  try {
    current = readConfigFile(file)
  } catch {
    // Unparseable: replaced whole. resolveConfig refuses such a file, so callers only get here
    // after the user chose to overwrite it.
  }

  // Only what the file already says plus `changes` is written: values that came from the
  // environment or flags of this one run are not made permanent behind the user's back, and
  // defaults are never copied in (a later release's better default must reach this install).
  // A change that only says "nothing" (null or "") for a key the file does not have is dropped.
  const base = current ?? {}
  const given = Object.fromEntries(Object.entries(changes).filter(([key, value]) => key in base || (value !== null && value !== '' && value !== undefined)))
  const next = toFileObject({...base, ...given} as Partial<Settings>)
  for (const key of Object.keys(next)) if (next[key] === undefined) delete next[key]
  // `domains` is only worth writing when it says more than `domain`.
  if (!('domains' in base) && Array.isArray(next.domains) && next.domains.length === 1 && next.domains[0] === next.domain) delete next.domains
  for (const [key, value] of Object.entries(current ?? {})) if (!(key in next)) next[key] = value
  try {
    await ensureDir(dirname(file), 0o700)
    await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n', 0o644)
  } catch (error) {
    throw new ConfigError(`Cannot write the config file ${file}: ${(error as Error).message}`, {
      code: 'MFC_CONFIG_WRITE',
      cause: error,
      suggestions: [`Check the permissions of ${dirname(file)}, or set MFC_CONFIG_DIR to a directory you own.`],
    })
  }

  return file
}
