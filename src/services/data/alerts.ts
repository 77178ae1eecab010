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

/** One unit per quantity, the same the dashboard's charts and cards use (base units, so SI prefixes apply). */
export const UNITS: Partial<Record<AlertableParameter, string>> = {
  reservoir_concentration: 'mM', outlet_concentration: 'mM', total_power: 'W', substrate_addition_rate: 'mmol/h', biofilm_thicknesses: 'μm',
  cell_voltages: 'V', cell_powers: 'W', cell_ph: 'pH', cell_temperatures: '°C',
}

/**
 * The original's defaults are a real rig's. The simulated stack (electrode 0.001 m², ~30 μW) gets
 * a power floor it can meet, and its reservoir band is off: its controller (a Q-table learning
 * from zero, as the original's) leaves 20-30 mM within its first two simulated days and settles
 * near 2 mM, so the default run would otherwise show a permanent alert. Both are ordinary
 * per-source overrides: the dashboard's per-source view shows them, and "Use default" (DELETE
 * /alerts/config?source=simulator&parameter=...) brings the global threshold back.
 */
export const BUILTIN_SOURCE_THRESHOLDS: Record<string, AlertThreshold[]> = {
  simulator: [
    {parameter: 'total_power', threshold_min: 1e-6, threshold_max: null, enabled: true, email_notify: false},
    {parameter: 'reservoir_concentration', threshold_min: 20, threshold_max: 30, enabled: false, email_notify: false},
  ],
}

/** The "no data" alert's parameter: a source that was sending went silent. */
export const NO_DATA = 'no_data'
export type AlertParameter = AlertableParameter | typeof NO_DATA

/** One (source, parameter) alert state as the API, stream and dashboard show it. */
export interface AlertState {
  source: string
  parameter: AlertParameter
  active: boolean
  value: number | null
  /** The unit of `value` (base SI unit, "s" for no_data's silence), so a client formats it with a prefix. */
  unit: string
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

/** The persistence the manager needs; the history store provides it. `putSetting` resolves once durable. */
export interface SettingsStore {
  getSetting(key: string): Promise<string | undefined>
  putSetting(key: string, value: string): Promise<void>
}

const KEY = 'alerts:thresholds'
const SOURCES_KEY = 'alerts:source-thresholds'

/**
 * Watches readings against thresholds, per source: a source's own thresholds (set with
 * `source` in POST /alerts/config) override the global ones parameter by parameter. An episode
 * starts when a value leaves [min, max] and ends only once it is back inside by the hysteresis
 * margin, so a value dithering on the bound raises one `alert:raised`, not one per reading.
 * Per-cell arrays alert on their worst cell. `silence()` raises "no data" for a source that
 * stopped sending; its next reading clears it. Every state and event names its source.
 */
export class AlertManager {
  private thresholds: AlertThreshold[]
  private perSource: Record<string, AlertThreshold[]>
  private readonly states = new Map<string, AlertState>()
  /** Whether each open episode was notified, so its clear is notified alike. */
  private readonly notified = new Map<string, boolean>()
  private reconfigured: (change: AlertChange) => void = () => undefined
  /** Each source's enabled thresholds, for the current `thresholds`/`perSource` (both are replaced, never changed in place). */
  private readonly enabledBySource = new Map<string, AlertThreshold[]>()
  private enabledFor: [AlertThreshold[], Record<string, AlertThreshold[]>] | undefined
  private updating: Promise<unknown> = Promise.resolve()

  /** Starts with the defaults; `reload()` reads the saved thresholds (`open` does both). */
  constructor(private readonly store: SettingsStore, private readonly events: MfcEventBus, private readonly clock: Clock) {
    this.thresholds = DEFAULT_THRESHOLDS.map((t) => ({...t}))
    this.perSource = structuredClone(BUILTIN_SOURCE_THRESHOLDS)
  }

  /** A manager with the thresholds saved in `store`. */
  static async open(store: SettingsStore, events: MfcEventBus, clock: Clock): Promise<AlertManager> {
    const manager = new AlertManager(store, events, clock)
    await manager.reload()
    return manager
  }

