import {MfcError} from '../../lib/errors.js'

/**
 * One reading of the stack: the original's `SimulationData` point (§4.3, §10.1) plus the
 * per-cell channels. `timestamp` comes from the data (when it was measured or simulated),
 * never from the time of a request. Fields a real rig has no sensor for are null.
 */
export interface Reading {
  timestamp: string
  source: string
  run_id: string | null
  time_hours: number
  reservoir_concentration: number
  outlet_concentration: number
  total_power: number
  biofilm_thicknesses: number[]
  substrate_addition_rate: number
  q_action: number | null
  epsilon: number | null
  reward: number | null
  cell_voltages: number[] | null
  cell_powers: number[] | null
  cell_ph: number[] | null
  cell_temperatures: number[] | null
}

/** Names a stream subscriber can pick, and the fields each carries (§5 `subscribe`). */
export const STREAMS = {
  substrate: ['reservoir_concentration', 'outlet_concentration', 'substrate_addition_rate'],
  power: ['total_power', 'cell_powers'],
  qlearning: ['q_action', 'epsilon', 'reward'],
  biofilm: ['biofilm_thicknesses'],
  voltage: ['cell_voltages'],
  environment: ['cell_ph', 'cell_temperatures'],
} as const satisfies Record<string, readonly (keyof Reading)[]>

export type StreamName = keyof typeof STREAMS | 'alerts' | 'all'
export const STREAM_NAMES: readonly StreamName[] = [...Object.keys(STREAMS) as (keyof typeof STREAMS)[], 'alerts', 'all']

/** Numeric channels an alert threshold can watch. Per-cell arrays alert on their worst cell. */
export const ALERTABLE = [
  'reservoir_concentration', 'outlet_concentration', 'total_power', 'substrate_addition_rate', 'biofilm_thicknesses',
  'cell_voltages', 'cell_powers', 'cell_ph', 'cell_temperatures', 'reward', 'epsilon',
] as const
export type AlertableParameter = (typeof ALERTABLE)[number]

/** One problem with a request body: FastAPI's detail shape, so the original's clients still parse it. */
export interface ValidationIssue {
  loc: (string | number)[]
  msg: string
  type: string
  input?: unknown
}

/**
 * Bad input from a client. `status` is the HTTP status the API answers with: 422 for a body
 * that fails the schema (FastAPI's convention), 400 for a well-formed request that is refused.
 */
export class DataValidationError extends MfcError {
  readonly status: 400 | 422
  readonly issues: ValidationIssue[]
  constructor(message: string, issues: ValidationIssue[], status: 400 | 422 = 422) {
    super(message, {code: 'MFC_DATA_INVALID', suggestions: issues.slice(0, 5).map((i) => `${i.loc.join('.')}: ${i.msg}`)})
    this.status = status
    this.issues = issues
  }
}

/** A request that conflicts with the current state (a run is already going). */
export class DataConflictError extends MfcError {
  constructor(message: string, suggestion: string) {
    super(message, {code: 'MFC_DATA_CONFLICT', suggestions: [suggestion]})
  }
}

/** Collects issues while checking one object; `number()` etc. return the value or undefined. */
const DAY_MS = 86_400_000
/** Last instant with a four-digit year (what the day-prefix formatting below covers). */
const LAST_FOUR_DIGIT_YEAR_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
const TWO_DIGITS = Array.from({length: 100}, (_, i) => String(i).padStart(2, '0'))
const THREE_DIGITS = Array.from({length: 1000}, (_, i) => String(i).padStart(3, '0'))
let isoDay = Number.NaN
let isoDayPrefix = ''

/**
 * `new Date(ms).toISOString()`, exactly, for a whole number of milliseconds, at a tenth of its
 * cost for the timestamps a batch carries: the date part is formatted once per day (ingest turns
 * every reading's timestamp into this text, and Date's own formatting was half of validating a
 * batch). Anything outside 1970 to 9999 goes to Date itself.
 */
export function isoTimestamp(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms > LAST_FOUR_DIGIT_YEAR_MS) return new Date(ms).toISOString()
  const day = Math.floor(ms / DAY_MS)
  if (day !== isoDay) {
    isoDayPrefix = new Date(day * DAY_MS).toISOString().slice(0, 11)
    isoDay = day
  }

  let rest = ms - day * DAY_MS
  const hours = Math.floor(rest / 3_600_000)
  rest -= hours * 3_600_000
  const minutes = Math.floor(rest / 60_000)
  rest -= minutes * 60_000
  const seconds = Math.floor(rest / 1000)
  return `${isoDayPrefix}${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[seconds]}.${THREE_DIGITS[rest - seconds * 1000]}Z`
}

