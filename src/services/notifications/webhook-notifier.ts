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
 * JSON POST to a webhook URL. Uses Node's global fetch (undici inside); when serve's
 * src/services/http-client.ts lands as undici's one adapter, this moves onto it.
 * A non-2xx answer is a failure.
 */
export class WebhookNotifier implements Notifier {
  readonly channel: string

  constructor(private readonly url: string) {
    this.channel = `webhook ${redactUrl(url)}`
  }

  async send(notification: Notification): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: {'content-type': 'application/json', 'user-agent': 'mfc-notifier'},
      body: JSON.stringify(webhookPayload(notification)),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    }).catch((error: Error) => {
      const cause = (error.cause as Error | undefined)?.message
      throw new Error(`${this.channel}: ${error.name === 'TimeoutError' ? `no answer in ${TIMEOUT_MS / 1000} s` : cause ?? error.message}`)
    })
    await response.arrayBuffer().catch(() => undefined)
    if (!response.ok) throw new Error(`${this.channel} answered HTTP ${response.status}`)
  }
}
