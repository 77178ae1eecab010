import uPlot from 'uplot'

import {api} from './api.js'
import {formatSi} from './format.js'

/** A visible time range, ms since 1970, both ends inclusive. */
export interface Range {
  from: number
  to: number
}

interface HistoryResponse {
  bucket_ms: number
  buckets: {t: number; n: number; values: Record<string, [number, number, number] | null>}[]
}

interface StoredReading {
  timestamp: string
  reservoir_concentration?: number | null
  outlet_concentration?: number | null
  total_power?: number | null
  cell_voltages?: number[] | null
}

/**
 * A view holding at most this many readings is drawn as stored (full resolution: one point per
 * reading, from /data/range) instead of as buckets; an hour of 1 Hz data is 3,600.
 */
const RAW_LIMIT = 10_000

interface FieldSpec {
  id: string
  field: string
  color: string
  unit?: string
  raw: (r: StoredReading) => number | null
}

const FIELDS: FieldSpec[] = [
  {id: 'hist-reservoir', field: 'reservoir_concentration', color: '31,119,180', raw: (r) => r.reservoir_concentration ?? null},
  {id: 'hist-outlet', field: 'outlet_concentration', color: '214,39,40', raw: (r) => r.outlet_concentration ?? null},
  {id: 'hist-power', field: 'total_power', color: '255,127,14', unit: 'W', raw: (r) => r.total_power ?? null},
  {id: 'hist-voltage', field: 'cell_voltage_mean', color: '148,103,189',
    raw: (r) => (r.cell_voltages && r.cell_voltages.length > 0 ? r.cell_voltages.reduce((a, b) => a + b, 0) / r.cell_voltages.length : null)},
]

type Columns = [number[], (number | null)[], (number | null)[], (number | null)[]]

/**
 * The monitor's history view: per channel, the mean of each bucket as a line over a min–max band
 * (the band shows the spikes a mean alone would hide), for one source and one range. Each chart's
 * host carries what it draws (data-series: [t s, min, max, mean] columns) so the browser tests can
 * compare it with the database. A drag-select on any chart calls `onZoom` with the selected range.
 */
export class HistoryCharts {
  private readonly plots = new Map<string, uPlot>()
  private request = 0
  private range: Range = {from: 0, to: 1}

  constructor(private readonly root: Document, private readonly onZoom: (range: Range) => void) {}

  /** Loads and draws `range` of `source`; a newer call supersedes a pending one. Throws ApiError. */
  async load(source: string, range: Range): Promise<void> {
    const request = ++this.request
    const box = this.root.getElementById('history-charts')!
    box.dataset.state = 'loading'
    const query = `source=${encodeURIComponent(source)}&from=${Math.round(range.from)}&to=${Math.round(range.to)}`
    const width = this.width()
    const history = await api<HistoryResponse>(`/data/history?${query}&buckets=${Math.min(2000, Math.max(100, Math.round(width)))}`)
    if (request !== this.request) return
    const total = history.buckets.reduce((n, b) => n + b.n, 0)
    let resolution = 'buckets'
    let columns: Map<string, Columns>
    if (total > 0 && total <= RAW_LIMIT && history.bucket_ms > 1000) {
      const readings = await api<StoredReading[]>(`/data/range?${query}&limit=${RAW_LIMIT}`)
      if (request !== this.request) return
      resolution = 'raw'
      const t = readings.map((r) => Date.parse(r.timestamp) / 1000)
      columns = new Map(FIELDS.map((f) => {
        const v = readings.map((r) => f.raw(r))
        return [f.id, [t, v, v, v]]
      }))
    } else {
      const t = history.buckets.map((b) => b.t / 1000)
      columns = new Map(FIELDS.map((f) => [f.id, [t, ...([0, 1, 2].map((k) => history.buckets.map((b) => b.values[f.field]?.[k] ?? null)))] as Columns]))
    }

    this.range = range
    for (const spec of FIELDS) this.draw(spec, columns.get(spec.id)!, width)
    Object.assign(box.dataset, {state: 'ready', source, from: String(Math.round(range.from)), to: String(Math.round(range.to)), resolution,
      bucketMs: resolution === 'raw' ? '' : String(history.bucket_ms), points: String(columns.get(FIELDS[0].id)![0].length)})
  }

  private width(): number {
    const host = this.root.getElementById(FIELDS[0].id)!
    return Math.max(300, host.clientWidth - 32)
  }

  private draw(spec: FieldSpec, columns: Columns, width: number): void {
    const host = this.root.getElementById(spec.id)!
    let plot = this.plots.get(spec.id)
    if (!plot) {
      const format = (v: number | null) => (v === null ? '–' : spec.unit ? formatSi(v, spec.unit) : v.toFixed(3))
      const edge = {stroke: `rgba(${spec.color},0.35)`, width: 1, value: (_u: uPlot, v: number | null) => format(v)}
      plot = new uPlot({
        width, height: 220,
        series: [{}, {label: 'min', ...edge}, {label: 'max', ...edge}, {label: 'mean', stroke: `rgb(${spec.color})`, width: 2, value: (_u, v) => format(v)}],
        bands: [{series: [2, 1], fill: `rgba(${spec.color},0.15)`}],
        scales: {x: {time: true, range: () => [this.range.from / 1000, this.range.to / 1000]}},
        axes: [{}, spec.unit ? {size: 70, values: (_u, ticks) => ticks.map((v) => formatSi(v, spec.unit!))} : {}],
        cursor: {drag: {x: true, y: false, setScale: false}},
        hooks: {setSelect: [(u) => this.selected(u)]},
        legend: {live: false},
      }, [[], [], [], []], host)
      this.plots.set(spec.id, plot)
    } else if (Math.abs(plot.width - width) > 4) {
      plot.setSize({width, height: 220})
    }

    plot.setData(columns as uPlot.AlignedData)
    host.dataset.points = String(columns[0].length)
    host.dataset.series = JSON.stringify(columns)
  }

  private selected(u: uPlot): void {
    const {left, width} = u.select
    if (width < 3) return
    const from = u.posToVal(left, 'x') * 1000
    const to = u.posToVal(left + width, 'x') * 1000
    u.setSelect({left: 0, top: 0, width: 0, height: 0}, false)
    if (to - from >= 1000) this.onZoom({from: Math.round(from), to: Math.round(to)})
  }
}
