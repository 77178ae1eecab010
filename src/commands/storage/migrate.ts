import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {openStorage} from '../../cli/storage.js'
import {type MigrateResult, migrate} from '../../services/storage/migrations.js'

export type StorageMigrateResult = MigrateResult & {storage: string}

export default class StorageMigrate extends MfcCommand {
  static override summary = 'Create or upgrade the cluster schema in the shared PostgreSQL.'

  static override description = `Applies every schema migration the database does not have yet, each in its own
transaction, and records it in the mfc_migrations table. Safe when every node runs it at once (at
start-up, from a deploy script): one run holds an advisory lock and the others wait, then find
nothing to do. Running it again changes nothing. The database comes from "storage" in
ssl-config.json (or MFC_STORAGE_URL, or --storage); the password from storage_password_file or
PGPASSWORD; TLS with storage_ca_file.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'A database not (yet) in the config', command: '<%= config.bin %> <%= command.id %> --storage postgres://mfc@db.example:5432/mfc --json'},
  ]

  static override flags = {
    storage: Flags.string({description: 'postgres://user@host:port/db to migrate (default: the "storage" setting).'}),
  }

  async run(): Promise<StorageMigrateResult> {
    const {flags} = await this.parse(StorageMigrate)
    const config = this.loadConfig(flags.config, {storage: flags.storage})
    const db = await openStorage(config)
    try {
      const result = await migrate(db)
      if (result.applied.length === 0) this.say(`The schema in ${db.label} is up to date (version ${result.current}).`)
      for (const step of result.applied) this.say(`Applied migration ${step.version} (${step.name}) to ${db.label}.`)
      return {...result, storage: db.label}
    } finally {
      await db.close()
    }
  }
}
