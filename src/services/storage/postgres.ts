import {readFile} from 'node:fs/promises'
import {hostname} from 'node:os'

import pg from 'pg'

import {ConfigError, StoreError, errnoCode} from '../../lib/errors.js'

/**
 * The one module that imports the PostgreSQL client (`pg`, chosen by bench/pg-client.ts: COPY
 * several times faster than `postgres`, the other cases within noise, and plain `Client`
 * objects for the session-level advisory locks that die with their holder).
 */

/** Where and how to reach the database. The password is a secret: never logged or printed. */
export interface PgConnectionOptions {
  /** postgres://user@host:port/db (a password in the URL is refused by config). */
  url: string
  password?: string
  /** CA bundle that signed the server's certificate: TLS with full verification. */
  caFile?: string
  /** Shown in pg_stat_activity, so `status --cluster` and lock errors can name a holder. */
  applicationName?: string
}

/** A query surface: the pool, a transaction's client or a dedicated session all have it. */
export interface PgQueryable {
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, values?: unknown[]): Promise<R[]>
}

/** A dedicated connection (advisory locks, LISTEN). `end()` is idempotent. */
export interface PgSession extends PgQueryable {
  /** Resolves when the connection is lost or ended (a held session lock is gone then). */
  readonly closed: Promise<void>
  /**
   * Calls `listener` for every NOTIFY this session receives (after a LISTEN on it), in the
   * order the server delivers them. Returns a function that removes the listener.
   */
  onNotification(listener: (channel: string, payload: string) => void): () => void
  end(): Promise<void>
}

/**
 * A pool on one database. Contract: `transaction` runs `fn` in BEGIN/COMMIT on one connection
 * and rolls back when it throws; every failure is a StoreError whose message names the database
 * by its redacted URL and never contains the password.
 */
export interface PgDatabase extends PgQueryable {
  readonly label: string
  transaction<T>(fn: (tx: PgQueryable) => Promise<T>): Promise<T>
  session(): Promise<PgSession>
  close(): Promise<void>
}

/** The URL without any password, for messages. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url.replace(/:\/\/([^:@/]+):[^@/]*@/, '://$1:***@')
  }
}

function redact(text: string, secret: string | undefined): string {
  return secret ? text.split(secret).join('***') : text
}

async function clientConfig(options: PgConnectionOptions): Promise<pg.ClientConfig> {
  let ca: string | undefined
  if (options.caFile) {
    try {
      ca = await readFile(options.caFile, 'utf8')
    } catch (error) {
      throw new ConfigError(`Cannot read storage_ca_file ${options.caFile}: ${errnoCode(error) ?? (error as Error).message}.`, {
        code: 'MFC_CONFIG_VALUE',
        suggestions: [`Point storage_ca_file at the CA certificate (PEM) that signed the database server's certificate.`],
      })
    }
  }

  // pg lets the connection string's (absent) password override `password`: put it in the URL,
  // which only ever lives in this object.
  const url = new URL(options.url)
  if (options.password) url.password = encodeURIComponent(options.password)
  return {
    connectionString: url.toString(),
    ssl: ca ? {ca, rejectUnauthorized: true} : undefined,
    application_name: options.applicationName ?? `mfc ${hostname()} ${process.pid}`,
    connectionTimeoutMillis: 10_000,
    keepAlive: true,
  }
}

/** Socket errors and PostgreSQL's "shut down / starting up / too many connections" SQLSTATEs. */
const UNAVAILABLE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', '57P01', '57P02', '57P03', '53300'])

/**
 * True when a pg error means "the database cannot be reached right now" (a later retry may
 * succeed), as opposed to a wrong query, schema or credential.
 */
