import {ApiError, Unauthorized, api, setCsrf} from './api.js'
import {MonitorCharts, type Point} from './charts.js'
import {cell, icon, inputCell, withIcon} from './dom.js'
import {formatAgo, formatSi, UNITS} from './format.js'
import {HistoryCharts, type Range} from './history.js'
import {SourceThresholds} from './source-thresholds.js'
import {LiveStream} from './stream.js'

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T

interface Status {is_running: boolean; state: string; progress_percent: number | null; current_time_hours: number | null; duration_hours: number | null; speed: number | null; config: {target_concentration: number} | null}
interface Threshold {parameter: string; threshold_min: number | null; threshold_max: number | null; enabled: boolean; email_notify: boolean}
interface AlertState {source: string; parameter: string; active: boolean; value: number | null; unit?: string; message: string | null}
interface SourceView {name: string; cells: number | null; description: string | null; location: string | null; state: string; silent_s: number | null; readings: number; latest: Point | null; alerts: AlertState[]}
interface Info {stream: {port: number | null; url: string | null; clients: number}; history: {readings: number; retention_days: number}; certificates: {name: string; days_left: number; not_after: string}[]}
interface Health {status: string; certificate: {days_left: number; not_after: string} | null; services: Record<string, string>}

let currentTab = 'control'
let stream: LiveStream | undefined
let streamState = 'connecting'
let charts: MonitorCharts
let historyCharts: HistoryCharts
let sourceThresholds: SourceThresholds
/** The range the monitor's history view shows; undefined while it streams live points. */
let viewRange: Range | undefined
let renderQueued = false
const activeAlerts = new Map<string, AlertState>()
/** The source the monitor tab draws; its charts hold only this source's points. */
let selectedSource: string | undefined
let knownSources: SourceView[] = []
const alertKey = (a: AlertState) => `${a.source}\u0000${a.parameter}`
/** Alert events that arrived while a snapshot of the active alerts was on its way (see resyncAlerts). */
let alertEventsDuringSync: AlertState[] | undefined

function applyAlert(alert: AlertState): void {
  if (alert.active) activeAlerts.set(alertKey(alert), alert)
  else activeAlerts.delete(alertKey(alert))
}

function showAlerts(): void {
  renderAlerts()
  sourceThresholds.renderStates([...activeAlerts.values()])
}

/**
 * Replaces the page's alert list with the server's active alerts on every stream (re)connection,
 * so raises and clears missed while the stream was down show. Events that arrive while the
 * snapshot is on its way may be newer than it: they are applied again, in order, on top of it.
 */
async function resyncAlerts(): Promise<void> {
  const pending: AlertState[] = []
  alertEventsDuringSync = pending
  try {
    const config = await api<{active: AlertState[]}>('/alerts/config')
    if (alertEventsDuringSync !== pending) return
    activeAlerts.clear()
    for (const alert of [...config.active, ...pending]) applyAlert(alert)
    showAlerts()
  } catch (error) {
    if (error instanceof Unauthorized) showLogin()
  } finally {
    if (alertEventsDuringSync === pending) alertEventsDuringSync = undefined
  }
}

function text(id: string, value: string): void {
  $(id).textContent = value
}

function fmt(value: number | null | undefined, digits: number, unit = ''): string {
  return value === null || value === undefined || !Number.isFinite(value) ? '–' : `${value.toFixed(digits)}${unit}`
}

function showError(id: string, error: unknown): void {
  if (error instanceof Unauthorized) return showLogin()
  const el = $(id)
  el.hidden = false
  el.textContent = error instanceof Error ? error.message : String(error)
}

/** The session ended (expired, logged out, or serve restarted): serve's own login page. */
function showLogin(): void {
  stream?.stop()
  location.assign('/login')
}

function switchTab(tab: string): void {
  currentTab = tab
  for (const button of document.querySelectorAll<HTMLButtonElement>('.tabs button')) button.classList.toggle('active', button.dataset.tab === tab)
  for (const section of document.querySelectorAll<HTMLElement>('.tab')) section.hidden = section.id !== `tab-${tab}`
  if (tab === 'monitor') scheduleRender()
  if (tab === 'sources') void loadSources()
  if (tab === 'performance') void loadPerformance()
  if (tab === 'config') void loadConfig()
}

function scheduleRender(): void {
  if (renderQueued) return
  renderQueued = true
  requestAnimationFrame(() => {
    renderQueued = false
    renderMonitor()
  })
}

