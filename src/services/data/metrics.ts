import type {AlertState} from './alerts.js'
import type {Reading} from './reading.js'
import type {SimulationStatus} from './simulation-runner.js'

/**
 * Counts HTTP responses by method, route pattern and status (bounded label sets). `record` runs
 * on every response: nested maps keyed by the strings and number it is given, so a request
 * that has been counted before allocates nothing (no key string built per request).
 */
export class RequestCounter {
  private readonly counts = new Map<string, Map<string, Map<number, number>>>()

  record(method: string, route: string | undefined, status: number): void {
    // Unmatched URLs share one label, so a scanner cannot blow up the series count.
    let routes = this.counts.get(method)
    if (routes === undefined) this.counts.set(method, routes = new Map())
    const label = route ?? 'unmatched'
    let statuses = routes.get(label)
    if (statuses === undefined) routes.set(label, statuses = new Map())
    statuses.set(status, (statuses.get(status) ?? 0) + 1)
  }

  entries(): {method: string; route: string; status: string; count: number}[] {
    const out: {method: string; route: string; status: string; count: number}[] = []
    for (const [method, routes] of this.counts) {
      for (const [route, statuses] of routes) for (const [status, count] of statuses) out.push({method, route, status: String(status), count})
    }

    return out
  }
}

/** Everything `/metrics` reports, gathered by the caller at scrape time. */
export interface MetricsSnapshot {
  /** The newest reading of each source; every reading gauge carries its `source` label. */
  latest: readonly Reading[]
  alerts: AlertState[]
  /** Per certificate lineage: its notAfter. */
  certificates: {name: string; notAfter: Date}[]
  requests: RequestCounter
  streamClients: number
  streamDropped: number
  historyReadings: number
  ingested: number
  /** The group commit's transactions so far and the batches (requests, messages, simulator steps) they held. */
  commits?: {commits: number; batches: number}
  simulation: SimulationStatus
  /** The MQTT subscription's counters, when one is configured. */
  mqtt?: {connected: boolean; messages: number; rejected: number; reconnects: number}
}

function escapeLabel(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('\n', String.raw`\n`).replaceAll('"', String.raw`\"`)
}

function labels(pairs: Record<string, string>): string {
  const entries = Object.entries(pairs)
  return entries.length === 0 ? '' : `{${entries.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(',')}}`
}

/** Builds the text exposition: one HELP and TYPE per metric, then its samples. */
export class TextBuilder {
  private readonly lines: string[] = []

  metric(name: string, type: 'gauge' | 'counter', help: string, samples: {labels?: Record<string, string>; value: number}[]): void {
    if (samples.length === 0) return
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    for (const s of samples) this.lines.push(`${name}${labels(s.labels ?? {})} ${formatNumber(s.value)}`)
  }

  text(): string {
    return this.lines.join('\n') + '\n'
  }
}

function formatNumber(value: number): string {
  if (Number.isNaN(value)) return 'NaN'
  if (!Number.isFinite(value)) return value > 0 ? '+Inf' : '-Inf'
  return String(value)
}

type Sample = {labels?: Record<string, string>; value: number}

function perCell(latest: readonly Reading[], pick: (r: Reading) => number[] | null): Sample[] {
  return latest.flatMap((r) => (pick(r) ?? []).map((value, i) => ({labels: {source: r.source, cell: String(i + 1)}, value})))
}

function perSource(latest: readonly Reading[], pick: (r: Reading) => number | null | undefined): Sample[] {
  return latest.flatMap((r) => {
    const value = pick(r)
    return value === null || value === undefined ? [] : [{labels: {source: r.source}, value}]
  })
}

function one(value: number | null | undefined): {value: number}[] {
  return value === null || value === undefined ? [] : [{value}]
}

