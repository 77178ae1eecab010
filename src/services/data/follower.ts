import {promises as fs} from 'node:fs'
import {basename, join, relative} from 'node:path'
import {promisify} from 'node:util'
import {gunzip} from 'node:zlib'

import type {Logger} from '../../lib/logger.js'
import type {HistoryStore} from './history.js'
import type {Reading} from './reading.js'

const gunzipAsync = promisify(gunzip)
const FILE_RE = /^gui_simulation_data_.*\.csv\.gz$/

/** Splits one CSV line (RFC 4180 quoting, as pandas writes it). */
export function splitCsvLine(line: string): string[] {
  const fields: string[] = []
  let field = ''
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        field += '"'
        i++
      } else if (ch === '"') quoted = false
      else field += ch
    } else if (ch === '"') quoted = true
    else if (ch === ',') {
      fields.push(field)
      field = ''
    } else field += ch
  }

  fields.push(field)
  return fields
}

/** The original's biofilm cell: "[1.0, 1.0]" (or with single quotes), or a bare number. */
function parseBiofilm(text: string): number[] | undefined {
  const trimmed = text.trim()
  if (trimmed === '') return []
  if (/^[-+0-9.eE]+$/.test(trimmed)) return [Number(trimmed)]
  try {
    const list = JSON.parse(trimmed.replaceAll("'", '"')) as unknown
    return Array.isArray(list) && list.every((v) => typeof v === 'number' && Number.isFinite(v)) ? list : undefined
  } catch {
    return undefined
  }
}

/** Parses the original's CSV rows; returns readings and the count of unusable rows. */
export function parseOriginalCsv(text: string, timestamp: string, source: string): {rows: number; readings: (Reading | undefined)[]} {
  const lines = text.split(/\r?\n/).filter((l) => l.length > 0)
  const header = splitCsvLine(lines[0] ?? '')
  const at = (name: string) => header.indexOf(name)
  const columns = {
    t: at('time_hours'), c: at('reservoir_concentration'), o: at('outlet_concentration'), p: at('total_power'), b: at('biofilm_thicknesses'),
    a: at('substrate_addition_rate'), q: at('q_action'), e: at('epsilon'), r: at('reward'),
  }
  const readings = lines.slice(1).map((line) => {
    const f = splitCsvLine(line)
    const num = (i: number) => (i === -1 || f[i] === undefined || f[i] === '' ? Number.NaN : Number(f[i]))
    const values = [num(columns.t), num(columns.c), num(columns.o), num(columns.p)]
    const biofilm = columns.b === -1 ? [] : parseBiofilm(f[columns.b] ?? '')
    if (values.some((v) => !Number.isFinite(v)) || !biofilm) return undefined
    const optional = (i: number) => (Number.isFinite(num(i)) ? num(i) : null)
    return {
      timestamp, source, run_id: null, time_hours: values[0], reservoir_concentration: values[1], outlet_concentration: values[2],
      total_power: values[3], biofilm_thicknesses: biofilm, substrate_addition_rate: optional(columns.a) ?? 0, q_action: optional(columns.q),
      epsilon: optional(columns.e), reward: optional(columns.r), cell_voltages: null, cell_powers: null, cell_ph: null, cell_temperatures: null,
    } satisfies Reading
  })
  return {rows: readings.length, readings}
}

/**
 * Follows a directory of the original's `gui_simulation_data_*.csv.gz` files (directly inside
 * it or one subdirectory down, where the GUI writes them). The GUI rewrites each gzip file whole,
 * so a gzip cannot be tailed: on a size/mtime change the file is decompressed and only rows past
 * the stored offset are new. The offset (rows consumed) is committed in the same transaction as
 * the rows, so a crash or restart never streams a row twice nor skips one.
 */
export class CsvFollower {
  private timer: NodeJS.Timeout | undefined
  private readonly seen = new Map<string, string>()
  private scanning: Promise<number> | undefined

  constructor(
    private readonly dir: string,
    private readonly history: HistoryStore,
    private readonly published: (readings: Reading[]) => void,
    private readonly logger: Logger,
  ) {}

  start(intervalMs = 2000): void {
    this.timer ??= setInterval(() => void this.scan(), intervalMs)
    this.timer.unref()
    void this.scan()
  }

  /** One pass over the directory; returns how many new readings were stored. Never overlaps. */
  scan(): Promise<number> {
    this.scanning ??= this.scanOnce().finally(() => {
      this.scanning = undefined
    })
    return this.scanning
  }

  /** Forgets which files were read, so the next scan compares them with the stored offsets again. */
  forget(): void {
    this.seen.clear()
  }

  close(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  private async scanOnce(): Promise<number> {
    let stored = 0
    for (const file of await this.files()) {
      try {
        stored += await this.follow(file)
      } catch (error) {
        this.logger.warn({file, err: (error as Error).message}, 'cannot read a simulation data file; will retry')
      }
    }

    return stored
  }

  private async files(): Promise<string[]> {
    const found: string[] = []
    const entries = await fs.readdir(this.dir, {withFileTypes: true}).catch(() => [])
    for (const entry of entries) {
      if (entry.isFile() && FILE_RE.test(entry.name)) found.push(join(this.dir, entry.name))
      if (entry.isDirectory()) {
        const inner = await fs.readdir(join(this.dir, entry.name)).catch(() => [] as string[])
        for (const name of inner) if (FILE_RE.test(name)) found.push(join(this.dir, entry.name, name))
      }
    }

    return found.sort()
  }

  private async follow(file: string): Promise<number> {
    const stat = await fs.stat(file)
    const signature = `${stat.size}:${stat.mtimeMs}`
    if (this.seen.get(file) === signature) return 0
    const key = `follow:${relative(this.dir, file)}`
    const offset = Number(await this.history.getSetting(key) ?? 0)
    const text = (await gunzipAsync(await fs.readFile(file))).toString('utf8')
    const {rows, readings} = parseOriginalCsv(text, stat.mtime.toISOString(), `file:${basename(file)}`)
    this.seen.set(file, signature)
    if (rows <= offset) return 0
    // The row number tells the file's rows apart: they all carry the file's mtime.
    const numbered = readings.map((r, row) => ({r, row})).slice(offset).filter((x): x is {r: Reading; row: number} => x.r !== undefined)
    const fresh = numbered.map((x) => x.r)
    const skipped = rows - offset - fresh.length
    if (skipped > 0) this.logger.warn({file, skipped}, 'skipped unparseable rows')
    await this.history.insert(fresh, {setting: {key, value: String(rows)}, seqs: numbered.map((x) => x.row)})
    if (fresh.length > 0) this.published(fresh)
    return fresh.length
  }
}
