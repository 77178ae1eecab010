import type {AlertState} from './alerts.js'
import type {History, SourceInfo} from './history-types.js'
import {reservedSource, SOURCE_RE} from './ingest.js'
import {DataValidationError, FieldChecker, type Reading} from './reading.js'

/** How a source looks from its silence: online, stale (dashboard warns), offline ("no data" alert). */
export type SourceState = 'online' | 'stale' | 'offline' | 'never'

/** A source as GET /sources and the dashboard's overview show it. */
export interface SourceView extends SourceInfo {
  state: SourceState
  /** Seconds since its newest reading arrived at this server (null before any). */
  silent_s: number | null
  latest: Reading | null
  alerts: AlertState[]
}

export interface SourceTimes {
  staleAfterMs: number
  offlineAfterMs: number
}

/**
 * The sources of this server, mirrored in memory from the history's `sources` table so ingest
 * (per-source cell counts) and the overview never query the database per request. `seen` is
 * the last arrival at this server (wall clock), which decides stale/offline: a rig replaying
 * old readings is still online. Sources that sent nothing since start count from the newest
 * stored reading's timestamp.
 */
export class SourceRegistry {
  private readonly known = new Map<string, SourceInfo>()
  private readonly arrivals = new Map<string, number>()
  private readonly newest = new Map<string, Reading>()

  /** Starts empty; `reload()` reads the table. */
  constructor(private readonly history: History, private readonly now: () => number) {}

  /** Rereads the table (at start, and when the database was replaced or reopened). */
  async reload(): Promise<void> {
    const infos = await this.history.sources()
    this.known.clear()
    this.newest.clear()
    for (const info of infos) this.known.set(info.name, info)
  }

  cellsOf(name: string): number | null | undefined {
    return this.known.get(name)?.cells
  }

  /** Stored readings arrived (after the commit): keeps counts, times and the newest reading current. */
  arrived(readings: readonly Reading[]): void {
    const at = this.now()
    for (const r of readings) {
      const ts = Date.parse(r.timestamp)
      const info = this.known.get(r.source)
      if (info) {
        info.readings++
        info.first_seen = Math.min(info.first_seen ?? ts, ts)
        info.last_seen = Math.max(info.last_seen ?? ts, ts)
        info.cells ??= r.cell_voltages?.length ?? (r.biofilm_thicknesses.length || null)
      } else {
        this.known.set(r.source, {name: r.source, cells: r.cell_voltages?.length ?? (r.biofilm_thicknesses.length || null), description: null, location: null, first_seen: ts, last_seen: ts, readings: 1})
      }

      this.arrivals.set(r.source, at)
      this.newest.set(r.source, r)
    }
  }

  /** Registers or updates a source's name, cells, description and location (PUT /sources/:name). */
  async register(name: string, body: unknown): Promise<SourceInfo> {
    if (!SOURCE_RE.test(name)) {
      throw new DataValidationError(`Invalid source name "${name.slice(0, 80)}": use letters, digits, . _ @ - (at most 64)`, [{loc: ['path', 'name'], msg: 'Input should be a source name', type: 'string_pattern_mismatch', input: name.slice(0, 80)}], 400)
    }

    const {checker, issue} = FieldChecker.object(body ?? {}, ['body'])
    if (!checker) throw new DataValidationError('The source must be a JSON object', [issue!], 400)
    const extra = Object.keys(body ?? {}).filter((k) => !['cells', 'description', 'location'].includes(k))
    for (const k of extra) checker.issues.push({loc: ['body', k], msg: `Unknown field "${k}"; use cells, description, location`, type: 'extra_forbidden'})
    const given = body as Record<string, unknown> | undefined
    const registration = {
      name,
      cells: given?.cells === undefined ? undefined : given.cells === null ? null : checker.int('cells', {ge: 1, le: 64}),
      description: given?.description === undefined ? undefined : checker.string('description', {max: 500, fallback: null}),
      location: given?.location === undefined ? undefined : checker.string('location', {max: 200, fallback: null}),
    }
    const stored = this.known.get(name)
    if (reservedSource(name) && registration.cells !== undefined && registration.cells !== (stored?.cells ?? registration.cells)) {
      checker.issues.push({loc: ['body', 'cells'], msg: `The cell count of "${name}" comes from its data`, type: 'value_error'})
    }

    if (stored && stored.readings > 0 && typeof registration.cells === 'number' && stored.cells !== null && registration.cells !== stored.cells) {
      checker.issues.push({loc: ['body', 'cells'], msg: `${name} already has ${stored.readings} readings of ${stored.cells} cells; register the new stack under a new name`, type: 'value_error', input: registration.cells})
    }

    if (checker.issues.length > 0) throw new DataValidationError(`Invalid source ${name}: ${checker.issues[0].loc.join('.')}: ${checker.issues[0].msg}`, checker.issues, 400)
    const info = await this.history.putSource(registration as Parameters<History['putSource']>[0])
    this.known.set(name, {...info})
    return info
  }

  get(name: string): SourceInfo | undefined {
    const info = this.known.get(name)
    return info && {...info}
  }

  list(): SourceInfo[] {
    return [...this.known.values()].sort((a, b) => a.name.localeCompare(b.name)).map((i) => ({...i}))
  }

  /** ms since the epoch of the source's last arrival here, or of its newest stored reading. */
  lastSeen(name: string): number | undefined {
    return this.arrivals.get(name) ?? this.known.get(name)?.last_seen ?? undefined
  }

  /** Sources that sent data since this server started, with their last arrival. */
  active(): {name: string; lastSeen: number}[] {
    return [...this.arrivals].map(([name, lastSeen]) => ({name, lastSeen}))
  }

  newestOf(name: string): Reading | undefined {
    return this.newest.get(name)
  }

  state(name: string, times: SourceTimes): {state: SourceState; silent_s: number | null} {
    const seen = this.lastSeen(name)
    if (seen === undefined) return {state: 'never', silent_s: null}
    const silent = Math.max(0, this.now() - seen)
    const state = silent > times.offlineAfterMs ? 'offline' : silent > times.staleAfterMs ? 'stale' : 'online'
    return {state, silent_s: Math.round(silent / 100) / 10}
  }
}
