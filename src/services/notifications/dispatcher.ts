import {hostname} from 'node:os'

import type {Clock} from '../../lib/clock.js'
import type {MfcEventBus} from '../../lib/events.js'
import {EmailNotifier} from './email-notifier.js'
import {NOTIFIED_EVENTS, toNotification, wantsNotification} from './messages.js'
import type {NotificationConfig} from './notification-config.js'
import {type Notification, type NotificationLevel, type Notifier, passesLevel} from './notifier.js'
import {WebhookNotifier} from './webhook-notifier.js'

export interface ChannelResult {
  channel: string
  event: Notification['event']
  ok: boolean
  error?: string
}

/** The channels a config enables: email when `enabled` with recipients, one per webhook URL. */
export function notifiersFrom(config: NotificationConfig): Notifier[] {
  const notifiers: Notifier[] = []
  if (config.enabled && config.to_emails.length > 0) notifiers.push(new EmailNotifier(config))
  for (const url of config.webhooks) notifiers.push(new WebhookNotifier(url))
  return notifiers
}

/**
 * Sends notifications to every channel at once. A failing or slow channel never blocks the
 * caller's work (renewal goes on) and never stops the other channels: each failure becomes a
 * ChannelResult passed to `onResult` (the daemon logs it, commands print it).
 */
export class NotificationDispatcher {
  private readonly pending = new Set<Promise<ChannelResult[]>>()
  private completed: ChannelResult[] = []

  constructor(
    private readonly notifiers: Notifier[],
    private readonly level: NotificationLevel,
    private readonly clock: Clock,
    private readonly onResult: (result: ChannelResult) => void = () => {},
  ) {}

  /**
   * Subscribes to the notified events (alerts only when their threshold asks, see
   * wantsNotification); returns the unsubscribe function. Sending happens in the background.
   */
  attach(bus: MfcEventBus): () => void {
    return bus.onAny((event, payload) => {
      if (!wantsNotification(event as (typeof NOTIFIED_EVENTS)[number], payload as never)) return
      const notification = toNotification(event as (typeof NOTIFIED_EVENTS)[number], payload as never, {host: hostname(), now: this.clock.now()})
      if (passesLevel(notification.kind, this.level)) void this.track(this.sendAll(notification))
    }, [...NOTIFIED_EVENTS])
  }

  /** Sends to every channel regardless of level (e.g. `notify test`). Never rejects. */
  dispatch(notification: Notification): Promise<ChannelResult[]> {
    return this.track(this.sendAll(notification))
  }

  /** Waits for every send started so far; returns the results since the last flush. */
  async flush(): Promise<ChannelResult[]> {
    await Promise.all([...this.pending])
    const results = this.completed
    this.completed = []
    return results
  }

  private track(work: Promise<ChannelResult[]>): Promise<ChannelResult[]> {
    this.pending.add(work)
    void work.then((results) => {
      this.completed.push(...results)
      this.pending.delete(work)
    })
    return work
  }

  private async sendAll(notification: Notification): Promise<ChannelResult[]> {
    const settled = await Promise.allSettled(this.notifiers.map((n) => n.send(notification)))
    return settled.map((outcome, index) => {
      const result: ChannelResult = outcome.status === 'fulfilled'
        ? {channel: this.notifiers[index].channel, event: notification.event, ok: true}
        : {channel: this.notifiers[index].channel, event: notification.event, ok: false, error: (outcome.reason as Error).message}
      this.onResult(result)
      return result
    })
  }
}
