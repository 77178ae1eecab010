import type {Clock} from '../../lib/clock.js'
import {MfcError} from '../../lib/errors.js'
import {type PgDatabase, type PgQueryable, isStoreUnavailable} from './postgres.js'
import {HistoryError} from '../data/history.js'
import {type Row as SqliteRow, fromRow as readingFromRow} from '../data/history-schema.js'
import {type Bucket, type BucketQuery, BUCKET_FIELDS, type History, type InsertOptions, MAX_QUERY_LIMIT, type RangeQuery, type SourceInfo, type SourceRegistration} from '../data/history-types.js'
import type {Reading} from '../data/reading.js'

/**
 * The `History` role on PostgreSQL (cluster mode): the SQLite adapter's tables and queries
 * (migration 4 of src/services/storage/migrations.ts), every statement through the one pg
 * adapter (src/services/storage/postgres.ts).
 *
 * Design notes:
 * - A batch is ONE statement inside one transaction: `unnest` of 15 arrays (one parameter per
 *   column, whatever the batch size, so no 65535-parameter limit) feeds the INSERT, and
 *   data-modifying CTEs fold the rows that were new (RETURNING) into the per-minute rollups and
 *   the sources registry. Readings of other nodes committed meanwhile are never counted twice:
 *   only this statement's RETURNING rows are folded.
 * - Every node writes the same tables: rollups and sources are upserted sorted by key, so two
 *   nodes' transactions lock rows in the same order; a deadlock or serialization failure that
 *   still happens is retried (the batch is idempotent: first write wins).
 * - `count()` sums the registry's per-source counts (kept in the same transaction as the rows)
 *   instead of `count(*)`, which scans the whole table in PostgreSQL.
 */

/** Rows per page of a streamed export (as the SQLite adapter). */
const PAGE = 1000
/** Times a batch is retried after a deadlock/serialization failure between nodes. */
const CONFLICT_RETRIES = 3
/** What the API tells a client to wait before retrying while the database is unreachable. */
export const HISTORY_RETRY_AFTER_S = 5

const ROLLUP_FIELDS = ['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'] as const
const ALIASES = ['reservoir', 'outlet', 'total_power', 'addition', 'vmean'] as const
const COLUMNS = 'ts, source, run_id, time_hours, reservoir, outlet, total_power, addition, q_action, epsilon, reward, cells, seq, voltage_mean'

const INSERT = `WITH input AS (
  SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[], $5::float8[], $6::float8[], $7::float8[], $8::float8[],
    $9::int[], $10::float8[], $11::float8[], $12::text[], $13::bigint[], $14::float8[], $15::int[])
    WITH ORDINALITY AS t(${COLUMNS}, ncells, ord)
), ins AS (
  INSERT INTO mfc_readings (${COLUMNS}) SELECT ${COLUMNS} FROM input ORDER BY ord
  ON CONFLICT (source, ts, seq) DO NOTHING
  RETURNING source, ts, seq, ${ROLLUP_FIELDS.join(', ')}
), roll AS (
  INSERT INTO mfc_rollup_1m (source, minute, n, ${ROLLUP_FIELDS.map((f) => `${f}_min, ${f}_max, ${f}_sum, ${f}_n`).join(', ')})
  SELECT source, (ts / 60000) * 60000, count(*), ${ROLLUP_FIELDS.map((f) => `min(${f}), max(${f}), sum(${f}), count(${f})`).join(', ')}
  FROM ins GROUP BY 1, 2 ORDER BY 1, 2
  ON CONFLICT (source, minute) DO UPDATE SET n = mfc_rollup_1m.n + excluded.n,
  ${ROLLUP_FIELDS.map((f) => `${f}_min = least(mfc_rollup_1m.${f}_min, excluded.${f}_min), ${f}_max = greatest(mfc_rollup_1m.${f}_max, excluded.${f}_max), ${f}_sum = CASE WHEN mfc_rollup_1m.${f}_sum IS NULL AND excluded.${f}_sum IS NULL THEN NULL ELSE coalesce(mfc_rollup_1m.${f}_sum, 0) + coalesce(excluded.${f}_sum, 0) END, ${f}_n = mfc_rollup_1m.${f}_n + excluded.${f}_n`).join(',\n  ')}
), src AS (
  INSERT INTO mfc_sources (name, cells, first_seen, last_seen, readings)
  SELECT i.source, (SELECT ncells FROM input WHERE input.source = i.source ORDER BY ord LIMIT 1), min(i.ts), max(i.ts), count(*)
  FROM ins i GROUP BY i.source ORDER BY i.source
  ON CONFLICT (name) DO UPDATE SET cells = coalesce(mfc_sources.cells, excluded.cells), first_seen = least(mfc_sources.first_seen, excluded.first_seen),
  last_seen = greatest(mfc_sources.last_seen, excluded.last_seen), readings = mfc_sources.readings + excluded.readings
)
SELECT source, ts::text AS ts, seq::text AS seq FROM ins`

