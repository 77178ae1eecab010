import {systemClock} from '../lib/clock.js'
import type {MfcConfig} from '../lib/config.js'
import {MfcEventBus} from '../lib/events.js'
import type {MonitorReport} from '../services/certificates/monitor.js'
import {type ChannelResult, NotificationDispatcher, notifiersFrom} from '../services/notifications/dispatcher.js'
import {loadNotificationConfig} from '../services/notifications/notification-config.js'

/** Builds the dispatcher of notification-config.json, or undefined when no channel is configured. */
export async function notificationDispatcher(config: MfcConfig): Promise<NotificationDispatcher | undefined> {
  const {config: notify} = await loadNotificationConfig(config.paths.notificationConfigFile)
  const notifiers = notifiersFrom(notify)
  return notifiers.length > 0 ? new NotificationDispatcher(notifiers, notify.level, systemClock) : undefined
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
