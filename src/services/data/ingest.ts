import type {GroupCommit} from './group-commit.js'
import {DataValidationError, FieldChecker, isoTimestamp, type Reading, type ValidationIssue} from './reading.js'

export interface IngestLimits {
  /** Cells of a stack not registered with its own count; per-cell arrays must have exactly this many entries. */
  cells: number
  /** The registered cell count of a source, when it has one. */
  cellsOf?: (source: string) => number | null | undefined
  /** Readings per request. */
  maxBatch: number
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = {cells: 5, maxBatch: 10_000}

const READING_KEYS = new Set([
  'timestamp', 'time_hours', 'reservoir_concentration', 'outlet_concentration', 'total_power', 'biofilm_thicknesses',
  'substrate_addition_rate', 'q_action', 'epsilon', 'reward', 'cell_voltages', 'cell_powers', 'cell_ph', 'cell_temperatures',
])
/** A source name: what the API filters by, a topic level of MQTT, a Prometheus label value. */
export const SOURCE_RE = /^[\w.@-]{1,64}$/
/** Names of the server's own sources: ingest must not write into them. */
export function reservedSource(name: string): boolean {
  return name === 'simulator' || name.startsWith('file:')
}
// A reading's ranges, made once (a batch checks them for every reading).
const NON_NEGATIVE = Object.freeze({ge: 0})
const CONCENTRATION = Object.freeze({ge: 0, le: 1000})
const POWER = Object.freeze({ge: 0, le: 1e6})
const ANY = Object.freeze({})
const Q_ACTION = Object.freeze({ge: 0, le: 9})
const FRACTION = Object.freeze({ge: 0, le: 1})
/** Timestamps must be plausible: not before 2000, not more than a day ahead of the server. */
const EARLIEST = Date.UTC(2000, 0, 1)

/**
 * Validates a `POST /data/ingest` body: `{"source": "rig-1", "readings": [{...}, ...]}` (or a
 * bare array). Every problem is collected (up to 20) so a client fixes its batch in one go;
 * any problem rejects the whole batch (400), so nothing is half-written.
 */
export function parseIngestBatch(body: unknown, limits: IngestLimits, now: Date): Reading[] {
  const envelope = Array.isArray(body) ? {readings: body} : body
  const {checker, issue} = FieldChecker.object(envelope, ['body'])
  if (!checker) throw new DataValidationError('The ingest body must be {"readings": [...]} or an array of readings', [issue!], 400)
  const source = checker.string('source', {pattern: SOURCE_RE, fallback: 'ingest'}) ?? 'ingest'
  if (reservedSource(source)) checker.issues.push({loc: ['body', 'source'], msg: `"${source}" is the server's own source; post under your rig's name`, type: 'value_error', input: source})
  const cells = limits.cellsOf?.(source) ?? limits.cells
  const list = (envelope as Record<string, unknown>).readings
  if (!Array.isArray(list)) throw new DataValidationError('"readings" must be a list of readings', [{loc: ['body', 'readings'], msg: 'Input should be a valid list', type: 'list_type', input: typeof list}], 400)
  if (list.length === 0) throw new DataValidationError('The batch is empty', [{loc: ['body', 'readings'], msg: 'List should have at least 1 item', type: 'too_short'}], 400)
  if (list.length > limits.maxBatch) {
    throw new DataValidationError(`The batch has ${list.length} readings; the limit is ${limits.maxBatch} per request`, [{loc: ['body', 'readings'], msg: `List should have at most ${limits.maxBatch} items; split the batch`, type: 'too_long', input: list.length}], 400)
  }

  const issues: ValidationIssue[] = [...checker.issues]
  const readings: Reading[] = []
  for (const [index, item] of list.entries()) {
    const reading = parseReading(item, index, cells, now, issues, source)
    if (reading) readings.push(reading)
    if (issues.length >= 20) break
  }

  if (issues.length > 0) {
    const first = issues[0]
    throw new DataValidationError(`Rejected the whole batch (${issues.length}${issues.length >= 20 ? '+' : ''} problems), first: ${first.loc.join('.')}: ${first.msg}`, issues, 400)
  }

  return readings
}

function parseReading(item: unknown, index: number, cells: number, now: Date, issues: ValidationIssue[], source: string): Reading | undefined {
  const loc = ['body', 'readings', index]
  const {checker, issue} = FieldChecker.object(item, loc)
  if (!checker) {
    issues.push(issue!)
    return undefined
  }

  for (const key of Object.keys(item as object)) {
    if (!READING_KEYS.has(key)) issues.push({loc: [...loc, key], msg: `Unknown field "${key}"`, type: 'extra_forbidden'})
  }

  const before = checker.issues.length
  const ts = timestampOf((item as Record<string, unknown>).timestamp)
  if (ts === undefined) checker.issues.push({loc: [...loc, 'timestamp'], msg: 'Field required: an ISO 8601 date-time or milliseconds since 1970', type: 'missing'})
  else if (!Number.isFinite(ts) || ts < EARLIEST || ts > now.getTime() + 86_400_000) {
    checker.issues.push({loc: [...loc, 'timestamp'], msg: 'Input should be an ISO 8601 date-time or milliseconds since 1970, between 2000 and tomorrow', type: 'datetime_parsing', input: (item as Record<string, unknown>).timestamp})
  }

  const reading = {
    timestamp: ts !== undefined && Number.isFinite(ts) ? isoTimestamp(ts) : '',
    source,
    run_id: null,
    time_hours: checker.number('time_hours', NON_NEGATIVE),
    reservoir_concentration: checker.number('reservoir_concentration', CONCENTRATION),
    outlet_concentration: checker.number('outlet_concentration', CONCENTRATION),
    total_power: checker.number('total_power', POWER),
    biofilm_thicknesses: checker.cells('biofilm_thicknesses', cells, false) ?? [],
    substrate_addition_rate: checker.number('substrate_addition_rate', ANY, 0),
    q_action: checker.has('q_action') ? checker.int('q_action', Q_ACTION) ?? null : null,
    epsilon: checker.has('epsilon') ? checker.number('epsilon', FRACTION) ?? null : null,
    reward: checker.has('reward') ? checker.number('reward') ?? null : null,
    cell_voltages: checker.cells('cell_voltages', cells, false),
    cell_powers: checker.cells('cell_powers', cells, false),
    cell_ph: checker.cells('cell_ph', cells, false),
    cell_temperatures: checker.cells('cell_temperatures', cells, false),
  }
  if (checker.issues.length === before) return reading as Reading
  issues.push(...checker.issues)
  return undefined
}

/**
 * ISO 8601 text (with a zone; one without is read as UTC, like Grafana and InfluxDB do) or a
 * number of milliseconds since 1970 (also as digits in a string); NaN when unreadable.
 */
export function timestampOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') return Number.isInteger(value) ? value : Number.NaN
  if (typeof value !== 'string' || value.length > 40) return Number.NaN
  if (/^\d{1,15}$/.test(value)) return Number(value)
  const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(value) || !value.includes('T') ? value : `${value}Z`
  return /^\d{4}-\d{2}-\d{2}/.test(zoned) ? Date.parse(zoned) : Number.NaN
}

/** What the API acknowledges once a batch is durable. */
export interface IngestReceipt {
  status: 'stored'
  /** Readings in the request, all durable now. */
  accepted: number
  /** Of those, readings whose (source, timestamp) was already stored: kept once, not twice. */
  duplicates: number
  source: string
  first_timestamp: string
  last_timestamp: string
}

/**
 * Validates, then stores through the group commit (durable before the promise resolves), which
 * hands the new readings to the stream and alerts. Nothing is published that was not stored.
 */
export class IngestService {
  constructor(
    private readonly commit: GroupCommit,
    private readonly limits: IngestLimits,
    private readonly clock: {now(): Date},
  ) {}

  async ingest(body: unknown): Promise<IngestReceipt> {
    const readings = parseIngestBatch(body, this.limits, this.clock.now())
    const stored = await this.commit.submit(readings)
    return {
      status: 'stored', accepted: readings.length, duplicates: readings.length - stored.length, source: readings[0].source,
      first_timestamp: readings[0].timestamp, last_timestamp: readings.at(-1)!.timestamp,
    }
  }
}