function renderMonitor(): void {
  const p = charts.latest
  text('m-points', String(charts.size))
  text('m-time', fmt(p?.time_hours, 1, ' h'))
  text('m-conc', fmt(p?.reservoir_concentration, 2, ' mM'))
  text('m-conc-delta', p?.reservoir_concentration === undefined ? '' : `${p.reservoir_concentration - charts.target >= 0 ? '+' : ''}${(p.reservoir_concentration - charts.target).toFixed(2)} vs target`)
  text('m-power', formatSi(p?.total_power, UNITS.total_power))
  text('m-action', p?.q_action === null || p?.q_action === undefined ? '–' : String(p.q_action))
  charts.render(currentTab === 'monitor' && !viewRange)
}

function renderAlerts(): void {
  const active = [...activeAlerts.values()]
  const bar = $('alerts-bar')
  bar.hidden = active.length === 0
  bar.replaceChildren(...active.flatMap((a, i) => [...(i > 0 ? [document.createTextNode('  ·  ')] : []), icon('warn'), document.createTextNode(` ${a.message ?? `${a.source}: ${a.parameter}`}`)]))
}

function onStreamMessage(message: {type: string; [key: string]: unknown}): void {
  switch (message.type) {
    case 'initial_data': {
      void resyncAlerts()
      void selectSource(selectedSource)
      break
    }

    case 'data_update': {
      const points = message.data as (Point & {source: string})[]
      if (points.some((p) => !knownSources.some((s) => s.name === p.source))) void refreshSources()
      if (selectedSource === undefined && points[0]) {
        selectedSource = points[0].source
        void sourceThresholds.load(selectedSource)
      }

      charts.add(points.filter((p) => p.source === selectedSource))
      scheduleRender()
      break
    }

    case 'alert_raised':
    case 'alert_cleared': {
      const alert = message.alert as AlertState
      alertEventsDuringSync?.push(alert)
      applyAlert(alert)
      showAlerts()
      break
    }
  }
}

function onStreamState(state: string, retryInMs?: number): void {
  if (state === 'session-ended') return showLogin()
  streamState = state
  const conn = $('conn')
  conn.className = `pill ${state === 'open' ? 'pill-on' : 'pill-off'}`
  conn.textContent = `stream: ${state === 'open' ? 'live' : state}`
  $('banner').hidden = state !== 'closed'
  if (state !== 'closed') return
  text('banner', `Disconnected from the live stream — reconnecting in ${Math.round((retryInMs ?? 0) / 1000)} s…`)
  // A restarted serve has forgotten the session: the stream would refuse every retry.
  api('/session').catch((error: unknown) => {
    if (error instanceof Unauthorized) showLogin()
  })
}

function formConfig(form: HTMLFormElement): Record<string, unknown> {
  const value = (name: string) => Number((form.elements.namedItem(name) as HTMLInputElement).value)
  const pretrained = (form.elements.namedItem('use_pretrained') as HTMLInputElement).checked
  const config: Record<string, unknown> = {
    duration_hours: value('duration_hours'), n_cells: value('n_cells'), electrode_area_m2: value('electrode_area_cm2') * 1e-4,
    target_concentration: value('target_concentration'), use_pretrained: pretrained, speed: value('speed'),
  }
  if (!pretrained) Object.assign(config, {learning_rate: value('learning_rate'), epsilon_initial: value('epsilon_initial'), discount_factor: value('discount_factor')})
  return config
}

async function refreshStatus(): Promise<void> {
  try {
    const status = await api<Status>('/simulation/status')
    if (status.config) charts.target = status.config.target_concentration
    const state = $('sim-state')
    state.className = status.is_running ? 'state-running' : 'state-stopped'
    withIcon(state, 'dot', status.is_running ? 'Simulation Running' : `Simulation Stopped${status.state === 'completed' ? ' (completed)' : ''}`)
    $('sim-bar').style.width = `${status.progress_percent ?? 0}%`
    text('sim-detail', status.duration_hours === null ? 'No simulation has run yet.'
      : `${fmt(status.current_time_hours, 1)} of ${status.duration_hours} h (${fmt(status.progress_percent, 1)} %) at ${status.speed} sim-h/s`)
  } catch (error) {
    showError('sim-error', error)
  }
}

async function startSimulation(event: Event): Promise<void> {
  event.preventDefault()
  $('sim-error').hidden = true
  try {
    await api('/simulation/start', {method: 'POST', body: formConfig(event.target as HTMLFormElement)})
  } catch (error) {
    showError('sim-error', error)
  }

  await refreshStatus()
}

