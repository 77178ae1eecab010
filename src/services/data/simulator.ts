/**
 * The embedded MFC stack model: the original's `GPUAcceleratedMFC` (ORIGINAL-SYSTEM.md §10.2,
 * NumPy path) as a pure, seeded, synchronous module, plus per-cell voltage, pH and temperature
 * channels (§10.3-10.4). No I/O, no clock, no Math.random: the same seed gives the same run.
 *
 * Order of one step is the original's (simulate_timestep): biofilm growth with the cell
 * concentrations of the previous step, power from the new biofilm, action from the reservoir
 * state, consumption, reservoir update, mixing, reward on the new reservoir, Q update, epsilon.
 */

/** Constants of §10.2, named as in the original. */
export const MODEL = {
  dtHours: 0.1,
  initialBiofilmUm: 1.0,
  initialConcentrationMm: 25,
  reservoirVolumeL: 1.0,
  muMaxPerHour: 0.05,
  halfSaturationMm: 5.0,
  decayPerHour: 0.01,
  /** m²/s: the original mixes it with h⁻¹ μmax inside the Thiele modulus; kept for fidelity. */
  diffusivity: 6e-10,
  maxChangePerHour: 0.05,
  minBiofilmUm: 0.1,
  maxBiofilmUm: 200,
  maxCurrentDensity: 2.0,
  maxEffectiveThicknessUm: 100,
  acetatePotentialV: 0.35,
  baseConsumption: 1.0,
  mixingPerHour: 0.8,
  minConcentration: 0.1,
  maxConcentration: 100,
  states: 100,
} as const

/** Substrate addition rate (mmol/h) of each of the 10 Q-learning actions. */
export const ACTIONS = [-0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0] as const

/** The original's Bayesian-optimised ("pre-trained") hyper-parameters and reward weights. */
export const TUNED = {
  learningRate: 0.010698320638589937,
  discountFactor: 0.9609992557261428,
  epsilonInitial: 0.40064536992631566,
  epsilonDecay: 0.9968406902650004,
  epsilonMin: 0.0042714404222870305,
  substratePenalty: 86.3082652695326,
  powerWeight: 18.450199366779497,
  stabilityBonus: 50,
} as const

/**
 * Extra channels (§10.3). The original's OCV 0.8 V; an area-specific internal resistance of
 * 0.2 Ω·m² (a typical lab MFC) so the voltage at the model's 2 A/m² ceiling sits near the 0.35 V
 * that the power equation assumes. (§10.3's 0.01 Ω·m² belongs to a model with currents up to
 * 10 A/m² and would leave the voltage flat at 0.78-0.80 V here.) Sensor noise and calibration
 * offsets are the stack simulation's (voltage 0.01 V, pH 0.1 → 0.05 here for a filtered probe).
 */
export const CHANNELS = {
  ocvV: 0.8,
  rIntOhmM2: 0.2,
  voltageNoiseV: 0.01,
  phNeutral: 7.0,
  /** Anode acidification: pH falls by this much at the maximum current density. */
  phDropAtMax: 0.2,
  phNoise: 0.05,
  temperatureC: 30,
  temperatureDailySwingC: 0.5,
  temperatureNoiseC: 0.1,
  calibrationNoise: 0.01,
} as const

/** Model parameters; `SimulationConfig` maps onto these (see simulation-runner.ts). */
export interface ModelOptions {
  nCells: number
  /** Anode area per cell, m². */
  anodeAreaM2: number
  /** mM; the reward and the metrics measure deviation from it. */
  targetConcentration: number
  learningRate: number
  discountFactor: number
  epsilonInitial: number
  seed: number
}

export const DEFAULT_MODEL_OPTIONS: ModelOptions = {
  nCells: 5,
  anodeAreaM2: 0.001,
  targetConcentration: 25,
  learningRate: TUNED.learningRate,
  discountFactor: TUNED.discountFactor,
  epsilonInitial: TUNED.epsilonInitial,
  seed: 42,
}

