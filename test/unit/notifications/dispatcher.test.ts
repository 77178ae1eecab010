import {expect} from 'chai'

import {fixedClock} from '../../../src/lib/clock.js'
import {MfcEventBus} from '../../../src/lib/events.js'
import {NotificationDispatcher} from '../../../src/services/notifications/dispatcher.js'
import {emailBody, emailSubject} from '../../../src/services/notifications/email-notifier.js'
import {toNotification} from '../../../src/services/notifications/messages.js'
import {parseNotificationConfig} from '../../../src/services/notifications/notification-config.js'
import type {Notification, Notifier} from '../../../src/services/notifications/notifier.js'

/** A channel under the test's control: records, fails, or holds its answer until released. */
class ScriptedChannel implements Notifier {
  readonly received: Notification[] = []
  release: () => void = () => {}
  constructor(readonly channel: string, private readonly behaviour: 'ok' | 'fail' | 'hold') {}

  send(notification: Notification): Promise<void> {
    this.received.push(notification)
    if (this.behaviour === 'fail') return Promise.reject(new Error('SMTP 535 authentication failed'))
    if (this.behaviour === 'hold') return new Promise((resolve) => {
      this.release = resolve
    })
    return Promise.resolve()
  }
}

const ctx = {host: 'lab-1', now: new Date('2026-03-01T00:00:00Z')}

