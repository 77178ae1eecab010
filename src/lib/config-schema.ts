/**
 * THE config schema of mfc: one row per `ssl-config.json` key. Everything else derives from it:
 * the `Settings` type (src/lib/config.ts), the validation of file, environment and flag values
 * (src/lib/config.ts `parseValue`), the docs table (docs/configuration.md) and the JSON Schema
 * for editors (ssl-config.schema.json). There is no second schema language.
 *
 * How to add a key:
 *   1. Add one row to CONFIG_SCHEMA below, in the group it belongs to:
 *        my_key: {group: 'servers', kind: 'int', default: 5, min: 1, max: 60, env: 'MFC_MY_KEY',
 *                 description: 'What it does, in one line (units in the name: _ms, _bytes...)'},
 *      `kind` is one of KINDS; `env` only if an environment variable may set it (MFC_ + the key
 *      in capitals, by convention); `min`/`max` for numbers; `defaultNote` when the default is
 *      derived at run time (then `default` is null).
 *   2. Read it as `config.settings.my_key` (typed from the row); a command flag sets it by
 *      passing `overrides: {my_key: flags['my-key']}` to resolveConfig. Precedence is always
 *      defaults < file < environment < flags.
 *   3. Run `npm run generate` and commit docs/configuration.md and ssl-config.schema.json
 *      (`npm run check:generated` and test/unit/lib/config-schema.test.ts fail until you do).
 * Names are snake_case like the Python guide's keys, so a setting has one name to grep for.
 */

/** The value kinds a key can have; `oneOf` is a closed list of literal values. */
export type Kind =
  | 'string' // a non-empty string (trimmed)
  | 'path' // a non-empty file or directory path
  | 'email' // an email address or ""
  | 'nullable-string' // a string, or null ("" reads as null)
  | 'bool' // true/false (from text also 1/0, yes/no, on/off)
  | 'port' // a whole number 0-65535
  | 'int' // a whole number within min/max
  | 'number' // a finite number within min/max
  | 'domains' // a non-empty list of DNS names (a string is split on commas/spaces)
  | 'list' // a list of strings (a string is split on commas/spaces)
  | 'storage-url' // postgres://user@host[:port]/database without a password, or null
  | {readonly oneOf: readonly (number | string)[]}

/** Where a key is documented (the sections of docs/configuration.md, in this order). */
export const GROUPS = {
  certificate: 'Certificate and key',
  acme: 'ACME / Let\'s Encrypt and renewal',
  tls: 'TLS and security headers (the Python guide\'s keys)',
  servers: 'Servers (`mfc serve`)',
  limits: 'Limits and timeouts',
  monitoring: 'Monitoring data and the simulator',
  storage: 'Cluster storage (PostgreSQL; see docs/cluster.md)',
} as const

/** One key of ssl-config.json: its kind, default, environment variable and meaning. */
export interface SettingSpec {
  readonly group: keyof typeof GROUPS
  readonly kind: Kind
  /** The value when nothing sets the key; null for derived defaults (see defaultNote). */
  readonly default: unknown
  readonly description: string
  /** The environment variable that sets it (beats the file, loses to flags). */
  readonly env?: string
  readonly min?: number
  readonly max?: number
  /** Shown instead of `default` when the default is computed at run time. */
  readonly defaultNote?: string
}

