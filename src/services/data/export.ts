import type {Clock} from '../../lib/clock.js'
import type {HistoryStore, RangeQuery} from './history.js'
import type {Reading} from './reading.js'

export const EXPORT_FORMATS = ['csv', 'json'] as const
export type ExportFormat = (typeof EXPORT_FORMATS)[number]

const COLUMNS: (keyof Reading)[] = [
  'timestamp', 'source', 'run_id', 'time_hours', 'reservoir_concentration', 'outlet_concentration', 'total_power',
  'biofilm_thicknesses', 'substrate_addition_rate', 'q_action', 'epsilon', 'reward',
  'cell_voltages', 'cell_powers', 'cell_ph', 'cell_temperatures',
]

/** The original's download name, `mfc_simulation_data_<YYYYmmdd_HHMMSS>.<ext>`, with a real extension. */
export function exportFileName(format: ExportFormat, clock: Clock): string {
  const stamp = clock.now().toISOString().replaceAll(/[-:]/g, '').replace('T', '_').slice(0, 15)
  return `mfc_simulation_data_${stamp}.${format}`
}

export const CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  json: 'application/json; charset=utf-8',
}

/**
 * One CSV cell. A text cell a spreadsheet would run as a formula (starting with = + - @, tab
 * or CR: OWASP's "CSV injection") gets a leading `'`; numbers, negative ones included, stay
 * numbers.
 */
function csvField(value: unknown): string {
  if (value === null || value === undefined) return ''
  let text = Array.isArray(value) ? `[${value.join(', ')}]` : typeof value === 'object' ? JSON.stringify(value) : String(value as string | number | boolean)
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`
  return /[",\n\r]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/**
 * The export as text chunks, one per history page: no temp file, memory bounded by the page
 * size. CSV keeps the original's column names (per-cell lists as "[1.0, 2.0]"); JSON is one
 * array of records, written incrementally.
 */
export async function* exportChunks(history: HistoryStore, format: ExportFormat, query: Omit<RangeQuery, 'limit'> = {}): AsyncGenerator<string> {
  let first = true
  if (format === 'csv') yield COLUMNS.join(',') + '\n'
  else yield '['
  for await (const page of history.pages(query)) {
    if (format === 'csv') {
      yield page.map((r) => COLUMNS.map((c) => csvField(r[c])).join(',')).join('\n') + '\n'
    } else {
      yield page.map((r) => {
        const text = (first ? '\n' : ',\n') + JSON.stringify(r)
        first = false
        return text
      }).join('')
    }
  }

  if (format === 'json') yield first ? ']\n' : '\n]\n'
}