/** Prometheus text exposition format 0.0.4. */
export function renderMetrics(s: MetricsSnapshot): string {
  const b = new TextBuilder()
  const r = s.latest
  b.metric('mfc_reading_timestamp_seconds', 'gauge', 'Time of the newest reading of each source (from the data).', perSource(r, (x) => Date.parse(x.timestamp) / 1000))
  // Base units, as Prometheus asks (promtool checks): 1 mM is exactly 1 mol/m³.
  b.metric('mfc_reservoir_concentration_moles_per_cubic_metre', 'gauge', 'Reservoir substrate concentration (mol/m³ = mM).', perSource(r, (x) => x.reservoir_concentration))
  b.metric('mfc_outlet_concentration_moles_per_cubic_metre', 'gauge', 'Outlet substrate concentration (mol/m³ = mM).', perSource(r, (x) => x.outlet_concentration))
  b.metric('mfc_total_power_watts', 'gauge', 'Total stack power (W).', perSource(r, (x) => x.total_power))
  b.metric('mfc_substrate_addition_rate_moles_per_second', 'gauge', 'Substrate addition rate chosen by the controller (mol/s).', perSource(r, (x) => x.substrate_addition_rate / 3.6e6))
  b.metric('mfc_q_action', 'gauge', 'Last Q-learning action (0-9).', perSource(r, (x) => x.q_action))
  b.metric('mfc_epsilon', 'gauge', 'Q-learning exploration rate.', perSource(r, (x) => x.epsilon))
  b.metric('mfc_reward', 'gauge', 'Last Q-learning reward.', perSource(r, (x) => x.reward))
  b.metric('mfc_cell_biofilm_thickness_metres', 'gauge', 'Biofilm thickness per cell (m).', perCell(r, (x) => x.biofilm_thicknesses?.map((um) => um * 1e-6) ?? null))
  b.metric('mfc_cell_voltage_volts', 'gauge', 'Terminal voltage per cell (V).', perCell(r, (x) => x.cell_voltages))
  b.metric('mfc_cell_power_watts', 'gauge', 'Power per cell (W).', perCell(r, (x) => x.cell_powers))
  b.metric('mfc_cell_ph', 'gauge', 'pH per cell.', perCell(r, (x) => x.cell_ph))
  b.metric('mfc_cell_temperature_celsius', 'gauge', 'Temperature per cell (°C).', perCell(r, (x) => x.cell_temperatures))
  b.metric('mfc_alert_active', 'gauge', '1 while the parameter is outside its threshold.', s.alerts.map((a) => ({labels: {source: a.source, parameter: a.parameter}, value: a.active ? 1 : 0})))
  b.metric('mfc_alert_episodes_total', 'counter', 'Alert episodes raised since start.', s.alerts.map((a) => ({labels: {source: a.source, parameter: a.parameter}, value: a.episodes})))
  b.metric('mfc_certificate_expiry_timestamp_seconds', 'gauge', 'notAfter of each served certificate.', s.certificates.map((c) => ({labels: {name: c.name}, value: Math.floor(c.notAfter.getTime() / 1000)})))
  b.metric('mfc_http_requests_total', 'counter', 'HTTP responses by method, route and status.', s.requests.entries().map((e) => ({labels: {method: e.method, route: e.route, status: e.status}, value: e.count})))
  b.metric('mfc_stream_clients', 'gauge', 'Connected WSS stream clients.', [{value: s.streamClients}])
  b.metric('mfc_stream_messages_dropped_total', 'counter', 'Stream messages dropped for slow clients.', [{value: s.streamDropped}])
  b.metric('mfc_history_readings', 'gauge', 'Readings in the history database.', [{value: s.historyReadings}])
  b.metric('mfc_ingested_readings_total', 'counter', 'Readings stored from rigs (HTTP and MQTT ingest) since start.', [{value: s.ingested}])
  if (s.commits) {
    b.metric('mfc_history_commits_total', 'counter', 'Group-commit transactions written since start (each one fsync).', [{value: s.commits.commits}])
    b.metric('mfc_history_commit_batches_total', 'counter', 'Batches (ingest requests, MQTT messages, simulator steps) those transactions held.', [{value: s.commits.batches}])
  }
  if (s.mqtt) {
    b.metric('mfc_mqtt_connected', 'gauge', '1 while the MQTT subscription is connected.', [{value: s.mqtt.connected ? 1 : 0}])
    b.metric('mfc_mqtt_messages_total', 'counter', 'MQTT messages stored and acknowledged.', [{value: s.mqtt.messages}])
    b.metric('mfc_mqtt_rejected_messages_total', 'counter', 'MQTT messages with a bad topic or payload (logged, acknowledged, not stored).', [{value: s.mqtt.rejected}])
    b.metric('mfc_mqtt_reconnects_total', 'counter', 'MQTT reconnect attempts.', [{value: s.mqtt.reconnects}])
  }
  b.metric('mfc_simulation_running', 'gauge', '1 while a simulation runs.', [{value: s.simulation.is_running ? 1 : 0}])
  b.metric('mfc_simulation_progress_ratio', 'gauge', 'Progress of the current or last simulation (0-1).', one(s.simulation.progress_percent === null ? null : s.simulation.progress_percent / 100))
  return b.text()
}