export const CONFIG_SCHEMA = {
  // Certificate and key
  domain: {group: 'certificate', kind: 'string', default: 'localhost', env: 'MFC_SSL_DOMAIN', description: 'Primary name on the certificate (the variable may list several, comma-separated)'},
  domains: {group: 'certificate', kind: 'domains', default: null, defaultNote: '[domain]', description: 'Every name on the certificate; the first is `domain`'},
  cert_file: {group: 'certificate', kind: 'path', default: null, defaultNote: '`<state>/certs/<domain>/live/fullchain.pem`', env: 'MFC_SSL_CERT_FILE', description: 'Certificate chain the servers present'},
  key_file: {group: 'certificate', kind: 'path', default: null, defaultNote: '`<state>/certs/<domain>/live/privkey.pem`', env: 'MFC_SSL_KEY_FILE', description: 'Private key of cert_file (0600)'},
  ca_file: {group: 'certificate', kind: 'nullable-string', default: null, description: 'CA certificate clients should trust (the local CA), or null'},
  key_type: {group: 'certificate', kind: {oneOf: ['ecdsa', 'rsa']}, default: 'ecdsa', description: 'Key algorithm of new certificates'},
  rsa_key_size: {group: 'certificate', kind: {oneOf: [2048, 3072, 4096]}, default: 2048, description: 'RSA modulus size when key_type is rsa'},
  elliptic_curve: {group: 'certificate', kind: {oneOf: ['P-256', 'P-384']}, default: 'P-256', description: 'Curve when key_type is ecdsa'},
  // ACME / Let's Encrypt and renewal
  email: {group: 'acme', kind: 'email', default: '', env: 'MFC_SSL_EMAIL', description: 'ACME account contact (optional)'},
  use_letsencrypt: {group: 'acme', kind: 'bool', default: false, env: 'MFC_SSL_USE_LETSENCRYPT', description: '`ssl init` orders from ACME without `--letsencrypt`'},
  staging: {group: 'acme', kind: 'bool', default: false, env: 'MFC_SSL_STAGING', description: 'Use the staging directory (untrusted certificates, high limits)'},
  acme_directory: {group: 'acme', kind: 'nullable-string', default: null, env: 'MFC_ACME_DIRECTORY', description: 'Any RFC 8555 directory URL; overrides use_letsencrypt/staging\'s Let\'s Encrypt URLs'},
  acme_staging_directory: {group: 'acme', kind: 'nullable-string', default: null, env: 'MFC_ACME_STAGING_DIRECTORY', description: 'The test directory used by `--staging` and `--dry-run` instead of Let\'s Encrypt\'s staging URL'},
  http_port: {group: 'acme', kind: 'port', default: 80, env: 'MFC_HTTP_PORT', description: 'Standalone HTTP-01 listener port; `serve` answers HTTP here'},
  webroot: {group: 'acme', kind: 'nullable-string', default: null, description: 'Write HTTP-01 challenge files there instead of listening'},
  auto_renew: {group: 'acme', kind: 'bool', default: true, description: 'Renew due certificates automatically'},
  renewal_days_before: {group: 'acme', kind: 'int', default: 30, min: 0, description: 'Renew when fewer days than this are left'},
  pre_hook: {group: 'acme', kind: 'nullable-string', default: null, description: 'Shell command run before renewing (as certbot\'s --pre-hook)'},
  deploy_hook: {group: 'acme', kind: 'nullable-string', default: null, description: 'Shell command run after each renewed certificate (as certbot\'s --deploy-hook)'},
  post_hook: {group: 'acme', kind: 'nullable-string', default: null, description: 'Shell command run after renewing (as certbot\'s --post-hook)'},
  // TLS and security headers
  ssl_version: {group: 'tls', kind: 'string', default: 'TLSv1_2', description: 'The Python guide\'s minimum TLS version (read, kept; mfc serves TLS 1.2+)'},
  ciphers: {group: 'tls', kind: 'nullable-string', default: null, description: 'The Python guide\'s cipher string (read, kept)'},
  verify_mode: {group: 'tls', kind: 'string', default: 'CERT_NONE', description: 'The Python guide\'s client-certificate mode (read, kept)'},
  enable_hsts: {group: 'tls', kind: 'bool', default: true, description: 'Send Strict-Transport-Security'},
  hsts_max_age: {group: 'tls', kind: 'int', default: 31_536_000, min: 0, description: 'HSTS max-age in seconds'},
  enable_csp: {group: 'tls', kind: 'bool', default: true, description: 'Send Content-Security-Policy on the dashboard'},
  // Servers
  host: {group: 'servers', kind: 'string', default: '0.0.0.0', env: 'MFC_HOST', description: 'Address the servers listen on'},
  https_port_api: {group: 'servers', kind: 'port', default: 8443, env: 'MFC_HTTPS_API_PORT', description: 'HTTPS API port'},
  https_port_frontend: {group: 'servers', kind: 'port', default: 8444, env: 'MFC_HTTPS_FRONTEND_PORT', description: 'Dashboard port'},
  wss_port_streaming: {group: 'servers', kind: 'port', default: 8445, env: 'MFC_WSS_STREAMING_PORT', description: 'WSS streamer port'},
  enable_http_port: {group: 'servers', kind: 'bool', default: true, env: 'MFC_HTTP_PORT_ENABLED', description: '`serve` answers HTTP on http_port (ACME challenges + redirect to HTTPS)'},
  trusted_proxies: {group: 'servers', kind: 'list', default: [], env: 'MFC_TRUSTED_PROXIES', description: 'Proxies (IPs or CIDRs) whose X-Forwarded-For is believed; nobody else\'s is'},
  dashboard_origins: {group: 'servers', kind: 'list', default: [], env: 'MFC_DASHBOARD_ORIGINS', description: 'Browser origins allowed to call the API and open the streamer, besides the dashboard\'s own'},
  api_token_file: {group: 'servers', kind: 'nullable-string', default: null, defaultNote: '`<state>/api-token`', env: 'MFC_API_TOKEN_FILE', description: 'Where the generated API token lives'},
  security_header_block: {group: 'servers', kind: 'bool', default: true, env: 'MFC_SECURITY_HEADER_BLOCK', description: 'Write the pre-serialized security-header block; false sets each header per response (same bytes, slower; an escape hatch)'},
  health_fast_path: {group: 'servers', kind: 'bool', default: true, env: 'MFC_HEALTH_FAST_PATH', description: 'Answer GET/HEAD /health before fastify routing (same gate, headers and body); false routes it through fastify (same bytes, slower; an escape hatch)'},
  // Limits and timeouts
  rate_limit_per_minute: {group: 'limits', kind: 'int', default: 60, min: 0, env: 'MFC_RATE_LIMIT_PER_MINUTE', description: 'Requests per minute per client IP, all three servers together; 0 turns the limit off'},
  auth_failures_per_minute: {group: 'limits', kind: 'int', default: 10, min: 1, description: 'Failed authentication attempts per minute per client IP before it gets 429s'},
  session_rate_limit_per_minute: {group: 'limits', kind: 'int', default: 600, min: 0, env: 'MFC_SESSION_RATE_LIMIT_PER_MINUTE', description: 'Requests per minute per dashboard session (cookie) instead of the per-IP budget; 0 turns it off'},
  body_limit_bytes: {group: 'limits', kind: 'int', default: 1_048_576, min: 1024, description: 'Largest request body'},
  max_connections: {group: 'limits', kind: 'int', default: 1024, min: 1, description: 'Open connections per server'},
  headers_timeout_ms: {group: 'limits', kind: 'int', default: 10_000, min: 100, description: 'Time a client has to send the request headers'},
  request_timeout_ms: {group: 'limits', kind: 'int', default: 30_000, min: 100, description: 'Time a client has to send the whole request'},
  ws_max_message_bytes: {group: 'limits', kind: 'int', default: 1_048_576, min: 128, description: 'Largest WebSocket message'},
  ws_send_buffer_bytes: {group: 'limits', kind: 'int', default: 1_048_576, min: 1024, description: 'A WebSocket client whose unsent data exceeds this is dropped (a slow consumer)'},
  shutdown_timeout_ms: {group: 'limits', kind: 'int', default: 10_000, min: 0, description: 'How long shutdown waits for in-flight requests before closing connections'},
  session_ttl_seconds: {group: 'limits', kind: 'int', default: 3600, min: 1, description: 'A dashboard login session ends this long after login; its WebSockets are closed then'},
  ws_ping_interval_ms: {group: 'limits', kind: 'int', default: 30_000, min: 10, description: 'The streamer\'s ping period: a client that misses a pong is dropped, sessions are re-checked'},
  ws_messages_per_minute: {group: 'limits', kind: 'int', default: 120, min: 0, description: 'Messages a WebSocket client may send per minute (a token bucket, burst = the same number); 0 turns it off'},
  tls_ticket_rotation_seconds: {group: 'limits', kind: 'int', default: 43_200, min: 1, description: 'TLS session-ticket keys are replaced this often; the previous key still resumes sessions'},
  // Monitoring data and the simulator
  data_retention_days: {group: 'monitoring', kind: 'int', default: 30, min: 0, max: 36_500, env: 'MFC_DATA_RETENTION_DAYS', description: 'The original\'s "Data Retention (days)"; 0 keeps everything; pruned hourly'},
  simulation_speed: {group: 'monitoring', kind: 'number', default: 1, min: 0.001, max: 100_000, env: 'MFC_SIMULATION_SPEED', description: 'Simulated hours per wall-clock second'},
  simulation_autostart: {group: 'monitoring', kind: 'bool', default: true, env: 'MFC_SIMULATION_AUTOSTART', description: 'Start the default simulation (5 cells, 1 year) with the servers, so there is live data'},
  simulation_sample_ms: {group: 'monitoring', kind: 'int', default: 1000, min: 50, max: 60_000, env: 'MFC_SIMULATION_SAMPLE_MS', description: 'Wall time between stored simulator readings'},
  simulation_seed: {group: 'monitoring', kind: 'int', default: 42, min: 0, max: 2 ** 32 - 1, env: 'MFC_SIMULATION_SEED', description: 'Seed of the simulator\'s exploration and sensor noise'},
  data_follow_dir: {group: 'monitoring', kind: 'nullable-string', default: null, env: 'MFC_DATA_FOLLOW_DIR', description: 'Directory of the original\'s `gui_simulation_data_*.csv.gz` files (or one level down) to follow, or null'},
  stack_cells: {group: 'monitoring', kind: 'int', default: 5, min: 1, max: 20, env: 'MFC_STACK_CELLS', description: 'Cells the per-cell arrays of `POST /data/ingest` must have'},
  ingest_max_batch: {group: 'monitoring', kind: 'int', default: 10_000, min: 1, max: 100_000, env: 'MFC_INGEST_MAX_BATCH', description: 'Readings per ingest request (HTTP, or one MQTT message)'},
  ingest_fast_path: {group: 'monitoring', kind: 'bool', default: true, env: 'MFC_INGEST_FAST_PATH', description: 'Answer small token-authenticated `POST /data/ingest` requests before fastify routing (same gate, parser, headers and body); false routes every request through fastify (same bytes, slower; an escape hatch)'},
  // Cluster storage
  storage: {group: 'storage', kind: 'storage-url', default: null, env: 'MFC_STORAGE_URL', description: 'Cluster mode: `postgres://user@host:port/db` of the shared PostgreSQL; null keeps the embedded default (files + SQLite); a password in the URL is refused'},
  storage_password_file: {group: 'storage', kind: 'nullable-string', default: null, env: 'MFC_STORAGE_PASSWORD_FILE', description: 'File holding the database password (else PGPASSWORD)'},
  storage_ca_file: {group: 'storage', kind: 'nullable-string', default: null, env: 'MFC_STORAGE_CA_FILE', description: 'CA certificate (PEM) of the database server: TLS with full verification'},
  storage_key_file: {group: 'storage', kind: 'nullable-string', default: null, env: 'MFC_STORAGE_KEY_FILE', description: 'File holding the 32-byte key that seals private keys in the database (else MFC_STORAGE_KEY)'},
  node_name: {group: 'storage', kind: 'nullable-string', default: null, defaultNote: 'the host name and the API port (`host:8443`)', env: 'MFC_NODE_NAME', description: 'This node\'s name in `mfc status --cluster` and in the lock holder'},
  cluster_heartbeat_seconds: {group: 'storage', kind: 'int', default: 5, min: 1, max: 3600, env: 'MFC_CLUSTER_HEARTBEAT_SECONDS', description: 'How often each serve node writes its heartbeat row (and checks that the database answers)'},
  cluster_lost_heartbeats: {group: 'storage', kind: 'int', default: 3, min: 1, max: 1000, description: 'Heartbeats a node may miss before `mfc status --cluster` shows it as lost'},
  cluster_cert_check_seconds: {group: 'storage', kind: 'int', default: 60, min: 1, max: 86_400, env: 'MFC_CLUSTER_CERT_CHECK_SECONDS', description: 'Backstop of the NOTIFY-driven reload: each node re-reads the live certificate this often'},
  source_stale_after_s: {group: 'monitoring', kind: 'int', default: 30, min: 1, max: 86_400, env: 'MFC_SOURCE_STALE_AFTER_S', description: 'Silence after which a source shows as stale on the dashboard'},
  source_offline_after_s: {group: 'monitoring', kind: 'int', default: 120, min: 1, max: 604_800, env: 'MFC_SOURCE_OFFLINE_AFTER_S', description: 'Silence after which a source is offline and its "no data" alert is raised (>= source_stale_after_s)'},
  mqtt_url: {group: 'monitoring', kind: 'nullable-string', default: null, env: 'MFC_MQTT_URL', description: 'MQTT broker to subscribe to (`mqtt://host:1883` or `mqtts://host:8883`), or null'},
  mqtt_topic: {group: 'monitoring', kind: 'string', default: 'mfc/<source>/readings', env: 'MFC_MQTT_TOPIC', description: 'Topic pattern with one `<source>` level (QoS 1)'},
  mqtt_username: {group: 'monitoring', kind: 'nullable-string', default: null, env: 'MFC_MQTT_USERNAME', description: 'Broker user name'},
  mqtt_password_file: {group: 'monitoring', kind: 'nullable-string', default: null, description: 'File holding the broker password (else the environment variable MFC_MQTT_PASSWORD)'},
  mqtt_ca_file: {group: 'monitoring', kind: 'nullable-string', default: null, description: 'CA bundle (PEM) that signed an `mqtts://` broker\'s certificate, on top of the system roots'},
  mqtt_cert_file: {group: 'monitoring', kind: 'nullable-string', default: null, description: 'Client certificate (PEM) for a broker that requires one (`require_certificate true`); with `mqtt_key_file`'},
  mqtt_key_file: {group: 'monitoring', kind: 'nullable-string', default: null, description: 'Private key (PEM, mode 0600) of `mqtt_cert_file`'},
  mqtt_client_id: {group: 'monitoring', kind: 'nullable-string', default: null, defaultNote: '`mfc-<host name>`', description: 'Client id of the persistent session (the broker keeps QoS 1 messages while serve is down)'},
} as const satisfies Record<string, SettingSpec>

