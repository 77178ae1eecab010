import {Flags} from '@oclif/core'

import {acmeProfiles} from '../../cli/acme-services.js'
import {MfcCommand} from '../../cli/base-command.js'
import {issuanceDirectory} from '../../services/acme/directories.js'

export interface SslProfilesResult {
  directory: string
  profiles: {name: string; description: string}[]
}

export default class SslProfiles extends MfcCommand {
  static override summary = 'List the certificate profiles an ACME CA offers (draft-ietf-acme-profiles).'

  static override description = `Reads the CA's directory (meta.profiles): each profile's name and the CA's description of it.
Order under one with \`mfc ssl init --profile NAME\` (or --required-profile NAME). Without flags the
CA is the configured one (acme_directory, else Let's Encrypt; --staging for its staging CA).`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --acme-directory https://ca.internal/acme/directory --json',
  ]

  static override flags = {
    'acme-directory': Flags.string({description: 'Directory URL of the ACME CA to ask.'}),
    staging: Flags.boolean({description: 'Ask Let\'s Encrypt\'s staging CA.'}),
  }

  async run(): Promise<SslProfilesResult> {
    const {flags} = await this.parse(SslProfiles)
    const config = this.loadConfig(flags.config, {acme_directory: flags['acme-directory'], staging: flags.staging || undefined})
    const directory = issuanceDirectory(config.settings)
    const offered = await acmeProfiles(config, directory)
    const profiles = Object.entries(offered).map(([name, description]) => ({name, description}))
    this.say(profiles.length === 0 ? `${directory} offers no profiles: every order gets its default certificate.` : `Profiles offered by ${directory}:`)
    for (const profile of profiles) this.say(`  ${profile.name.padEnd(12)} ${profile.description}`)
    return {directory, profiles}
  }
}
