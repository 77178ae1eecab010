import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {MfcEventBus} from '../lib/events.js'
import type {Logger} from '../lib/logger.js'
import type {MonitorReport} from '../services/certificates/monitor.js'
import {type ChannelResult, NotificationDispatcher, notifiersFrom} from '../services/notifications/dispatcher.js'
import {loadNotificationConfig} from '../services/notifications/notification-config.js'

/** Builds the dispatcher of notification-config.json, or undefined when no channel is configured. */
export async function notificationDispatcher(config: MfcConfig, onResult?: (result: ChannelResult) => void): Promise<NotificationDispatcher | undefined> {
  const {config: notify} = await loadNotificationConfig(config.paths.notificationConfigFile)
  const notifiers = notifiersFrom(notify)
  return notifiers.length > 0 ? new NotificationDispatcher(notifiers, notify.level, systemClock, onResult) : undefined
}

/** Notifications about the events of one run (a renewal, a serve process). */
export interface NotificationRun {
  /**
   * Stops listening, waits for every send started (each channel times out on its own, but
   * `graceMs` caps the wait: a stopping serve does not hang on a dead SMTP server), returns the
   * results. Idempotent, never rejects.
   */
  finish(graceMs?: number): Promise<ChannelResult[]>
  /** Why nothing will be sent although notifications may be wanted (notification-config.json is invalid). */
  problem: string | null
}

/**
 * Notifies about what `bus` carries from now on: renewals, restarts, alerts. A broken
 * notification config or a failing channel is reported, never thrown: notifications never
 * stop or change the work they report on.
 */
export async function notifyFrom(config: MfcConfig, bus: MfcEventBus, onResult?: (result: ChannelResult) => void): Promise<NotificationRun> {
  let dispatcher: NotificationDispatcher | undefined
  try {
    dispatcher = await notificationDispatcher(config, onResult)
  } catch (error) {
    return {finish: async () => [], problem: `No notifications: ${(error as Error).message}`}
  }

  const detach = dispatcher?.attach(bus)
  let finished: Promise<ChannelResult[]> | undefined
  return {
    problem: null,
    finish(graceMs?: number) {
      detach?.()
      finished ??= dispatcher ? dispatcher.flush() : Promise.resolve([])
      if (graceMs === undefined) return finished
      return Promise.race([finished, new Promise<ChannelResult[]>((resolve) => setTimeout(resolve, graceMs, []).unref())])
    },
  }
}

/** What a command prints (stderr) about its notifications: only what went wrong. */
export function notificationWarnings(run: NotificationRun, results: ChannelResult[]): string[] {
  return [...(run.problem ? [run.problem] : []), ...results.filter((r) => !r.ok).map((r) => `Notification via ${r.channel} failed: ${r.error}`)]
}

/** For the serve processes: every channel result goes to the log; a broken config is logged once. */
export async function logNotifications(config: MfcConfig, bus: MfcEventBus, logger: Logger): Promise<NotificationRun> {
  const log = logger.child({component: 'notify'})
  const run = await notifyFrom(config, bus, (result) => {
    if (result.ok) log.info({channel: result.channel, event: result.event}, 'Notification sent')
    else log.warn({channel: result.channel, event: result.event, err: result.error}, 'Notification failed')
  })
  if (run.problem) log.warn({file: config.paths.notificationConfigFile}, run.problem)
  return run
}

/** `cert monitor --notify`: an expiry notification per certificate inside its renewal window. */
export async function notifyExpiring(config: MfcConfig, report: MonitorReport): Promise<ChannelResult[]> {
  const dispatcher = await notificationDispatcher(config)
  if (!dispatcher) return []
  const bus = new MfcEventBus()
  const detach = dispatcher.attach(bus)
  for (const cert of report.certificates) {
    if (!['due', 'critical', 'expired'].includes(cert.status) || cert.daysLeft === null) continue
    bus.emit('cert:expiring', {name: cert.name, domains: cert.certificate?.sans ?? [cert.name], daysLeft: cert.daysLeft, expired: cert.status === 'expired'})
  }

  detach()
  return dispatcher.flush()
}
