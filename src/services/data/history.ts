import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import type {Database as Db, Statement} from 'better-sqlite3'

import type {Clock} from '../../lib/clock.js'
import {MfcError, EXIT} from '../../lib/errors.js'
import type {Reading} from './reading.js'

/** Rows per page of a streamed export or range read; bounds memory and lock time. */
const PAGE = 1000
export const MAX_QUERY_LIMIT = 10_000

export interface RangeQuery {
  /** Inclusive bounds, ISO 8601 or ms since the epoch. */
  from?: number
  to?: number
  limit?: number
  source?: string
  runId?: string
}

/**
 * The monitoring history. Contract: `insert` commits a whole batch in one transaction and
 * returns only once it is durable (WAL + synchronous=FULL), or throws and writes nothing;
 * readers see whole batches only. Readings come back oldest first. Single process, single
 * connection (better-sqlite3 is synchronous, so calls never interleave).
 */
export interface HistoryStore {
  insert(readings: readonly Reading[], setting?: {key: string; value: string}): number
  latest(limit: number): Reading[]
  range(query: RangeQuery): Reading[]
  /** Keyset-paged scan, so a long export never holds the connection between pages. */
  pages(query?: Omit<RangeQuery, 'limit'>): Generator<Reading[]>
  count(): number
  /** Deletes readings older than the retention; returns how many. 0 days keeps everything. */
  prune(): number
  getSetting(key: string): string | undefined
  putSetting(key: string, value: string): void
  /**
   * Closes the connection and opens `file` again, so a database renamed into place (`mfc
   * restore`) is the one written from now on instead of the replaced, unlinked one. The old
   * connection is closed first: closing it afterwards would delete the new database's `-wal`
   * file by name. Synchronous, so no call runs in between; if the open fails the store stays
   * closed (calls throw HistoryError) and the next reopen tries again.
   */
  reopen(): void
  readonly file: string
  readonly retentionDays: number
  close(): void
}