async function stopSimulation(): Promise<void> {
  $('sim-error').hidden = true
  try {
    await api('/simulation/stop', {method: 'POST'})
  } catch (error) {
    showError('sim-error', error)
  }

  await refreshStatus()
}

async function loadPerformance(): Promise<void> {
  const box = $('perf')
  try {
    const m = await api<Record<string, number | null>>('/metrics/performance')
    $('perf-empty').hidden = true
    const cards: [string, string][] = [
      ['Final Concentration', fmt(m.final_reservoir_concentration, 2, ' mM')],
      ['Control Effectiveness (±2 mM)', fmt(m.control_effectiveness_2mM, 1, ' %')],
      ['Control Effectiveness (±5 mM)', fmt(m.control_effectiveness_5mM, 1, ' %')],
      ['Mean Power', formatSi(m.mean_power, UNITS.total_power)],
      ['Substrate Added', fmt(m.total_substrate_added, 2, ' mmol')],
      ['Mean Deviation', fmt(m.mean_deviation, 2, ' mM')],
      ['Stability (CV)', fmt(m.stability_coefficient_variation, 2, ' %')],
      ['Steps', String(m.steps ?? '–')],
    ]
    box.replaceChildren(...cards.map(([label, value]) => {
      const card = document.createElement('div')
      card.className = 'metric'
      const span = document.createElement('span')
      span.textContent = label
      const b = document.createElement('b')
      b.textContent = value
      card.append(span, b)
      return card
    }))
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin()
    box.replaceChildren()
    $('perf-empty').hidden = false
  }
}

async function loadConfig(): Promise<void> {
  try {
    const [health, info, config] = await Promise.all([
      fetch('/health').then(async (r) => r.json() as Promise<Health>),
      api<Info>('/dashboard/info'),
      api<{alerts: Threshold[]; active: AlertState[]}>('/alerts/config'),
    ])
    const cert = health.certificate ?? (info.certificates[0] ? {days_left: info.certificates[0].days_left, not_after: info.certificates[0].not_after} : null)
    withIcon($('ssl-status'), cert ? 'lock' : 'warn', cert ? `HTTPS enabled — certificate valid until ${cert.not_after.slice(0, 10)} (${cert.days_left} days left)` : 'No certificate information')
    const rows = config.alerts.map((t) => {
      const tr = document.createElement('tr')
      tr.dataset.parameter = t.parameter
      const name = document.createElement('td')
      name.textContent = t.parameter
      const state = document.createElement('td')
      const active = config.active.filter((a) => a.parameter === t.parameter)
      state.className = active.length > 0 ? 'alert-on' : 'alert-off'
      // The real value with its unit and prefix, per source ("rig-1 30.1 μW"), never "0.000".
      state.textContent = active.length > 0 ? `ALERT ${active.map((a) => `${a.source} ${formatSi(a.value, a.unit ?? UNITS[a.parameter] ?? '')}`).join(', ')}` : 'ok'
      tr.append(name, inputCell('number', 'threshold_min', t.threshold_min), inputCell('number', 'threshold_max', t.threshold_max), inputCell('checkbox', 'enabled', t.enabled), inputCell('checkbox', 'email_notify', t.email_notify), state)
      return tr
    })
    $('thresholds').replaceChildren(...rows)
    const services: [boolean, string][] = Object.entries(health.services ?? {}).map(([name, state]) => [state === 'running', `${name}: ${state}`])
    services.push([streamState === 'open', `live stream (this browser): ${streamState}, ${info.stream.clients} client(s) connected`])
    $('services').replaceChildren(...services.map(([ok, line]) => {
      const li = document.createElement('li')
      li.className = ok ? 'ok' : 'fail'
      withIcon(li, 'dot', line)
      return li
    }))
    text('history-info', `History: ${info.history.readings} readings kept for ${info.history.retention_days || '∞'} days.`)
  } catch (error) {
    if (error instanceof Unauthorized) showLogin()
    else text('alerts-msg', `Cannot load the configuration: ${(error as Error).message}`)
  }
}

async function saveThresholds(): Promise<void> {
  const alerts = [...document.querySelectorAll<HTMLTableRowElement>('#thresholds tr')].map((tr) => {
    const input = (name: string) => tr.querySelector<HTMLInputElement>(`input[name=${name}]`)!
    const num = (name: string) => (input(name).value.trim() === '' ? null : Number(input(name).value))
    return {parameter: tr.dataset.parameter, threshold_min: num('threshold_min'), threshold_max: num('threshold_max'), enabled: input('enabled').checked, email_notify: input('email_notify').checked}
  })
  try {
    const result = await api<{message: string}>('/alerts/config', {method: 'POST', body: alerts})
    $('alerts-msg').className = 'ok'
    withIcon($('alerts-msg'), 'save', result.message)
    await loadConfig()
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin()
    $('alerts-msg').className = 'fail'
    withIcon($('alerts-msg'), 'warn', error instanceof ApiError ? error.message : String(error))
  }
}

