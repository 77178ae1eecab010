import type {Reading} from './reading.js'

/** Largest `limit` of a latest/range read. */
export const MAX_QUERY_LIMIT = 10_000
/** Most buckets one downsampled read returns (a chart is never wider than this in pixels). */
export const MAX_BUCKETS = 2000

export interface RangeQuery {
  /** Inclusive bounds in ms since the epoch. */
  from?: number
  to?: number
  limit?: number
  source?: string
  runId?: string
}

/** The scalar channels a downsampled read aggregates (per-cell arrays are summarised by their mean). */
export const BUCKET_FIELDS = ['reservoir_concentration', 'outlet_concentration', 'total_power', 'substrate_addition_rate', 'cell_voltage_mean'] as const
export type BucketField = (typeof BUCKET_FIELDS)[number]

export interface BucketQuery {
  source: string
  /** Inclusive bounds in ms since the epoch; `to` >= `from`. */
  from: number
  to: number
  /** Width of one bucket in ms (>= 1); bucket i covers [from + i*width, from + (i+1)*width). */
  bucketMs: number
}

/** One bucket of a downsampled read: only buckets holding at least one reading are returned. */
export interface Bucket {
  /** Start of the bucket, ms since the epoch. */
  t: number
  /** Readings in the bucket. */
  n: number
  /** Per field: [min, max, mean] over the bucket's readings (mean cell voltage: of the per-reading means). */
  values: Record<BucketField, [number, number, number] | null>
}

/** A source as registered (on first data, or by the API/CLI). */
export interface SourceInfo {
  name: string
  cells: number | null
  description: string | null
  location: string | null
  /** ms since the epoch of the first and newest stored reading (null before any data). */
  first_seen: number | null
  last_seen: number | null
  readings: number
}

export interface SourceRegistration {
  name: string
  cells?: number | null
  description?: string | null
  location?: string | null
}

export interface InsertOptions {
  /** A setting written in the same transaction (the follower's offset). */
  setting?: {key: string; value: string}
  /**
   * Per reading, a discriminator that is part of the deduplication key with (source, timestamp).
   * 0 when absent. Only the CSV follower sets it (all rows of one scan carry the file's mtime).
   */
  seqs?: readonly number[]
}

/**
 * The monitoring history, one role with one adapter per backend (SQLite here; PostgreSQL in
 * cluster mode). The contract, checked by test/unit/data/history-contract.ts against every
 * adapter:
 * - `insert` writes a whole batch in one transaction and returns only once it is durable, or
 *   throws and writes nothing. Readings are keyed by (source, timestamp, seq): a reading whose
 *   key is already stored is skipped (first write wins), so a redelivered MQTT message or a
 *   retried POST stores nothing twice. Returns the readings it stored, in input order (the same
 *   objects), and registers every new source (cells taken from the first reading's arrays).
 * - Readers see whole batches only. Lists come back oldest first (by insertion order for
 *   `latest`/`range`/`pages`, by time for `buckets`).
 * - `latest(limit, source)` is the newest `limit` (1..MAX_QUERY_LIMIT) stored readings, of
 *   one source when given; an unknown source gives [] (not an error).
 * - `buckets` aggregates min/max/mean per bucket in the store itself, so a month of 1 Hz data
 *   never leaves the database as rows; empty buckets are omitted.
 * - `putSource` upserts the given fields only (others keep their value); `source` is undefined
 *   for an unknown name.
 * - Every call returns a promise; calls may overlap (the SQLite adapter commits in a worker
 *   thread and reads on its own connection, PostgreSQL uses a pool), and a reader sees a batch
 *   only once its `insert` has resolved or later. A caller that needs order awaits.
 * - After `close` every call rejects with HistoryError; `close` is idempotent and resolves once
 *   the connections are closed (writes submitted before it finish or reject first).
 */
export interface History {
  insert(readings: readonly Reading[], options?: InsertOptions): Promise<Reading[]>
  latest(limit: number, source?: string): Promise<Reading[]>
  range(query: RangeQuery): Promise<Reading[]>
  /** Keyset-paged scan, so a long export never holds the connection between pages. */
  pages(query?: Omit<RangeQuery, 'limit'>): AsyncGenerator<Reading[]>
  buckets(query: BucketQuery): Promise<Bucket[]>
  sources(): Promise<SourceInfo[]>
  source(name: string): Promise<SourceInfo | undefined>
  putSource(registration: SourceRegistration): Promise<SourceInfo>
  count(): Promise<number>
  /** Deletes readings older than the retention; returns how many. 0 days keeps everything. */
  prune(): Promise<number>
  getSetting(key: string): Promise<string | undefined>
  putSetting(key: string, value: string): Promise<void>
  /**
   * Closes the connections and opens `file` again, so a database renamed into place (`mfc
   * restore`) is the one written from now on instead of the replaced, unlinked one. Writes
   * submitted before it commit to the old file first; if the open fails the store stays closed
   * (calls reject with HistoryError) and the next reopen tries again.
   */
  reopen(): Promise<void>
  readonly file: string
  readonly retentionDays: number
  close(): Promise<void>
}
