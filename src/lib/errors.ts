/**
 * The one error family of mfc. Every error a user can see is an MfcError with a stable `code`,
 * suggestions naming the next step, and the exit code of that code's row in ERROR_CODES: the
 * registry is the one source, so one cause ends with one exit code whichever class, command,
 * `--json` or `--daemon` raised it. `oclif.exit` mirrors the exit code because oclif 4 reads it
 * (and only it) when the command fails under `--json`.
 */

/** Exit codes of every command except `cert monitor` and `status` (which use NAGIOS). */
export const EXIT = {
  OK: 0,
  FAILURE: 1,
  USAGE: 2,
  CONFIG: 3,
  STORE: 4,
  ISSUER: 5,
  NETWORK: 6,
  LOCK: 7,
} as const

/** What each exit code means, for the generated tables (README, docs/errors.md). */
export const EXIT_MEANING: Record<ExitCode, string> = {
  0: 'success',
  1: 'the operation failed (or an unexpected error: a bug)',
  2: 'usage error: unknown flag, bad flag value, flags that do not fit together',
  3: 'configuration invalid or missing',
  4: 'certificate store, certificate files, history or backups: unreadable, mismatched, expired, or already there',
  5: 'the certificate authority (or the challenge it needs: DNS update, auth hook) refused or failed',
  6: 'network: a port is taken, a host cannot be reached',
  7: 'lock or daemon conflict: another mfc holds the lock, or serve is (not) running',
}

/**
 * Exit codes of `cert monitor` and `status`: the Nagios plugin convention (the original's too).
 * Any error of those two commands, whatever its code, ends with UNKNOWN: a monitoring system
 * reads 4-7 as garbage and 2 as CRITICAL, so a mistyped flag must not page anyone.
 */
