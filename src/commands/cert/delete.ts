import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {askConfirm} from '../../cli/prompts.js'
import {lifecycle} from '../../cli/services.js'
import {UsageError} from '../../lib/errors.js'

export default class CertDelete extends MfcCommand {
  static override summary = 'Delete a certificate lineage (every version, key included) from the store.'

  static override description = `The only command that deletes certificates (renewals never do). Asks first on a terminal;
elsewhere --yes (or --force) is the consent. Refuses the certificate a running mfc serve loads
unless --force. Atomic and locked: the lineage disappears whole or not at all. Revoke it first
(\`mfc cert revoke --cert-name N --delete-after-revoke\`) if its key may be compromised.
Exit 2 for an unknown name or no consent, 7 when serve uses it or another mfc run holds the lock.`

  static override examples = ['<%= config.bin %> <%= command.id %> --cert-name old.example.org', '<%= config.bin %> <%= command.id %> --cert-name old.example.org --yes --json']

  static override flags = {
    'cert-name': Flags.string({description: 'The certificate to delete (its store name; see `mfc cert list`).', required: true}),
    yes: Flags.boolean({char: 'y', description: 'Do not ask (the consent for scripts).'}),
    force: Flags.boolean({char: 'f', description: 'Delete even the certificate a running mfc serve uses (implies --yes).'}),
  }

  async run(): Promise<{name: string; configured: boolean; servePid: number | null}> {
    const {flags} = await this.parse(CertDelete)
    const config = this.loadConfig(flags.config)
    const service = await lifecycle(config)
    const name = flags['cert-name']
    if (this.canPrompt(flags.yes || flags.force) && await service.exists(name)) {
      if (!await askConfirm(`Delete certificate "${name}" and all its versions and keys?`, false)) throw new UsageError(`Nothing deleted: "${name}" stays.`, {code: 'MFC_USAGE', suggestions: []})
    } else if (!flags.yes && !flags.force && !this.canPrompt()) {
      throw new UsageError(`Deleting "${name}" needs consent: add --yes (no terminal to ask on).`, {code: 'MFC_USAGE', suggestions: [`mfc cert delete --cert-name ${name} --yes`]})
    }

    const result = await service.delete(name, {force: flags.force, command: 'cert delete'})
    this.say(`Deleted certificate "${name}" from ${config.paths.storeDir}.`)
    if (result.configured) this.say(`Note: ${config.paths.sslConfigFile} still points at it (cert_file); run \`mfc ssl init\` or edit cert_file/key_file before the next \`mfc serve\`.`)
    return result
  }
}
