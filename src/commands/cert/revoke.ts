import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {lifecycle} from '../../cli/services.js'
import {REVOCATION_REASONS, type RevocationReason} from '../../services/acme/acme-account-client.js'
import type {RevokeResult} from '../../services/lifecycle/cert-lifecycle.js'

export default class CertRevoke extends MfcCommand {
  static override summary = 'Revoke a certificate at its ACME CA (certbot\'s `revoke`).'

  static override description = `Asks the CA the certificate came from to revoke it, signed with mfc's ACME account for that
CA, or, when there is no account (or with --key-path), with the certificate's own private key,
which any holder of the key may do (RFC 8555 §7.6). --delete-after-revoke then deletes the
lineage. Exit 5 when the CA refuses (already revoked, not authorized), 2 for a bad flag.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> --cert-name mfc.example.org --reason superseded',
    {description: 'A leaked key: revoke with the key itself and drop the lineage', command: '<%= config.bin %> <%= command.id %> --cert-name mfc.example.org --reason keycompromise --key-path /var/lib/mfc/certs/mfc.example.org/live/privkey.pem --delete-after-revoke'},
    '<%= config.bin %> <%= command.id %> --cert-path /etc/letsencrypt/live/example.org/cert.pem --server https://acme-v02.api.letsencrypt.org/directory',
  ]

  static override flags = {
    'cert-name': Flags.string({description: 'The certificate to revoke (store name).', exactlyOne: ['cert-name', 'cert-path']}),
    'cert-path': Flags.string({description: 'A PEM certificate file to revoke (cert.pem or fullchain.pem).', exactlyOne: ['cert-name', 'cert-path']}),
    'key-path': Flags.string({description: 'Sign with this private key (the certificate\'s) instead of the ACME account.'}),
    reason: Flags.string({description: 'Revocation reason (RFC 5280).', options: Object.keys(REVOCATION_REASONS), default: 'unspecified'}),
    server: Flags.string({description: 'ACME directory URL of the CA (default: the one the certificate came from, else the configured one).'}),
    'delete-after-revoke': Flags.boolean({description: 'Delete the lineage from the store once the CA revoked it.'}),
  }

  async run(): Promise<RevokeResult> {
    const {flags} = await this.parse(CertRevoke)
    const config = this.loadConfig(flags.config)
    const result = await (await lifecycle(config)).revoke({
      certName: flags['cert-name'], certPath: flags['cert-path'], keyPath: flags['key-path'], reason: flags.reason as RevocationReason,
      server: flags.server, deleteAfter: flags['delete-after-revoke'], command: 'cert revoke',
    })
    this.say(`Revoked ${result.domains.join(', ')} (serial ${result.serial}, reason ${result.reason}) at ${result.directory}, signed with the ${result.signedWith === 'account' ? `account ${result.accountUrl}` : 'certificate\'s key'}.`)
    if (result.deleted) this.say(`Deleted "${result.deleted}" from the store.`)
    return result
  }
}