const AGGREGATES = [['reservoir', 'reservoir'], ['outlet', 'outlet'], ['total_power', 'total_power'], ['addition', 'addition'], ['voltage_mean', 'vmean']]
  // The mean summed in numeric: a float8 sum() adds naively and misses the correctly rounded
  // mean in the last digit where SQLite's compensated sum() does not (the contract compares).
  .map(([column, alias]) => `min(${column}) AS ${alias}_min, max(${column}) AS ${alias}_max, (avg(${column}::numeric))::float8 AS ${alias}_mean`).join(', ')
const RAW_BUCKETS = `SELECT (ts - $2) / $4 AS b, count(*) AS n, ${AGGREGATES} FROM mfc_readings
  WHERE source = $1 AND ts >= $2 AND ts <= $3 GROUP BY b ORDER BY b`
const ROLLUP_BUCKETS = `SELECT (minute - $2) / $4 AS b, sum(n) AS n,
  ${ROLLUP_FIELDS.map((f, i) => `min(${f}_min) AS ${ALIASES[i]}_min, max(${f}_max) AS ${ALIASES[i]}_max, sum(${f}_sum) / nullif(sum(${f}_n), 0) AS ${ALIASES[i]}_mean`).join(', ')}
  FROM mfc_rollup_1m WHERE source = $1 AND minute >= $2 AND minute <= $3 GROUP BY b ORDER BY b`

/**
 * Deletes the rows past the retention and, from the rows this statement deleted (RETURNING),
 * lowers the sources' counts: two nodes pruning at once never subtract the same rows twice.
 */
const PRUNE = `WITH gone AS (DELETE FROM mfc_readings WHERE ts < $1 RETURNING source),
g AS (SELECT source, count(*) AS n FROM gone GROUP BY source ORDER BY source),
up AS (UPDATE mfc_sources s SET readings = greatest(0, s.readings - g.n),
  first_seen = f.first, last_seen = CASE WHEN f.first IS NULL THEN NULL ELSE s.last_seen END
  FROM g, LATERAL (SELECT min(ts) AS first FROM mfc_readings r WHERE r.source = g.source AND r.ts >= $1) f WHERE s.name = g.source),
roll AS (DELETE FROM mfc_rollup_1m WHERE minute < $2)
SELECT coalesce(sum(n), 0)::text AS n FROM g`

const SOURCE_COLUMNS = 'name, cells, description, location, first_seen, last_seen, readings'

/** A reading's row as pg returns it: the bigint columns (id, ts, seq) as text. */
type Row = Omit<SqliteRow, 'id' | 'ts' | 'seq'> & {id: string; ts: string; seq: string}

/** What `storedAfter` answers: the readings (with their seq), and what was left out of them. */
export interface StoredAfter {
  readings: {seq: number; reading: Reading}[]
  left?: {count: number; from: string; to: string}
}

type SourceRow = Omit<SourceInfo, 'first_seen' | 'last_seen' | 'readings'> & {first_seen: string | null; last_seen: string | null; readings: string}

/** The database is unreachable (down, restarting): a typed error the API answers with 503 + Retry-After. */
export class HistoryUnavailableError extends MfcError {
  readonly retryAfterSeconds = HISTORY_RETRY_AFTER_S
  constructor(message: string, label: string, cause?: unknown) {
    super(message, {
      code: 'MFC_HISTORY_UNAVAILABLE', cause,
      suggestions: [`Start PostgreSQL or fix the network to ${label}; clients retry after ${HISTORY_RETRY_AFTER_S} s and nothing acknowledged is lost.`],
    })
  }
}

