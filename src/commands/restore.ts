import {Args, Flags} from '@oclif/core'

import {MfcCommand} from '../cli/base-command.js'
import {readPassphrase} from '../cli/passphrase.js'
import {openStorage, storageTarget} from '../cli/storage.js'
import {type RestoreResult, restoreBackup} from '../services/backup/restore.js'

export default class Restore extends MfcCommand {
  static override summary = 'Restore a backup made by `mfc backup`, atomically, and reload a running serve.'

  static override description = `Before anything changes, the archive is checked: the passphrase, every entry (absolute paths,
"..", links leaving their directory and device files are refused), and every file's sha256
against the manifest. A truncated, modified or unsafe archive changes nothing. Then the
config directory and each part of the state directory are staged next to their place and
renamed into it, with their original modes, under the mfc lock, and a running \`mfc serve\` is
sent SIGHUP. --dry-run lists what would be added, changed and removed.

A cluster backup's database dump goes into the database of "storage" (or --storage) with
pg_restore, in one transaction, before any file changes; the database must be empty (no
tables) unless --force, and the restored row counts must equal the backup's. The node keeps its
own storage_key_file; a key in the archive (backup --include-storage-key) is written only where
none is, and a different one stops the restore before anything changes.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> mfc-backup.tar.gz --dry-run',
    '<%= config.bin %> <%= command.id %> mfc-backup.tar.gz.enc --passphrase-file ~/.mfc-backup-pass',
  ]

  static override args = {
    file: Args.string({description: 'The backup archive.', required: true}),
  }

  static override flags = {
    'dry-run': Flags.boolean({description: 'Verify the archive and show what would change; change nothing.'}),
    'passphrase-file': Flags.string({description: 'The passphrase of an encrypted backup (first line of this file).'}),
    storage: Flags.string({description: 'Cluster backup: postgres://user@host:port/db to restore the database into (default: "storage").'}),
    force: Flags.boolean({char: 'f', description: 'Cluster backup: restore into a database that has tables, replacing the backup\'s objects.'}),
  }

  async run(): Promise<RestoreResult> {
    const {args, flags} = await this.parse(Restore)
    const config = this.loadConfig(flags.config, flags.storage ? {storage: flags.storage} : {})
    const passphrase = await readPassphrase(flags['passphrase-file'])
    const db = config.settings.storage ? await openStorage(config) : undefined
    let result: RestoreResult
    try {
      const database = db ? {db, target: await storageTarget(config)} : undefined
      result = await restoreBackup(config, args.file, {passphrase, dryRun: flags['dry-run'], database, replaceDatabase: flags.force, storageKeyFile: config.settings.storage_key_file ?? undefined})
    } finally {
      await db?.close()
    }

    if (result.database) this.say(`Database ${result.database.target}: ${Object.keys(result.database.tables).length} table(s), ${Object.values(result.database.tables).reduce((a, b) => a + b, 0)} row(s)${result.dryRun ? ' in the backup' : ' restored, row counts verified'}.`)
    if (result.storageKey) this.say(`Storage key: ${result.storageKey === 'skipped' ? 'in the backup, not restored (no storage_key_file is configured)' : result.storageKey}.`)
    this.say(`Backup of ${result.backup.created} from ${result.backup.host} (mfc ${result.backup.mfcVersion}): checksums verified.`)
    for (const change of result.changes) this.say(`  ${change.change.padEnd(8)} ${change.target}`)
    this.say(`${result.changes.length} change(s), ${result.unchanged} unchanged.`)
    if (result.dryRun) this.say('Dry run: nothing was changed.')
    else this.say(result.reloaded ? `Restored. Sent SIGHUP to mfc serve (pid ${result.reloaded}) to reload.` : 'Restored.')
    return result
  }
}