export type SettingKey = keyof typeof CONFIG_SCHEMA

type ValueOf<K> =
  K extends 'bool' ? boolean
    : K extends 'port' | 'int' | 'number' ? number
      : K extends 'domains' | 'list' ? string[]
        : K extends 'nullable-string' | 'storage-url' ? string | null
          : K extends {readonly oneOf: readonly (infer T)[]} ? T
            : string

/** Every setting with the type its row's kind gives it. */
export type SchemaSettings = {-readonly [K in SettingKey]: ValueOf<(typeof CONFIG_SCHEMA)[K]['kind']>}

/** The rows, typed loosely for code that walks them. */
export const SETTING_SPECS: Readonly<Record<SettingKey, SettingSpec>> = CONFIG_SCHEMA

/**
 * Environment variables that are not settings (secrets, locations, switches). Documented with
 * the settings; secrets are never written to the config, logged or printed in --json.
 */
export const OTHER_ENVIRONMENT: Readonly<Record<string, string>> = {
  MFC_SSL_CONFIG: 'the config file (`--config` beats it)',
  MFC_CONFIG_DIR: 'the config directory (`/etc/mfc` for root, `$XDG_CONFIG_HOME/mfc` otherwise)',
  MFC_STATE_DIR: 'the state directory (`/var/lib/mfc` for root, `$XDG_STATE_HOME/mfc` otherwise)',
  MFC_API_TOKEN: 'secret: the API token (instead of the generated one)',
  MFC_SESSION_SECRET: 'secret: signs dashboard sessions',
  MFC_CSRF_SECRET: 'secret: signs CSRF tokens',
  MFC_JWT_SECRET: 'secret: signs JWTs',
  MFC_ACME_EAB_KID: 'ACME External Account Binding key id (as `--eab-kid`)',
  MFC_ACME_EAB_HMAC_KEY: 'secret: ACME External Account Binding HMAC key (as `--eab-hmac-key`)',
  PGPASSWORD: 'secret: the cluster database password when storage_password_file is not set',
  MFC_STORAGE_KEY: 'secret: the key sealing private keys in the cluster database when storage_key_file is not set',
  MFC_MQTT_PASSWORD: 'secret: the MQTT broker password when `mqtt_password_file` is not set',
  MFC_SSL_MODE: '`development`: the original\'s dev mode, no Let\'s Encrypt',
  MFC_DEBUG: '`1`: stack traces on errors (same as `--debug`)',
}