/** Any other failure of the PostgreSQL history (a query, the schema): the database's own next step. */
class PgHistoryError extends MfcError {
  constructor(message: string, label: string, cause: unknown) {
    const hints = (cause as {suggestions?: string[]}).suggestions
    super(message, {
      code: 'MFC_HISTORY_IO', cause,
      suggestions: hints && hints.length > 0 ? hints : [`Check the database at ${label}, then run \`mfc storage migrate\` if the schema is missing.`],
    })
  }
}

/** What PgHistory needs: a way to (re)open the pool it owns, and the retention of the data keys. */
export interface PgHistoryOptions {
  connect(): Promise<PgDatabase>
  retentionDays: number
  clock: Clock
}

/** Opens the PostgreSQL history (the schema must be migrated: `mfc storage migrate`). */
export async function openPgHistory(options: PgHistoryOptions): Promise<PgHistory> {
  return new PgHistory(await options.connect(), options)
}

/**
 * `History` on PostgreSQL; its contract is the role's (src/services/data/history-types.ts) and
 * test/unit/data/history-contract.ts runs against it. Calls may run concurrently (a pool); each
 * insert is one transaction, so readers on any node see whole batches only.
 */
export class PgHistory implements History {
  private closed = false
  readonly retentionDays: number

  constructor(private db: PgDatabase, private readonly options: PgHistoryOptions) {
    this.retentionDays = options.retentionDays
  }

  /** The database's redacted URL: what messages name. */
  get file(): string {
    return this.db.label
  }

  async insert(readings: readonly Reading[], options: InsertOptions = {}): Promise<Reading[]> {
    return this.guard('write', async () => {
      const columns = toColumns(readings, options.seqs)
      for (let attempt = 0; ; attempt++) {
        try {
          const keys = await this.db.transaction(async (tx) => {
            const rows = readings.length === 0 ? [] : await tx.query<{source: string; ts: string; seq: string}>(INSERT, columns)
            if (options.setting) await putSetting(tx, options.setting.key, options.setting.value)
            return rows
          })
          return storedOf(readings, options.seqs, keys)
        } catch (error) {
          if (attempt >= CONFLICT_RETRIES || !/deadlock|could not serialize/i.test((error as Error).message)) throw error
        }
      }
    })
  }

  async latest(limit: number, source?: string): Promise<Reading[]> {
    const rows = await this.guard('read', () => (source === undefined
      ? this.db.query<Row>('SELECT * FROM (SELECT * FROM mfc_readings ORDER BY id DESC LIMIT $1) t ORDER BY id', [clampLimit(limit)])
      : this.db.query<Row>('SELECT * FROM (SELECT * FROM mfc_readings WHERE source = $1 ORDER BY ts DESC, seq DESC LIMIT $2) t ORDER BY ts, seq', [source, clampLimit(limit)])))
    return rows.map(fromRow)
  }

  async range(query: RangeQuery): Promise<Reading[]> {
    return (await this.guard('read', () => this.page(query, undefined, clampLimit(query.limit ?? 1000)))).map(fromRow)
  }

