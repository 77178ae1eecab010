import {dirname} from 'node:path'

import {MfcError} from '../../lib/errors.js'
import {MAX_QUERY_LIMIT} from './history-types.js'
import type {Reading} from './reading.js'

/**
 * The SQLite history's schema, SQL and row mapping, shared by the main thread's reader and the
 * writer thread (history.ts, the one module that loads better-sqlite3). Nothing here touches a
 * database.
 */

/** Rows per page of a streamed export or range read; bounds memory and lock time. */
export const PAGE = 1000

export interface Row {
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

export const SCHEMA = `
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
export const MIGRATION_1 = `
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
export const ROLLUP_FIELDS = ['reservoir', 'outlet', 'total_power', 'addition', 'voltage_mean'] as const
export const MIGRATION_2 = `
CREATE TABLE rollup_1m (
  source TEXT NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,
  ${ROLLUP_FIELDS.map((f) => `${f}_min REAL, ${f}_max REAL, ${f}_sum REAL, ${f}_n INTEGER NOT NULL DEFAULT 0`).join(', ')},
  PRIMARY KEY (source, minute)
) WITHOUT ROWID;
INSERT INTO rollup_1m SELECT source, (ts / 60000) * 60000, count(*),
  ${ROLLUP_FIELDS.map((f) => `min(${f}), max(${f}), sum(${f}), count(${f})`).join(', ')}
  FROM readings GROUP BY source, ts / 60000;
`
export const ROLLUP_UPSERT = `INSERT INTO rollup_1m (source, minute, n, ${ROLLUP_FIELDS.map((f) => `${f}_min, ${f}_max, ${f}_sum, ${f}_n`).join(', ')})
  VALUES (@source, @minute, @n, ${ROLLUP_FIELDS.map((f) => `@${f}_min, @${f}_max, @${f}_sum, @${f}_n`).join(', ')})
  ON CONFLICT (source, minute) DO UPDATE SET n = n + excluded.n,
  ${ROLLUP_FIELDS.map((f) => `${f}_min = min(coalesce(${f}_min, excluded.${f}_min), coalesce(excluded.${f}_min, ${f}_min)), ${f}_max = max(coalesce(${f}_max, excluded.${f}_max), coalesce(excluded.${f}_max, ${f}_max)), ${f}_sum = coalesce(${f}_sum, 0) + coalesce(excluded.${f}_sum, 0), ${f}_n = ${f}_n + excluded.${f}_n`).join(',\n  ')}`
export const ROLLUP_BUCKETS = `SELECT CAST((minute - @from) / @width AS INTEGER) AS b, sum(n) AS n,
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

export const AGGREGATES = [['reservoir', 'reservoir'], ['outlet', 'outlet'], ['total_power', 'total_power'], ['addition', 'addition'], ['voltage_mean', 'vmean']]
  .map(([column, alias]) => `min(${column}) AS ${alias}_min, max(${column}) AS ${alias}_max, avg(${column}) AS ${alias}_mean`).join(', ')
export const BUCKET_ALIASES = ['reservoir', 'outlet', 'total_power', 'addition', 'vmean']

/** Per rollup field: its row index (toRow's order) and its four parameter names, built once (not per reading). */
const ROLLUP_KEYS = ROLLUP_FIELDS.map((f, i) => ({index: [4, 5, 6, 7, 13][i], min: `${f}_min`, max: `${f}_max`, sum: `${f}_sum`, n: `${f}_n`}))
/** An empty source-minute: every field's min, max and sum null, count 0. */
const EMPTY_ROLLUP: Record<string, number | null> = Object.fromEntries(ROLLUP_KEYS.flatMap((k) => [[k.min, null], [k.max, null], [k.sum, null], [k.n, 0]]))

/** Adds one stored row (toRow's order) to its source-minute's aggregates. */
export function addToRollup(minutes: Map<string, Record<string, number | string | null>>, source: string, row: unknown[]): void {
  const minute = Math.floor((row[0] as number) / 60_000) * 60_000
  const key = `${source}\u0000${minute}`
  let m = minutes.get(key)
  if (!m) {
    m = {source, minute, n: 0, ...EMPTY_ROLLUP}
    minutes.set(key, m)
  }

  m.n = (m.n as number) + 1
  for (const k of ROLLUP_KEYS) {
    const v = row[k.index] as number | null | undefined
    if (v === null || v === undefined) continue
    const min = m[k.min] as number | null
    const max = m[k.max] as number | null
    m[k.min] = min === null ? v : Math.min(min, v)
    m[k.max] = max === null ? v : Math.max(max, v)
    m[k.sum] = ((m[k.sum] as number | null) ?? 0) + v
    m[k.n] = (m[k.n] as number) + 1
  }
}

export function clampLimit(limit: number): number {
  return Math.max(1, Math.min(Math.trunc(limit) || 1, MAX_QUERY_LIMIT))
}

export function cellsOf(r: Reading): number | null {
  const n = r.cell_voltages?.length ?? r.cell_powers?.length ?? r.biofilm_thicknesses.length
  return n > 0 ? n : null
}

export function toRow(r: Reading, seq: number): unknown[] {
  const cells = JSON.stringify({b: r.biofilm_thicknesses, v: r.cell_voltages, p: r.cell_powers, ph: r.cell_ph, t: r.cell_temperatures})
  const voltages = r.cell_voltages
  const voltageMean = voltages && voltages.length > 0 ? voltages.reduce((a, b) => a + b, 0) / voltages.length : null
  return [Date.parse(r.timestamp), r.source, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power,
    r.substrate_addition_rate, r.q_action, r.epsilon, r.reward, cells, seq, voltageMean]
}

export function fromRow(row: Row): Reading {
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
