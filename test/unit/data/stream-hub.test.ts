import {expect} from 'chai'

import {MonitoringStreamHub} from '../../../src/services/data/stream-hub.js'
import {series} from '../../helpers/readings.js'

function client(id: string, accept = () => true) {
  const sent: {type: string; [k: string]: unknown}[] = []
  const closed: (number | undefined)[] = []
  return {id, auth: {method: 'token' as const}, sent, closed, send: (m: object) => (accept() ? (sent.push(m as never), true) : false), close: (code?: number) => void closed.push(code)}
}

describe('stream hub', () => {
  const clock = {now: () => new Date('2026-01-01T00:00:00Z')}

  it('keeps the default heartbeat when the option is passed as undefined (regression)', () => {
    const hub = new MonitoringStreamHub({clock, heartbeatMs: undefined})
    expect((hub as unknown as {options: {heartbeatMs: number}}).options.heartbeatMs).to.equal(2000)
  })

  it('sends a heartbeat only after an idle period, with the client count', () => {
    const hub = new MonitoringStreamHub({clock}, series(3))
    const c = client('a')
    hub.onConnect(c)
    hub.publish(series(1))
    hub.heartbeat()
    expect(c.sent.map((m) => m.type)).to.deep.equal(['initial_data', 'data_update'])
    hub.heartbeat()
    expect(c.sent.at(-1)).to.include({type: 'heartbeat', clients_connected: 1})
    hub.close()
  })

  it('closes a client that keeps dropping messages (backpressure) and counts the drops', () => {
    const hub = new MonitoringStreamHub({clock, maxDrops: 3})
    let open = true
    const slow = client('slow', () => open)
    hub.onConnect(slow)
    open = false
    for (let i = 0; i < 3; i++) hub.publish(series(1))
    expect(slow.closed).to.deep.equal([1013])
    expect(hub.dropped).to.equal(3)
    expect(hub.clientCount).to.equal(0)
  })

  it('caps data_update at the newest points and reports total_points', () => {
    const hub = new MonitoringStreamHub({clock, maxUpdatePoints: 10, cacheSize: 50})
    const c = client('a')
    hub.onConnect(c)
    hub.publish(series(80))
    const update = c.sent.find((m) => m.type === 'data_update')!
    expect(update.data).to.have.length(10)
    expect(update.total_points).to.equal(50)
  })

  it('announces a cluster catch-up gap as one data_gap to data subscribers, not to an alerts-only one', () => {
    const hub = new MonitoringStreamHub({clock})
    const data = client('data')
    const alertsOnly = client('alerts')
    hub.onConnect(data)
    hub.onConnect(alertsOnly)
    hub.onMessage(alertsOnly, {type: 'subscribe', streams: ['alerts']})
    hub.gap({from: '2026-01-01T00:00:00.000Z', missed: 7, to: '2026-01-01T00:00:06.000Z'})
    expect(data.sent.at(-1)).to.deep.equal({from: '2026-01-01T00:00:00.000Z', missed: 7, timestamp: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:00:06.000Z', type: 'data_gap'})
    expect(alertsOnly.sent.map((m) => m.type)).to.deep.equal(['initial_data', 'subscription_confirmed'])
    hub.close()
  })
})