export const NAGIOS = {
  OK: 0,
  WARNING: 1,
  CRITICAL: 2,
  UNKNOWN: 3,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export interface MfcErrorOptions<C extends ErrorCode = ErrorCode> {
  /** A code of ERROR_CODES (the type checker refuses any other); it decides the exit code. */
  code: C
  suggestions?: string[]
  cause?: unknown
}

/** The exit code a command failing with `code` ends with (FAILURE for HTTP-only codes). */
export function exitCodeOf(code: ErrorCode): ExitCode {
  return (ERROR_CODES[code] as ErrorCodeSpec).exit ?? EXIT.FAILURE
}

export class MfcError extends Error {
  readonly code: ErrorCode
  readonly exitCode: ExitCode
  readonly suggestions: string[]
  readonly oclif: {exit: number}

  constructor(message: string, options: MfcErrorOptions) {
    super(message, {cause: options.cause})
    this.name = new.target.name
    this.code = options.code
    this.exitCode = exitCodeOf(options.code)
    this.suggestions = options.suggestions ?? []
    this.oclif = {exit: this.exitCode}
  }
}

/** The codes whose registry row has exit code E: a subclass accepts only those. */
export type CodeWithExit<E extends ExitCode> = {[K in ErrorCode]: (typeof ERROR_CODES)[K] extends {readonly exit: E} ? K : never}[ErrorCode]

/**
 * Options of a kind of error: its code must be one whose registry row has the kind's exit
 * code, so `new ConfigError(..., {code: 'MFC_USAGE'})` does not compile (the class names the
 * kind, the registry decides the exit code, and the type checker keeps them agreeing).
 */
type KindOptions<E extends ExitCode> = MfcErrorOptions<CodeWithExit<E>>

export class ConfigError extends MfcError {
  constructor(message: string, options: KindOptions<typeof EXIT.CONFIG>) {
    super(message, options)
  }
}

export class StoreError extends MfcError {
  constructor(message: string, options: KindOptions<typeof EXIT.STORE>) {
    super(message, options)
  }
}

/** An issuer (local CA, ACME CA) refused or failed. `problem` keeps an ACME problem document. */
export class IssuerError extends MfcError {
  readonly problem?: {type?: string; detail?: string; status?: number; url?: string}
  /** The CA's Retry-After as a moment: no retry may come sooner (RFC 8555 §6.6). */
  readonly retryAfter?: Date
  constructor(message: string, options: KindOptions<typeof EXIT.ISSUER> & {problem?: IssuerError['problem']; retryAfter?: Date}) {
    super(message, options)
    this.problem = options.problem
    this.retryAfter = options.retryAfter
  }
}

export class NetworkError extends MfcError {
  constructor(message: string, options: KindOptions<typeof EXIT.NETWORK>) {
    super(message, options)
  }
}

/** Another mfc process holds the lock, or a daemon is (not) running when it must (not) be. */
export class LockError extends MfcError {
  constructor(message: string, options: KindOptions<typeof EXIT.LOCK>) {
    super(message, options)
  }
}

export class UsageError extends MfcError {
  constructor(message: string, options: KindOptions<typeof EXIT.USAGE>) {
    super(message, options)
  }
}

/** One stable error code: the exit code a command ends with, the HTTP status a server answers. */
export interface ErrorCodeSpec {
  /** Exit code of a command failing with it; absent for codes only the HTTP/WSS servers answer. */
  readonly exit?: ExitCode
  /** HTTP status of a server reply with `{"error": {"code": ...}}`; absent for CLI-only codes. */
  readonly http?: number
  readonly meaning: string
  /** Documented and accepted, but raised by nothing in this version (scripts may match on it). */
  readonly reserved?: true
}

/**
 * THE registry of error codes: every `code` an MfcError, `--json` output or an HTTP/WSS error
 * body can carry. `ErrorCode` is its key type, so an unregistered code does not compile;
 * docs/errors.md is generated from it (`npm run generate`), and test/unit/lib/errors.test.ts
 * fails when a code in src/ is missing here or in the docs. To add one: add a row (exit and/or
 * http), use it, run `npm run generate`, commit docs/errors.md.
 */
export const ERROR_CODES = {
  MFC_CONFIG_PARSE: {exit: EXIT.CONFIG, meaning: 'a config file is not valid JSON'},
  MFC_CONFIG_VALUE: {exit: EXIT.CONFIG, meaning: 'a config key or environment variable has a bad value'},
  MFC_CONFIG_NOT_FOUND: {exit: EXIT.CONFIG, meaning: 'the config file named by --config or MFC_SSL_CONFIG does not exist'},
  MFC_CONFIG_MISSING: {exit: EXIT.CONFIG, meaning: 'a required setting (domain, email...) is missing'},
  MFC_CONFIG_WRITE: {exit: EXIT.CONFIG, meaning: 'the config file could not be written'},
  MFC_STORE_IO: {exit: EXIT.STORE, meaning: 'the certificate store could not be read or written'},
  MFC_STORE_UNAVAILABLE: {exit: EXIT.STORE, meaning: 'the shared PostgreSQL (`storage`) cannot be reached: down, restarting, or the network; nothing was written'},
  MFC_STORE_EXISTS: {exit: EXIT.STORE, meaning: 'a certificate exists and replacing it was not confirmed'},
  MFC_CERT_INVALID: {exit: EXIT.STORE, meaning: 'a certificate or key file is unreadable, mismatched or expired'},
  MFC_ISSUER_FAILED: {exit: EXIT.ISSUER, meaning: 'the certificate authority refused or failed the order'},
  MFC_ISSUER_UNREACHABLE: {exit: EXIT.ISSUER, meaning: 'the certificate authority could not be reached (after retries) or its HTTPS certificate is not trusted'},
  MFC_ISSUER_RATE_LIMITED: {exit: EXIT.ISSUER, meaning: 'the certificate authority rate-limited the request'},
  MFC_CHALLENGE_FAILED: {exit: EXIT.ISSUER, meaning: 'the CA could not validate a challenge'},
  MFC_CERT_NAMES: {exit: EXIT.USAGE, meaning: 'a --domain is not covered by the certificate being installed'},
  MFC_TOS_REQUIRED: {exit: EXIT.USAGE, meaning: 'registering at the CA needs --agree-tos (its terms of service URL is in the message)'},
  MFC_DNS_CREDENTIALS: {exit: EXIT.CONFIG, meaning: 'the RFC 2136 credentials file is unreadable, incomplete or readable by others'},
  MFC_MQTT_CREDENTIALS: {exit: EXIT.CONFIG, meaning: 'the MQTT password file, client key, client certificate or CA file is unreadable, or a secret one is readable by others'},
  MFC_DNS_UPDATE: {exit: EXIT.ISSUER, meaning: 'a DNS server refused or did not answer an RFC 2136 update or zone lookup'},
  MFC_DNS_PROPAGATION: {exit: EXIT.ISSUER, meaning: 'a DNS-01 TXT record did not appear at the zone\'s servers in time'},
  MFC_PORT_IN_USE: {exit: EXIT.NETWORK, meaning: 'a port mfc must listen on is taken'},
  MFC_PORT_DENIED: {exit: EXIT.NETWORK, meaning: 'a port mfc must listen on is below 1024 and this user may not bind it (root or CAP_NET_BIND_SERVICE)'},
  MFC_LISTEN_FAILED: {exit: EXIT.NETWORK, meaning: 'a port could not be opened for another reason (e.g. `host` is not an address of this machine)'},
  MFC_NETWORK: {exit: EXIT.NETWORK, reserved: true, meaning: 'a remote host could not be reached (reserved: not raised by this version)'},
  MFC_LOCKED: {exit: EXIT.LOCK, meaning: 'another mfc process holds the lock'},
  MFC_DAEMON: {exit: EXIT.LOCK, meaning: 'the daemon is already running, or not running'},
  MFC_DAEMON_START: {exit: EXIT.FAILURE, meaning: '`serve --daemon` started, but the servers did not answer their health checks'},
  MFC_USAGE: {exit: EXIT.USAGE, meaning: 'flags or arguments do not fit together'},
  MFC_HOOK_FAILED: {exit: EXIT.FAILURE, meaning: 'the pre hook exited non-zero or timed out, so nothing was ordered (deploy and post hooks are reported, not raised)'},
  MFC_AUTH_HOOK_FAILED: {exit: EXIT.ISSUER, meaning: 'a manual auth hook (--manual-auth-hook) exited non-zero or timed out, so the challenge could not be answered'},
  MFC_DATA_INVALID: {exit: EXIT.USAGE, http: 422, meaning: 'monitoring data or a simulation/alert request failed validation (HTTP 400 for malformed JSON, 422 for bad values)'},
  MFC_DATA_CONFLICT: {exit: EXIT.FAILURE, http: 409, meaning: 'the request conflicts with the running simulation'},
  MFC_HISTORY_IO: {exit: EXIT.STORE, http: 503, meaning: 'the history database could not be opened, read or written'},
  MFC_HISTORY_UNAVAILABLE: {exit: EXIT.STORE, http: 503, meaning: 'the history database (PostgreSQL) is unreachable for now: nothing of the request was stored; retry after Retry-After'},
  MFC_CRONTAB: {exit: EXIT.FAILURE, meaning: 'crontab(1) could not be read or written'},
  MFC_OUTPUT: {exit: EXIT.FAILURE, meaning: 'a generated file (unit, nginx site, Dockerfile, archive) could not be written'},
  MFC_OUTPUT_EXISTS: {exit: EXIT.FAILURE, meaning: 'a file a `setup` command would write exists already (`--force` replaces it)'},
  MFC_BACKUP_INVALID: {exit: EXIT.STORE, meaning: 'a backup archive is truncated, tampered with or unsafe; nothing was restored'},
  MFC_BACKUP_PASSPHRASE: {exit: EXIT.STORE, meaning: 'the backup passphrase is wrong or missing'},
  MFC_BACKUP_EXISTS: {exit: EXIT.STORE, meaning: 'the backup archive to write exists already (`--force` replaces it)'},
  MFC_BACKUP_IO: {exit: EXIT.STORE, meaning: 'a backup could not be written or a restore could not be applied'},
  MFC_PG_TOOLS: {exit: EXIT.STORE, meaning: 'pg_dump/pg_restore (for a cluster backup or restore) is missing or older than the PostgreSQL server'},
  MFC_RESTORE_NOT_EMPTY: {exit: EXIT.STORE, meaning: 'the database to restore a cluster backup into has tables already (`--force` replaces them)'},
  MFC_NOTIFY_CONFIG: {exit: EXIT.CONFIG, meaning: 'notification-config.json is invalid or configures no channel'},
  MFC_ACCOUNT_MISSING: {exit: EXIT.STORE, meaning: 'mfc has no ACME account for that CA directory (and no certificate key to sign with)'},
  MFC_TOKEN_MISSING: {exit: EXIT.STORE, meaning: 'no API token exists yet (`mfc serve` makes one on first start; `mfc api-token rotate` sets one)'},
  MFC_ACCOUNT_DEACTIVATED: {exit: EXIT.ISSUER, meaning: 'the ACME account was deactivated (`mfc account deactivate`); registering a new one needs --agree-tos'},
  MFC_CERT_IN_USE: {exit: EXIT.LOCK, meaning: 'the certificate to delete is the one a running `mfc serve` loads (--force overrides)'},
  MFC_CERT_UNMANAGED: {exit: EXIT.FAILURE, meaning: 'the certificate ssl-config.json names is due, but mfc did not issue it and cannot renew it (adopt it: `mfc cert import --from-certbot`)'},
  MFC_INTERNAL: {exit: EXIT.FAILURE, http: 500, meaning: 'an unexpected error (a bug: please report it)'},
  // Answered by the HTTP/WSS servers only (the body is {"error": {"code", "message"}}).
  MFC_BAD_REQUEST: {http: 400, meaning: 'the request is malformed (bad JSON, query or headers)'},
  MFC_UNAUTHORIZED: {http: 401, meaning: 'no or a wrong token, session or credentials'},
  MFC_CSRF: {http: 403, meaning: 'a session request without the X-CSRF-Token header from the login response'},
  MFC_ORIGIN_DENIED: {http: 403, meaning: 'the browser Origin is neither the dashboard\'s own nor in dashboard_origins'},
  MFC_FORWARDED_INVALID: {http: 403, meaning: 'a trusted proxy forwarded a client address (X-Forwarded-For) that is not an IP address'},
  MFC_IP_DENIED: {http: 403, meaning: 'the client address is not allowed (only loopback and private networks by default)'},
  MFC_NOT_FOUND: {http: 404, meaning: 'no such route or resource'},
  MFC_METHOD_NOT_ALLOWED: {http: 405, meaning: 'the route does not answer this method'},
  MFC_BODY_TOO_LARGE: {http: 413, meaning: 'the body exceeds body_limit_bytes'},
  MFC_URI_TOO_LONG: {http: 414, meaning: 'a URL path segment is longer than the router accepts'},
  MFC_UNSUPPORTED_MEDIA_TYPE: {http: 415, meaning: 'the body is not application/json (or the charset is not UTF-8)'},
  MFC_UPGRADE_REQUIRED: {http: 426, meaning: 'plain HTTP to the streamer port, which speaks WebSocket (wss://) only'},
  MFC_RATE_LIMITED: {http: 429, meaning: 'rate_limit_per_minute, session_rate_limit_per_minute or auth_failures_per_minute exceeded (see Retry-After)'},
  MFC_UNAVAILABLE: {http: 503, meaning: 'the server is starting or shutting down'},
  MFC_CLUSTER_UNAVAILABLE: {http: 503, meaning: 'cluster mode: the shared database cannot be reached, so a cluster-wide decision (starting or stopping the simulator run) cannot be made; retry when it is back'},
} as const satisfies Record<string, ErrorCodeSpec>

export type ErrorCode = keyof typeof ERROR_CODES

/** Wraps anything thrown into an MfcError, keeping MfcErrors as they are. */
export function toMfcError(error: unknown): MfcError {
  if (error instanceof MfcError) return error
  const message = error instanceof Error ? error.message : String(error)
  return new MfcError(message, {
    code: 'MFC_INTERNAL',
    cause: error,
    suggestions: ['Run again with --debug (or MFC_DEBUG=1) to see the stack trace, and report it.'],
  })
}

/**
 * What went wrong with reading `file`, in words: "X not found" for a missing file (never
 * "may be truncated" or a raw ENOENT), "permission denied", "is a directory".
 */
export function fileProblem(file: string, error: unknown): string {
  switch (errnoCode(error)) {
    case 'ENOENT':
    case 'ENOTDIR': {
      return `${file} not found`
    }

    case 'EACCES':
    case 'EPERM': {
      return `${file} cannot be read: permission denied`
    }

    case 'EISDIR': {
      return `${file} is a directory, not a file`
    }

    default: {
      return `Cannot read ${file}: ${(error as Error).message}`
    }
  }
}

/** Node's errno code of a thrown system error, if any. */
export function errnoCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}
