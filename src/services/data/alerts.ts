import type {Clock} from '../../lib/clock.js'
import type {MfcEventBus} from '../../lib/events.js'
import {ALERTABLE, type AlertableParameter, DataValidationError, FieldChecker, type Reading, type ValidationIssue} from './reading.js'

/** The original's `AlertConfig` (§4.3), plus an optional absolute hysteresis. */
export interface AlertThreshold {
  parameter: AlertableParameter
  threshold_min: number | null
  threshold_max: number | null
  enabled: boolean
  email_notify: boolean
  /** How far back inside the band a value must come to clear; default 5 % of the band (or of the bound). */
  hysteresis?: number
}

/** The original's defaults: reservoir 20-30 mM (no email), total power >= 0.001 W (email). */
export const DEFAULT_THRESHOLDS: AlertThreshold[] = [
  {parameter: 'reservoir_concentration', threshold_min: 20, threshold_max: 30, enabled: true, email_notify: false},
  {parameter: 'total_power', threshold_min: 0.001, threshold_max: null, enabled: true, email_notify: true},
]

const UNITS: Partial<Record<AlertableParameter, string>> = {
  reservoir_concentration: 'mM', outlet_concentration: 'mM', total_power: 'W', substrate_addition_rate: 'mmol/h', biofilm_thicknesses: 'μm',
  cell_voltages: 'V', cell_powers: 'W', cell_ph: 'pH', cell_temperatures: '°C',
}

/** One parameter's alert state as the API, stream and dashboard show it. */
export interface AlertState {
  parameter: AlertableParameter
  active: boolean
  value: number | null
  message: string | null
  severity: 'warning' | null
  since: string | null
  /** Episodes raised since the server started. */
  episodes: number
}

export interface AlertChange {
  type: 'alert_raised' | 'alert_cleared'
  state: AlertState
}

/** The persistence the manager needs; the history store provides it. */
export interface SettingsStore {
  getSetting(key: string): string | undefined
  putSetting(key: string, value: string): void
}

const KEY = 'alerts:thresholds'

/**
 * Watches readings against thresholds. An episode starts when a value leaves [min, max] and
 * ends only once it is back inside by the hysteresis margin, so a value dithering on the bound
 * raises one `alert:raised`, not one per reading. Per-cell arrays alert on their worst cell.
 */
export class AlertManager {
  private thresholds: AlertThreshold[]
  private readonly states = new Map<AlertableParameter, AlertState>()

  constructor(private readonly store: SettingsStore, private readonly events: MfcEventBus, private readonly clock: Clock) {
    this.thresholds = this.saved()
  }

  /** Rereads the thresholds from the store (its database was replaced, e.g. by `mfc restore`). */
  reload(): void {
    this.thresholds = this.saved()
  }

  private saved(): AlertThreshold[] {
    const saved = this.store.getSetting(KEY)
    return saved ? JSON.parse(saved) as AlertThreshold[] : DEFAULT_THRESHOLDS.map((t) => ({...t}))
  }

  config(): {alerts: AlertThreshold[]} {
    return {alerts: this.thresholds.map((t) => ({...t}))}
  }

  /** Validates and upserts by parameter (disable one with enabled=false); persisted before returning. */
  update(body: unknown): {status: 'updated'; message: string; timestamp: string; alerts: AlertThreshold[]} {
    const incoming = parseThresholds(body)
    const next = this.thresholds.filter((t) => !incoming.some((i) => i.parameter === t.parameter))
    next.push(...incoming)
    this.store.putSetting(KEY, JSON.stringify(next))
    this.thresholds = next
    for (const t of incoming) if (!t.enabled) this.clear(t.parameter, this.states.get(t.parameter)?.value ?? Number.NaN)
    return {status: 'updated', message: `Alert configuration updated with ${incoming.length} alerts`, timestamp: this.clock.now().toISOString(), alerts: this.config().alerts}
  }

  /** Checks one reading; returns the episodes it started or ended (also emitted as events). */
  evaluate(reading: Reading): AlertChange[] {
    const changes: AlertChange[] = []
    for (const t of this.thresholds) {
      if (!t.enabled) continue
      const value = worst(reading[t.parameter], t)
      if (value === null) continue
      const state = this.stateOf(t.parameter)
      state.value = value
      if (!state.active && outside(value, t, 0)) {
        Object.assign(state, {active: true, severity: 'warning', since: reading.timestamp, message: describe(t, value), episodes: state.episodes + 1})
        this.events.emit('alert:raised', {parameter: t.parameter, value, message: state.message!, severity: 'warning', email_notify: t.email_notify})
        changes.push({type: 'alert_raised', state: {...state}})
      } else if (state.active && !outside(value, t, margin(t))) {
        const cleared = this.clear(t.parameter, value)
        if (cleared) changes.push(cleared)
      }
    }

    return changes
  }

  /** Every parameter with a threshold, active or not. */
  list(): AlertState[] {
    return this.thresholds.map((t) => ({...this.stateOf(t.parameter)}))
  }

  active(): AlertState[] {
    return [...this.states.values()].filter((s) => s.active).map((s) => ({...s}))
  }

