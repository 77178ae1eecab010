import {mkdirSync} from 'node:fs'
import {dirname} from 'node:path'

import type {Database as Db, Statement} from 'better-sqlite3'

import type {Clock} from '../../lib/clock.js'
import {MfcError} from '../../lib/errors.js'
import {type Bucket, type BucketQuery, BUCKET_FIELDS, type History, type InsertOptions, MAX_QUERY_LIMIT, type RangeQuery, type SourceInfo, type SourceRegistration} from './history-types.js'
import type {Reading} from './reading.js'

/** Rows per page of a streamed export or range read; bounds memory and lock time. */
const PAGE = 1000
export {MAX_QUERY_LIMIT} from './history-types.js'
export type {History, RangeQuery} from './history-types.js'
/** The name the rest of the code has used for the role; kept so existing callers read the same. */
export type HistoryStore = History

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
  seq: number
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

/**
 * Version 1 (user_version): sources first-class. Rows that ingest stored as `ingest:<name>` get
 * the name that was posted (unless it would merge into the simulator's or a followed file's
 * rows: those keep their prefix); duplicates of (source, timestamp) that retried POSTs left are
 * dropped, the first one kept; the CSV follower's rows, which all carry their file's mtime, are
 * told apart by `seq` (row number within the source). One transaction: a crash leaves version 0.
 */
const MIGRATION_1 = `
ALTER TABLE readings ADD COLUMN seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE readings ADD COLUMN voltage_mean REAL;
UPDATE readings SET source = substr(source, 8)
  WHERE source LIKE 'ingest:%' AND substr(source, 8) <> 'simulator' AND substr(source, 8) NOT LIKE 'file:%'
  AND substr(source, 8) NOT IN (SELECT DISTINCT source FROM readings WHERE source NOT LIKE 'ingest:%');
UPDATE readings SET seq = w.rn FROM (SELECT id, row_number() OVER (PARTITION BY source ORDER BY id) - 1 AS rn FROM readings WHERE source LIKE 'file:%') AS w
  WHERE readings.id = w.id;
DELETE FROM readings WHERE id NOT IN (SELECT min(id) FROM readings GROUP BY source, ts, seq);
UPDATE readings SET voltage_mean = (SELECT avg(value) FROM json_each(readings.cells, '$.v')) WHERE json_type(cells, '$.v') = 'array';
CREATE UNIQUE INDEX readings_key ON readings (source, ts, seq);
CREATE TABLE sources (
  name TEXT PRIMARY KEY, cells INTEGER, description TEXT, location TEXT,
  first_seen INTEGER, last_seen INTEGER, readings INTEGER NOT NULL DEFAULT 0
);
INSERT INTO sources (name, cells, first_seen, last_seen, readings)
  SELECT source, (SELECT json_array_length(cells, '$.b') FROM readings r2 WHERE r2.source = readings.source ORDER BY id LIMIT 1),
    min(ts), max(ts), count(*) FROM readings GROUP BY source;
`

/**
 * Version 2: per-minute rollups (count, min, max, sum per channel and source), kept in the same
 * transaction as the readings, so a downsampled read of a month scans 43,200 rows per source
 * instead of 2.6 million (and never blocks serve for seconds).
 */
const ROLLUP_FIELDS = ['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'] as const
const MIGRATION_2 = `
CREATE TABLE rollup_1m (
  source TEXT NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,
  ${ROLLUP_FIELDS.map((f) => `${f}_min REAL, ${f}_max REAL, ${f}_sum REAL, ${f}_n INTEGER NOT NULL DEFAULT 0`).join(', ')},
  PRIMARY KEY (source, minute)
) WITHOUT ROWID;
INSERT INTO rollup_1m SELECT source, (ts / 60000) * 60000, count(*),
  ${ROLLUP_FIELDS.map((f) => `min(${f}), max(${f}), sum(${f}), count(${f})`).join(', ')}
  FROM readings GROUP BY source, ts / 60000;
`
const ROLLUP_UPSERT = `INSERT INTO rollup_1m (source, minute, n, ${ROLLUP_FIELDS.map((f) => `${f}_min, ${f}_max, ${f}_sum, ${f}_n`).join(', ')})
  VALUES (@source, @minute, @n, ${ROLLUP_FIELDS.map((f) => `@${f}_min, @${f}_max, @${f}_sum, @${f}_n`).join(', ')})
  ON CONFLICT (source, minute) DO UPDATE SET n = n + excluded.n,
  ${ROLLUP_FIELDS.map((f) => `${f}_min = min(coalesce(${f}_min, excluded.${f}_min), coalesce(excluded.${f}_min, ${f}_min)), ${f}_max = max(coalesce(${f}_max, excluded.${f}_max), coalesce(excluded.${f}_max, ${f}_max)), ${f}_sum = coalesce(${f}_sum, 0) + coalesce(excluded.${f}_sum, 0), ${f}_n = ${f}_n + excluded.${f}_n`).join(',\n  ')}`
