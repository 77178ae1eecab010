import {generateKeyPair} from 'node:crypto'
import {promisify} from 'node:util'

import type {AccountRecord, AcmeAccountStore} from '../acme/account-store.js'
import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

const context = (directory: string) => `the ACME account of ${directory}`

/**
 * ACME accounts on PostgreSQL, so every node uses one account per CA. The account key is
 * sealed like certificate keys. Two nodes creating the key at once: the first INSERT wins and
 * both return the winner's key (ON CONFLICT DO NOTHING, then read).
 */
export class PgAccountStore implements AcmeAccountStore {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer) {}

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
