import {Flags} from '@oclif/core'

import {MfcCommand} from '../cli/base-command.js'
import {installation} from '../cli/installation.js'
import {CRON_TAG} from '../services/deploy/cron.js'
import {type CronSetupResult, SystemCrontab, setupCron} from '../services/deploy/crontab.js'
import {renewalCommand} from '../services/deploy/from-config.js'
import {writeGenerated} from '../services/deploy/write-files.js'

export type SetupCronResult = CronSetupResult & {output: string | null}

export default class SetupCron extends MfcCommand {
  static override summary = 'Install the certificate renewal job in your crontab (twice a day, at a time fixed per host).'

  static override description = `Adds one line, tagged "${CRON_TAG}", to the crontab of the user running the command
(\`crontab -l\` / \`crontab -\`). It runs \`mfc cert renew-if-needed\` with absolute paths of node and mfc
at a minute and hour derived from the host name (the same on every run), twice a day, and sends cron mail only when renewal fails.
Idempotent: a second run changes nothing. Lines written by the Python MFC system (the same tag,
or /usr/local/bin/mfc-cert-renewal.sh) are replaced. Prints nothing on success unless something
changed; use --json for the details.`

  static override aliases = ['setup:cron']

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    {description: 'Show the crontab it would install', command: '<%= config.bin %> <%= command.id %> --dry-run'},
    {description: 'Take the job out again', command: '<%= config.bin %> <%= command.id %> --remove'},
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print the resulting crontab; change nothing.', exclusive: ['output']}),
    remove: Flags.boolean({description: 'Remove the renewal job (and the Python system\'s lines).'}),
    output: Flags.string({char: 'o', description: 'Write the resulting crontab to this file instead of installing it.'}),
  }

  async run(): Promise<SetupCronResult> {
    const {flags} = await this.parse(SetupCron)
    const config = this.loadConfig(flags.config)
    const command = renewalCommand(config, installation(this.config.root))
    const preview = Boolean(flags['dry-run'] || flags.output)
    const result = await setupCron(new SystemCrontab(), command, {remove: flags.remove, dryRun: preview})
    if (flags.output) await writeGenerated([{path: flags.output, text: result.text, mode: 0o644}])
    // Silent otherwise, like any cron-related tool that may itself run from a script.
    if (flags['dry-run'] && !this.jsonEnabled()) process.stdout.write(result.text)
    return {...result, output: flags.output ?? null}
  }
}
