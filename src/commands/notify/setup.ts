import {readFile} from 'node:fs/promises'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {askChoice, askConfirm, askSecret, askText} from '../../cli/prompts.js'
import {facts} from '../../cli/render.js'
import {UsageError, fileProblem} from '../../lib/errors.js'
import {withLock} from '../../lib/lock.js'
import {runningServe} from '../../services/daemon/reload.js'
import {type NotificationConfig, loadNotificationConfig, parseNotificationConfig, redactNotificationConfig, saveNotificationConfig} from '../../services/notifications/notification-config.js'
import type {NotificationLevel} from '../../services/notifications/notifier.js'

export interface NotifySetupResult {
  file: string
  config: ReturnType<typeof redactNotificationConfig>
}

/** The flag that sets each key, for errors that name what the user typed. */
const FLAG_OF = {
  smtp_server: '--smtp-server', smtp_port: '--smtp-port', smtp_username: '--smtp-username', smtp_password: '--smtp-password-file',
  from_email: '--from', to_emails: '--to', webhooks: '--webhook', level: '--level',
} as const

const SETTING_FLAGS = ['email', 'smtp-server', 'smtp-port', 'smtp-username', 'smtp-password-file', 'from', 'to', 'tls', 'webhook', 'clear-webhooks', 'level'] as const

export default class NotifySetup extends MfcCommand {
  static override summary = 'Configure email and webhook notifications (interactive, or with flags).'

  static override description = `Writes notification-config.json (mode 0600) in the config directory. Email uses SMTP with
STARTTLS by default (port 465: implicit TLS); webhooks get a JSON POST with a Slack-compatible
"text" field. Levels: errors (renewal failures, expired or nearly expired certificates, service
restarts, critical alerts), renewals (also successful renewals; the default), all (also expiry
warnings inside the renewal window and every alert). Flags change only what they name.`

  static override examples = [
    {description: 'Ask for everything', command: '<%= config.bin %> <%= command.id %>'},
    '<%= config.bin %> <%= command.id %> --email --smtp-server smtp.example.org --smtp-username mfc --smtp-password-file ~/.smtp-pass --from mfc@example.org --to ops@example.org',
    '<%= config.bin %> <%= command.id %> --webhook https://hooks.slack.com/services/T000/B000/XXXX --level errors',
  ]

  static override flags = {
    email: Flags.boolean({description: 'Send email notifications (--no-email turns them off).', allowNo: true}),
    'smtp-server': Flags.string({description: 'SMTP server host.'}),
    'smtp-port': Flags.integer({description: 'SMTP port (587 STARTTLS, 465 implicit TLS, 25).', min: 1, max: 65_535}),
    'smtp-username': Flags.string({description: 'SMTP login (empty: no login).'}),
    'smtp-password-file': Flags.string({description: 'File holding the SMTP password (first line).'}),
    from: Flags.string({description: 'Sender address.'}),
    to: Flags.string({description: 'Recipient (repeatable, or comma-separated).', multiple: true}),
    tls: Flags.boolean({description: 'Require STARTTLS (--no-tls for a plain local relay).', allowNo: true}),
    webhook: Flags.string({description: 'Webhook URL (repeatable; replaces the list).', multiple: true}),
    'clear-webhooks': Flags.boolean({description: 'Remove every webhook.', exclusive: ['webhook']}),
    level: Flags.string({description: 'What to send.', options: ['errors', 'renewals', 'all']}),
  }

