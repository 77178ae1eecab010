import {expect} from 'chai'

import type {Reading} from '../../../src/services/data/reading.js'
import {DataValidationError} from '../../../src/services/data/reading.js'
import {SimulationRunner, parseSimulationConfig} from '../../../src/services/data/simulation-runner.js'

function manualClock(start = '2026-01-01T00:00:00.000Z') {
  let now = new Date(start).getTime()
  return {now: () => new Date(now), advance(ms: number) { now += ms }}
}

function issueOf(body: unknown): DataValidationError {
  try {
    parseSimulationConfig(body)
  } catch (error) {
    if (error instanceof DataValidationError) return error
    throw error
  }

  throw new Error('expected a validation error')
}

describe('SimulationConfig validation', () => {
  it('fills the original defaults', () => {
    expect(parseSimulationConfig({duration_hours: 24})).to.deep.equal({
      duration_hours: 24, n_cells: 5, electrode_area_m2: 0.001, target_concentration: 25, use_pretrained: true,
      learning_rate: 0.1, epsilon_initial: 0.4, discount_factor: 0.95,
    })
  })

  it('rejects out-of-range and mistyped fields with 422 and a detail per field', () => {
    const error = issueOf({duration_hours: 0, n_cells: 21, learning_rate: 0.001, discount_factor: 0.999, epsilon_initial: 'x', use_pretrained: 'yes'})
    expect(error.status).to.equal(422)
    expect(error.issues.map((i) => i.loc.at(-1))).to.have.members(['duration_hours', 'n_cells', 'learning_rate', 'discount_factor', 'epsilon_initial', 'use_pretrained'])
    expect(issueOf({duration_hours: 1, n_cells: 2.5}).issues[0].type).to.equal('int_type')
    expect(issueOf({}).issues[0]).to.include({type: 'missing'})
    expect(issueOf([1]).status).to.equal(422)
  })

  it('answers 400 (not 500) for a duration over one year', () => {
    const error = issueOf({duration_hours: 8761})
    expect(error.status).to.equal(400)
    expect(error.message).to.equal('Duration exceeds maximum allowed (1 year)')
  })
})

describe('SimulationRunner', () => {
  const runners: SimulationRunner[] = []
  afterEach(() => {
    for (const r of runners.splice(0)) r.close()
  })

  function makeRunner(clock = manualClock()) {
    const readings: Reading[] = []
    const finished: string[] = []
    const runner = new SimulationRunner({clock, speed: 1, sampleIntervalMs: 3_600_000, seed: 42, publish: (r) => readings.push(r), finished: (s) => finished.push(s.state)})
    runners.push(runner)
    return {runner, clock, readings, finished}
  }

  it('reports idle before any run', () => {
    const {runner} = makeRunner()
    expect(runner.status()).to.include({is_running: false, state: 'idle', progress_percent: null})
  })

  it('advances simulated time at the configured speed and tells the truth about progress', () => {
    const {runner, clock, readings} = makeRunner()
    runner.start(parseSimulationConfig({duration_hours: 10, speed: 2}))
    clock.advance(2500) // 2.5 s × 2 sim-h/s = 5 sim-h = 50 steps
    runner.tick()
    const status = runner.status()
    expect(status).to.include({is_running: true, state: 'running', current_time_hours: 5, progress_percent: 50, speed: 2})
    expect(readings).to.have.length(1)
    expect(readings[0]).to.include({time_hours: 5, source: 'simulator', timestamp: '2026-01-01T00:00:02.500Z', run_id: status.run_id})
    expect(readings[0].biofilm_thicknesses).to.have.length(5)
  })

  it('completes at the duration, never overshoots, and reports final metrics', () => {
    const {runner, clock, finished} = makeRunner()
    runner.start(parseSimulationConfig({duration_hours: 3, n_cells: 2, speed: 10}))
    clock.advance(60_000)
    runner.tick()
    expect(runner.status()).to.include({is_running: false, state: 'completed', current_time_hours: 3, progress_percent: 100})
    expect(runner.metrics()).to.include({steps: 30, state: 'completed'})
    expect(finished).to.deep.equal(['completed'])
  })

  it('stops on request, refuses a second concurrent start, and restarts fresh', () => {
    const {runner, clock, finished} = makeRunner()
    runner.start(parseSimulationConfig({duration_hours: 100}))
    expect(() => runner.start(parseSimulationConfig({duration_hours: 1}))).to.throw(/already running/)
    clock.advance(1000)
    runner.tick()
    expect(runner.stop()).to.include({is_running: false, state: 'stopped', current_time_hours: 1})
    expect(runner.stop()).to.include({state: 'stopped'})
    expect(finished).to.deep.equal(['stopped'])
    const second = runner.start(parseSimulationConfig({duration_hours: 1}))
    expect(second).to.include({state: 'running', current_time_hours: 0})
  })
})
