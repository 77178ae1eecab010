import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

/**
 * Small secrets every node shares (the API token), sealed like private keys. `get` is undefined
 * when unset; `setIfAbsent` never replaces a value and says whether it wrote.
 */
export class PgSecrets {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer) {}

  async get(name: string): Promise<string | undefined> {
    const [row] = await this.db.query<{value_sealed: Buffer}>('SELECT value_sealed FROM mfc_secrets WHERE name = $1', [name])
    return row ? this.sealer.open(row.value_sealed, `the shared secret "${name}"`) : undefined
  }

  async setIfAbsent(name: string, value: string): Promise<boolean> {
    const rows = await this.db.query('INSERT INTO mfc_secrets (name, value_sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING name',
      [name, this.sealer.seal(value, `the shared secret "${name}"`)])
    return rows.length > 0
  }
}
