import {Flags} from '@oclif/core'

import {MfcCommand} from '../cli/base-command.js'
import {readPassphrase} from '../cli/passphrase.js'
import {facts} from '../cli/render.js'
import {openStorage, storageTarget} from '../cli/storage.js'
import {systemClock} from '../lib/clock.js'
import {type BackupResult, createBackup} from '../services/backup/backup.js'

export default class Backup extends MfcCommand {
  static override summary = 'Write one archive of the config, certificates (all versions), CA, ACME account and history.'

  static override description = `The archive (tar.gz, mode 0600) holds the config directory (ssl-config.json,
notification-config.json, IP lists), the certificate store with every version and its live links,
the local CA, the ACME accounts, the API token and a consistent snapshot of the history database
(SQLite's backup API, safe while \`serve\` writes to it), plus manifest.json listing every entry
with its mode and sha256. --passphrase-file encrypts it (AES-256-GCM, key from scrypt).
Default location: <state dir>/backups/mfc-backup-<time>.tar.gz. Restore with \`mfc restore\`.

Cluster mode ("storage" set): the archive also holds a pg_dump (custom format) of the whole
shared database, taken from one snapshot while the nodes keep running, with the row count of
every table. The storage key (storage_key_file) is left out unless --include-storage-key:
keep it apart, on every node and in your secrets store. pg_dump must be as new as the server.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Encrypted, to another disk', command: '<%= config.bin %> <%= command.id %> --output /mnt/backup/mfc.tar.gz.enc --passphrase-file ~/.mfc-backup-pass'},
  ]

  static override flags = {
    output: Flags.string({char: 'o', description: 'Archive file to write.'}),
    'passphrase-file': Flags.string({description: 'Encrypt with the passphrase on the first line of this file.'}),
    force: Flags.boolean({char: 'f', description: 'Replace the --output file if it exists (never done without this flag).'}),
    // With the key, the archive opens every private key in the dump: never unencrypted.
    'include-storage-key': Flags.boolean({description: 'Cluster mode: put storage_key_file in the archive too (needs --passphrase-file).', dependsOn: ['passphrase-file']}),
  }

  async run(): Promise<BackupResult> {
    const {flags} = await this.parse(Backup)
    const config = this.loadConfig(flags.config)
    const passphrase = await readPassphrase(flags['passphrase-file'])
    const db = config.settings.storage ? await openStorage(config) : undefined
    try {
      const database = db ? {db, target: await storageTarget(config)} : undefined
      const options = {output: flags.output, passphrase, mfcVersion: this.config.version, force: flags.force, database, storageKeyFile: config.settings.storage_key_file ?? undefined, includeStorageKey: flags['include-storage-key']}
      const result = await createBackup(config, systemClock, options)
      this.report(result)
      return result
    } finally {
      await db?.close()
    }
  }

  private report(result: BackupResult): void {
    this.say(`Backup written to ${result.file}`)
    const database = result.database ? [['Database', `${result.database.source}: ${Object.keys(result.database.tables).length} table(s), ${Object.values(result.database.tables).reduce((a, b) => a + b, 0)} row(s) (pg_dump)`] as [string, string]] : []
    this.say(facts([['Contents', result.areas.join(', ')], ...database, ['Entries', result.files], ['Size', `${result.bytes} bytes`], ['Encrypted', result.encrypted ? 'yes (AES-256-GCM)' : 'no'], ...(result.storageKeyIncluded ? [['Storage key', 'included']] as [string, string][] : [])]))
    this.say(`Copy it off this machine (e.g. \`scp ${result.file} backup-host:\`): a backup on the same disk is lost with the disk.`)
  }
}
