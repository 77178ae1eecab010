import type {SharedSecrets} from '../servers/auth.js'
import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

/**
 * Small secrets every node shares (the API token), sealed like private keys. `get` is undefined
 * when unset; `setIfAbsent` never replaces a value and says whether it wrote; `set` replaces
 * it in one statement (a reader sees the old value or the new one).
 */
export class PgSecrets implements SharedSecrets {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer) {}

  get label(): string {
    return this.db.label
  }

  async get(name: string): Promise<string | undefined> {
    const [row] = await this.db.query<{value_sealed: Buffer}>('SELECT value_sealed FROM mfc_secrets WHERE name = $1', [name])
    return row ? this.sealer.open(row.value_sealed, `the shared secret "${name}"`) : undefined
  }

  async setIfAbsent(name: string, value: string): Promise<boolean> {
    const rows = await this.db.query('INSERT INTO mfc_secrets (name, value_sealed) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING name',
      [name, this.sealer.seal(value, `the shared secret "${name}"`)])
    return rows.length > 0
  }

  async set(name: string, value: string): Promise<void> {
    await this.db.query('INSERT INTO mfc_secrets (name, value_sealed) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value_sealed = EXCLUDED.value_sealed, updated_at = now()',
      [name, this.sealer.seal(value, `the shared secret "${name}"`)])
  }
}