function unreachable(error: unknown): boolean {
  const code = (error as {code?: string}).code
  if (code && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true
  // pg reports a socket that died mid-query without a code.
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable/i.test((error as Error).message ?? '')
}

/** True for the StoreError of an unreachable database (see `unreachable`): retry later. */
export function isStoreUnavailable(error: unknown): boolean {
  return (error as {code?: string}).code === 'MFC_STORE_UNAVAILABLE'
}

function wrap(error: unknown, label: string, password: string | undefined, action: string): StoreError {
  if (error instanceof StoreError || error instanceof ConfigError) return error
  const message = redact((error as Error).message ?? String(error), password)
  const code = (error as {code?: string}).code
  if (unreachable(error)) {
    return new StoreError(`Cannot ${action} on ${label}: the database is unreachable (${message}).`, {
      code: 'MFC_STORE_UNAVAILABLE',
      suggestions: [`Start PostgreSQL or fix the host and port in "storage" (${label}); mfc retries by itself.`],
    })
  }

  const hint = code === '28P01' || code === '28000'
    ? 'Check the user and the password (storage_password_file or PGPASSWORD) and pg_hba.conf.'
    : code === 'ENOTFOUND'
      ? `Start PostgreSQL or fix the host and port in "storage" (${label}).`
      : code === '3D000'
        ? `Create the database (createdb) named in "storage" (${label}).`
        : /self[- ]signed|certificate|SSL/i.test(message)
          ? 'Set storage_ca_file to the CA that signed the database server\'s certificate.'
          : `Check the database at ${label}, then run \`mfc storage migrate\` if the schema is missing.`
  return new StoreError(`Cannot ${action} on ${label}: ${message}`, {code: 'MFC_STORE_IO', suggestions: [hint]})
}

const rowsOf = <R>(result: pg.QueryResult | pg.QueryResult[]) => (Array.isArray(result) ? result.at(-1)!.rows : result.rows) as R[]

/** Opens a pool (no connection is made until the first query). */
export async function openPostgres(options: PgConnectionOptions): Promise<PgDatabase> {
  const config = await clientConfig(options)
  const label = redactUrl(options.url)
  const fail = (error: unknown, action: string) => wrap(error, label, options.password, action)
  // allowExitOnIdle: a one-shot command exits when its work is done, without a close() on every path.
  const pool = new pg.Pool({...config, max: 8, allowExitOnIdle: true})
  // An idle client losing its connection must not crash the process: the next query reports it.
  pool.on('error', () => {})
  let closed = false
  return {
    label,
    async query(text, values) {
      try {
        return rowsOf(await pool.query(text, values))
      } catch (error) {
        throw fail(error, 'query')
      }
    },
    async transaction(fn) {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (error) {
        throw fail(error, 'connect')
      }

      // A checked-out client whose server dies (a restart, `pg_ctl stop -m immediate`) emits
      // 'error', which would crash the process with no listener: the pending query rejects
      // anyway, and the ROLLBACK/release below drop the broken client.
      const ignore = () => {}
      client.on('error', ignore)
      const release = () => {
        client.off('error', ignore)
        client.release()
      }

      const tx: PgQueryable = {
        async query(text, values) {
          try {
            return rowsOf(await client.query(text, values))
          } catch (error) {
            throw fail(error, 'query')
          }
        },
      }
      try {
        await tx.query('BEGIN')
        const result = await fn(tx)
        await tx.query('COMMIT')
        release()
        return result
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {})
        release()
        throw fail(error, 'write')
      }
    },
    async session() {
      const client = new pg.Client(config)
      let resolveClosed!: () => void
      const closedPromise = new Promise<void>((resolve) => {
        resolveClosed = resolve
      })
      client.on('error', () => resolveClosed())
      client.on('end', () => resolveClosed())
      try {
        await client.connect()
      } catch (error) {
        throw fail(error, 'connect')
      }

      let ended = false
      return {
        closed: closedPromise,
        onNotification(listener) {
          const onMessage = (message: pg.Notification) => listener(message.channel, message.payload ?? '')
          client.on('notification', onMessage)
          return () => client.off('notification', onMessage)
        },
        async query(text, values) {
          try {
            return rowsOf(await client.query(text, values))
          } catch (error) {
            throw fail(error, 'query')
          }
        },
        async end() {
          if (ended) return
          ended = true
          await client.end().catch(() => {})
        },
      }
    },
    async close() {
      if (closed) return
      closed = true
      await pool.end()
    },
  }
}