  async* pages(query: Omit<RangeQuery, 'limit'> = {}): AsyncGenerator<Reading[]> {
    let after: Row | undefined
    for (;;) {
      const rows = await this.guard('read', () => this.page(query, after, PAGE))
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
    const sql = width % 60_000 === 0 && from % 60_000 === 0 ? ROLLUP_BUCKETS : RAW_BUCKETS
    const rows = await this.guard('read', () => this.db.query<Record<string, string | number | null>>(sql, [query.source, from, Math.trunc(query.to), width]))
    return rows.map((row) => {
      const values = Object.fromEntries(BUCKET_FIELDS.map((field, i) => {
        const alias = ALIASES[i]
        const min = row[`${alias}_min`]
        return [field, min === null ? null : [Number(min), Number(row[`${alias}_max`]), Number(row[`${alias}_mean`])]]
      })) as Bucket['values']
      return {t: from + Number(row.b) * width, n: Number(row.n), values}
    })
  }

  async sources(): Promise<SourceInfo[]> {
    return (await this.guard('read', () => this.db.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mfc_sources ORDER BY name COLLATE "C"`))).map(fromSourceRow)
  }

  async source(name: string): Promise<SourceInfo | undefined> {
    const [row] = await this.guard('read', () => this.db.query<SourceRow>(`SELECT ${SOURCE_COLUMNS} FROM mfc_sources WHERE name = $1`, [name]))
    return row && fromSourceRow(row)
  }

  async putSource(registration: SourceRegistration): Promise<SourceInfo> {
    const set = (key: keyof SourceRegistration) => registration[key] !== undefined
    const [row] = await this.guard('write', () => this.db.query<SourceRow>(`INSERT INTO mfc_sources (name, cells, description, location) VALUES ($1, $2, $3, $4)
      ON CONFLICT (name) DO UPDATE SET cells = CASE WHEN $5 THEN excluded.cells ELSE mfc_sources.cells END,
      description = CASE WHEN $6 THEN excluded.description ELSE mfc_sources.description END,
      location = CASE WHEN $7 THEN excluded.location ELSE mfc_sources.location END
      RETURNING ${SOURCE_COLUMNS}`, [registration.name, registration.cells ?? null, registration.description ?? null, registration.location ?? null,
      set('cells'), set('description'), set('location')]))
    return fromSourceRow(row)
  }

  async count(): Promise<number> {
    const [row] = await this.guard('read', () => this.db.query<{n: string}>('SELECT coalesce(sum(readings), 0)::text AS n FROM mfc_sources'))
    return Number(row.n)
  }

  async prune(): Promise<number> {
    if (this.retentionDays <= 0) return 0
    const cutoff = this.options.clock.now().getTime() - this.retentionDays * 86_400_000
    // Minutes wholly before the cutoff; a minute straddling it keeps its rollup until the next prune.
    const [row] = await this.guard('write', () => this.db.transaction((tx) => tx.query<{n: string}>(PRUNE, [cutoff, Math.floor(cutoff / 60_000) * 60_000])))
    return Number(row.n)
  }

  async getSetting(key: string): Promise<string | undefined> {
    const [row] = await this.guard('read', () => this.db.query<{value: string}>('SELECT value FROM mfc_history_settings WHERE key = $1', [key]))
    return row?.value
  }

  async putSetting(key: string, value: string): Promise<void> {
    await this.guard('write', () => putSetting(this.db, key, value))
  }

  /** The newest reading id committed so far (0 for an empty history): the cluster catch-up's watermark. */
  async highWater(): Promise<number> {
    const [row] = await this.guard('read', () => this.db.query<{id: string}>('SELECT coalesce(max(id), 0)::text AS id FROM mfc_readings'))
    return Number(row.id)
  }

  /**
   * Readings stored after id `after`, in insertion (id) order: the newest `limit` of them, and
   * how many older ones past `after` were left out with their time range (a catch-up's bound).
   */
  async storedAfter(after: number, limit: number): Promise<StoredAfter> {
    // Not MAX_QUERY_LIMIT: the fan-out asks for its cap plus what it may already have shown.
    const most = Math.max(1, Math.min(Math.trunc(limit) || 1, 100_000))
    return this.guard('read', async () => {
      const rows = await this.db.query<Row>('SELECT * FROM (SELECT * FROM mfc_readings WHERE id > $1 ORDER BY id DESC LIMIT $2) t ORDER BY id', [after, most])
      const readings = rows.map((row) => ({seq: Number(row.seq), reading: fromRow(row)}))
      if (rows.length < most) return {readings}
      const [left] = await this.db.query<{n: string; first: string | null; last: string | null}>(`SELECT count(*)::text AS n, min(ts)::text AS first, max(ts)::text AS last
        FROM mfc_readings WHERE id > $1 AND id < $2`, [after, rows[0].id])
      const count = Number(left.n)
      return count === 0 ? {readings} : {readings, left: {count, from: new Date(Number(left.first)).toISOString(), to: new Date(Number(left.last)).toISOString()}}
    })
  }

  /** Nothing to rename into place on a server: a new pool (the old one closed) on the same URL. */
  async reopen(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      await this.db.close()
    }

    try {
      this.db = await this.options.connect()
    } catch (error) {
      throw this.wrapped('reopen', error)
    }

    this.closed = false
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.db.close()
  }

  private page(query: Omit<RangeQuery, 'limit'>, after: Row | undefined, limit: number): Promise<Row[]> {
    const bounds = [query.from ?? 0, query.to ?? Number.MAX_SAFE_INTEGER, query.runId ?? null, limit]
    if (query.source === undefined) {
      return this.db.query<Row>(`SELECT * FROM mfc_readings WHERE id > $5 AND ts >= $1 AND ts <= $2 AND ($3::text IS NULL OR run_id = $3)
        ORDER BY id LIMIT $4`, [...bounds, after?.id ?? '0'])
    }

    return this.db.query<Row>(`SELECT * FROM mfc_readings WHERE source = $5 AND (ts, seq) > ($6::bigint, $7::bigint) AND ts >= $1 AND ts <= $2
      AND ($3::text IS NULL OR run_id = $3) ORDER BY ts, seq LIMIT $4`, [...bounds, query.source, after?.ts ?? '-1', after?.seq ?? '0'])
  }

  private async guard<T>(what: 'read' | 'write', work: () => Promise<T>): Promise<T> {
    if (this.closed) throw new HistoryError(`The history database ${this.file} is closed`, this.file)
    try {
      return await work()
    } catch (error) {
      throw this.wrapped(what, error)
    }
  }

  private wrapped(what: string, error: unknown): MfcError {
    if (error instanceof HistoryError || error instanceof HistoryUnavailableError || error instanceof PgHistoryError) return error
    const message = `Cannot ${what} the history database ${this.file}: ${(error as Error).message}`
    return isStoreUnavailable(error) ? new HistoryUnavailableError(message, this.file, error) : new PgHistoryError(message, this.file, error)
  }
}

function putSetting(db: PgQueryable, key: string, value: string): Promise<unknown> {
  return db.query('INSERT INTO mfc_history_settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value])
}

/** The batch as the 15 column arrays of INSERT; an unreadable timestamp fails the whole batch. */
function toColumns(readings: readonly Reading[], seqs: readonly number[] | undefined): unknown[][] {
  const columns: unknown[][] = Array.from({length: 15}, () => [])
  for (const [i, r] of readings.entries()) {
    const ts = Date.parse(r.timestamp)
    if (!Number.isFinite(ts)) throw new Error(`reading ${i} of the batch has an unreadable timestamp ${JSON.stringify(r.timestamp).slice(0, 40)}`)
    const voltages = r.cell_voltages
    const cells = r.cell_voltages?.length ?? r.cell_powers?.length ?? r.biofilm_thicknesses.length
    const values = [ts, r.source, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power, r.substrate_addition_rate,
      r.q_action, r.epsilon, r.reward, JSON.stringify({b: r.biofilm_thicknesses, v: r.cell_voltages, p: r.cell_powers, ph: r.cell_ph, t: r.cell_temperatures}),
      seqs?.[i] ?? 0, voltages && voltages.length > 0 ? voltages.reduce((a, b) => a + b, 0) / voltages.length : null, cells > 0 ? cells : null]
    for (const [c, value] of values.entries()) columns[c].push(value)
  }

  return columns
}

/** The input readings whose key the INSERT returned, in input order; a key repeated in the batch counts once (its first). */
function storedOf(readings: readonly Reading[], seqs: readonly number[] | undefined, keys: {source: string; ts: string; seq: string}[]): Reading[] {
  const returned = new Set(keys.map((k) => `${k.source}\u0000${k.ts}\u0000${k.seq}`))
  const stored: Reading[] = []
  for (const [i, r] of readings.entries()) {
    const key = `${r.source}\u0000${Date.parse(r.timestamp)}\u0000${seqs?.[i] ?? 0}`
    if (!returned.delete(key)) continue
    stored.push(r)
  }

  return stored
}

function clampLimit(limit: number): number {
  return Math.max(1, Math.min(Math.trunc(limit) || 1, MAX_QUERY_LIMIT))
}

function fromSourceRow(row: SourceRow): SourceInfo {
  const ms = (value: string | null) => (value === null ? null : Number(value))
  return {name: row.name, cells: row.cells, description: row.description, location: row.location, first_seen: ms(row.first_seen), last_seen: ms(row.last_seen), readings: Number(row.readings)}
}

/** A PostgreSQL row as a reading: the same mapping as SQLite's, with bigint columns as numbers. */
function fromRow(row: Row): Reading {
  return readingFromRow({...row, id: Number(row.id), ts: Number(row.ts), seq: Number(row.seq)})
}
