import type {NotificationConfig} from './notification-config.js'
import type {Notification, Notifier} from './notifier.js'

const TIMEOUT_MS = 15_000

export function emailSubject(notification: Notification): string {
  return `${notification.critical ? '[MFC-SSL CRITICAL]' : '[MFC-SSL]'} ${notification.subject}`
}

/** The original's plain-text body, with the event's details. */
export function emailBody(notification: Notification): string {
  const details = Object.entries(notification.details).map(([key, value]) => `- ${key}: ${value}`)
  return [
    'MFC Monitoring System - SSL Certificate Notification',
    '',
    notification.message,
    '',
    'System Information:',
    ...details,
    `- Timestamp: ${notification.timestamp}`,
    '',
    'This is an automated message from the MFC Monitoring System.',
    '',
  ].join('\n')
}

/**
 * Email over SMTP through nodemailer (its only importer, loaded at the first send). With
 * use_tls the connection must upgrade with STARTTLS (port 465: implicit TLS) before any
 * login, and the server certificate is verified; without it, plain SMTP (local relays).
 */
export class EmailNotifier implements Notifier {
  readonly channel: string

  constructor(private readonly config: NotificationConfig) {
    this.channel = `email ${config.smtp_server}:${config.smtp_port} -> ${config.to_emails.join(', ')}`
  }

  async send(notification: Notification): Promise<void> {
    const {default: nodemailer} = await import('nodemailer')
    const {config} = this
    const implicitTls = config.use_tls && config.smtp_port === 465
    const transport = nodemailer.createTransport({
      host: config.smtp_server,
      port: config.smtp_port,
      secure: implicitTls,
      requireTLS: config.use_tls && !implicitTls,
      ignoreTLS: !config.use_tls,
      auth: config.smtp_username ? {user: config.smtp_username, pass: config.smtp_password} : undefined,
      connectionTimeout: TIMEOUT_MS,
      greetingTimeout: TIMEOUT_MS,
      socketTimeout: TIMEOUT_MS,
    })
    try {
      await transport.sendMail({from: config.from_email, to: config.to_emails.join(', '), subject: emailSubject(notification), text: emailBody(notification)})
    } finally {
      transport.close()
    }
  }
}
