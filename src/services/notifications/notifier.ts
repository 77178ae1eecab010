import type {MfcEventName} from '../../lib/events.js'

/** How far a notification reaches: `errors` < `renewals` < `all` (acme.sh's notify levels). */
export type NotificationLevel = 'errors' | 'renewals' | 'all'

/** What kind of news a notification is; a level lets through the kinds at or below it. */
export type NotificationKind = 'error' | 'renewal' | 'info'

export interface Notification {
  event: MfcEventName | 'test'
  kind: NotificationKind
  /** Critical news gets "[MFC-SSL CRITICAL]" in email subjects (the original's convention). */
  critical: boolean
  subject: string
  message: string
  timestamp: string
  /** Facts for the body: domain, certificate file, host... */
  details: Record<string, string>
}

/**
 * One delivery channel (an SMTP account, a webhook URL). `send` resolves when the channel
 * accepted the message and rejects with an Error naming the channel's problem; it must time
 * out on its own (no hanging). Implementations hold no state between sends.
 */
export interface Notifier {
  /** A label for reports, e.g. "email smtp.example.org:587" or "webhook hooks.slack.com". Never holds secrets. */
  readonly channel: string
  send(notification: Notification): Promise<void>
}

const ORDER: Record<NotificationKind, number> = {error: 0, renewal: 1, info: 2}
const REACH: Record<NotificationLevel, number> = {errors: 0, renewals: 1, all: 2}

export function passesLevel(kind: NotificationKind, level: NotificationLevel): boolean {
  return ORDER[kind] <= REACH[level]
}
