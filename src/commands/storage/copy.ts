import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {localHistory, sharedHistory} from '../../cli/history-storage.js'
import {fileSide, openStorage, pgSide} from '../../cli/storage.js'
import {withLock} from '../../lib/lock.js'
import {type CopyResult, copyState} from '../../services/storage/copy.js'
import {type HistoryCopyResult, checkHistoryTarget, copyHistory} from '../../services/storage/history-copy.js'
import {requireSchema} from '../../services/storage/migrations.js'
import {PgLocker} from '../../services/storage/pg-locker.js'

export default class StorageCopy extends MfcCommand {
  static override summary = 'Copy this machine\'s state into the shared PostgreSQL (--to), or back out (--from).'

  static override description = `Copies every certificate version (same version numbers, same live version), every
registered ACME account (key and record), the API token, the local CA (so local-CA
certificates keep chaining to the root users trust) and the monitoring history (every
reading, streamed in pages of 1000, every registered source, the alert thresholds), then reads
everything back from the target and compares it: certificates and accounts by hash, readings per
source by count and an order-independent hash. Private keys and the token are sealed with the
storage key (storage_key_file or MFC_STORAGE_KEY) in the database. It never overwrites: if the
target already holds a lineage, an account, a different token, a different local CA or any history, it stops before
writing anything. Run \`mfc storage migrate\` on the database first.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --to postgres://mfc@db.example:5432/mfc',
    {description: 'Back out into an empty MFC_STATE_DIR', command: 'MFC_STATE_DIR=/var/lib/mfc-new <%= config.bin %> <%= command.id %> --from postgres://mfc@db.example:5432/mfc --json'},
  ]

  static override flags = {
    to: Flags.string({description: 'postgres://user@host:port/db to copy this machine\'s state into.', exactlyOne: ['to', 'from']}),
    from: Flags.string({description: 'postgres://user@host:port/db to copy into this machine\'s (empty) state.', exactlyOne: ['to', 'from']}),
  }

  async run(): Promise<CopyResult & {history: HistoryCopyResult}> {
    const {flags} = await this.parse(StorageCopy)
    const config = this.loadConfig(flags.config, {storage: flags.to ?? flags.from})
    const db = await openStorage(config)
    try {
      await requireSchema(db)
      const result = await withLock(config.paths.lockFile, 'storage copy', async () => {
        const held = await new PgLocker(db).acquire('store', 'storage copy')
        try {
          const [files, shared] = [fileSide(config), await pgSide(config, db)]
          const histories = await Promise.all([localHistory(config), sharedHistory(config)])
          try {
            const [local, pg] = [{label: config.paths.historyDb, history: histories[0]}, {label: db.label, history: histories[1]}]
            await checkHistoryTarget(flags.to ? pg : local)
            const state = await copyState(flags.to ? files : shared, flags.to ? shared : files)
            return {...state, history: await copyHistory(flags.to ? local : pg, flags.to ? pg : local)}
          } finally {
            await Promise.all(histories.map((h) => h.close()))
          }
        } finally {
          await held.release()
        }
      })
      const {history} = result
      this.say(`Copied ${result.lineages} certificate(s) (${result.versions} version(s)), ${result.accounts} ACME account(s), the API token (${result.token}), the local CA (${result.localCa}), ${history.readings} reading(s) of ${history.sources} source(s) and ${history.settings} setting(s) from ${result.from} to ${result.to}; verified.`)
      return result
    } finally {
      await db.close()
    }
  }
}