  async run(): Promise<NotifySetupResult> {
    const {flags} = await this.parse(NotifySetup)
    const config = this.loadConfig(flags.config)
    const file = config.paths.notificationConfigFile
    const {config: current} = await loadNotificationConfig(file)
    const given = SETTING_FLAGS.some((name) => flags[name as keyof typeof flags] !== undefined)
    if (!given && !this.canPrompt()) {
      throw new UsageError('Nothing to set: no flags given and no terminal to ask on.', {code: 'MFC_USAGE', suggestions: ['Pass flags (see `mfc notify setup --help`), or run it on a terminal.']})
    }

    const next = given ? await this.fromFlags(current, flags) : await this.ask(current)
    const valid = parseNotificationConfig(next as unknown as Record<string, unknown>, given ? {flags: FLAG_OF} : 'your answers')
    await withLock(config.paths.lockFile, 'notify setup', () => saveNotificationConfig(file, valid))
    const shown = redactNotificationConfig(valid)
    this.say(`Saved ${file} (mode 0600).`)
    this.say(facts([
      ['Email', valid.enabled ? `${valid.smtp_server}:${valid.smtp_port}${valid.use_tls ? ' (STARTTLS)' : ' (no TLS)'} -> ${valid.to_emails.join(', ') || '(no recipients)'}` : 'off'],
      ['Webhooks', shown.webhooks.join(', ') || 'none'], ['Level', valid.level],
    ]))
    this.say('Next: `mfc notify test` sends a test message through each channel.')
    // serve reads the channels when it starts (alerts, restarts): a running one has the old ones.
    if (await runningServe(config.paths.pidFile)) this.say('mfc serve is running: restart it (`mfc stop`, then `mfc serve --daemon`) so its alerts use these channels.')
    return {file, config: shown}
  }

  private async fromFlags(current: NotificationConfig, flags: Record<string, unknown>): Promise<NotificationConfig> {
    const list = (values: unknown) => (values as string[] | undefined)?.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean)
    return {
      ...current,
      enabled: (flags.email as boolean | undefined) ?? current.enabled,
      smtp_server: (flags['smtp-server'] as string | undefined) ?? current.smtp_server,
      smtp_port: (flags['smtp-port'] as number | undefined) ?? current.smtp_port,
      smtp_username: (flags['smtp-username'] as string | undefined) ?? current.smtp_username,
      smtp_password: flags['smtp-password-file'] ? await firstLine(flags['smtp-password-file'] as string) : current.smtp_password,
      from_email: (flags.from as string | undefined) ?? current.from_email,
      to_emails: list(flags.to) ?? current.to_emails,
      use_tls: (flags.tls as boolean | undefined) ?? current.use_tls,
      webhooks: flags['clear-webhooks'] ? [] : list(flags.webhook) ?? current.webhooks,
      level: (flags.level as NotificationLevel | undefined) ?? current.level,
    }
  }

  /** The original wizard's questions, in its order, plus webhooks and level. */
  private async ask(current: NotificationConfig): Promise<NotificationConfig> {
    this.say('=== Notification Setup ===')
    const next = {...current, enabled: await askConfirm('Enable email notifications?', current.enabled)}
    if (next.enabled) {
      next.smtp_server = await askText('SMTP server:', {default: current.smtp_server})
      next.smtp_port = Number(await askText('SMTP port:', {default: String(current.smtp_port), validate: (v) => /^\d+$/.test(v) || 'A port number.'}))
      next.smtp_username = await askText('SMTP username (optional):', {default: current.smtp_username})
      if (next.smtp_username) next.smtp_password = (await askSecret('SMTP password (empty: keep the current one):')) || current.smtp_password
      next.from_email = await askText('From email:', {default: current.from_email})
      next.to_emails = (await askText('To emails (comma-separated):', {default: current.to_emails.join(', ')})).split(',').map((e) => e.trim()).filter(Boolean)
      next.use_tls = await askConfirm('Use TLS (STARTTLS)?', current.use_tls)
    }

    const hooks = await askText('Webhook URLs (comma-separated, empty for none):', {default: current.webhooks.join(', ')})
    next.webhooks = hooks.split(',').map((u) => u.trim()).filter(Boolean)
    next.level = await askChoice('What should be sent?', [
      {name: 'Errors only', value: 'errors'}, {name: 'Renewals and errors', value: 'renewals'}, {name: 'Everything (also expiry warnings and alerts)', value: 'all'},
    ], current.level)
    return next
  }
}

async function firstLine(file: string): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).split(/\r?\n/)[0]
  } catch (error) {
    throw new UsageError(`The SMTP password file ${fileProblem(file, error).replace(/^Cannot read /, '')}.`, {code: 'MFC_USAGE', cause: error, suggestions: [`Write the password into ${file} (mode 0600), or pass another --smtp-password-file.`]})
  }
}
