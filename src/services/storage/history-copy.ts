import {createHash} from 'node:crypto'

import {StoreError} from '../../lib/errors.js'
import type {History} from '../data/history-types.js'
import type {Reading} from '../data/reading.js'

/** Settings that belong to the data, not to one machine: the alert thresholds (global and per source). */
const COPIED_SETTINGS = ['alerts:thresholds', 'alerts:source-thresholds']

/** One end of a history copy: the SQLite history of this machine or the shared PostgreSQL. */
export interface HistorySide {
  /** For messages: the database file, or the database's redacted URL. */
  label: string
  history: History
}

/** What a history copy moved, verified per source by count and an order-independent hash. */
export interface HistoryCopyResult {
  readings: number
  sources: number
  settings: number
  verified: true
}

/**
 * Refuses a target that already holds history (readings or registered sources): a copy never
 * merges into data it did not write. Run before the first write of `storage copy`.
 */
export async function checkHistoryTarget(to: HistorySide): Promise<void> {
  const [count, sources] = await Promise.all([to.history.count(), to.history.sources()])
  if (count === 0 && sources.length === 0) return
  throw new StoreError(`The history in ${to.label} already holds ${count} reading(s) of ${sources.length} source(s). Nothing was copied.`, {
    code: 'MFC_STORE_EXISTS',
    suggestions: [`Copy into an empty ${to.label} (a fresh database after \`mfc storage migrate\`, or an empty MFC_STATE_DIR).`],
  })
}

/**
 * Copies every reading (streamed page by page: memory stays bounded whatever the history's
 * size), every registered source (cells, description, location) and the alert thresholds, then
 * reads the target back and compares per source the count and an order-independent hash of the
 * readings. The deduplication key's `seq` is not part of a Reading: 0, except for the CSV
 * follower's `file:` sources, whose rows get their ordinal within the source (what the follower
 * numbers them by), so rows of one timestamp stay apart.
 */
export async function copyHistory(from: HistorySide, to: HistorySide): Promise<HistoryCopyResult> {
  const sources = await from.history.sources()
  const expected = new Map<string, {n: number; hash: Buffer}>()
  let readings = 0
  for (const source of sources) {
    const digest = new SourceDigest()
    for await (const page of from.history.pages({source: source.name})) {
      const seqs = source.name.startsWith('file:') ? page.map((_, i) => digest.n + i) : undefined
      await to.history.insert(page, {seqs})
      for (const r of page) digest.add(r)
    }

    expected.set(source.name, {n: digest.n, hash: digest.hash})
    readings += digest.n
    const registration = {name: source.name, description: source.description, location: source.location}
    await to.history.putSource(source.cells === null ? registration : {...registration, cells: source.cells})
  }

  let settings = 0
  const keys = [...COPIED_SETTINGS, ...sources.filter((s) => s.name.startsWith('file:')).map((s) => `follow:${s.name.slice(5)}`)]
  for (const key of keys) {
    const value = await from.history.getSetting(key)
    if (value === undefined) continue
    await to.history.putSetting(key, value)
    settings++
  }

  await verifyHistory(from, to, expected, keys)
  const stored = await to.history.count()
  if (stored !== readings) {
    throw new StoreError(`Verification failed: ${to.label} holds ${stored} reading(s); ${readings} were copied.`, {code: 'MFC_STORE_IO', suggestions: ['Copy again into an empty target.']})
  }

  return {readings, sources: sources.length, settings, verified: true}
}

async function verifyHistory(from: HistorySide, to: HistorySide, expected: Map<string, {n: number; hash: Buffer}>, keys: string[]): Promise<void> {
  const mismatch = (what: string) => new StoreError(`Verification failed: ${what} differs between ${from.label} and ${to.label}.`, {
    code: 'MFC_STORE_IO',
    suggestions: ['Check the target (disk, database) and copy again into an empty one.'],
  })
  for (const [name, want] of expected) {
    const digest = new SourceDigest()
    for await (const page of to.history.pages({source: name})) for (const r of page) digest.add(r)
    if (digest.n !== want.n || !digest.hash.equals(want.hash)) throw mismatch(`the readings of source "${name}" (${want.n} copied, ${digest.n} found)`)
    const [a, b] = await Promise.all([from.history.source(name), to.history.source(name)])
    if (!b || a?.description !== b.description || a?.location !== b.location || (a.cells !== null && a.cells !== b.cells)) throw mismatch(`the registration of source "${name}"`)
  }

  for (const key of keys) {
    if (await from.history.getSetting(key) !== await to.history.getSetting(key)) throw mismatch(`the setting ${key}`)
  }
}

/** XOR of one SHA-256 per reading: the same set of readings gives the same hash in any order. */
class SourceDigest {
  n = 0
  readonly hash = Buffer.alloc(32)

  add(reading: Reading): void {
    const one = createHash('sha256').update(canonical(reading)).digest()
    for (let i = 0; i < 32; i++) this.hash[i] ^= one[i]
    this.n++
  }
}

/** Every field in a fixed order, so both adapters' objects hash alike. */
function canonical(r: Reading): string {
  return JSON.stringify([r.timestamp, r.source, r.run_id, r.time_hours, r.reservoir_concentration, r.outlet_concentration, r.total_power, r.biofilm_thicknesses,
    r.substrate_addition_rate, r.q_action, r.epsilon, r.reward, r.cell_voltages, r.cell_powers, r.cell_ph, r.cell_temperatures])
}