describe('notification dispatcher', () => {
  it('maps events to notifications with the original subject convention', () => {
    const failed = toNotification('cert:renew-failed', {name: 'mfc.example.org', domains: ['mfc.example.org'], error: new Error('urn:ietf:params:acme:error:rateLimited')}, ctx)
    expect(failed).to.include({kind: 'error', critical: true})
    expect(emailSubject(failed)).to.equal('[MFC-SSL CRITICAL] Certificate renewal FAILED for mfc.example.org')
    expect(emailBody(failed)).to.include('- Reason: urn:ietf:params:acme:error:rateLimited')
    expect(toNotification('cert:expiring', {name: 'a', domains: ['a'], daysLeft: 20, expired: false}, ctx).kind).to.equal('info')
    expect(toNotification('cert:expiring', {name: 'a', domains: ['a'], daysLeft: 5, expired: false}, ctx)).to.include({kind: 'error', critical: true})
    expect(toNotification('cert:renewed', {name: 'a', domains: ['a'], version: '0002', notAfter: 'x'}, ctx).kind).to.equal('renewal')
    expect(toNotification('alert:raised', {parameter: 'voltage', value: 0.1, message: 'low', severity: 'critical'}, ctx).kind).to.equal('error')
    expect(toNotification('daemon:restarted', {pid: 9, restarts: 2, reason: 'exit code 1'}, ctx).kind).to.equal('error')
  })

  it('filters by level: errors < renewals < all', async () => {
    const counts: Record<string, number> = {}
    for (const level of ['errors', 'renewals', 'all'] as const) {
      const channel = new ScriptedChannel('c', 'ok')
      const dispatcher = new NotificationDispatcher([channel], level, fixedClock(ctx.now))
      const bus = new MfcEventBus()
      dispatcher.attach(bus)
      bus.emit('cert:renewed', {name: 'a', domains: ['a'], version: '0002', notAfter: 'x'})
      bus.emit('cert:renew-failed', {name: 'a', domains: ['a'], error: new Error('x')})
      bus.emit('cert:expiring', {name: 'a', domains: ['a'], daysLeft: 20, expired: false})
      bus.emit('server:listening', {service: 'api', url: 'https://x'})
      await dispatcher.flush()
      counts[level] = channel.received.length
    }

    expect(counts).to.deep.equal({errors: 1, renewals: 2, all: 3})
  })

  it('sends an alert only when its threshold asks for it (email_notify), at the level its severity allows', async () => {
    const channel = new ScriptedChannel('c', 'ok')
    const dispatcher = new NotificationDispatcher([channel], 'all', fixedClock(ctx.now))
    const bus = new MfcEventBus()
    dispatcher.attach(bus)
    bus.emit('alert:raised', {parameter: 'reservoir_concentration', value: 35, message: 'high', severity: 'warning', email_notify: false})
    bus.emit('alert:raised', {parameter: 'total_power', value: 0, message: 'Total Power is 0, below 0.001', severity: 'warning', email_notify: true})
    await dispatcher.flush()
    expect(channel.received.map((n) => n.subject)).to.deep.equal(['Alert: total_power = 0 (warning)'])
    const quiet = new ScriptedChannel('q', 'ok')
    const renewalsOnly = new NotificationDispatcher([quiet], 'renewals', fixedClock(ctx.now))
    renewalsOnly.attach(bus)
    bus.emit('alert:raised', {parameter: 'total_power', value: 0, message: 'low', severity: 'warning', email_notify: true})
    await renewalsOnly.flush()
    expect(quiet.received).to.deep.equal([])
  })

  it('sends the clear of an alert only when its raise was notified (email_notify)', async () => {
    const channel = new ScriptedChannel('c', 'ok')
    const dispatcher = new NotificationDispatcher([channel], 'all', fixedClock(ctx.now))
    const bus = new MfcEventBus()
    dispatcher.attach(bus)
    bus.emit('alert:cleared', {source: 'rig-1', parameter: 'reservoir_concentration', value: 25, email_notify: false})
    bus.emit('alert:cleared', {source: 'rig-1', parameter: 'total_power', value: 0.002, since: '2026-01-01T00:00:00.000Z', email_notify: true})
    bus.emit('alert:cleared', {source: 'rig-2', parameter: 'no_data', value: 0, email_notify: true})
    await dispatcher.flush()
    expect(channel.received.map((n) => n.subject)).to.deep.equal(['Alert cleared: rig-1 total_power = 0.002', 'Alert cleared: rig-2 no_data = 0'])
    expect(channel.received[0].message).to.equal('rig-1: total_power is back within its threshold (value 0.002); the alert was raised at 2026-01-01T00:00:00.000Z.')
    expect(channel.received[1].message).to.equal('rig-2: data arrives again.')
  })

  it('never blocks the emitter, and a failing channel does not stop the others', async () => {
    const slow = new ScriptedChannel('webhook slow', 'hold')
    const broken = new ScriptedChannel('email broken', 'fail')
    const good = new ScriptedChannel('webhook good', 'ok')
    const reported: string[] = []
    const dispatcher = new NotificationDispatcher([slow, broken, good], 'errors', fixedClock(ctx.now), (r) => reported.push(`${r.channel}:${r.ok}`))
    const bus = new MfcEventBus()
    dispatcher.attach(bus)
    bus.emit('cert:renew-failed', {name: 'a', domains: ['a'], error: new Error('CA down')})
    // emit returned while a channel still holds its answer: renewal code goes on.
    expect(slow.received).to.have.length(1)
    expect(good.received).to.have.length(1)
    const flushed = dispatcher.flush()
    slow.release()
    const results = await flushed
    expect(results.map((r) => [r.channel, r.ok])).to.deep.equal([['webhook slow', true], ['email broken', false], ['webhook good', true]])
    expect(results[1].error).to.equal('SMTP 535 authentication failed')
    expect(reported).to.deep.equal(['webhook slow:true', 'email broken:false', 'webhook good:true'])
  })

  it('loads a Python-era notification-config.json and rejects bad values by key', () => {
    const config = parseNotificationConfig({enabled: true, smtp_server: 'smtp.lab', smtp_port: 587, smtp_username: '', smtp_password: '', from_email: 'a@b', to_emails: ['x@y'], use_tls: true}, 'f.json')
    expect(config).to.include({level: 'renewals'})
    expect(config.webhooks).to.deep.equal([])
    expect(() => parseNotificationConfig({to_emails: 'x@y'}, 'f.json')).to.throw('Invalid "to_emails" in f.json')
    expect(() => parseNotificationConfig({level: 'loud'}, 'f.json')).to.throw('"level"')
  })
})