  /** Where the episodes that a threshold change ends go (the stream); evaluate() returns its own. */
  onReconfigured(listener: (change: AlertChange) => void): void {
    this.reconfigured = listener
  }

  /** Rereads the thresholds from the store (its database was replaced, e.g. by `mfc restore`). */
  async reload(): Promise<void> {
    const [saved, perSource] = await Promise.all([this.store.getSetting(KEY), this.store.getSetting(SOURCES_KEY)])
    this.thresholds = saved ? JSON.parse(saved) as AlertThreshold[] : DEFAULT_THRESHOLDS.map((t) => ({...t}))
    this.perSource = perSource ? JSON.parse(perSource) as Record<string, AlertThreshold[]> : structuredClone(BUILTIN_SOURCE_THRESHOLDS)
  }

  /** The global thresholds, or a source's own overrides and the effective set when `source` is given. */
  config(source?: string): {alerts: AlertThreshold[]; source?: string; overrides?: AlertThreshold[]; sources: Record<string, AlertThreshold[]>} {
    const sources = structuredClone(this.perSource)
    if (source === undefined) return {alerts: this.thresholds.map((t) => ({...t})), sources}
    return {source, alerts: this.effective(source), overrides: (this.perSource[source] ?? []).map((t) => ({...t})), sources}
  }

  /**
   * Validates and upserts by parameter (disable one with enabled=false), globally or for one
   * source (`{"source": "rig-1", "alerts": [...]}`); persisted before returning. Clears the
   * episodes the new thresholds no longer hold.
   */
  async update(body: unknown, source?: string): Promise<{status: 'updated'; message: string; timestamp: string; source: string | null; alerts: AlertThreshold[]}> {
    const incoming = parseThresholds(body)
    const target = source ?? ((body as {source?: unknown} | null)?.source as string | undefined)
    if (target !== undefined && !SOURCE_NAME.test(target)) throw sourceIssue(target)

    return this.serialized(() => this.apply(incoming, target))
  }

  /** One change at a time: each reads the thresholds the previous one saved (no lost update). */
  private serialized<T>(change: () => Promise<T>): Promise<T> {
    const turn = this.updating.then(change)
    this.updating = turn.catch(() => undefined)
    return turn
  }

  private async apply(incoming: AlertThreshold[], target: string | undefined): Promise<{status: 'updated'; message: string; timestamp: string; source: string | null; alerts: AlertThreshold[]}> {

    if (target === undefined) {
      const next = upsert(this.thresholds, incoming)
      await this.store.putSetting(KEY, JSON.stringify(next))
      this.thresholds = next
    } else {
      const next = {...this.perSource, [target]: upsert(this.perSource[target] ?? [], incoming)}
      await this.store.putSetting(SOURCES_KEY, JSON.stringify(next))
      this.perSource = next
    }

    this.recheck(target)
    const where = target === undefined ? '' : ` for source ${target}`
    return {status: 'updated', message: `Alert configuration updated with ${incoming.length} alerts${where}`, timestamp: this.clock.now().toISOString(),
      source: target ?? null, alerts: target === undefined ? this.config().alerts : this.effective(target)}
  }

  /**
   * Removes a source's own threshold for `parameter` (all of its own when omitted), so the global
   * one applies again; persisted before returning. Idempotent: `removed` is 0 when there was none.
   */
  async clearOverride(source: string, parameter?: string): Promise<{status: 'cleared'; message: string; source: string; removed: number; alerts: AlertThreshold[]}> {
    if (!SOURCE_NAME.test(source)) throw sourceIssue(source)
    if (parameter !== undefined && !(ALERTABLE as readonly string[]).includes(parameter)) {
      throw new DataValidationError(`Unknown parameter "${parameter.slice(0, 64)}"`, [{loc: ['query', 'parameter'], msg: `Unknown parameter; one of ${ALERTABLE.join(', ')}`, type: 'enum', input: parameter.slice(0, 64)}], 400)
    }

    return this.serialized(async () => {
      const own = this.perSource[source] ?? []
      const kept = own.filter((t) => parameter !== undefined && t.parameter !== parameter)
      if (kept.length !== own.length) {
        const next = {...this.perSource}
        if (kept.length === 0) delete next[source]
        else next[source] = kept
        await this.store.putSetting(SOURCES_KEY, JSON.stringify(next))
        this.perSource = next
        this.recheck(source)
      }

      const removed = own.length - kept.length
      return {status: 'cleared' as const, message: `Removed ${removed} threshold(s) of source ${source}; the global ones apply`, source, removed, alerts: this.effective(source)}
    })
  }

