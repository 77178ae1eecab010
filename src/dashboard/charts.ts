import uPlot from 'uplot'

import {formatSi} from './format.js'

/** The fields of a stream point the dashboard draws (see the server's Reading). */
export interface Point {
  timestamp: string
  time_hours: number
  reservoir_concentration?: number
  outlet_concentration?: number
  total_power?: number
  biofilm_thicknesses?: number[]
  q_action?: number | null
  cell_voltages?: number[] | null
  cell_ph?: number[] | null
  cell_temperatures?: number[] | null
}

const MAX_POINTS = 600
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf']

function mean(values: number[] | null | undefined): number | null {
  return values && values.length > 0 ? values.reduce((a, b) => a + b, 0) / values.length : null
}

interface ChartSpec {
  id: string
  series: () => uPlot.Series[]
  values: (p: Point) => (number | null)[]
  scales?: uPlot.Scales
  axes?: uPlot.Axis[]
}

/** One uPlot chart fed from a rolling window of points; rebuilt when its series count changes. */
class LiveChart {
  private plot: uPlot | undefined
  private width = 0
  private seriesCount = -1

  constructor(private readonly spec: ChartSpec, private readonly host: HTMLElement) {}

  render(points: Point[], visible: boolean): void {
    if (!visible) return
    const columns: (number | null)[][] = [points.map((p) => Date.parse(p.timestamp) / 1000)]
    const rows = points.map((p) => this.spec.values(p))
    const count = rows.reduce((n, r) => Math.max(n, r.length), 0)
    for (let i = 0; i < count; i++) columns.push(rows.map((r) => r[i] ?? null))
    const width = Math.max(300, this.host.clientWidth - 32)
    if (!this.plot || count !== this.seriesCount) this.build(count, width)
    else if (Math.abs(width - this.width) > 4) {
      this.width = width
      this.plot.setSize({width, height: 220})
    }

    this.plot!.setData(columns as uPlot.AlignedData)
    this.host.dataset.points = String(points.length)
    // What the first series spans: lets a reader (and the browser tests) see which data is drawn.
    const first = (columns[1] ?? []).filter((v): v is number => v !== null)
    this.host.dataset.ymin = first.length > 0 ? String(Math.min(...first)) : ''
    this.host.dataset.ymax = first.length > 0 ? String(Math.max(...first)) : ''
  }

  private build(count: number, width: number): void {
    this.plot?.destroy()
    this.seriesCount = count
    this.width = width
    const base = this.spec.series()
    const series: uPlot.Series[] = [{}]
    for (let i = 0; i < count; i++) series.push(base[i] ?? {label: `Cell ${i + 1}`, stroke: COLORS[i % COLORS.length], width: 1.5})
    this.plot = new uPlot({width, height: 220, series, scales: this.spec.scales, axes: this.spec.axes, legend: {live: false}}, [[]], this.host)
  }
}

/** The monitor's charts: the original's 2×2 plus per-cell voltage and environment. */
export class MonitorCharts {
  private readonly points: Point[] = []
  private readonly charts: LiveChart[]
  target = 25

  constructor(root: Document) {
    const chart = (spec: ChartSpec) => new LiveChart(spec, root.getElementById(spec.id)!)
    this.charts = [
      chart({id: 'chart-substrate', series: () => [
        {label: 'Reservoir', stroke: '#1f77b4', width: 2},
        {label: 'Outlet', stroke: '#d62728', width: 2},
        {label: 'Target', stroke: '#2ca02c', dash: [6, 4], width: 1},
      ], values: (p) => [p.reservoir_concentration ?? null, p.outlet_concentration ?? null, this.target]}),
      chart({id: 'chart-power', series: () => [{label: 'Total power', stroke: '#ff7f0e', width: 2, value: (_u, v) => formatSi(v, 'W')}], values: (p) => [p.total_power ?? null],
        axes: [{}, {size: 70, values: (_u, ticks) => ticks.map((v) => formatSi(v, 'W'))}]}),
      chart({id: 'chart-actions', series: () => [{label: 'Action', stroke: '#9467bd', paths: () => null, points: {show: true, size: 4}}], values: (p) => [p.q_action ?? null], scales: {y: {range: [0, 9]}}}),
      chart({id: 'chart-biofilm', series: () => [{label: 'Mean biofilm (μm)', stroke: '#8c564b', width: 2}], values: (p) => [mean(p.biofilm_thicknesses)]}),
      chart({id: 'chart-voltage', series: () => [], values: (p) => p.cell_voltages ?? []}),
      chart({
        id: 'chart-env',
        series: () => [{label: 'pH', stroke: '#17becf', width: 2, scale: 'ph'}, {label: 'Temperature (°C)', stroke: '#d62728', width: 2, scale: 'c'}],
        values: (p) => [mean(p.cell_ph), mean(p.cell_temperatures)],
        axes: [{}, {scale: 'ph', label: 'pH'}, {scale: 'c', side: 1, label: '°C', grid: {show: false}}],
      }),
    ]
  }

  get size(): number {
    return this.points.length
  }

  get latest(): Point | undefined {
    return this.points.at(-1)
  }

  reset(points: Point[]): void {
    this.points.splice(0, this.points.length, ...points.slice(-MAX_POINTS))
  }

  add(points: Point[]): void {
    this.points.push(...points)
    if (this.points.length > MAX_POINTS) this.points.splice(0, this.points.length - MAX_POINTS)
  }

  render(visible: boolean): void {
    for (const chart of this.charts) chart.render(this.points, visible)
  }
}