const KIND_TEXT: Record<Exclude<Kind, {oneOf: unknown}>, string> = {
  string: 'string', path: 'path', email: 'email or ""', 'nullable-string': 'string or null', bool: 'boolean',
  port: 'port (0-65535)', int: 'integer', number: 'number', domains: 'list of DNS names', list: 'list of strings',
  'storage-url': 'postgres:// URL or null',
}

/** A kind in words, with its bounds (for the docs table and error messages). */
export function describeKind(spec: SettingSpec): string {
  if (typeof spec.kind === 'object') return `one of ${spec.kind.oneOf.join(', ')}`
  const base = KIND_TEXT[spec.kind]
  if (spec.min !== undefined && spec.max !== undefined) return `${base} ${spec.min}-${spec.max}`
  if (spec.min !== undefined) return `${base} >= ${spec.min}`
  return base
}

/** The JSON Schema (draft 2020-12) of ssl-config.json, for editors (`"$schema"` in the file). */
export function configJsonSchema(): Record<string, unknown> {
  const properties: Record<string, unknown> = {$schema: {type: 'string', description: 'The JSON Schema of this file (ignored by mfc)'}}
  for (const [key, spec] of Object.entries(SETTING_SPECS)) {
    const env = spec.env ? ` Environment: ${spec.env}.` : ''
    const shown = spec.defaultNote ? ` Default: ${spec.defaultNote.replaceAll('`', '')}.` : ''
    properties[key] = {
      description: `${spec.description.replaceAll('`', '')}.${shown}${env}`,
      ...kindSchema(spec),
      ...(spec.default === null && spec.defaultNote ? {} : {default: spec.default}),
    }
  }

  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'mfc ssl-config.json',
    description: 'Settings of mfc (generated from src/lib/config-schema.ts by npm run generate; do not edit). Unknown keys are warned about, not rejected.',
    type: 'object',
    properties,
    additionalProperties: true,
  }
}