export class FieldChecker {
  readonly issues: ValidationIssue[] = []
  constructor(private readonly body: Record<string, unknown>, private readonly prefix: (string | number)[] = []) {}

  static object(value: unknown, loc: (string | number)[]): {checker?: FieldChecker; issue?: ValidationIssue} {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      return {issue: {loc, msg: 'Input should be an object', type: 'model_type', input: value}}
    }

    return {checker: new FieldChecker(value as Record<string, unknown>, loc)}
  }

  /** Whether the field is present (not undefined or null). */
  has(key: string): boolean {
    return this.body[key] !== undefined && this.body[key] !== null
  }

  private fail(key: string | number, msg: string, type: string, input: unknown): undefined {
    this.issues.push({loc: [...this.prefix, key], msg, type, input})
    return undefined
  }

  number(key: string, range: {gt?: number; ge?: number; le?: number; lt?: number} = {}, fallback?: number): number | undefined {
    const value = this.body[key]
    if (value === undefined || value === null) return fallback ?? this.fail(key, 'Field required', 'missing', value)
    if (typeof value !== 'number' || !Number.isFinite(value)) return this.fail(key, 'Input should be a finite number', 'float_type', value)
    if (range.gt !== undefined && !(value > range.gt)) return this.fail(key, `Input should be greater than ${range.gt}`, 'greater_than', value)
    if (range.ge !== undefined && !(value >= range.ge)) return this.fail(key, `Input should be greater than or equal to ${range.ge}`, 'greater_than_equal', value)
    if (range.le !== undefined && !(value <= range.le)) return this.fail(key, `Input should be less than or equal to ${range.le}`, 'less_than_equal', value)
    if (range.lt !== undefined && !(value < range.lt)) return this.fail(key, `Input should be less than ${range.lt}`, 'less_than', value)
    return value
  }

  int(key: string, range: {ge?: number; le?: number} = {}, fallback?: number): number | undefined {
    const value = this.body[key]
    if (value !== undefined && value !== null && (typeof value !== 'number' || !Number.isInteger(value))) {
      return this.fail(key, 'Input should be a valid integer', 'int_type', value)
    }

    return this.number(key, range, fallback)
  }

  bool(key: string, fallback?: boolean): boolean | undefined {
    const value = this.body[key]
    if (value === undefined || value === null) return fallback ?? this.fail(key, 'Field required', 'missing', value)
    if (typeof value !== 'boolean') return this.fail(key, 'Input should be a valid boolean', 'bool_type', value)
    return value
  }

  string(key: string, options: {max?: number; pattern?: RegExp; fallback?: string | null} = {}): string | null | undefined {
    const value = this.body[key]
    if (value === undefined || value === null) return options.fallback !== undefined ? options.fallback : this.fail(key, 'Field required', 'missing', value)
    if (typeof value !== 'string') return this.fail(key, 'Input should be a valid string', 'string_type', value)
    if (options.max !== undefined && value.length > options.max) return this.fail(key, `String should have at most ${options.max} characters`, 'string_too_long', value)
    if (options.pattern && !options.pattern.test(value)) return this.fail(key, `String should match ${options.pattern.source}`, 'string_pattern_mismatch', value)
    return value
  }

  /** A per-cell array of finite numbers of exactly `cells` entries (null when absent and optional). */
  cells(key: string, cells: number, required: boolean): number[] | null | undefined {
    const value = this.body[key]
    if (value === undefined || value === null) return required ? this.fail(key, 'Field required', 'missing', value) : null
    if (!Array.isArray(value)) return this.fail(key, 'Input should be a list of numbers, one per cell', 'list_type', value)
    if (value.length > cells) return this.fail(key, `Unknown cell ${cells + 1}: the stack has ${cells} cells`, 'unknown_cell', value.length)
    if (value.length < cells) return this.fail(key, `Expected one value per cell (${cells}), got ${value.length}`, 'too_short', value.length)
    const bad = value.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v))
    if (bad !== -1) return this.fail(key, `Cell ${bad + 1}: input should be a finite number`, 'float_type', value[bad])
    return value as number[]
  }
}
