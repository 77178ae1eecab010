import {hostname} from 'node:os'

import {MfcCommand} from '../../cli/base-command.js'
import {systemClock} from '../../lib/clock.js'
import {ConfigError, EXIT} from '../../lib/errors.js'
import {type ChannelResult, NotificationDispatcher, notifiersFrom} from '../../services/notifications/dispatcher.js'
import {testNotification} from '../../services/notifications/messages.js'
import {loadNotificationConfig} from '../../services/notifications/notification-config.js'

export interface NotifyTestResult {
  channels: ChannelResult[]
  ok: boolean
}

export default class NotifyTest extends MfcCommand {
  static override summary = 'Send a test notification through every configured channel and report each.'

  static override description = `Sends one test message by email (when enabled) and to each webhook, whatever the level,
and prints one line per channel. Exit 0 when every channel accepted it, 1 otherwise.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --json']

  async run(): Promise<NotifyTestResult> {
    const {flags} = await this.parse(NotifyTest)
    const config = this.loadConfig(flags.config)
    const file = config.paths.notificationConfigFile
    const {config: notify} = await loadNotificationConfig(file)
    const notifiers = notifiersFrom(notify)
    if (notifiers.length === 0) {
      throw new ConfigError(`No notification channel is configured in ${file}.`, {
        code: 'MFC_NOTIFY_CONFIG',
        suggestions: ['Run `mfc notify setup` (e.g. `mfc notify setup --email --smtp-server smtp.example.org --to ops@example.org`, or `--webhook URL`).'],
      })
    }

    const channels = await new NotificationDispatcher(notifiers, notify.level, systemClock).dispatch(testNotification({host: hostname(), now: systemClock.now()}))
    for (const result of channels) this.say(`${result.ok ? 'OK  ' : 'FAIL'}  ${result.channel}${result.error ? `: ${result.error}` : ''}`)
    const ok = channels.every((c) => c.ok)
    if (!ok) process.exitCode = EXIT.FAILURE
    return {channels, ok}
  }
}