/** What one step produced: the original's point fields plus the per-cell channels. */
export interface StepResult {
  time_hours: number
  reservoir_concentration: number
  outlet_concentration: number
  total_power: number
  biofilm_thicknesses: number[]
  substrate_addition_rate: number
  q_action: number
  epsilon: number
  reward: number
  cell_voltages: number[]
  cell_powers: number[]
  cell_ph: number[]
  cell_temperatures: number[]
}

/** `calculate_final_metrics` (§10.2), over every step of the run. */
export interface FinalMetrics {
  steps: number
  final_reservoir_concentration: number
  mean_concentration: number
  std_concentration: number
  max_deviation: number
  mean_deviation: number
  final_power: number
  mean_power: number
  total_substrate_added: number
  control_effectiveness_2mM: number
  control_effectiveness_5mM: number
  stability_coefficient_variation: number
}

/** mulberry32: tiny, fast, good enough for exploration and sensor noise; deterministic by seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D_2B_79_F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}

/** Standard normal by Box-Muller from a uniform source. */
export function gaussian(random: () => number): number {
  const u = 1 - random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
}

/** Step 1: biofilm thickness after dt (Monod growth with Thiele effectiveness, clipped change). */
export function biofilmStep(thicknessUm: number, substrateMm: number, dt: number): number {
  const phi = thicknessUm * 1e-6 * Math.sqrt(MODEL.muMaxPerHour / MODEL.diffusivity)
  const eta = phi < 1e-6 ? 1 : Math.tanh(phi) / phi
  const mu = eta * MODEL.muMaxPerHour * substrateMm / (MODEL.halfSaturationMm + substrateMm)
  const maxChange = MODEL.maxChangePerHour * dt
  const change = Math.min(Math.max((mu - MODEL.decayPerHour) * dt, -maxChange), maxChange)
  return Math.min(Math.max(thicknessUm * (1 + change), MODEL.minBiofilmUm), MODEL.maxBiofilmUm)
}

/** Step 2: current density (A/m²) of a cell. */
export function currentDensity(thicknessUm: number, substrateMm: number): number {
  return MODEL.maxCurrentDensity * Math.min(thicknessUm / MODEL.maxEffectiveThicknessUm, 1) * substrateMm / (MODEL.halfSaturationMm + substrateMm)
}

/** Step 4: consumption rate, mmol/L/h, from the stack's mean biofilm and mean cell substrate. */
export function consumptionRate(meanThicknessUm: number, meanSubstrateMm: number): number {
  return MODEL.baseConsumption * (meanThicknessUm / MODEL.maxBiofilmUm) * (meanSubstrateMm / (MODEL.halfSaturationMm + meanSubstrateMm))
}

/**
 * Step 5 with the original's bug fixed: it computed consumption = r·V·dt and then multiplied the
 * change by dt again, so consumption scaled with dt². Here dC = (a − r·V)/V · dt.
 */
export function reservoirStep(concentration: number, additionMmolPerHour: number, rate: number, volumeL: number, dt: number): number {
  const next = concentration + ((additionMmolPerHour - rate * volumeL) / volumeL) * dt
  return Math.min(Math.max(next, MODEL.minConcentration), MODEL.maxConcentration)
}

/** Step 7: the tuned reward. */
export function reward(reservoirMm: number, targetMm: number, totalPowerW: number): number {
  const deviation = Math.abs(reservoirMm - targetMm)
  return -TUNED.substratePenalty * Math.exp(deviation / 10)
    + TUNED.powerWeight * Math.log1p(totalPowerW)
    + (deviation < 2 ? TUNED.stabilityBonus : 0)
}

/** The Q-learning state of a reservoir concentration. */
export function stateOf(concentration: number): number {
  return Math.min(Math.trunc(concentration), MODEL.states - 1)
}