/** The overview: every source with its state, last seen, latest values and alerts. */
async function loadSources(): Promise<void> {
  try {
    const {sources, stale_after_s: stale, offline_after_s: offline} = await api<{sources: SourceView[]; stale_after_s: number; offline_after_s: number}>('/sources')
    knownSources = sources
    renderSourceSelect()
    $('overview').replaceChildren(...sources.map((s) => {
      const tr = document.createElement('tr')
      tr.dataset.source = s.name
      tr.dataset.state = s.state
      const name = cell(s.name)
      if (s.description || s.location) name.title = [s.description, s.location].filter(Boolean).join(' — ')
      const state = cell('', `state-${s.state}`)
      withIcon(state, 'dot', s.state)
      const active = s.alerts.filter((a) => a.active)
      const alerts = cell(active.length === 0 ? 'none' : active.map((a) => a.parameter === 'no_data' ? 'no data' : `${a.parameter} ${formatSi(a.value, a.unit ?? UNITS[a.parameter] ?? '')}`).join(', '), active.length > 0 ? 'alert-on' : 'alert-off')
      const open = document.createElement('td')
      const button = document.createElement('button')
      button.type = 'button'
      withIcon(button, 'chart', 'Monitor')
      button.addEventListener('click', () => {
        void selectSource(s.name)
        switchTab('monitor')
      })
      open.append(button)
      tr.append(name, state, cell(formatAgo(s.silent_s)), cell(formatSi(s.latest?.total_power, UNITS.total_power)), cell(formatSi(s.latest?.reservoir_concentration, UNITS.reservoir_concentration)), cell(String(s.cells ?? '–')), alerts, open)
      return tr
    }))
    text('overview-note', `Stale after ${stale} s of silence, offline (with a "no data" alert) after ${offline} s.`)
  } catch (error) {
    if (error instanceof Unauthorized) showLogin()
  }
}

async function refreshSources(): Promise<void> {
  knownSources = (await api<{sources: SourceView[]}>('/sources')).sources
  renderSourceSelect()
}

function renderSourceSelect(): void {
  const select = $<HTMLSelectElement>('source')
  const names = knownSources.map((s) => s.name)
  if ([...select.options].map((o) => o.value).join('\u0000') !== names.join('\u0000')) {
    select.replaceChildren(...names.map((name) => new Option(name, name)))
  }

  if (selectedSource) select.value = selectedSource
}

/** Draws one source: its newest points from the history, then its stream updates only. */
async function selectSource(name: string | undefined): Promise<void> {
  if (knownSources.length === 0) await refreshSources()
  selectedSource = name ?? (knownSources.some((s) => s.name === 'simulator' && s.readings > 0) ? 'simulator' : knownSources.find((s) => s.readings > 0)?.name)
  renderSourceSelect()
  void sourceThresholds.load(selectedSource)
  if (!selectedSource) return charts.reset([])
  const wanted = selectedSource
  const points = await api<Point[]>(`/data/latest?limit=600&source=${encodeURIComponent(wanted)}`)
  if (wanted !== selectedSource) return
  charts.reset(points)
  scheduleRender()
  if (viewRange) await loadHistory()
}

/** A datetime-local input's value (local time, to the second) for ms since 1970. */
function localInput(ms: number): string {
  return new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 19)
}

/** Shows `range` of the selected source from the history, or (undefined) goes back to live points. */
function setView(range: Range | undefined): void {
  viewRange = range && {from: Math.round(range.from), to: Math.round(range.to)}
  $('history-charts').hidden = !viewRange
  $('live-charts').hidden = Boolean(viewRange)
  $('history-nav').hidden = !viewRange
  $('range-error').hidden = true
  if (!viewRange) {
    void selectSource(selectedSource)
    return
  }

  $<HTMLInputElement>('range-from').value = localInput(viewRange.from)
  $<HTMLInputElement>('range-to').value = localInput(viewRange.to)
  void loadHistory()
}

