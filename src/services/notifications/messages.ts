import type {MfcEventName, MfcEvents} from '../../lib/events.js'
import type {Notification} from './notifier.js'

/** The events that become notifications. */
export const NOTIFIED_EVENTS = ['cert:renewed', 'cert:renew-failed', 'cert:renew-recovered', 'cert:expiring', 'daemon:restarted', 'alert:raised', 'alert:cleared'] as const satisfies readonly MfcEventName[]
export type NotifiedEvent = (typeof NOTIFIED_EVENTS)[number]

/**
 * Whether an event is news for people at all (before levels apply): an alert only when its
 * threshold asks for it (`email_notify`, the original's per-alert switch, now for every channel),
 * and its clear only when the alert was notified.
 */
export function wantsNotification<K extends NotifiedEvent>(event: K, payload: MfcEvents[K]): boolean {
  if (event === 'alert:raised') return (payload as MfcEvents['alert:raised']).email_notify !== false
  if (event === 'alert:cleared') return (payload as MfcEvents['alert:cleared']).email_notify === true
  return true
}

/** Days left at or under which an expiry warning counts as an error (the monitor's CRITICAL). */
const CRITICAL_DAYS = 7

type Context = {host: string; now: Date}

function base(event: NotifiedEvent, ctx: Context): Pick<Notification, 'event' | 'timestamp'> & {details: Record<string, string>} {
  return {event, timestamp: ctx.now.toISOString(), details: {Host: ctx.host}}
}

/** Turns an event into the notification people receive: a pure function of the event. */
export function toNotification<K extends NotifiedEvent>(event: K, payload: MfcEvents[K], ctx: Context): Notification {
  switch (event) {
    case 'cert:renewed': {
      const p = payload as MfcEvents['cert:renewed']
      return {...base(event, ctx), kind: 'renewal', critical: false, subject: `Certificate renewed for ${p.domains.join(', ')}`,
        message: `The certificate "${p.name}" was renewed (version ${p.version}). It is valid until ${p.notAfter}.`,
        details: {...base(event, ctx).details, Domain: p.domains.join(', '), Version: p.version, 'Valid until': p.notAfter}}
    }

    case 'cert:renew-failed': {
      const p = payload as MfcEvents['cert:renew-failed']
      return {...base(event, ctx), kind: 'error', critical: true, subject: `Certificate renewal FAILED for ${p.domains.join(', ')}`,
        message: `Renewing the certificate "${p.name}" failed: ${p.error.message}\nThe current certificate stays in place. Run \`mfc cert renew-if-needed\` by hand to see the details.`,
        details: {...base(event, ctx).details, Domain: p.domains.join(', '), Reason: p.error.message}}
    }

    case 'cert:renew-recovered': {
      const p = payload as MfcEvents['cert:renew-recovered']
      return {...base(event, ctx), kind: 'renewal', critical: false, subject: `Certificate renewal recovered for ${p.domains.join(', ')}`,
        message: `The certificate "${p.name}" was renewed (version ${p.version}, valid until ${p.notAfter}) after ${p.failures} failed attempt${p.failures === 1 ? '' : 's'}.`,
        details: {...base(event, ctx).details, Domain: p.domains.join(', '), Version: p.version, 'Failed attempts': String(p.failures), 'Valid until': p.notAfter}}
    }

    case 'cert:expiring': {
      const p = payload as MfcEvents['cert:expiring']
      const critical = p.expired || p.daysLeft <= CRITICAL_DAYS
      return {...base(event, ctx), kind: critical ? 'error' : 'info', critical,
        subject: p.expired ? `Certificate EXPIRED for ${p.domains.join(', ')}` : `Certificate for ${p.domains.join(', ')} expires in ${p.daysLeft} days`,
        message: p.expired
          ? `The certificate "${p.name}" has expired. Clients now refuse the connection. Renew it: \`mfc cert renew\`.`
          : `The certificate "${p.name}" expires in ${p.daysLeft} days and is inside its renewal window. Check that renewal runs (\`mfc cert monitor\`, \`crontab -l\`).`,
        details: {...base(event, ctx).details, Domain: p.domains.join(', '), 'Days left': String(p.daysLeft)}}
    }

    case 'daemon:restarted': {
      const p = payload as MfcEvents['daemon:restarted']
      return {...base(event, ctx), kind: 'error', critical: false, subject: `mfc serve was restarted (${p.reason})`,
        message: `The supervisor restarted mfc serve (restart #${p.restarts}, new pid ${p.pid}): ${p.reason}. See the log file for the crash.`,
        details: {...base(event, ctx).details, Restarts: String(p.restarts), Reason: p.reason}}
    }

    case 'alert:cleared': {
      const p = payload as MfcEvents['alert:cleared']
      return {...base(event, ctx), kind: 'info', critical: false, subject: `Alert cleared: ${p.source ? `${p.source} ` : ''}${p.parameter} = ${p.value}`,
        message: `${p.source ? `${p.source}: ` : ''}${p.parameter === 'no_data' ? 'data arrives again' : `${p.parameter} is back within its threshold (value ${p.value})`}${p.since ? `; the alert was raised at ${p.since}` : ''}.`,
        details: {...base(event, ctx).details, ...(p.source ? {Source: p.source} : {}), Parameter: p.parameter, Value: String(p.value), ...(p.since ? {'Raised at': p.since} : {})}}
    }

    default: {
      const p = payload as MfcEvents['alert:raised']
      const critical = /^(critical|error|emergency)$/i.test(p.severity)
      return {...base(event, ctx), kind: critical ? 'error' : 'info', critical, subject: `Alert: ${p.source ? `${p.source} ` : ''}${p.parameter} = ${p.value} (${p.severity})`,
        message: p.message, details: {...base(event, ctx).details, ...(p.source ? {Source: p.source} : {}), Parameter: p.parameter, Value: String(p.value), Severity: p.severity}}
    }
  }
}

export function testNotification(ctx: Context): Notification {
  return {event: 'test', kind: 'info', critical: false, timestamp: ctx.now.toISOString(), subject: 'Test notification',
    message: 'This is a test notification from `mfc notify test`. If you read this, the channel works.', details: {Host: ctx.host}}
}
