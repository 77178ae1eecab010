import type {HistoryStore} from './history.js'
import {DataValidationError, FieldChecker, type Reading, type ValidationIssue} from './reading.js'

export interface IngestLimits {
  /** Cells of the stack; per-cell arrays must have exactly this many entries. */
  cells: number
  /** Readings per request. */
  maxBatch: number
}

export const DEFAULT_INGEST_LIMITS: IngestLimits = {cells: 5, maxBatch: 10_000}

const READING_KEYS = new Set([
  'timestamp', 'time_hours', 'reservoir_concentration', 'outlet_concentration', 'total_power', 'biofilm_thicknesses',
  'substrate_addition_rate', 'q_action', 'epsilon', 'reward', 'cell_voltages', 'cell_powers', 'cell_ph', 'cell_temperatures',
])
const SOURCE_RE = /^[\w.:@-]{1,64}$/
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
  const source = checker.string('source', {pattern: SOURCE_RE, fallback: 'ingest'})
  const list = (envelope as Record<string, unknown>).readings
  if (!Array.isArray(list)) throw new DataValidationError('"readings" must be a list of readings', [{loc: ['body', 'readings'], msg: 'Input should be a valid list', type: 'list_type', input: typeof list}], 400)
  if (list.length === 0) throw new DataValidationError('The batch is empty', [{loc: ['body', 'readings'], msg: 'List should have at least 1 item', type: 'too_short'}], 400)
  if (list.length > limits.maxBatch) {
    throw new DataValidationError(`The batch has ${list.length} readings; the limit is ${limits.maxBatch} per request`, [{loc: ['body', 'readings'], msg: `List should have at most ${limits.maxBatch} items; split the batch`, type: 'too_long', input: list.length}], 400)
  }

  const issues: ValidationIssue[] = [...checker.issues]
  const readings: Reading[] = []
  for (const [index, item] of list.entries()) {
    const reading = parseReading(item, index, limits, now, issues)
    if (reading) readings.push({...reading, source: `ingest:${source ?? 'ingest'}`})
    if (issues.length >= 20) break
  }

  if (issues.length > 0) {
    const first = issues[0]
    throw new DataValidationError(`Rejected the whole batch (${issues.length}${issues.length >= 20 ? '+' : ''} problems), first: ${first.loc.join('.')}: ${first.msg}`, issues, 400)
  }

  return readings
}

function parseReading(item: unknown, index: number, limits: IngestLimits, now: Date, issues: ValidationIssue[]): Reading | undefined {
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
  const stamp = checker.string('timestamp', {max: 40})
  const ts = typeof stamp === 'string' ? Date.parse(stamp) : Number.NaN
  if (typeof stamp === 'string' && (!Number.isFinite(ts) || ts < EARLIEST || ts > now.getTime() + 86_400_000)) {
    checker.issues.push({loc: [...loc, 'timestamp'], msg: 'Input should be an ISO 8601 date-time between 2000 and tomorrow', type: 'datetime_parsing', input: stamp})
  }

  const reading = {
    timestamp: Number.isFinite(ts) ? new Date(ts).toISOString() : '',
    source: 'ingest',
    run_id: null,
    time_hours: checker.number('time_hours', {ge: 0}),
    reservoir_concentration: checker.number('reservoir_concentration', {ge: 0, le: 1000}),
    outlet_concentration: checker.number('outlet_concentration', {ge: 0, le: 1000}),
    total_power: checker.number('total_power', {ge: 0, le: 1e6}),
    biofilm_thicknesses: checker.cells('biofilm_thicknesses', limits.cells, false) ?? [],
    substrate_addition_rate: checker.number('substrate_addition_rate', {}, 0),
    q_action: checker.has('q_action') ? checker.int('q_action', {ge: 0, le: 9}) ?? null : null,
    epsilon: checker.has('epsilon') ? checker.number('epsilon', {ge: 0, le: 1}) ?? null : null,
    reward: checker.has('reward') ? checker.number('reward') ?? null : null,
    cell_voltages: checker.cells('cell_voltages', limits.cells, false),
    cell_powers: checker.cells('cell_powers', limits.cells, false),
    cell_ph: checker.cells('cell_ph', limits.cells, false),
    cell_temperatures: checker.cells('cell_temperatures', limits.cells, false),
  }
  issues.push(...checker.issues)
  return checker.issues.length === before ? reading as Reading : undefined
}

/** What the API acknowledges once a batch is durable. */
export interface IngestReceipt {
  status: 'stored'
  accepted: number
  first_timestamp: string
  last_timestamp: string
}

/**
 * Validates, stores (one transaction, durable before returning) and then hands the batch to
 * `published` (stream, alerts). Publication never happens for a batch that was not stored.
 */
export class IngestService {
  constructor(
    private readonly history: HistoryStore,
    private readonly limits: IngestLimits,
    private readonly clock: {now(): Date},
    private readonly published: (readings: Reading[]) => void,
  ) {}

  ingest(body: unknown): IngestReceipt {
    const readings = parseIngestBatch(body, this.limits, this.clock.now())
    this.history.insert(readings)
    this.published(readings)
    return {status: 'stored', accepted: readings.length, first_timestamp: readings[0].timestamp, last_timestamp: readings.at(-1)!.timestamp}
  }
}
