import {generateKeyPair} from 'node:crypto'
import {promisify} from 'node:util'

import type {AccountRecord, ManagedAccountStore} from '../acme/account-store.js'
import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

const context = (directory: string) => `the ACME account of ${directory}`

/**
 * ACME accounts on PostgreSQL, so every node uses one account per CA. The account key is
 * sealed like certificate keys. Two nodes creating the key at once: the first INSERT wins and
 * both return the winner's key (ON CONFLICT DO NOTHING, then read). A key rollover stages the
 * new key in `next_key_sealed` and commits it with one UPDATE; `retire` moves the row to
 * `mfc_acme_accounts_retired` in one statement, so no reader sees it half-moved.
 */
export class PgAccountStore implements ManagedAccountStore {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer) {}

  location(directoryUrl: string): string {
    return `the cluster database (${this.db.label}, account of ${directoryUrl})`
  }

  async existingKey(directoryUrl: string): Promise<string | undefined> {
    return this.read(directoryUrl)
  }

  async stageNextKey(directoryUrl: string, keyPem: string): Promise<void> {
    await this.db.query('UPDATE mfc_acme_accounts SET next_key_sealed = $2 WHERE directory = $1', [directoryUrl, this.sealer.seal(keyPem, context(directoryUrl))])
  }

  async stagedKey(directoryUrl: string): Promise<string | undefined> {
    const [row] = await this.db.query<{next_key_sealed: Buffer | null}>('SELECT next_key_sealed FROM mfc_acme_accounts WHERE directory = $1', [directoryUrl])
    return row?.next_key_sealed ? this.sealer.open(row.next_key_sealed, context(directoryUrl)) : undefined
  }

  async commitNextKey(directoryUrl: string): Promise<void> {
    await this.db.query('UPDATE mfc_acme_accounts SET key_sealed = next_key_sealed, next_key_sealed = NULL WHERE directory = $1 AND next_key_sealed IS NOT NULL', [directoryUrl])
  }

  async discardNextKey(directoryUrl: string): Promise<void> {
    await this.db.query('UPDATE mfc_acme_accounts SET next_key_sealed = NULL WHERE directory = $1', [directoryUrl])
  }

  async retire(directoryUrl: string, when: Date): Promise<string> {
    await this.db.query(`WITH moved AS (DELETE FROM mfc_acme_accounts WHERE directory = $1 RETURNING directory, key_sealed, record)
      INSERT INTO mfc_acme_accounts_retired (directory, key_sealed, record, retired_at) SELECT directory, key_sealed, record, $2 FROM moved`, [directoryUrl, when])
    return `mfc_acme_accounts_retired in ${this.db.label} (retired ${when.toISOString()})`
  }

  async retired(directoryUrl: string): Promise<{url: string; retiredAt: string} | undefined> {
    const [row] = await this.db.query<{record: AccountRecord | null; retired_at: Date}>(
      'SELECT record, retired_at FROM mfc_acme_accounts_retired WHERE directory = $1 ORDER BY retired_at DESC LIMIT 1', [directoryUrl])
    return row ? {url: row.record?.url ?? '(unregistered)', retiredAt: new Date(row.retired_at).toISOString()} : undefined
  }

  async key(directoryUrl: string): Promise<{pem: string; created: boolean}> {
    const existing = await this.read(directoryUrl)
    if (existing) return {pem: existing, created: false}
    const {privateKey} = await promisify(generateKeyPair)('ec', {namedCurve: 'P-256'})
    const pem = privateKey.export({format: 'pem', type: 'pkcs8'}) as string
    const inserted = await this.db.query('INSERT INTO mfc_acme_accounts (directory, key_sealed) VALUES ($1, $2) ON CONFLICT (directory) DO NOTHING RETURNING directory',
      [directoryUrl, this.sealer.seal(pem, context(directoryUrl))])
    return inserted.length > 0 ? {pem, created: true} : {pem: (await this.read(directoryUrl))!, created: false}
  }

  async record(directoryUrl: string): Promise<AccountRecord | undefined> {
    const [row] = await this.db.query<{record: AccountRecord | null}>('SELECT record FROM mfc_acme_accounts WHERE directory = $1', [directoryUrl])
    return row?.record ?? undefined
  }

  async records(): Promise<AccountRecord[]> {
    const rows = await this.db.query<{record: AccountRecord}>('SELECT record FROM mfc_acme_accounts WHERE record IS NOT NULL ORDER BY directory')
    return rows.map((r) => r.record)
  }

  /** Stores an existing key (storage copy); false when the directory already has one. */
  async importKey(directoryUrl: string, pem: string): Promise<boolean> {
    const rows = await this.db.query('INSERT INTO mfc_acme_accounts (directory, key_sealed) VALUES ($1, $2) ON CONFLICT (directory) DO NOTHING RETURNING directory',
      [directoryUrl, this.sealer.seal(pem, context(directoryUrl))])
    return rows.length > 0
  }

  async save(record: AccountRecord): Promise<void> {
    // The key exists before registration (key() first), as in the file store.
    await this.key(record.directory)
    await this.db.query('UPDATE mfc_acme_accounts SET record = $2 WHERE directory = $1', [record.directory, JSON.stringify(record)])
  }

  private async read(directoryUrl: string): Promise<string | undefined> {
    const [row] = await this.db.query<{key_sealed: Buffer}>('SELECT key_sealed FROM mfc_acme_accounts WHERE directory = $1', [directoryUrl])
    return row ? this.sealer.open(row.key_sealed, context(directoryUrl)) : undefined
  }
}
