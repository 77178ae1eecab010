import type {CaPair, LocalCaStore} from '../issuers/local-ca-issuer.js'
import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

/** The sealing context of the CA key (AES-GCM associated data: the row cannot be passed off as another secret). */
const CONTEXT = 'the cluster local CA'

/**
 * The cluster's one local CA in PostgreSQL (`mfc_local_ca`, a single row): the certificate in
 * the clear, the key sealed with the storage key like every private key in the database.
 * `createIfAbsent` is one `INSERT ... ON CONFLICT DO NOTHING`, so of N nodes creating it at
 * once exactly one row wins and every node reads that one back (LocalCaStore's contract).
 */
export class PgLocalCa implements LocalCaStore {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer) {}

  async load(): Promise<CaPair | undefined> {
    const [row] = await this.db.query<{cert_pem: string; key_sealed: Buffer}>('SELECT cert_pem, key_sealed FROM mfc_local_ca WHERE id')
    return row ? {certPem: row.cert_pem, keyPem: this.sealer.open(row.key_sealed, CONTEXT)} : undefined
  }

  async createIfAbsent(pair: CaPair): Promise<{pair: CaPair; created: boolean}> {
    const inserted = await this.db.query('INSERT INTO mfc_local_ca (cert_pem, key_sealed) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING RETURNING id',
      [pair.certPem, this.sealer.seal(pair.keyPem, CONTEXT)])
    if (inserted.length > 0) return {pair, created: true}
    const stored = await this.load()
    return {pair: stored!, created: false}
  }
}