function kindSchema(spec: SettingSpec): Record<string, unknown> {
  const bounds = {...(spec.min === undefined ? {} : {minimum: spec.min}), ...(spec.max === undefined ? {} : {maximum: spec.max})}
  const nonEmpty = {type: 'string', pattern: '\\S'}
  if (typeof spec.kind === 'object') return {enum: [...spec.kind.oneOf]}
  switch (spec.kind) {
    case 'string':
    case 'path': return nonEmpty
    case 'email': return {type: 'string', pattern: '^\\s*([^\\s@]+@[^\\s@]+)?\\s*$'}
    case 'nullable-string': return {type: ['string', 'null']}
    case 'bool': return {type: 'boolean'}
    case 'port': return {type: 'integer', minimum: 0, maximum: 65_535}
    case 'int': return {type: 'integer', ...bounds}
    case 'number': return {type: 'number', ...bounds}
    case 'domains': return {oneOf: [{...nonEmpty}, {type: 'array', minItems: 1, items: nonEmpty}]}
    case 'list': return {oneOf: [{type: 'string'}, {type: 'array', items: nonEmpty}]}
    // Host and database required; user[@] optional; no password (no ':' before '@').
    case 'storage-url': return {oneOf: [{type: 'null'}, {type: 'string', pattern: '^\\s*(postgres|postgresql)://([^:@/\\s]+@)?[^:@/\\s]+(:\\d+)?/[^/\\s]+\\s*$'}, {const: ''}]}
  }
}
