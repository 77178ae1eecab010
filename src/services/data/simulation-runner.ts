import {randomUUID} from 'node:crypto'

import type {Clock} from '../../lib/clock.js'
import {DataConflictError, DataValidationError, FieldChecker, type Reading} from './reading.js'
import {type FinalMetrics, MODEL, MfcStackModel, TUNED} from './simulator.js'

/** The original's `SimulationConfig` (§4.3) plus two optional extensions (speed, seed). */
export interface SimulationConfig {
  duration_hours: number
  n_cells: number
  electrode_area_m2: number
  target_concentration: number
  use_pretrained: boolean
  learning_rate: number
  epsilon_initial: number
  discount_factor: number
  /** Simulated hours per wall-clock second; the server's `simulation_speed` when absent. */
  speed?: number
  seed?: number
}

export const MAX_DURATION_HOURS = 8760
export const SPEED_RANGE = {gt: 0, le: 100_000} as const

/**
 * Validates a start request. Schema failures are 422 with FastAPI's detail list; a duration
 * over one year is 400 (what the original meant to answer before its try/except made it 500).
 */
export function parseSimulationConfig(body: unknown): SimulationConfig {
  // A JSON `null` body is no body: the defaults (and a 422 for the required duration).
  const input = body ?? {}
  const {checker, issue} = FieldChecker.object(input, ['body'])
  if (!checker) throw new DataValidationError('The simulation config must be a JSON object', [issue!])
  const config = {
    duration_hours: checker.number('duration_hours', {gt: 0}),
    n_cells: checker.int('n_cells', {ge: 1, le: 20}, 5),
    electrode_area_m2: checker.number('electrode_area_m2', {gt: 0, le: 10}, 0.001),
    target_concentration: checker.number('target_concentration', {gt: 0, le: MODEL.maxConcentration}, 25),
    use_pretrained: checker.bool('use_pretrained', true),
    learning_rate: checker.number('learning_rate', {ge: 0.01, le: 1}, 0.1),
    epsilon_initial: checker.number('epsilon_initial', {ge: 0.1, le: 1}, 0.4),
    discount_factor: checker.number('discount_factor', {ge: 0.8, le: 0.99}, 0.95),
    speed: (input as Record<string, unknown>).speed === undefined ? undefined : checker.number('speed', SPEED_RANGE),
    seed: (input as Record<string, unknown>).seed === undefined ? undefined : checker.int('seed', {ge: 0, le: 2 ** 32 - 1}),
  }
  if (checker.issues.length > 0) throw new DataValidationError(`Invalid simulation config: ${checker.issues.map((i) => `${i.loc.at(-1)} ${i.msg.toLowerCase()}`).join('; ')}`, checker.issues)
  if (config.duration_hours! > MAX_DURATION_HOURS) {
    throw new DataValidationError('Duration exceeds maximum allowed (1 year)', [{loc: ['body', 'duration_hours'], msg: `Duration exceeds maximum allowed (1 year = ${MAX_DURATION_HOURS} h)`, type: 'value_error', input: config.duration_hours}], 400)
  }

  if (config.speed === undefined) delete config.speed
  if (config.seed === undefined) delete config.seed
  return config as SimulationConfig
}

export type RunState = 'idle' | 'running' | 'completed' | 'stopped'

/**
 * The simulator as the routes, metrics and autostart use it: one process's runner, or in
 * cluster mode the cluster's one run (which may be on another node). `start` throws
 * DataConflictError (409) while a run goes anywhere it can see; `stop` is idempotent.
 */
export interface SimulationControl {
  start(config: SimulationConfig): SimulationStatus | Promise<SimulationStatus>
  stop(): SimulationStatus | Promise<SimulationStatus>
  status(): SimulationStatus
  metrics(): (FinalMetrics & {run_id: string; state: RunState}) | undefined
  close(): void | Promise<void>
}

/** A run to continue where another process left it: the same id and start, so the seeded model replays to the same point. */
export interface ResumeRun {
  id: string
  startedAt: Date
}

/** `GET /simulation/status`: the original's six keys, telling the truth, plus a few more. */
export interface SimulationStatus {
  is_running: boolean
  start_time: string | null
  duration_hours: number | null
  current_time_hours: number | null
  progress_percent: number | null
  output_directory: null
  state: RunState
  run_id: string | null
  speed: number | null
  end_time: string | null
  config: SimulationConfig | null
  /** Cluster mode: the node that runs it (null: no run anywhere); absent on a single node. */
  node?: string | null
}