const ROLLUP_BUCKETS = `SELECT CAST((minute - @from) / @width AS INTEGER) AS b, sum(n) AS n,
  ${ROLLUP_FIELDS.map((f, i) => `min(${f}_min) AS ${['reservoir', 'outlet', 'total_power', 'addition', 'vmean'][i]}_min, max(${f}_max) AS ${['reservoir', 'outlet', 'total_power', 'addition', 'vmean'][i]}_max, sum(${f}_sum) / nullif(sum(${f}_n), 0) AS ${['reservoir', 'outlet', 'total_power', 'addition', 'vmean'][i]}_mean`).join(', ')}
  FROM rollup_1m WHERE source = @source AND minute >= @from AND minute <= @to GROUP BY b ORDER BY b`

export class HistoryError extends MfcError {
  constructor(message: string, file: string, cause?: unknown) {
    super(message, {
      code: 'MFC_HISTORY_IO', cause,
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
    migrate(db)
    return db
  } catch (error) {
    db?.close()
    throw new HistoryError(`Cannot open the history database ${file}: ${(error as Error).message}`, file, error)
  }
}

function migrate(db: Db): void {
  const version = db.pragma('user_version', {simple: true}) as number
  if (version >= 2) return
  db.transaction(() => {
    if (version < 1) db.exec(MIGRATION_1)
    db.exec(MIGRATION_2)
    db.pragma('user_version = 2')
  }).immediate()
}

/** Opens (creating or migrating if needed) the SQLite history; better-sqlite3 is loaded only here, lazily. */
export async function openHistory(file: string, options: {retentionDays: number; clock: Clock}): Promise<History> {
  const {default: Database} = await import('better-sqlite3')
  return new SqliteHistory(Database, connect(Database, file), file, options.retentionDays, options.clock)
}

type StatementName = 'insert' | 'latest' | 'latestOf' | 'page' | 'pageOf' | 'count' | 'prune' | 'pruned' | 'get' | 'put'
  | 'buckets' | 'sources' | 'source' | 'touch' | 'register' | 'forget' | 'rollup' | 'rollupBuckets' | 'rollupPrune'

const AGGREGATES = [['reservoir', 'reservoir'], ['outlet', 'outlet'], ['total_power', 'total_power'], ['addition', 'addition'], ['voltage_mean', 'vmean']]
  .map(([column, alias]) => `min(${column}) AS ${alias}_min, max(${column}) AS ${alias}_max, avg(${column}) AS ${alias}_mean`).join(', ')
const BUCKET_ALIASES = ['reservoir', 'outlet', 'total_power', 'addition', 'vmean']

class SqliteHistory implements History {
  private statements!: Record<StatementName, Statement>
  private insertMany!: (readings: readonly Reading[], options: InsertOptions) => Reading[]
  private closed = false

  constructor(private readonly Database: DatabaseClass, private db: Db, readonly file: string, readonly retentionDays: number, private readonly clock: Clock) {
    this.attach(db)
  }

  private attach(db: Db): void {
    this.db = db
    this.statements = {
      insert: db.prepare(`INSERT INTO readings (ts, source, run_id, time_hours, reservoir, outlet, total_power, addition, q_action, epsilon, reward, cells, seq, voltage_mean)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, ts, seq) DO NOTHING`),
      latest: db.prepare('SELECT * FROM (SELECT * FROM readings ORDER BY id DESC LIMIT ?) ORDER BY id'),
      latestOf: db.prepare('SELECT * FROM (SELECT * FROM readings WHERE source = ? ORDER BY ts DESC, seq DESC LIMIT ?) ORDER BY ts, seq'),
      page: db.prepare(`SELECT * FROM readings WHERE id > @after AND ts >= @from AND ts <= @to
        AND (@run IS NULL OR run_id = @run) ORDER BY id LIMIT @limit`),
      pageOf: db.prepare(`SELECT * FROM readings WHERE source = @source AND (ts, seq) > (@afterTs, @afterSeq) AND ts >= @from AND ts <= @to
        AND (@run IS NULL OR run_id = @run) ORDER BY ts, seq LIMIT @limit`),
      count: db.prepare('SELECT count(*) AS n FROM readings'),
      prune: db.prepare('DELETE FROM readings WHERE ts < ?'),
      pruned: db.prepare('SELECT source, count(*) AS n, (SELECT min(ts) FROM readings r2 WHERE r2.source = readings.source AND r2.ts >= @cutoff) AS first FROM readings WHERE ts < @cutoff GROUP BY source'),
      get: db.prepare('SELECT value FROM settings WHERE key = ?'),
      put: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      buckets: db.prepare(`SELECT CAST((ts - @from) / @width AS INTEGER) AS b, count(*) AS n, ${AGGREGATES} FROM readings
        WHERE source = @source AND ts >= @from AND ts <= @to GROUP BY b ORDER BY b`),
      sources: db.prepare('SELECT * FROM sources ORDER BY name'),
      source: db.prepare('SELECT * FROM sources WHERE name = ?'),
      touch: db.prepare(`INSERT INTO sources (name, cells, first_seen, last_seen, readings) VALUES (@name, @cells, @first, @last, @n)
        ON CONFLICT (name) DO UPDATE SET cells = coalesce(cells, excluded.cells), first_seen = min(coalesce(first_seen, excluded.first_seen), excluded.first_seen),
        last_seen = max(coalesce(last_seen, excluded.last_seen), excluded.last_seen), readings = readings + excluded.readings`),
      register: db.prepare(`INSERT INTO sources (name, cells, description, location) VALUES (@name, @cells, @description, @location)
        ON CONFLICT (name) DO UPDATE SET cells = CASE WHEN @setCells THEN excluded.cells ELSE cells END,
        description = CASE WHEN @setDescription THEN excluded.description ELSE description END,
        location = CASE WHEN @setLocation THEN excluded.location ELSE location END`),
      rollup: db.prepare(ROLLUP_UPSERT),
      rollupBuckets: db.prepare(ROLLUP_BUCKETS),
      rollupPrune: db.prepare('DELETE FROM rollup_1m WHERE minute < ?'),
      forget: db.prepare('UPDATE sources SET readings = max(0, readings - @n), first_seen = @first, last_seen = CASE WHEN @first IS NULL THEN NULL ELSE last_seen END WHERE name = @name'),
    }
    this.insertMany = db.transaction((readings: readonly Reading[], options: InsertOptions) => {
      const stored: Reading[] = []
      const touched = new Map<string, {name: string; cells: number | null; first: number; last: number; n: number}>()
      const minutes = new Map<string, Record<string, number | string | null>>()
      for (const [i, r] of readings.entries()) {
        const row = toRow(r, options.seqs?.[i] ?? 0)
        if (this.statements.insert.run(...row).changes === 0) continue
        stored.push(r)
        addToRollup(minutes, r.source, row)
        const ts = row[0] as number
        const seen = touched.get(r.source)
        if (seen) Object.assign(seen, {first: Math.min(seen.first, ts), last: Math.max(seen.last, ts), n: seen.n + 1})
        else touched.set(r.source, {name: r.source, cells: cellsOf(r), first: ts, last: ts, n: 1})
      }

      for (const t of touched.values()) this.statements.touch.run(t)
      for (const m of minutes.values()) this.statements.rollup.run(m)
      if (options.setting) this.statements.put.run(options.setting.key, options.setting.value)
      return stored
    })
  }

  async insert(readings: readonly Reading[], options: InsertOptions = {}): Promise<Reading[]> {
    return this.guard('write', () => this.insertMany(readings, options))
  }

  async latest(limit: number, source?: string): Promise<Reading[]> {
    return this.guard('read', () => (source === undefined
      ? this.statements.latest.all(clampLimit(limit))
      : this.statements.latestOf.all(source, clampLimit(limit)) as Row[]).map((row) => fromRow(row as Row)))
  }

  async range(query: RangeQuery): Promise<Reading[]> {
    const limit = clampLimit(query.limit ?? 1000)
    return this.guard('read', () => this.page(query, undefined, limit).map(fromRow))
  }

  async * pages(query: Omit<RangeQuery, 'limit'> = {}): AsyncGenerator<Reading[]> {
    let after: Row | undefined
    for (;;) {
      const rows = this.guard('read', () => this.page(query, after, PAGE))
      if (rows.length === 0) return
      after = rows.at(-1)!
      yield rows.map(fromRow)
      if (rows.length < PAGE) return
    }
  }

  async buckets(query: BucketQuery): Promise<Bucket[]> {
    const width = Math.max(1, Math.trunc(query.bucketMs))
    const from = Math.trunc(query.from)
    // Whole minutes from a minute boundary: the rollups hold exactly these buckets' aggregates.
    const statement = width % 60_000 === 0 && from % 60_000 === 0 ? this.statements.rollupBuckets : this.statements.buckets
    const rows = this.guard('read', () => statement.all({source: query.source, from, to: Math.trunc(query.to), width})) as Record<string, number | null>[]
    return rows.map((row) => {
      const values = Object.fromEntries(BUCKET_FIELDS.map((field, i) => {
        const alias = BUCKET_ALIASES[i]
        const min = row[`${alias}_min`]
        return [field, min === null ? null : [min, row[`${alias}_max`]!, row[`${alias}_mean`]!]]
      })) as Bucket['values']
      return {t: Math.trunc(query.from) + (row.b as number) * width, n: row.n as number, values}
    })
  }

  async sources(): Promise<SourceInfo[]> {
    return this.guard('read', () => this.statements.sources.all() as SourceInfo[])
  }

  async source(name: string): Promise<SourceInfo | undefined> {
    return this.guard('read', () => this.statements.source.get(name) as SourceInfo | undefined)
  }

  async putSource(registration: SourceRegistration): Promise<SourceInfo> {
    const has = (key: keyof SourceRegistration) => (registration[key] === undefined ? 0 : 1)
    return this.guard('write', () => {
      this.statements.register.run({
        name: registration.name, cells: registration.cells ?? null, description: registration.description ?? null, location: registration.location ?? null,
        setCells: has('cells'), setDescription: has('description'), setLocation: has('location'),
      })
      return this.statements.source.get(registration.name) as SourceInfo
    })
  }

  async count(): Promise<number> {
    return this.guard('read', () => (this.statements.count.get() as {n: number}).n)
  }

  async prune(): Promise<number> {
    if (this.retentionDays <= 0) return 0
    const cutoff = this.clock.now().getTime() - this.retentionDays * 86_400_000
    return this.guard('write', () => this.db.transaction(() => {
      const gone = this.statements.pruned.all({cutoff}) as {source: string; n: number; first: number | null}[]
      for (const g of gone) this.statements.forget.run({name: g.source, n: g.n, first: g.first})
      // Minutes wholly before the cutoff; a minute straddling it keeps its rollup until the next prune.
      this.statements.rollupPrune.run(Math.floor(cutoff / 60_000) * 60_000)
      return this.statements.prune.run(cutoff).changes
    })())
  }

  async getSetting(key: string): Promise<string | undefined> {
    return this.guard('read', () => (this.statements.get.get(key) as {value: string} | undefined)?.value)
  }

  async putSetting(key: string, value: string): Promise<void> {
    this.guard('write', () => this.statements.put.run(key, value))
  }

  async reopen(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      this.db.close()
    }

    this.attach(connect(this.Database, this.file))
    this.closed = false
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.db.close()
  }

  private page(query: Omit<RangeQuery, 'limit'>, after: Row | undefined, limit: number): Row[] {
    const bounds = {from: query.from ?? 0, to: query.to ?? Number.MAX_SAFE_INTEGER, run: query.runId ?? null, limit}
    if (query.source === undefined) return this.statements.page.all({...bounds, after: after?.id ?? 0}) as Row[]
    return this.statements.pageOf.all({...bounds, source: query.source, afterTs: after?.ts ?? -1, afterSeq: after?.seq ?? 0}) as Row[]
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

/** Adds one stored row (toRow's order) to its source-minute's aggregates. */
function addToRollup(minutes: Map<string, Record<string, number | string | null>>, source: string, row: unknown[]): void {
  const minute = Math.floor((row[0] as number) / 60_000) * 60_000
  const key = `${source}\u0000${minute}`
  let m = minutes.get(key)
  if (!m) {
    m = {source, minute, n: 0}
    for (const f of ROLLUP_FIELDS) Object.assign(m, {[`${f}_min`]: null, [`${f}_max`]: null, [`${f}_sum`]: null, [`${f}_n`]: 0})
    minutes.set(key, m)
  }

  m.n = (m.n as number) + 1
  const values = [row[4], row[5], row[6], row[7], row[13]] as (number | null)[]
  for (const [i, f] of ROLLUP_FIELDS.entries()) {
    const v = values[i]
    if (v === null || v === undefined) continue
    m[`${f}_min`] = m[`${f}_min`] === null ? v : Math.min(m[`${f}_min`] as number, v)
    m[`${f}_max`] = m[`${f}_max`] === null ? v : Math.max(m[`${f}_max`] as number, v)
    m[`${f}_sum`] = ((m[`${f}_sum`] as number | null) ?? 0) + v
    m[`${f}_n`] = (m[`${f}_n`] as number) + 1
  }
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(Math.trunc(limit) || 1, MAX_QUERY_LIMIT))
}

function cellsOf(r: Reading): number | null {
  const n = r.cell_voltages?.length ?? r.cell_powers?.length ?? r.biofilm_thicknesses.length
  return n > 0 ? n : null
}

function toRow(r: Reading, seq: number): unknown[] {
  const cells = JSON.stringify({b: r.biofilm_thicknesses, v: r.cell_voltages, p: r.cell_powers, ph: r.cell_ph, t: r.cell_temperatures})
  const voltages = r.cell_voltages
  const voltageMean = voltages && voltages.length > 0 ? voltages.reduce((a, b) => a + b, 0) / voltages.length : null
  return [Date.parse(r.timestamp), r.source, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power,
    r.substrate_addition_rate, r.q_action, r.epsilon, r.reward, cells, seq, voltageMean]
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