  /**
   * After a threshold change: ends the episodes (of `source`, or all) that the new thresholds no
   * longer hold, judged on the last value, so relaxing a bound clears at once rather than at the
   * source's next reading (a rig may post once a minute). A new episode waits for a reading.
   */
  private recheck(source?: string): void {
    for (const state of this.states.values()) {
      if (!state.active || state.parameter === NO_DATA || (source !== undefined && state.source !== source)) continue
      const t = this.effective(state.source).find((x) => x.parameter === state.parameter)
      if (!t || !t.enabled || (state.value !== null && !outside(state.value, t, margin(t)))) {
        const change = this.clear(state, state.value ?? Number.NaN)
        if (change) this.reconfigured(change)
      }
    }
  }

  /** Global thresholds overridden by the source's own, parameter by parameter. */
  effective(source: string): AlertThreshold[] {
    return upsert(this.thresholds, this.perSource[source] ?? []).map((t) => ({...t}))
  }

  /** Checks one reading; returns the episodes it started or ended (also emitted as events). */
  evaluate(reading: Reading): AlertChange[] {
    const changes: AlertChange[] = []
    const silent = this.states.get(key(reading.source, NO_DATA))
    if (silent?.active) changes.push(this.clear(silent, 0)!)
    for (const t of this.thresholdsOf(reading.source)) {
      const value = worst(reading[t.parameter], t)
      if (value === null) continue
      const state = this.stateOf(reading.source, t.parameter)
      state.value = value
      if (!state.active && outside(value, t, 0)) changes.push(this.raise(state, value, describe(reading.source, t, value), t.email_notify, reading.timestamp))
      else if (state.active && !outside(value, t, margin(t))) {
        const cleared = this.clear(state, value)
        if (cleared) changes.push(cleared)
      }
    }

    return changes
  }

  /**
   * Raises "no data" for every given source silent for longer than `afterMs` (the caller passes
   * the sources expected to send: not the simulator while no run goes).
   */
  silence(sources: readonly {name: string; lastSeen: number}[], afterMs: number): AlertChange[] {
    const now = this.clock.now().getTime()
    const changes: AlertChange[] = []
    for (const {name, lastSeen} of sources) {
      const silentFor = (now - lastSeen) / 1000
      if (silentFor * 1000 <= afterMs) continue
      const state = this.stateOf(name, NO_DATA)
      state.value = silentFor
      if (!state.active) {
        const message = `${name}: no data for ${Math.round(silentFor)} s (last reading ${new Date(lastSeen).toISOString()})`
        changes.push(this.raise(state, silentFor, message, true, new Date(now).toISOString()))
      }
    }

    return changes
  }

  /** Every (source, parameter) evaluated so far, active or not. */
  list(source?: string): AlertState[] {
    return [...this.states.values()].filter((s) => source === undefined || s.source === source).map((s) => ({...s}))
  }

  active(source?: string): AlertState[] {
    return this.list(source).filter((s) => s.active)
  }

  private raise(state: AlertState, value: number, message: string, emailNotify: boolean, since: string): AlertChange {
    Object.assign(state, {active: true, severity: 'warning', since, message, episodes: state.episodes + 1})
    this.notified.set(key(state.source, state.parameter), emailNotify)
    this.events.emit('alert:raised', {source: state.source, parameter: state.parameter, value, message, severity: 'warning', email_notify: emailNotify, since})
    return {type: 'alert_raised', state: {...state}}
  }