export interface RunnerOptions {
  clock: Clock
  /** Default simulated hours per wall second. */
  speed: number
  /** How often the timer advances the model and publishes one reading (wall ms). */
  sampleIntervalMs: number
  seed: number
  /** Receives each published reading; the runner does not wait for it. */
  publish(reading: Reading): void
  /** Called once when a run completes or is stopped, with its final metrics. */
  finished?(status: SimulationStatus, metrics: FinalMetrics | undefined): void
}

interface Run {
  id: string
  config: SimulationConfig
  speed: number
  model: MfcStackModel
  startedAt: Date
  endedAt: Date | null
  totalSteps: number
  state: RunState
}

/**
 * Runs one simulation at a time against the wall clock: each tick runs every 0.1 h step that
 * the elapsed wall time × speed makes due (so a slow tick catches up instead of drifting) and
 * publishes one reading, the newest. `tick()` is public so tests drive it with a manual clock.
 */
export class SimulationRunner implements SimulationControl {
  private run: Run | undefined
  private timer: NodeJS.Timeout | undefined

  constructor(private readonly options: RunnerOptions) {}

  start(config: SimulationConfig, resume?: ResumeRun): SimulationStatus {
    if (this.run?.state === 'running') {
      throw new DataConflictError(`Simulation ${this.run.id} is already running`, 'POST /simulation/stop first, then start again.')
    }

    const model = new MfcStackModel({
      nCells: config.n_cells,
      anodeAreaM2: config.electrode_area_m2,
      targetConcentration: config.target_concentration,
      // "Pre-trained" means the original's Bayesian-optimised hyper-parameters; there is no
      // checkpoint to load, so the Q-table starts at zero either way.
      learningRate: config.use_pretrained ? TUNED.learningRate : config.learning_rate,
      discountFactor: config.use_pretrained ? TUNED.discountFactor : config.discount_factor,
      epsilonInitial: config.use_pretrained ? TUNED.epsilonInitial : config.epsilon_initial,
      seed: config.seed ?? this.options.seed,
    })
    this.run = {
      id: resume?.id ?? randomUUID(), config, model, speed: config.speed ?? this.options.speed, startedAt: resume?.startedAt ?? this.options.clock.now(),
      endedAt: null, totalSteps: Math.round(config.duration_hours / MODEL.dtHours), state: 'running',
    }
    this.timer = setInterval(() => this.tick(), this.options.sampleIntervalMs)
    this.timer.unref()
    return this.status()
  }

  /** Stops the current run; idempotent (stopping when nothing runs just reports the status). */
  stop(): SimulationStatus {
    if (this.run?.state === 'running') this.finish('stopped')
    return this.status()
  }

  /** Advances the running model to the wall clock and publishes the newest reading. */
  tick(): void {
    const run = this.run
    if (run?.state !== 'running') return
    const elapsedHours = ((this.options.clock.now().getTime() - run.startedAt.getTime()) / 1000) * run.speed
    const due = Math.min(Math.floor(elapsedHours / MODEL.dtHours + 1e-9), run.totalSteps)
    let last
    while (run.model.steps < due) last = run.model.step()

    if (last) this.options.publish({timestamp: this.options.clock.now().toISOString(), source: 'simulator', run_id: run.id, ...last})
    if (due >= run.totalSteps) this.finish('completed')
  }

  status(): SimulationStatus {
    const run = this.run
    if (!run) {
      return {is_running: false, start_time: null, duration_hours: null, current_time_hours: null, progress_percent: null, output_directory: null, state: 'idle', run_id: null, speed: null, end_time: null, config: null}
    }

    const {steps} = run.model
    return {
      is_running: run.state === 'running',
      start_time: run.startedAt.toISOString(),
      duration_hours: run.config.duration_hours,
      current_time_hours: Math.round(run.model.timeHours * 1e6) / 1e6,
      progress_percent: Math.round((steps / run.totalSteps) * 10_000) / 100,
      output_directory: null,
      state: run.state,
      run_id: run.id,
      speed: run.speed,
      end_time: run.endedAt?.toISOString() ?? null,
      config: run.config,
    }
  }

  /** Final metrics of the current or last run (so far, while it runs). */
  metrics(): (FinalMetrics & {run_id: string; state: RunState}) | undefined {
    const metrics = this.run?.model.metrics()
    return metrics && {...metrics, run_id: this.run!.id, state: this.run!.state}
  }

  /** Stops the timer for good (server shutdown); the run counts as stopped. Idempotent. */
  close(): void {
    this.stop()
    clearInterval(this.timer)
  }

  private finish(state: 'completed' | 'stopped'): void {
    const run = this.run!
    clearInterval(this.timer)
    this.timer = undefined
    run.state = state
    run.endedAt = this.options.clock.now()
    this.options.finished?.(this.status(), run.model.metrics())
  }
}