  private stateOf(parameter: AlertableParameter): AlertState {
    let state = this.states.get(parameter)
    if (!state) {
      state = {parameter, active: false, value: null, message: null, severity: null, since: null, episodes: 0}
      this.states.set(parameter, state)
    }

    return state
  }

  private clear(parameter: AlertableParameter, value: number): AlertChange | undefined {
    const state = this.states.get(parameter)
    if (!state?.active) return undefined
    Object.assign(state, {active: false, severity: null, since: null, message: null})
    this.events.emit('alert:cleared', {parameter, value})
    return {type: 'alert_cleared', state: {...state}}
  }
}

function worst(raw: Reading[keyof Reading], t: AlertThreshold): number | null {
  if (typeof raw === 'number') return raw
  if (!Array.isArray(raw) || raw.length === 0) return null
  const low = Math.min(...raw)
  const high = Math.max(...raw)
  if (t.threshold_min !== null && low < t.threshold_min) return low
  if (t.threshold_max !== null && high > t.threshold_max) return high
  // Inside the band: the value nearest a bound decides when the episode clears.
  const toMin = t.threshold_min === null ? Number.POSITIVE_INFINITY : low - t.threshold_min
  const toMax = t.threshold_max === null ? Number.POSITIVE_INFINITY : t.threshold_max - high
  return toMin <= toMax ? low : high
}

function margin(t: AlertThreshold): number {
  if (t.hysteresis !== undefined) return t.hysteresis
  if (t.threshold_min !== null && t.threshold_max !== null) return 0.05 * (t.threshold_max - t.threshold_min)
  return 0.05 * Math.abs(t.threshold_min ?? t.threshold_max ?? 0)
}

function outside(value: number, t: AlertThreshold, inset: number): boolean {
  return (t.threshold_min !== null && value < t.threshold_min + inset) || (t.threshold_max !== null && value > t.threshold_max - inset)
}

function describe(t: AlertThreshold, value: number): string {
  const unit = UNITS[t.parameter] ?? ''
  const what = t.threshold_min !== null && value < t.threshold_min
    ? `Below minimum (${t.threshold_min} ${unit})`
    : `Above maximum (${t.threshold_max} ${unit})`
  return `${t.parameter} value of ${formatValue(value)} ${unit} violates threshold: ${what}`.replaceAll(/ {2,}/g, ' ')
}

function formatValue(value: number): string {
  return Math.abs(value) >= 0.001 || value === 0 ? value.toFixed(3) : value.toExponential(3)
}

/** Validates the original's `POST /alerts/config` body: a list of AlertConfig (422 on errors). */
export function parseThresholds(body: unknown): AlertThreshold[] {
  const list = Array.isArray(body) ? body : (body as {alerts?: unknown} | null)?.alerts
  if (!Array.isArray(list)) throw new DataValidationError('The alert config must be a list of alerts', [{loc: ['body'], msg: 'Input should be a valid list', type: 'list_type'}])
  if (list.length > ALERTABLE.length) throw new DataValidationError(`At most ${ALERTABLE.length} alerts (one per parameter)`, [{loc: ['body'], msg: 'List too long', type: 'too_long'}])
  const issues: ValidationIssue[] = []
  const result: AlertThreshold[] = []
  for (const [index, item] of list.entries()) {
    const {checker, issue} = FieldChecker.object(item, ['body', index])
    if (!checker) {
      issues.push(issue!)
      continue
    }

    const parameter = checker.string('parameter', {max: 64})
    if (typeof parameter === 'string' && !(ALERTABLE as readonly string[]).includes(parameter)) {
      issues.push({loc: ['body', index, 'parameter'], msg: `Unknown parameter; one of ${ALERTABLE.join(', ')}`, type: 'enum', input: parameter})
    }

    const min = checker.has('threshold_min') ? checker.number('threshold_min') ?? null : null
    const max = checker.has('threshold_max') ? checker.number('threshold_max') ?? null : null
    const hysteresis = checker.has('hysteresis') ? checker.number('hysteresis', {ge: 0}) : undefined
    const enabled = checker.bool('enabled', true)
    const emailNotify = checker.bool('email_notify', false)
    if (min === null && max === null && checker.issues.length === 0) issues.push({loc: ['body', index], msg: 'Give threshold_min, threshold_max or both', type: 'value_error'})
    if (min !== null && max !== null && min >= max) issues.push({loc: ['body', index, 'threshold_min'], msg: 'threshold_min must be below threshold_max', type: 'value_error', input: min})
    if (result.some((r) => r.parameter === parameter)) issues.push({loc: ['body', index, 'parameter'], msg: 'Duplicate parameter', type: 'value_error', input: parameter})
    issues.push(...checker.issues)
    const threshold: AlertThreshold = {parameter: parameter as AlertableParameter, threshold_min: min, threshold_max: max, enabled: enabled!, email_notify: emailNotify!}
    if (hysteresis !== undefined) threshold.hysteresis = hysteresis
    result.push(threshold)
  }

  if (issues.length > 0) throw new DataValidationError(`Invalid alert config: ${issues[0].loc.join('.')}: ${issues[0].msg}`, issues)
  return result
}