  /** The enabled thresholds that apply to `source`: its own over the global ones. */
  private thresholdsOf(source: string): AlertThreshold[] {
    if (this.enabledFor?.[0] !== this.thresholds || this.enabledFor[1] !== this.perSource) {
      this.enabledBySource.clear()
      this.enabledFor = [this.thresholds, this.perSource]
    }

    let list = this.enabledBySource.get(source)
    if (!list) {
      list = upsert(this.thresholds, this.perSource[source] ?? []).filter((t) => t.enabled)
      this.enabledBySource.set(source, list)
    }

    return list
  }

  private stateOf(source: string, parameter: AlertParameter): AlertState {
    let state = this.states.get(key(source, parameter))
    if (!state) {
      state = {source, parameter, active: false, value: null, unit: parameter === NO_DATA ? 's' : UNITS[parameter] ?? '', message: null, severity: null, since: null, episodes: 0}
      this.states.set(key(source, parameter), state)
    }

    return state
  }

  private clear(state: AlertState, value: number): AlertChange | undefined {
    if (!state.active) return undefined
    const since = state.since ?? undefined
    const emailNotify = this.notified.get(key(state.source, state.parameter)) ?? false
    Object.assign(state, {active: false, severity: null, since: null, message: null})
    this.events.emit('alert:cleared', {source: state.source, parameter: state.parameter, value, since, email_notify: emailNotify})
    return {type: 'alert_cleared', state: {...state}}
  }
}

const SOURCE_NAME = /^[\w.:@-]{1,64}$/

function sourceIssue(source: string): DataValidationError {
  return new DataValidationError(`Invalid source "${source.slice(0, 80)}"`, [{loc: ['query', 'source'], msg: 'Input should be a source name', type: 'string_pattern_mismatch', input: source.slice(0, 80)}], 400)
}

function key(source: string, parameter: AlertParameter): string {
  return `${source}\u0000${parameter}`
}

function upsert(base: readonly AlertThreshold[], incoming: readonly AlertThreshold[]): AlertThreshold[] {
  return [...base.filter((t) => !incoming.some((i) => i.parameter === t.parameter)), ...incoming]
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

function describe(source: string, t: AlertThreshold, value: number): string {
  const unit = UNITS[t.parameter] ?? ''
  const what = t.threshold_min !== null && value < t.threshold_min
    ? `Below minimum (${formatSi(t.threshold_min, unit)})`
    : `Above maximum (${formatSi(t.threshold_max!, unit)})`
  return `${source}: ${t.parameter} value of ${formatSi(value, unit)} violates threshold: ${what}`
}

const PREFIXES: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, ''], [1e-3, 'm'], [1e-6, 'μ'], [1e-9, 'n'], [1e-12, 'p']]

/**
 * A value with an SI prefix on its unit and 3 significant digits ("30.1 μW", not "0.000 W").
 * Units that take no prefix (mM, pH, °C, μm, mmol/h) are printed with 3 significant digits.
 */
export function formatSi(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`.trim()
  if (!['W', 'V', 'A', 's'].includes(unit) || value === 0) return `${Number(value.toPrecision(3))} ${unit}`.trim()
  const [scale, prefix] = PREFIXES.find(([s]) => Math.abs(value) >= s) ?? PREFIXES.at(-1)!
  return `${Number((value / scale).toPrecision(3))} ${prefix}${unit}`
}

/** Validates the original's `POST /alerts/config` body: a list of AlertConfig (422 on errors). */
export function parseThresholds(body: unknown): AlertThreshold[] {
  const named = (body as {source?: unknown} | null)?.source
  if (named !== undefined && (typeof named !== 'string' || !/^[\w.@-]{1,64}$/.test(named))) {
    throw new DataValidationError('"source" must be a source name (letters, digits, . _ @ -, at most 64)', [{loc: ['body', 'source'], msg: 'Input should be a source name', type: 'string_pattern_mismatch', input: named}])
  }

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