/** Terminal voltage of a cell: OCV − j·R_int, clamped to [0, OCV]. */
export function cellVoltage(currentDensityAm2: number): number {
  return Math.min(Math.max(CHANNELS.ocvV - currentDensityAm2 * CHANNELS.rIntOhmM2, 0), CHANNELS.ocvV)
}

const STABILITY_WINDOW = 1000

/**
 * One MFC stack with its Q-learning controller. Not thread-safe (it is synchronous anyway);
 * `step()` mutates, `snapshot()` and `metrics()` do not.
 */
export class MfcStackModel {
  readonly options: ModelOptions
  timeHours = 0
  reservoir: number = MODEL.initialConcentrationMm
  outlet: number = MODEL.initialConcentrationMm
  epsilon: number
  totalSubstrateAdded = 0
  readonly biofilm: Float64Array
  readonly cellSubstrate: Float64Array
  /** 100 states × 10 actions, row-major. */
  readonly qTable = new Float64Array(MODEL.states * ACTIONS.length)
  private readonly explore: () => number
  private readonly sensors: () => number
  private readonly voltageOffset: number[]
  private readonly phOffset: number[]
  private readonly acc = {n: 0, mean: 0, m2: 0, devSum: 0, devMax: 0, within2: 0, within5: 0, powerSum: 0, lastPower: 0}
  private readonly recent = new Float64Array(STABILITY_WINDOW)

  constructor(options: Partial<ModelOptions> = {}) {
    this.options = {...DEFAULT_MODEL_OPTIONS, ...options}
    const n = this.options.nCells
    this.biofilm = new Float64Array(n).fill(MODEL.initialBiofilmUm)
    this.cellSubstrate = new Float64Array(n).fill(MODEL.initialConcentrationMm)
    this.epsilon = this.options.epsilonInitial
    // Separate streams: the controller's trajectory does not depend on how many noisy channels exist.
    this.explore = mulberry32(this.options.seed)
    this.sensors = mulberry32(this.options.seed ^ 0x5E_45_01)
    this.voltageOffset = Array.from({length: n}, () => gaussian(this.sensors) * CHANNELS.calibrationNoise)
    this.phOffset = Array.from({length: n}, () => gaussian(this.sensors) * CHANNELS.calibrationNoise)
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.acc.n
  }

  /** ε-greedy; ties go to the lowest index, like numpy's argmax. */
  chooseAction(state: number): number {
    if (this.explore() < this.epsilon) return Math.floor(this.explore() * ACTIONS.length)
    let best = 0
    const row = state * ACTIONS.length
    for (let a = 1; a < ACTIONS.length; a++) if (this.qTable[row + a] > this.qTable[row + best]) best = a
    return best
  }

  step(dt: number = MODEL.dtHours): StepResult {
    const n = this.options.nCells
    const densities = new Array<number>(n)
    let totalPower = 0
    for (let i = 0; i < n; i++) {
      this.biofilm[i] = biofilmStep(this.biofilm[i], this.cellSubstrate[i], dt)
      densities[i] = currentDensity(this.biofilm[i], this.cellSubstrate[i])
      totalPower += densities[i] * this.options.anodeAreaM2 * MODEL.acetatePotentialV
    }

    const state = stateOf(this.reservoir)
    const action = this.chooseAction(state)
    const addition = ACTIONS[action]
    const rate = consumptionRate(mean(this.biofilm), mean(this.cellSubstrate))
    this.reservoir = reservoirStep(this.reservoir, addition, rate, MODEL.reservoirVolumeL, dt)
    for (let i = 0; i < n; i++) this.cellSubstrate[i] += MODEL.mixingPerHour * (this.reservoir - this.cellSubstrate[i]) * dt
    this.outlet = mean(this.cellSubstrate)

    const r = reward(this.reservoir, this.options.targetConcentration, totalPower)
    this.learn(state, action, r, stateOf(this.reservoir))
    this.epsilon = Math.max(this.epsilon * TUNED.epsilonDecay, TUNED.epsilonMin)
    this.totalSubstrateAdded += Math.max(0, addition * dt)
    this.timeHours += dt
    this.record(totalPower)
    return this.result(densities, totalPower, addition, action, r)
  }

