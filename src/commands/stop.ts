import {Flags} from '@oclif/core'

import {MfcCommand} from '../cli/base-command.js'
import {type StopResult, stopServe} from '../services/daemon/stop.js'

export default class Stop extends MfcCommand {
  static override summary = 'Stop the running `mfc serve` (daemon or foreground).'

  static override description = `Sends SIGTERM to the serve recorded in the pid file (the supervisor of --daemon, which stops
the servers), waits for in-flight requests to finish, and sends SIGKILL after --timeout seconds.
The pid file is removed. Stopping when nothing runs is not an error (exit 0), like an init
script's stop; a stale pid file (after kill -9 or a reboot) is removed.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --timeout 5 --json']

  static override flags = {
    timeout: Flags.integer({description: 'Seconds to wait after SIGTERM before SIGKILL.', default: 20, min: 1}),
  }

  async run(): Promise<StopResult> {
    const {flags} = await this.parse(Stop)
    const config = this.loadConfig(flags.config, {}, {lenient: true})
    const result = await stopServe(config.paths.pidFile, flags.timeout * 1000)
    if (result.removedStalePidFile) this.say(`mfc serve was not running (pid ${result.pid} is gone); removed the stale pid file ${config.paths.pidFile}.`)
    else if (!result.wasRunning) this.say('mfc serve is not running.')
    else if (result.forced) this.say(`mfc serve (pid ${result.pid}) did not stop within ${flags.timeout} s and was killed.`)
    else this.say(`Stopped mfc serve (pid ${result.pid}${result.supervisorPid ? `, supervisor ${result.supervisorPid}` : ''}).`)
    return result
  }
}
