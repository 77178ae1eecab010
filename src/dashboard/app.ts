import {ApiError, Unauthorized, api, setCsrf} from './api.js'
import {MonitorCharts, type Point} from './charts.js'
import {LiveStream} from './stream.js'

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T

interface Status {is_running: boolean; state: string; progress_percent: number | null; current_time_hours: number | null; duration_hours: number | null; speed: number | null; config: {target_concentration: number} | null}
interface Threshold {parameter: string; threshold_min: number | null; threshold_max: number | null; enabled: boolean; email_notify: boolean}
interface AlertState {parameter: string; active: boolean; value: number | null; message: string | null}
interface Info {stream: {port: number | null; url: string | null; clients: number}; history: {readings: number; retention_days: number}; certificates: {name: string; days_left: number; not_after: string}[]}
interface Health {status: string; certificate: {days_left: number; not_after: string} | null; services: Record<string, string>}

let currentTab = 'control'
let stream: LiveStream | undefined
let streamState = 'connecting'
let charts: MonitorCharts
let renderQueued = false
const activeAlerts = new Map<string, AlertState>()

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
  text('m-power', fmt(p?.total_power === undefined ? undefined : p.total_power * 1000, 3, ' mW'))
  text('m-action', p?.q_action === null || p?.q_action === undefined ? '–' : String(p.q_action))
  charts.render(currentTab === 'monitor')
}

function renderAlerts(): void {
  const active = [...activeAlerts.values()]
  $('alerts-bar').hidden = active.length === 0
  text('alerts-bar', active.map((a) => `⚠️ ${a.message}`).join('  ·  '))
}

function onStreamMessage(message: {type: string; [key: string]: unknown}): void {
  switch (message.type) {
    case 'initial_data': {
      charts.reset(message.data as Point[])
      scheduleRender()
      break
    }

    case 'data_update': {
      charts.add(message.data as Point[])
      scheduleRender()
      break
    }

    case 'alert_raised':
    case 'alert_cleared': {
      const alert = message.alert as AlertState
      if (alert.active) activeAlerts.set(alert.parameter, alert)
      else activeAlerts.delete(alert.parameter)
      renderAlerts()
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
    state.textContent = status.is_running ? '🟢 Simulation Running' : `🔴 Simulation Stopped${status.state === 'completed' ? ' (completed)' : ''}`
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
      ['Mean Power', fmt(m.mean_power === null ? null : m.mean_power * 1000, 3, ' mW')],
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

function numberCell(value: number | null, field: string): HTMLTableCellElement {
  const td = document.createElement('td')
  const input = document.createElement('input')
  input.type = 'number'
  input.step = 'any'
  input.name = field
  input.value = value === null ? '' : String(value)
  td.append(input)
  return td
}

function checkCell(value: boolean, field: string): HTMLTableCellElement {
  const td = document.createElement('td')
  const input = document.createElement('input')
  input.type = 'checkbox'
  input.name = field
  input.checked = value
  td.append(input)
  return td
}

async function loadConfig(): Promise<void> {
  try {
    const [health, info, config] = await Promise.all([
      fetch('/health').then(async (r) => r.json() as Promise<Health>),
      api<Info>('/dashboard/info'),
      api<{alerts: Threshold[]; active: AlertState[]}>('/alerts/config'),
    ])
    const cert = health.certificate ?? (info.certificates[0] ? {days_left: info.certificates[0].days_left, not_after: info.certificates[0].not_after} : null)
    text('ssl-status', cert ? `✅ HTTPS enabled — certificate valid until ${cert.not_after.slice(0, 10)} (${cert.days_left} days left)` : '⚠️ No certificate information')
    const rows = config.alerts.map((t) => {
      const tr = document.createElement('tr')
      tr.dataset.parameter = t.parameter
      const name = document.createElement('td')
      name.textContent = t.parameter
      const state = document.createElement('td')
      const active = config.active.find((a) => a.parameter === t.parameter)
      state.className = active ? 'alert-on' : 'alert-off'
      state.textContent = active ? `ALERT (${fmt(active.value, 3)})` : 'ok'
      tr.append(name, numberCell(t.threshold_min, 'threshold_min'), numberCell(t.threshold_max, 'threshold_max'), checkCell(t.enabled, 'enabled'), checkCell(t.email_notify, 'email_notify'), state)
      return tr
    })
    $('thresholds').replaceChildren(...rows)
    const services = Object.entries(health.services ?? {}).map(([name, state]) => `${state === 'running' ? '🟢' : '🔴'} ${name}: ${state}`)
    services.push(`${streamState === 'open' ? '🟢' : '🔴'} live stream (this browser): ${streamState}, ${info.stream.clients} client(s) connected`)
    $('services').replaceChildren(...services.map((line) => {
      const li = document.createElement('li')
      li.textContent = line
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
    text('alerts-msg', `✅ ${result.message}`)
    await loadConfig()
  } catch (error) {
    if (error instanceof Unauthorized) return showLogin()
    text('alerts-msg', `❌ ${error instanceof ApiError ? error.message : String(error)}`)
  }
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

  const info = await api<Info>('/dashboard/info')
  const config = await api<{active: AlertState[]}>('/alerts/config')
  for (const alert of config.active) activeAlerts.set(alert.parameter, alert)
  renderAlerts()
  // Through the reverse proxy the server hands out its /ws/ URL (the only port open there);
  // directly, the streamer's own port on this host. The CSP allows exactly the one in use.
  const port = info.stream.port ?? Number(location.port || 443) + 1
  stream = new LiveStream(info.stream.url ?? `wss://${location.hostname}:${port}/`, onStreamMessage, onStreamState)
  stream.start()
  await refreshStatus()
  window.setInterval(() => {
    if (currentTab === 'control' && !document.hidden) void refreshStatus()
  }, 2000)
}

document.addEventListener('DOMContentLoaded', () => void boot())
