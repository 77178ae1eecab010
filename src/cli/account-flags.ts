import {Flags} from '@oclif/core'

import type {MfcConfig} from '../lib/config.js'
import {issuanceDirectory} from '../services/acme/directories.js'

/** `--server`, certbot's name for the CA's directory URL, shared by the account commands. */
export const serverFlag = {
  server: Flags.string({description: 'ACME directory URL of the CA (default: the configured one: acme_directory, else Let\'s Encrypt / staging).'}),
}

export function accountDirectory(config: MfcConfig, server: string | undefined): string {
  return server ?? issuanceDirectory(config.settings)
}
