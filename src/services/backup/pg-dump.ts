import {spawn} from 'node:child_process'

import {childEnvironment} from '../../lib/config.js'
import {StoreError} from '../../lib/errors.js'
import {type PgDatabase, type PgQueryable, redactUrl} from '../storage/postgres.js'

/**
 * The cluster database as `pg_dump`/`pg_restore` reach it: the same URL, password and CA as
 * mfc's own connections. The password travels in the child's environment (PGPASSWORD), never
 * on its command line, where `ps` would show it.
 */
export interface PgToolTarget {
  url: string
  password?: string
  caFile?: string
}

/** Rows per table (`schema.table`) as one snapshot saw them: what a restore must give back. */
export type TableCounts = Record<string, number>

interface ToolRun {
  code: number | null
  stderr: string
  missing: boolean
}

function toolEnv(target: PgToolTarget): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {...childEnvironment(), PGAPPNAME: 'mfc backup', PGCONNECT_TIMEOUT: '10'}
  delete env.PGPASSWORD
  if (target.password) env.PGPASSWORD = target.password
  if (target.caFile) Object.assign(env, {PGSSLMODE: 'verify-full', PGSSLROOTCERT: target.caFile})
  return env
}

function runTool(tool: string, args: string[], target: PgToolTarget): Promise<ToolRun> {
  return new Promise((resolve) => {
    const child = spawn(tool, args, {env: toolEnv(target), stdio: ['ignore', 'ignore', 'pipe']})
    let stderr = ''
    child.stderr.on('data', (chunk) => {
      if (stderr.length < 20_000) stderr += chunk
    })
    child.on('error', (error: NodeJS.ErrnoException) => resolve({code: null, stderr: error.message, missing: error.code === 'ENOENT'}))
    child.on('close', (code) => resolve({code, stderr, missing: false}))
  })
}

/**
 * The error for a failed pg_dump/pg_restore, with the next step. pg_dump refuses a server newer
 * than itself ("aborting because of server version mismatch"); that case names both versions.
 */
export function pgToolError(tool: 'pg_dump' | 'pg_restore', run: ToolRun, target: PgToolTarget): StoreError {
  const label = redactUrl(target.url)
  const text = (target.password ? run.stderr.split(target.password).join('***') : run.stderr).trim()
  if (run.missing) {
    return new StoreError(`${tool} was not found: a cluster backup needs PostgreSQL's client tools (${label}).`, {
      code: 'MFC_PG_TOOLS',
      suggestions: ['Install them (Debian: `apt-get install postgresql-client`, the same major version as the server or newer) and run it again.'],
    })
  }

  const mismatch = /server version: (\d+(?:\.\d+)*)[^;\n]*; \S+ version: (\d+(?:\.\d+)*)/.exec(text)
  if (mismatch) {
    return new StoreError(`${tool} ${mismatch[2]} cannot dump the PostgreSQL ${mismatch[1]} server at ${label} (a dump needs a pg_dump at least as new as the server).`, {
      code: 'MFC_PG_TOOLS',
      suggestions: [`Install the PostgreSQL ${mismatch[1].split('.')[0]} client tools (Debian: postgresql-client-${mismatch[1].split('.')[0]}) and put that ${tool} first on PATH, then run it again.`],
    })
  }

  return new StoreError(`${tool} failed on ${label} (exit ${run.code}): ${text.split('\n').slice(-3).join(' ') || 'no message'}`, {
    code: 'MFC_BACKUP_IO',
    suggestions: [`Check that the database at ${label} is reachable with the settings in ssl-config.json ("storage", storage_password_file, storage_ca_file), then run it again.`],
  })
}

/** Every user table of the database (partitions' parents included, their children not). */
async function userTables(db: PgQueryable): Promise<string[]> {
  const rows = await db.query<{name: string}>(`SELECT format('%I.%I', n.nspname, c.relname) AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
    ORDER BY 1`)
  return rows.map((r) => r.name)
}

export async function countRows(db: PgQueryable): Promise<TableCounts> {
  const counts: TableCounts = {}
  // The names come from pg_class through format('%I'), so they are quoted identifiers.
  for (const table of await userTables(db)) counts[table] = Number((await db.query<{n: string}>(`SELECT count(*) AS n FROM ${table}`))[0].n)
  return counts
}

/**
 * `pg_dump --format=custom` of the whole database named in "storage" into `file`. The dump and
 * the row counts come from one snapshot (pg_dump --snapshot, exported by a REPEATABLE READ
 * transaction held open meanwhile), so the counts are exactly what the dump holds, even while
 * the nodes keep writing: a restore is checked against them.
 */
export async function dumpDatabase(db: PgDatabase, target: PgToolTarget, file: string): Promise<TableCounts> {
  return db.transaction(async (tx) => {
    await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY')
    const [{id}] = await tx.query<{id: string}>('SELECT pg_export_snapshot() AS id')
    const counts = await countRows(tx)
    const run = await runTool('pg_dump', ['--format=custom', `--snapshot=${id}`, `--file=${file}`, `--dbname=${target.url}`], target)
    if (run.code !== 0) throw pgToolError('pg_dump', run, target)
    return counts
  })
}

/** Refuses to restore over a database that has tables (unless `replace`); returns their count. */
export async function requireEmpty(db: PgDatabase, replace: boolean): Promise<number> {
  const tables = await userTables(db)
  if (tables.length > 0 && !replace) {
    throw new StoreError(`The database ${db.label} is not empty (${tables.length} table(s), e.g. ${tables.slice(0, 3).join(', ')}); nothing was restored.`, {
      code: 'MFC_RESTORE_NOT_EMPTY',
      suggestions: [`Restore into a new, empty database (createdb, then point "storage" or --storage at it), or add --force to replace the objects in ${db.label} with the backup's (stop every node first).`],
    })
  }

  return tables.length
}

/**
 * `pg_restore` of a dump made by dumpDatabase, in one transaction (a failure leaves the
 * database as it was), without the original owners and grants (the restoring role owns what
 * it creates). `replace` drops the dump's objects first (--clean --if-exists). Then the rows
 * are counted and compared with the dump's: any difference is an error.
 */
export async function restoreDatabase(db: PgDatabase, target: PgToolTarget, file: string, expected: TableCounts, replace: boolean): Promise<TableCounts> {
  const args = ['--single-transaction', '--exit-on-error', '--no-owner', '--no-acl', ...(replace ? ['--clean', '--if-exists'] : []), `--dbname=${target.url}`, file]
  const run = await runTool('pg_restore', args, target)
  if (run.code !== 0) throw pgToolError('pg_restore', run, target)
  const counts = await countRows(db)
  const wrong = Object.entries(expected).filter(([table, rows]) => counts[table] !== rows)
  if (wrong.length > 0) {
    throw new StoreError(`The restored database ${db.label} does not match the backup: ${wrong.map(([t, n]) => `${t} has ${counts[t] ?? 'no table'} row(s), the backup ${n}`).join('; ')}.`, {
      code: 'MFC_BACKUP_IO',
      suggestions: ['Restore into a new, empty database and run it again; keep the archive.'],
    })
  }

  return counts
}
