import {type Clock, systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {openHistory} from '../services/data/history.js'
import type {History} from '../services/data/history-types.js'
import {requireSchema} from '../services/storage/migrations.js'
import {openPgHistory} from '../services/storage/pg-history.js'
import type {PgDatabase} from '../services/storage/postgres.js'
import {openStorage} from './storage.js'

/**
 * The history of cluster mode: PgHistory on the "storage" database, whose schema must be
 * migrated (`mfc storage migrate`). It owns its pool: `reopen` opens a new one on the same URL.
 */
export async function sharedHistory(config: MfcConfig, retention: {retentionDays: number; clock: Clock} = {retentionDays: 0, clock: systemClock}): Promise<History> {
  let first: PgDatabase | undefined = await openStorage(config)
  try {
    await requireSchema(first)
  } catch (error) {
    await first.close()
    throw error
  }

  const connect = async () => {
    const db = first ?? await openStorage(config)
    first = undefined
    return db
  }

  return openPgHistory({connect, ...retention})
}

/** This machine's SQLite history (paths.historyDb), without retention: for `storage copy`. */
export function localHistory(config: MfcConfig): Promise<History> {
  return openHistory(config.paths.historyDb, {retentionDays: 0, clock: systemClock})
}
