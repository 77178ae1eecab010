import {existsSync} from 'node:fs'
import {join} from 'node:path'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {installation} from '../../cli/installation.js'
import {serviceUser, useraddLine, userExists} from '../../cli/system-user.js'
import {UsageError} from '../../lib/errors.js'
import {systemdOptions} from '../../services/deploy/from-config.js'
import {systemdUnits} from '../../services/deploy/systemd.js'
import {writeGenerated} from '../../services/deploy/write-files.js'

export interface SetupSystemdResult {
  files: {path: string; text: string}[]
  written: boolean
  systemdRunning: boolean
  next: string[]
}

export default class SetupSystemd extends MfcCommand {
  static override summary = 'Write systemd units: mfc serve as a hardened service, renewal as a timer.'

  static override description = `Writes <name>.service (runs \`mfc serve\` in the foreground, Restart=on-failure, sandboxed:
read-only system, writable config and state directories only, CAP_NET_BIND_SERVICE only when a
port is below 1024), <name>-renew.service and <name>-renew.timer (twice a day, RandomizedDelaySec,
Persistent). Paths of node, mfc and the config/state directories are the ones of this run.
The services run as --user, which must exist (default: the current user, or a dedicated "mfc"
account when run as root; the output names the useradd line when it is missing).
Default output directory: /etc/systemd/system.`

  static override examples = [
    {description: 'Print the units', command: '<%= config.bin %> <%= command.id %> --dry-run --user mfc'},
    {description: 'Install them', command: 'sudo <%= config.bin %> <%= command.id %> --user mfc && sudo systemctl daemon-reload && sudo systemctl enable --now mfc.service mfc-renew.timer'},
  ]

  static override flags = {
    'dry-run': Flags.boolean({description: 'Print the units to stdout; write nothing.'}),
    output: Flags.string({char: 'o', description: 'Directory to write the units into.', default: '/etc/systemd/system'}),
    user: Flags.string({description: 'User the services run as; it must exist (default: the current user, or "mfc" when run as root).'}),
    group: Flags.string({description: 'Group the services run as (default: same as --user).'}),
    name: Flags.string({description: 'Unit name stem.', default: 'mfc'}),
  }

  async run(): Promise<SetupSystemdResult> {
    const {flags} = await this.parse(SetupSystemd)
    const config = this.loadConfig(flags.config)
    if (!/^[\w@.-]+$/.test(flags.name)) throw new UsageError(`"${flags.name}" is not a valid unit name.`, {code: 'MFC_USAGE', suggestions: ['Use letters, digits, "-", "_", "." or "@" in --name.']})
    const user = serviceUser(flags.user)
    const missing = !userExists(user)
    const useradd = useraddLine(user, config.paths.stateDir)
    if (missing && !flags['dry-run']) {
      throw new UsageError(`User "${user}" does not exist, so the units could not run.`, {
        code: 'MFC_USAGE',
        suggestions: [`Create it: \`${useradd}\` (then \`sudo chown -R ${user}: ${config.paths.stateDir} ${config.paths.configDir}\`), or pass --user NAME.`],
      })
    }

    const units = systemdUnits(systemdOptions(config, installation(this.config.root), {user, group: flags.group ?? user, name: flags.name}))
    const files = Object.values(units).map((unit) => ({path: join(flags.output, unit.file), text: unit.text}))
    const next = [...(missing ? [useradd] : []), `systemctl daemon-reload`, `systemctl enable --now ${units.service.file} ${units.renewTimer.file}`]
    const result = {files, written: !flags['dry-run'], systemdRunning: existsSync('/run/systemd/system'), next}
    if (flags['dry-run']) {
      if (missing && !this.jsonEnabled()) this.warn(`User "${user}" does not exist yet; create it before installing: ${useradd}`)
      if (!this.jsonEnabled()) for (const file of files) process.stdout.write(`# ${file.path}\n${file.text}\n`)
      return result
    }

    await writeGenerated(files.map((f) => ({...f, mode: 0o644})))
    this.say(`Wrote ${files.map((f) => f.path).join(', ')}.`)
    this.say(result.systemdRunning ? `Next: ${next.join(' && ')}` : 'systemd is not running on this machine: copy the units to a machine that runs it.')
    return result
  }
}