  private learn(state: number, action: number, r: number, next: number): void {
    const row = next * ACTIONS.length
    let maxNext = this.qTable[row]
    for (let a = 1; a < ACTIONS.length; a++) maxNext = Math.max(maxNext, this.qTable[row + a])
    const index = state * ACTIONS.length + action
    this.qTable[index] += this.options.learningRate * (r + this.options.discountFactor * maxNext - this.qTable[index])
  }

  private record(totalPower: number): void {
    const a = this.acc
    const c = this.reservoir
    a.n++
    const delta = c - a.mean
    a.mean += delta / a.n
    a.m2 += delta * (c - a.mean)
    const deviation = Math.abs(c - this.options.targetConcentration)
    a.devSum += deviation
    a.devMax = Math.max(a.devMax, deviation)
    if (deviation <= 2) a.within2++
    if (deviation <= 5) a.within5++
    a.powerSum += totalPower
    a.lastPower = totalPower
    this.recent[(a.n - 1) % STABILITY_WINDOW] = c
  }

  private result(densities: number[], totalPower: number, addition: number, action: number, r: number): StepResult {
    const hour = this.timeHours
    const temperature = CHANNELS.temperatureC + CHANNELS.temperatureDailySwingC * Math.sin((2 * Math.PI * hour) / 24)
    return {
      time_hours: round(hour, 6),
      reservoir_concentration: this.reservoir,
      outlet_concentration: this.outlet,
      total_power: totalPower,
      biofilm_thicknesses: Array.from(this.biofilm),
      substrate_addition_rate: addition,
      q_action: action,
      epsilon: this.epsilon,
      reward: r,
      cell_powers: densities.map((j) => j * this.options.anodeAreaM2 * MODEL.acetatePotentialV),
      cell_voltages: densities.map((j, i) => clamp(cellVoltage(j) + this.voltageOffset[i] + gaussian(this.sensors) * CHANNELS.voltageNoiseV, 0, 2)),
      cell_ph: densities.map((j, i) => clamp(CHANNELS.phNeutral - CHANNELS.phDropAtMax * (j / MODEL.maxCurrentDensity) + this.phOffset[i] + gaussian(this.sensors) * CHANNELS.phNoise, 0, 14)),
      cell_temperatures: densities.map(() => temperature + gaussian(this.sensors) * CHANNELS.temperatureNoiseC),
    }
  }

  /** Final metrics so far; undefined before the first step. */
  metrics(): FinalMetrics | undefined {
    const a = this.acc
    if (a.n === 0) return undefined
    const window = this.recent.subarray(0, Math.min(a.n, STABILITY_WINDOW))
    const windowMean = mean(window)
    const windowStd = Math.sqrt(window.reduce((s, x) => s + (x - windowMean) ** 2, 0) / window.length)
    return {
      steps: a.n,
      final_reservoir_concentration: this.reservoir,
      mean_concentration: a.mean,
      std_concentration: Math.sqrt(a.m2 / a.n),
      max_deviation: a.devMax,
      mean_deviation: a.devSum / a.n,
      final_power: a.lastPower,
      mean_power: a.powerSum / a.n,
      total_substrate_added: this.totalSubstrateAdded,
      control_effectiveness_2mM: (a.within2 / a.n) * 100,
      control_effectiveness_5mM: (a.within5 / a.n) * 100,
      stability_coefficient_variation: (windowStd / windowMean) * 100,
    }
  }
}

function mean(values: ArrayLike<number>): number {
  let sum = 0
  for (let i = 0; i < values.length; i++) sum += values[i]
  return sum / values.length
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(Math.max(value, low), high)
}

function round(value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}
