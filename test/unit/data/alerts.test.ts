import {expect} from 'chai'

import {MfcEventBus, type MfcEvents} from '../../../src/lib/events.js'
import {AlertManager, DEFAULT_THRESHOLDS, formatSi, type SettingsStore} from '../../../src/services/data/alerts.js'
import {DataValidationError} from '../../../src/services/data/reading.js'
import {AUTOSTART_CONFIG} from '../../../src/services/data/monitoring.js'
import {DEFAULT_MODEL_OPTIONS, MfcStackModel} from '../../../src/services/data/simulator.js'
import {reading} from '../../helpers/readings.js'

function memoryStore(): SettingsStore & {data: Map<string, string>} {
  const data = new Map<string, string>()
  return {data, getSetting: async (k) => data.get(k), putSetting: async (k, v) => void data.set(k, v)}
}

describe('alerts', () => {
  const clock = {now: () => new Date('2026-01-01T00:00:00Z')}

  async function setup(store = memoryStore()) {
    const events = new MfcEventBus()
    const raised: MfcEvents['alert:raised'][] = []
    const cleared: MfcEvents['alert:cleared'][] = []
    events.on('alert:raised', (e) => raised.push(e))
    events.on('alert:cleared', (e) => cleared.push(e))
    return {manager: await AlertManager.open(store, events, clock), raised, cleared, store}
  }

  it('starts with the original defaults', async () => {
    expect((await setup()).manager.config().alerts).to.deep.equal(DEFAULT_THRESHOLDS)
  })

  it('raises once per episode with hysteresis, then clears', async () => {
    const {manager, raised, cleared} = await setup()
    // Band 20-30 mM, hysteresis 5 % of 10 = 0.5 mM: clears only inside [20.5, 29.5].
    for (const c of [25, 31, 30.2, 29.8, 31, 29.6]) manager.evaluate(reading({reservoir_concentration: c}))
    expect(raised.filter((e) => e.parameter === 'reservoir_concentration')).to.have.length(1)
    expect(cleared).to.have.length(0)
    manager.evaluate(reading({reservoir_concentration: 29.4}))
    expect(cleared).to.deep.equal([{source: 'test', parameter: 'reservoir_concentration', value: 29.4, since: '2026-01-01T00:00:00.000Z', email_notify: false}])
    manager.evaluate(reading({reservoir_concentration: 19}))
    const second = raised.filter((e) => e.parameter === 'reservoir_concentration')
    expect(second).to.have.length(2)
    expect(second[1].message).to.equal('test: reservoir_concentration value of 19 mM violates threshold: Below minimum (20 mM)')
    expect(manager.active().map((s) => s.parameter)).to.deep.equal(['reservoir_concentration'])
    expect(manager.list().find((s) => s.parameter === 'reservoir_concentration')).to.include({episodes: 2, active: true})
  })

  it('raises the total power alert below 0.001 W and hands email_notify to the notifier', async () => {
    const {manager, raised} = await setup()
    const changes = manager.evaluate(reading({total_power: 0.0002}))
    expect(changes.map((c) => c.type)).to.deep.equal(['alert_raised'])
    expect(raised[0]).to.include({parameter: 'total_power', severity: 'warning', email_notify: true})
    expect(raised[0].message).to.equal('test: total_power value of 200 μW violates threshold: Below minimum (1 mW)')
  })

  it('shows the real value with an SI prefix, not 0.000', async () => {
    expect(formatSi(3.01e-5, 'W')).to.equal('30.1 μW')
    expect(formatSi(0.00201, 'W')).to.equal('2.01 mW')
    expect(formatSi(0.7, 'V')).to.equal('700 mV')
    expect(formatSi(25.04, 'mM')).to.equal('25 mM')
  })

  it('keeps per-source thresholds over the global ones: only that source alerts, every alert names it', async () => {
    const {manager, raised} = await setup()
    await manager.update({source: 'rig-1', alerts: [{parameter: 'reservoir_concentration', threshold_min: 10, threshold_max: 15}]})
    manager.evaluate(reading({source: 'rig-1', reservoir_concentration: 25}))
    manager.evaluate(reading({source: 'rig-2', reservoir_concentration: 25}))
    expect(raised.map((e) => [e.source, e.parameter])).to.deep.equal([['rig-1', 'reservoir_concentration']])
    expect(manager.active().map((s) => s.source)).to.deep.equal(['rig-1'])
    expect(manager.config('rig-1').alerts.find((t) => t.parameter === 'reservoir_concentration')).to.include({threshold_min: 10, threshold_max: 15})
    expect(manager.config('rig-2').alerts.find((t) => t.parameter === 'reservoir_concentration')).to.include({threshold_min: 20, threshold_max: 30})
    // The built-in simulator floor: its ~30 μW never raises the rig default of 1 mW.
    expect(manager.evaluate(reading({source: 'simulator', total_power: 3.01e-5}))).to.deep.equal([])
  })

  it('clears a source\'s own threshold so the global one applies again, ending the episode it no longer holds at once', async () => {
    const store = memoryStore()
    const {manager, raised, cleared} = await setup(store)
    await manager.update({source: 'rig-1', alerts: [{parameter: 'reservoir_concentration', threshold_min: 10, threshold_max: 20}, {parameter: 'total_power', threshold_min: 1e-6}]})
    manager.evaluate(reading({source: 'rig-1', reservoir_concentration: 25}))
    expect(raised.map((e) => e.source)).to.deep.equal(['rig-1'])
    const result = await manager.clearOverride('rig-1', 'reservoir_concentration')
    expect(result).to.include({status: 'cleared', source: 'rig-1', removed: 1})
    // 25 mM is inside the global 20-30 band (by more than its hysteresis): no wait for the next reading.
    expect(cleared).to.deep.equal([{source: 'rig-1', parameter: 'reservoir_concentration', value: 25, since: '2026-01-01T00:00:00.000Z', email_notify: false}])
    expect(manager.config('rig-1').overrides).to.deep.equal([{parameter: 'total_power', threshold_min: 1e-6, threshold_max: null, enabled: true, email_notify: false}])
    expect((await setup(store)).manager.config('rig-1').overrides, 'persisted').to.have.length(1)
    expect((await manager.clearOverride('rig-1', 'reservoir_concentration')).removed, 'idempotent').to.equal(0)
    expect((await manager.clearOverride('rig-1')).removed, 'all of its own').to.equal(1)
    expect(manager.config().sources).not.to.have.property('rig-1')
    for (const bad of [() => manager.clearOverride('rig-1', 'flux_capacitor'), () => manager.clearOverride('bad name')]) {
      const error = await bad().then(() => undefined, (e: unknown) => e)
      expect(error).to.be.instanceOf(DataValidationError).with.property('status', 400)
    }
  })

  it('keeps the default simulator run free of a permanent alert over its first 2000 simulated hours, with its built-in thresholds visible as overrides', async () => {
    const {manager} = await setup()
    const model = new MfcStackModel({...DEFAULT_MODEL_OPTIONS, nCells: AUTOSTART_CONFIG.n_cells, anodeAreaM2: AUTOSTART_CONFIG.electrode_area_m2, targetConcentration: AUTOSTART_CONFIG.target_concentration})
    for (let i = 0; i < 20_000; i++) manager.evaluate(reading({source: 'simulator', ...model.step()}))
    expect(manager.active('simulator')).to.deep.equal([])
    expect(manager.config('simulator').overrides!.map((t) => [t.parameter, t.enabled])).to.deep.equal([['total_power', true], ['reservoir_concentration', false]])
    // The same readings under the rig defaults would alert: the override, not the data, keeps the banner clear.
    await manager.clearOverride('simulator')
    manager.evaluate(reading({source: 'simulator', ...model.step()}))
    expect(manager.active('simulator').map((a) => a.parameter)).to.include('reservoir_concentration')
  })

  it('raises "no data" for a silent source and clears it on its next reading', async () => {
    let now = Date.UTC(2026, 0, 1, 0, 10)
    const events = new MfcEventBus()
    const manager = new AlertManager(memoryStore(), events, {now: () => new Date(now)})
    const last = now - 200_000
    expect(manager.silence([{name: 'rig-1', lastSeen: now - 10_000}], 120_000)).to.deep.equal([])
    const [raised] = manager.silence([{name: 'rig-1', lastSeen: last}], 120_000)
    expect(raised.type).to.equal('alert_raised')
    expect(raised.state).to.include({source: 'rig-1', parameter: 'no_data', active: true, unit: 's'})
    expect(raised.state.message).to.match(/^rig-1: no data for 200 s/)
    now += 1000
    expect(manager.silence([{name: 'rig-1', lastSeen: last}], 120_000), 'raised once per episode').to.deep.equal([])
    const changes = manager.evaluate(reading({source: 'rig-1'}))
    expect(changes.map((c) => [c.type, c.state.parameter])).to.deep.include(['alert_cleared', 'no_data'])
  })

  it('watches the worst cell of per-cell channels', async () => {
    const {manager, raised} = await setup()
    await manager.update([{parameter: 'cell_voltages', threshold_min: 0.3}])
    manager.evaluate(reading({cell_voltages: [0.6, 0.6, 0.25, 0.6, 0.6]}))
    expect(raised.find((e) => e.parameter === 'cell_voltages')?.value).to.equal(0.25)
  })

  it('persists thresholds (upsert by parameter) and clears an alert whose threshold is disabled', async () => {
    const store = memoryStore()
    const first = await setup(store)
    first.manager.evaluate(reading({reservoir_concentration: 35}))
    const result = await first.manager.update([{parameter: 'reservoir_concentration', threshold_min: 22, threshold_max: 28, enabled: false}])
    expect(result.message).to.equal('Alert configuration updated with 1 alerts')
    expect(first.cleared).to.have.length(1)
    const reloaded = (await setup(store)).manager.config().alerts
    expect(reloaded).to.have.length(2)
    expect(reloaded.find((a) => a.parameter === 'reservoir_concentration')).to.deep.equal({parameter: 'reservoir_concentration', threshold_min: 22, threshold_max: 28, enabled: false, email_notify: false})
  })

  it('rejects bad configs with 422 and changes nothing', async () => {
    const {manager, store} = await setup()
    const bad = [
      [{parameter: 'flux_capacitor', threshold_min: 1}],
      [{parameter: 'total_power'}],
      [{parameter: 'total_power', threshold_min: 2, threshold_max: 1}],
      [{parameter: 'total_power', threshold_min: '1'}],
      [{parameter: 'total_power', threshold_min: 1}, {parameter: 'total_power', threshold_min: 2}],
      {not: 'a list'},
    ]
    for (const body of bad) {
      const error = await manager.update(body).then(() => undefined, (error_: unknown) => error_)
      expect(error, JSON.stringify(body)).to.be.instanceOf(DataValidationError).with.property('status', 422)
    }

    expect(store.data.size).to.equal(0)
  })
})
