import {redactUrl} from './notification-config.js'
import type {Notification, Notifier} from './notifier.js'

const TIMEOUT_MS = 10_000

/** The JSON body: `text` for Slack/Mattermost/Rocket.Chat incoming webhooks, the rest for everyone else. */
export function webhookPayload(notification: Notification): Record<string, unknown> {
  const prefix = notification.critical ? ':rotating_light: [MFC CRITICAL]' : '[MFC]'
  return {
    text: `${prefix} ${notification.subject}\n${notification.message}`,
    event: notification.event,
    kind: notification.kind,
    critical: notification.critical,
    subject: notification.subject,
    message: notification.message,
    details: notification.details,
    timestamp: notification.timestamp,
  }
}

/**
 * JSON POST to a webhook URL through the undici adapter (src/services/http-client.ts). A
 * non-2xx answer is a failure; errors name the channel, never the URL's secret path.
 */
export class WebhookNotifier implements Notifier {
  readonly channel: string

  constructor(private readonly url: string) {
    this.channel = `webhook ${redactUrl(url)}`
  }

  async send(notification: Notification): Promise<void> {
    const {postJson} = await import('../http-client.js')
    const {status} = await postJson(this.url, webhookPayload(notification), {headers: {'user-agent': 'mfc-notifier'}, timeoutMs: TIMEOUT_MS})
      .catch((error: Error) => {
        throw new Error(`${this.channel}: ${error.message}`)
      })
    if (status < 200 || status >= 300) throw new Error(`${this.channel} answered HTTP ${status}`)
  }
}