interface Row {
  id: number
  ts: number
  source: string
  run_id: string | null
  time_hours: number
  reservoir: number
  outlet: number
  total_power: number
  addition: number
  q_action: number | null
  epsilon: number | null
  reward: number | null
  cells: string
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS readings (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  source TEXT NOT NULL,
  run_id TEXT,
  time_hours REAL NOT NULL,
  reservoir REAL NOT NULL,
  outlet REAL NOT NULL,
  total_power REAL NOT NULL,
  addition REAL NOT NULL,
  q_action INTEGER,
  epsilon REAL,
  reward REAL,
  cells TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_ts ON readings (ts);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
`

export class HistoryError extends MfcError {
  constructor(message: string, file: string, cause?: unknown) {
    super(message, {
      code: 'MFC_HISTORY_IO', exitCode: EXIT.STORE, cause,
      suggestions: [`Check that ${dirname(file)} is writable and the disk is not full; move ${file} away to start a fresh history.`],
    })
  }
}

type DatabaseClass = typeof import('better-sqlite3')

function connect(Database: DatabaseClass, file: string): Db {
  let db: Db | undefined
  try {
    mkdirSync(dirname(file), {recursive: true, mode: 0o700})
    db = new Database(file)
    db.pragma('journal_mode = WAL')
    // FULL in WAL mode fsyncs the log at each commit: an acknowledged batch survives power loss.
    db.pragma('synchronous = FULL')
    db.pragma('busy_timeout = 5000')
    db.exec(SCHEMA)
    return db
  } catch (error) {
    db?.close()
    throw new HistoryError(`Cannot open the history database ${file}: ${(error as Error).message}`, file, error)
  }
}

/** Opens (creating if needed) the SQLite history; better-sqlite3 is loaded only here, lazily. */
export async function openHistory(file: string, options: {retentionDays: number; clock: Clock}): Promise<HistoryStore> {
  const {default: Database} = await import('better-sqlite3')
  return new SqliteHistory(Database, connect(Database, file), file, options.retentionDays, options.clock)
}

class SqliteHistory implements HistoryStore {
  private statements!: Record<'insert' | 'latest' | 'page' | 'count' | 'prune' | 'get' | 'put', Statement>
  private insertMany!: (readings: readonly Reading[], setting?: {key: string; value: string}) => number
  private closed = false

  constructor(private readonly Database: DatabaseClass, private db: Db, readonly file: string, readonly retentionDays: number, private readonly clock: Clock) {
    this.attach(db)
  }

  private attach(db: Db): void {
    this.db = db
    this.statements = {
      insert: db.prepare(`INSERT INTO readings (ts, source, run_id, time_hours, reservoir, outlet, total_power, addition, q_action, epsilon, reward, cells)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
      latest: db.prepare('SELECT * FROM (SELECT * FROM readings ORDER BY id DESC LIMIT ?) ORDER BY id'),
      page: db.prepare(`SELECT * FROM readings WHERE id > @after AND ts >= @from AND ts <= @to
        AND (@source IS NULL OR source = @source) AND (@run IS NULL OR run_id = @run) ORDER BY id LIMIT @limit`),
      count: db.prepare('SELECT count(*) AS n FROM readings'),
      prune: db.prepare('DELETE FROM readings WHERE ts < ?'),
      get: db.prepare('SELECT value FROM settings WHERE key = ?'),
      put: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    }
    this.insertMany = db.transaction((readings: readonly Reading[], setting?: {key: string; value: string}) => {
      for (const r of readings) this.statements.insert.run(...toRow(r))
      if (setting) this.statements.put.run(setting.key, setting.value)
      return readings.length
    })
  }

  insert(readings: readonly Reading[], setting?: {key: string; value: string}): number {
    return this.guard('write', () => this.insertMany(readings, setting))
  }

  latest(limit: number): Reading[] {
    return this.guard('read', () => (this.statements.latest.all(clampLimit(limit)) as Row[]).map(fromRow))
  }

  range(query: RangeQuery): Reading[] {
    const limit = clampLimit(query.limit ?? 1000)
    return this.guard('read', () => (this.statements.page.all(this.params(query, 0, limit)) as Row[]).map(fromRow))
  }

  * pages(query: Omit<RangeQuery, 'limit'> = {}): Generator<Reading[]> {
    let after = 0
    for (;;) {
      const rows = this.guard('read', () => this.statements.page.all(this.params(query, after, PAGE)) as Row[])
      if (rows.length === 0) return
      after = rows.at(-1)!.id
      yield rows.map(fromRow)
      if (rows.length < PAGE) return
    }
  }

  count(): number {
    return this.guard('read', () => (this.statements.count.get() as {n: number}).n)
  }

  prune(): number {
    if (this.retentionDays <= 0) return 0
    const cutoff = this.clock.now().getTime() - this.retentionDays * 86_400_000
    return this.guard('write', () => this.statements.prune.run(cutoff).changes)
  }

  getSetting(key: string): string | undefined {
    return this.guard('read', () => (this.statements.get.get(key) as {value: string} | undefined)?.value)
  }

  putSetting(key: string, value: string): void {
    this.guard('write', () => this.statements.put.run(key, value))
  }

  reopen(): void {
    if (!this.closed) {
      this.closed = true
      this.db.close()
    }

    this.attach(connect(this.Database, this.file))
    this.closed = false
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    this.db.close()
  }

  private params(query: Omit<RangeQuery, 'limit'>, after: number, limit: number) {
    return {after, from: query.from ?? 0, to: query.to ?? Number.MAX_SAFE_INTEGER, source: query.source ?? null, run: query.runId ?? null, limit}
  }

  private guard<T>(what: 'read' | 'write', work: () => T): T {
    if (this.closed) throw new HistoryError(`The history database ${this.file} is closed`, this.file)
    try {
      return work()
    } catch (error) {
      throw new HistoryError(`Cannot ${what} the history database ${this.file}: ${(error as Error).message}`, this.file, error)
    }
  }
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(Math.trunc(limit) || 1, MAX_QUERY_LIMIT))
}

function toRow(r: Reading): unknown[] {
  const cells = JSON.stringify({b: r.biofilm_thicknesses, v: r.cell_voltages, p: r.cell_powers, ph: r.cell_ph, t: r.cell_temperatures})
  return [Date.parse(r.timestamp), r.source, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power,
    r.substrate_addition_rate, r.q_action, r.epsilon, r.reward, cells]
}

function fromRow(row: Row): Reading {
  const cells = JSON.parse(row.cells) as {b: number[]; v: number[] | null; p: number[] | null; ph: number[] | null; t: number[] | null}
  return {
    timestamp: new Date(row.ts).toISOString(),
    source: row.source,
    run_id: row.run_id,
    time_hours: row.time_hours,
    reservoir_concentration: row.reservoir,
    outlet_concentration: row.outlet,
    total_power: row.total_power,
    biofilm_thicknesses: cells.b,
    substrate_addition_rate: row.addition,
    q_action: row.q_action,
    epsilon: row.epsilon,
    reward: row.reward,
    cell_voltages: cells.v,
    cell_powers: cells.p,
    cell_ph: cells.ph,
    cell_temperatures: cells.t,
  }
}

/**
 * A consistent copy of a history database while writers may be active: SQLite's online backup
 * API, not a file copy that could catch a half-applied WAL. Used by `mfc backup`.
 */
export async function snapshotSqlite(source: string, destination: string): Promise<void> {
  const {default: Database} = await import('better-sqlite3')
  const db = new Database(source, {readonly: true, fileMustExist: true})
  try {
    await db.backup(destination)
  } finally {
    db.close()
  }
}
