/**
 * The one error family of mfc. Every error a user can see is an MfcError with a stable `code`,
 * an exit code from EXIT, and suggestions naming the next step. `oclif.exit` mirrors the exit
 * code because oclif 4 reads it (and only it) when the command fails under `--json`.
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

/** Exit codes of `cert monitor` and `status`: the Nagios plugin convention (the original's too). */
export const NAGIOS = {
  OK: 0,
  WARNING: 1,
  CRITICAL: 2,
  UNKNOWN: 3,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

export interface MfcErrorOptions {
  code: string
  exitCode?: number
  suggestions?: string[]
  cause?: unknown
}

export class MfcError extends Error {
  readonly code: string
  readonly exitCode: number
  readonly suggestions: string[]
  readonly oclif: {exit: number}

  constructor(message: string, options: MfcErrorOptions) {
    super(message, {cause: options.cause})
    this.name = new.target.name
    this.code = options.code
    this.exitCode = options.exitCode ?? EXIT.FAILURE
    this.suggestions = options.suggestions ?? []
    this.oclif = {exit: this.exitCode}
  }
}

type SubclassOptions = Omit<MfcErrorOptions, 'exitCode'>

export class ConfigError extends MfcError {
  constructor(message: string, options: SubclassOptions) {
    super(message, {...options, exitCode: EXIT.CONFIG})
  }
}

export class StoreError extends MfcError {
  constructor(message: string, options: SubclassOptions) {
    super(message, {...options, exitCode: EXIT.STORE})
  }
}

/** An issuer (local CA, ACME CA) refused or failed. `problem` keeps an ACME problem document. */
export class IssuerError extends MfcError {
  readonly problem?: {type?: string; detail?: string; status?: number; url?: string}
  constructor(message: string, options: SubclassOptions & {problem?: IssuerError['problem']}) {
    super(message, {...options, exitCode: EXIT.ISSUER})
    this.problem = options.problem
  }
}

export class NetworkError extends MfcError {
  constructor(message: string, options: SubclassOptions) {
    super(message, {...options, exitCode: EXIT.NETWORK})
  }
}

/** Another mfc process holds the lock, or a daemon is (not) running when it must (not) be. */
export class LockError extends MfcError {
  constructor(message: string, options: SubclassOptions) {
    super(message, {...options, exitCode: EXIT.LOCK})
  }
}

export class UsageError extends MfcError {
  constructor(message: string, options: SubclassOptions) {
    super(message, {...options, exitCode: EXIT.USAGE})
  }
}

/**
 * Every stable error code, with the exit code it carries. The README documents each one; a test
 * keeps the two in step.
 */
export const ERROR_CODES: Record<string, {exit: number; meaning: string}> = {
  MFC_CONFIG_PARSE: {exit: EXIT.CONFIG, meaning: 'a config file is not valid JSON'},
  MFC_CONFIG_VALUE: {exit: EXIT.CONFIG, meaning: 'a config key or environment variable has a bad value'},
  MFC_CONFIG_NOT_FOUND: {exit: EXIT.CONFIG, meaning: 'the config file named by --config or MFC_SSL_CONFIG does not exist'},
  MFC_CONFIG_MISSING: {exit: EXIT.CONFIG, meaning: 'a required setting (domain, email...) is missing'},
  MFC_CONFIG_WRITE: {exit: EXIT.CONFIG, meaning: 'the config file could not be written'},
  MFC_STORE_IO: {exit: EXIT.STORE, meaning: 'the certificate store could not be read or written'},
  MFC_STORE_EXISTS: {exit: EXIT.STORE, meaning: 'a certificate exists and replacing it was not confirmed'},
  MFC_CERT_INVALID: {exit: EXIT.STORE, meaning: 'a certificate or key file is unreadable, mismatched or expired'},
  MFC_ISSUER_FAILED: {exit: EXIT.ISSUER, meaning: 'the certificate authority refused or failed the order'},
  MFC_ISSUER_UNREACHABLE: {exit: EXIT.ISSUER, meaning: 'the certificate authority could not be reached (after retries) or its HTTPS certificate is not trusted'},
  MFC_ISSUER_RATE_LIMITED: {exit: EXIT.ISSUER, meaning: 'the certificate authority rate-limited the request'},
  MFC_CHALLENGE_FAILED: {exit: EXIT.ISSUER, meaning: 'the CA could not validate a challenge'},
  MFC_PORT_IN_USE: {exit: EXIT.NETWORK, meaning: 'a port mfc must listen on is taken'},
  MFC_NETWORK: {exit: EXIT.NETWORK, meaning: 'a remote host could not be reached'},
  MFC_LOCKED: {exit: EXIT.LOCK, meaning: 'another mfc process holds the lock'},
  MFC_DAEMON: {exit: EXIT.LOCK, meaning: 'the daemon is already running, or not running'},
  MFC_DAEMON_START: {exit: EXIT.FAILURE, meaning: '`serve --daemon` started, but the servers did not answer their health checks'},
  MFC_USAGE: {exit: EXIT.USAGE, meaning: 'flags or arguments do not fit together'},
  MFC_HOOK_FAILED: {exit: EXIT.FAILURE, meaning: 'a renewal hook exited non-zero'},
  MFC_DATA_INVALID: {exit: EXIT.USAGE, meaning: 'monitoring data or a simulation/alert request failed validation (HTTP 400/422)'},
  MFC_DATA_CONFLICT: {exit: EXIT.FAILURE, meaning: 'the request conflicts with the running simulation (HTTP 409)'},
  MFC_HISTORY_IO: {exit: EXIT.STORE, meaning: 'the history database could not be opened, read or written'},
  MFC_CRONTAB: {exit: EXIT.FAILURE, meaning: 'crontab(1) could not be read or written'},
  MFC_OUTPUT: {exit: EXIT.FAILURE, meaning: 'a generated file (unit, nginx site, Dockerfile, archive) could not be written'},
  MFC_BACKUP_INVALID: {exit: EXIT.STORE, meaning: 'a backup archive is truncated, tampered with or unsafe; nothing was restored'},
  MFC_BACKUP_PASSPHRASE: {exit: EXIT.STORE, meaning: 'the backup passphrase is wrong or missing'},
  MFC_BACKUP_EXISTS: {exit: EXIT.STORE, meaning: 'the backup archive to write exists already (`--force` replaces it)'},
  MFC_BACKUP_IO: {exit: EXIT.STORE, meaning: 'a backup could not be written or a restore could not be applied'},
  MFC_NOTIFY_CONFIG: {exit: EXIT.CONFIG, meaning: 'notification-config.json is invalid or configures no channel'},
  MFC_INTERNAL: {exit: EXIT.FAILURE, meaning: 'an unexpected error (a bug: please report it)'},
}

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
