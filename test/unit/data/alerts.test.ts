import {expect} from 'chai'

import {MfcEventBus, type MfcEvents} from '../../../src/lib/events.js'
import {AlertManager, DEFAULT_THRESHOLDS, type SettingsStore} from '../../../src/services/data/alerts.js'
import {DataValidationError} from '../../../src/services/data/reading.js'
import {reading} from '../../helpers/readings.js'

function memoryStore(): SettingsStore & {data: Map<string, string>} {
  const data = new Map<string, string>()
  return {data, getSetting: (k) => data.get(k), putSetting: (k, v) => void data.set(k, v)}
}

describe('alerts', () => {
  const clock = {now: () => new Date('2026-01-01T00:00:00Z')}

  function setup(store = memoryStore()) {
    const events = new MfcEventBus()
    const raised: MfcEvents['alert:raised'][] = []
    const cleared: MfcEvents['alert:cleared'][] = []
    events.on('alert:raised', (e) => raised.push(e))
    events.on('alert:cleared', (e) => cleared.push(e))
    return {manager: new AlertManager(store, events, clock), raised, cleared, store}
  }

  it('starts with the original defaults', () => {
    expect(setup().manager.config().alerts).to.deep.equal(DEFAULT_THRESHOLDS)
  })

  it('raises once per episode with hysteresis, then clears', () => {
    const {manager, raised, cleared} = setup()
    // Band 20-30 mM, hysteresis 5 % of 10 = 0.5 mM: clears only inside [20.5, 29.5].
    for (const c of [25, 31, 30.2, 29.8, 31, 29.6]) manager.evaluate(reading({reservoir_concentration: c}))
    expect(raised.filter((e) => e.parameter === 'reservoir_concentration')).to.have.length(1)
    expect(cleared).to.have.length(0)
    manager.evaluate(reading({reservoir_concentration: 29.4}))
    expect(cleared).to.deep.equal([{parameter: 'reservoir_concentration', value: 29.4}])
    manager.evaluate(reading({reservoir_concentration: 19}))
    const second = raised.filter((e) => e.parameter === 'reservoir_concentration')
    expect(second).to.have.length(2)
    expect(second[1].message).to.equal('reservoir_concentration value of 19.000 mM violates threshold: Below minimum (20 mM)')
    expect(manager.active().map((s) => s.parameter)).to.deep.equal(['reservoir_concentration'])
    expect(manager.list().find((s) => s.parameter === 'reservoir_concentration')).to.include({episodes: 2, active: true})
  })

  it('raises the total power alert below 0.001 W and hands email_notify to the notifier', () => {
    const {manager, raised} = setup()
    const changes = manager.evaluate(reading({total_power: 0.0002}))
    expect(changes.map((c) => c.type)).to.deep.equal(['alert_raised'])
    expect(raised[0]).to.include({parameter: 'total_power', severity: 'warning', email_notify: true})
    expect(raised[0].message).to.equal('total_power value of 2.000e-4 W violates threshold: Below minimum (0.001 W)')
  })

  it('watches the worst cell of per-cell channels', () => {
    const {manager, raised} = setup()
    manager.update([{parameter: 'cell_voltages', threshold_min: 0.3}])
    manager.evaluate(reading({cell_voltages: [0.6, 0.6, 0.25, 0.6, 0.6]}))
    expect(raised.find((e) => e.parameter === 'cell_voltages')?.value).to.equal(0.25)
  })

  it('persists thresholds (upsert by parameter) and clears an alert whose threshold is disabled', () => {
    const store = memoryStore()
    const first = setup(store)
    first.manager.evaluate(reading({reservoir_concentration: 35}))
    const result = first.manager.update([{parameter: 'reservoir_concentration', threshold_min: 22, threshold_max: 28, enabled: false}])
    expect(result.message).to.equal('Alert configuration updated with 1 alerts')
    expect(first.cleared).to.have.length(1)
    const reloaded = setup(store).manager.config().alerts
    expect(reloaded).to.have.length(2)
    expect(reloaded.find((a) => a.parameter === 'reservoir_concentration')).to.deep.equal({parameter: 'reservoir_concentration', threshold_min: 22, threshold_max: 28, enabled: false, email_notify: false})
  })

  it('rejects bad configs with 422 and changes nothing', () => {
    const {manager, store} = setup()
    const bad = [
      [{parameter: 'flux_capacitor', threshold_min: 1}],
      [{parameter: 'total_power'}],
      [{parameter: 'total_power', threshold_min: 2, threshold_max: 1}],
      [{parameter: 'total_power', threshold_min: '1'}],
      [{parameter: 'total_power', threshold_min: 1}, {parameter: 'total_power', threshold_min: 2}],
      {not: 'a list'},
    ]
    for (const body of bad) {
      expect(() => manager.update(body), JSON.stringify(body)).to.throw(DataValidationError).with.property('status', 422)
    }

    expect(store.data.size).to.equal(0)
  })
})