async function loadHistory(): Promise<void> {
  const range = viewRange
  if (!range || !selectedSource) return
  const iso = (ms: number) => new Date(ms).toISOString()
  $<HTMLAnchorElement>('export-range').href = `/data/export/csv?source=${encodeURIComponent(selectedSource)}&from=${iso(range.from)}&to=${iso(range.to)}`
  text('range-label', `${new Date(range.from).toLocaleString()} – ${new Date(range.to).toLocaleString()}`)
  try {
    await historyCharts.load(selectedSource, range)
  } catch (error) {
    showError('range-error', error)
  }
}

function chooseRange(): void {
  const value = $<HTMLSelectElement>('range').value
  $('custom-range').hidden = value !== 'custom'
  if (value === 'live') return setView(undefined)
  if (value === 'custom') return setView(viewRange ?? {from: Date.now() - 3_600_000, to: Date.now()})
  const to = Date.now()
  setView({from: to - Number(value), to})
}

function applyCustomRange(): void {
  const from = new Date($<HTMLInputElement>('range-from').value).getTime()
  const to = new Date($<HTMLInputElement>('range-to').value).getTime()
  if (!Number.isFinite(from) || !Number.isFinite(to) || to <= from) {
    showError('range-error', new Error('Custom range: enter both "From" and "To", with "To" after "From".'))
    return
  }

  setView({from, to})
}

/** A zoom (drag-select) or pan: the range becomes a custom one, re-queried at its own resolution. */
function moveView(range: Range): void {
  $<HTMLSelectElement>('range').value = 'custom'
  $('custom-range').hidden = false
  setView(range)
}

function pan(direction: number): void {
  if (!viewRange) return
  const shift = Math.round((viewRange.to - viewRange.from) / 2) * direction
  moveView({from: viewRange.from + shift, to: viewRange.to + shift})
}

function zoomOut(): void {
  if (!viewRange) return
  const half = viewRange.to - viewRange.from
  const mid = (viewRange.from + viewRange.to) / 2
  moveView({from: mid - half, to: mid + half})
}

async function logout(): Promise<void> {
  await api('/logout', {method: 'POST'}).catch(() => undefined)
  location.assign('/login')
}

async function boot(): Promise<void> {
  let session: {csrf_token: string | null}
  try {
    session = await api<{csrf_token: string | null}>('/session')
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin()
    throw error
  }

  setCsrf(session.csrf_token)
  $('app').hidden = false
  charts = new MonitorCharts(document)
  historyCharts = new HistoryCharts(document, moveView)
  sourceThresholds = new SourceThresholds(document, showLogin, () => [...activeAlerts.values()])
  for (const button of document.querySelectorAll<HTMLButtonElement>('.tabs button')) button.addEventListener('click', () => switchTab(button.dataset.tab!))
  const form = $<HTMLFormElement>('sim-form')
  form.addEventListener('submit', (e) => void startSimulation(e))
  ;(form.elements.namedItem('use_pretrained') as HTMLInputElement).addEventListener('change', (e) => {
    $('qparams').hidden = (e.target as HTMLInputElement).checked
  })
  $('stop').addEventListener('click', () => void stopSimulation())
  $('refresh').addEventListener('click', () => void refreshStatus())
  $('perf-refresh').addEventListener('click', () => void loadPerformance())
  $('alerts-save').addEventListener('click', () => void saveThresholds())
  $('logout').addEventListener('click', () => void logout())
  window.addEventListener('resize', scheduleRender)
  $<HTMLSelectElement>('source').addEventListener('change', (e) => void selectSource((e.target as HTMLSelectElement).value))
  $('range').addEventListener('change', chooseRange)
  $('range-apply').addEventListener('click', applyCustomRange)
  $('pan-earlier').addEventListener('click', () => pan(-1))
  $('pan-later').addEventListener('click', () => pan(1))
  $('zoom-out').addEventListener('click', zoomOut)

  const info = await api<Info>('/dashboard/info')
  const config = await api<{active: AlertState[]}>('/alerts/config')
  for (const alert of config.active) activeAlerts.set(alertKey(alert), alert)
  renderAlerts()
  // Through the reverse proxy the server hands out its /ws/ URL (the only port open there);
  // directly, the streamer's own port on this host. The CSP allows exactly the one in use.
  const port = info.stream.port ?? Number(location.port || 443) + 1
  stream = new LiveStream(info.stream.url ?? `wss://${location.hostname}:${port}/`, onStreamMessage, onStreamState)
  stream.start()
  await refreshStatus()
  window.setInterval(() => {
    if (document.hidden) return
    if (currentTab === 'control') void refreshStatus()
    if (currentTab === 'sources') void loadSources()
  }, 2000)
}

document.addEventListener('DOMContentLoaded', () => void boot())
