import {ApiError, Unauthorized, api} from './api.js'
import {cell, inputCell, withIcon} from './dom.js'
import {formatSi, UNITS} from './format.js'

interface Threshold {parameter: string; threshold_min: number | null; threshold_max: number | null; enabled: boolean; email_notify: boolean}
interface AlertState {source: string; parameter: string; active: boolean; value: number | null; unit?: string}
interface SourceConfig {alerts: Threshold[]; overrides: Threshold[]; parameters?: string[]}

const band = (t: Threshold | undefined) => {
  if (!t) return 'none'
  const unit = UNITS[t.parameter] ?? ''
  const min = t.threshold_min === null ? '' : `≥ ${formatSi(t.threshold_min, unit)}`
  const max = t.threshold_max === null ? '' : `≤ ${formatSi(t.threshold_max, unit)}`
  return `${[min, max].filter(Boolean).join(', ')}${t.enabled ? '' : ' (off)'}`
}

/**
 * The per-source view's alert thresholds: the effective set of one source, each row saying
 * whether it is the global default or the source's own, with "Set for <source>" (POST
 * /alerts/config?source=) and "Use default" (DELETE /alerts/config?source=&parameter=). The
 * session cookie and the CSRF header are the page's (api.ts); the server validates, and its
 * 400/422 message is shown as it is. A load for a source that is no longer selected is dropped.
 */
export class SourceThresholds {
  private source: string | undefined
  private defaults: Threshold[] = []

  /**
   * `liveAlerts` is the page's alert list, kept current by the stream: a load renders its states
   * from that list, not from the snapshot it fetched, because an alert raised between the fetch and
   * its answer reaches the page as a stream event that the rows replaced afterwards would lose.
   */
  constructor(private readonly doc: Document, private readonly sessionEnded: () => void, private readonly liveAlerts: () => readonly AlertState[]) {
    this.el('st-add-button').addEventListener('click', () => this.addRow())
  }

  async load(source: string | undefined, message?: {ok: boolean; text: string}): Promise<void> {
    this.source = source
    this.el('st-source').textContent = source ?? '–'
    if (!source) return this.el('st-rows').replaceChildren()
    try {
      const [global, own] = await Promise.all([api<{alerts: Threshold[]}>('/alerts/config'), api<SourceConfig>(`/alerts/config?source=${encodeURIComponent(source)}`)])
      if (source !== this.source) return
      this.defaults = global.alerts
      this.el('st-rows').replaceChildren(...own.alerts.map((t) => this.row(t, own.overrides.some((o) => o.parameter === t.parameter) ? 'source' : 'default')))
      const used = new Set(own.alerts.map((t) => t.parameter))
      const select = this.el<HTMLSelectElement>('st-add')
      select.replaceChildren(...(own.parameters ?? []).filter((p) => !used.has(p)).map((p) => new Option(p, p)))
      this.renderStates(this.liveAlerts())
      if (message) this.say(message.ok, message.text)
    } catch (error) {
      this.failed(error)
    }
  }

  /** Updates each row's state cell from the page's active alerts (stream updates). */
  renderStates(active: readonly AlertState[]): void {
    for (const tr of this.doc.querySelectorAll<HTMLTableRowElement>('#st-rows tr')) {
      const alert = active.find((a) => a.active && a.source === this.source && a.parameter === tr.dataset.parameter)
      const state = tr.querySelector<HTMLTableCellElement>('td.state')!
      state.className = `state ${alert ? 'alert-on' : 'alert-off'}`
      state.textContent = alert ? `ALERT ${formatSi(alert.value, alert.unit ?? UNITS[alert.parameter] ?? '')}` : 'ok'
    }
  }

  private row(t: Threshold, origin: 'default' | 'source' | 'new'): HTMLTableRowElement {
    const tr = this.doc.createElement('tr')
    tr.dataset.parameter = t.parameter
    tr.dataset.origin = origin
    const fallback = this.defaults.find((d) => d.parameter === t.parameter)
    const applies = origin === 'default' ? 'global default' : `this source (default: ${band(fallback)})`
    const actions = this.doc.createElement('td')
    actions.append(this.button('st-save', 'save', `Set for ${this.source}`, () => void this.save(tr)))
    if (origin === 'source') actions.append(' ', this.button('st-clear', 'refresh', fallback ? 'Use default' : 'Remove', () => void this.clear(t.parameter)))
    tr.append(
      cell(t.parameter), inputCell('number', 'threshold_min', t.threshold_min), inputCell('number', 'threshold_max', t.threshold_max),
      inputCell('checkbox', 'enabled', t.enabled), inputCell('checkbox', 'email_notify', t.email_notify), cell(applies, 'applies'), cell('ok', 'state alert-off'), actions,
    )
    return tr
  }

  private button(className: string, iconName: string, label: string, onClick: () => void): HTMLButtonElement {
    const button = this.doc.createElement('button')
    button.type = 'button'
    button.className = className
    withIcon(button, iconName, label)
    button.addEventListener('click', onClick)
    return button
  }

  private addRow(): void {
    const parameter = this.el<HTMLSelectElement>('st-add').value
    if (!parameter || !this.source) return
    this.el('st-rows').append(this.row({parameter, threshold_min: null, threshold_max: null, enabled: true, email_notify: false}, 'new'))
    this.el<HTMLSelectElement>('st-add').querySelector(`option[value="${parameter}"]`)?.remove()
  }

  private async save(tr: HTMLTableRowElement): Promise<void> {
    const source = this.source!
    const input = (name: string) => tr.querySelector<HTMLInputElement>(`input[name=${name}]`)!
    const num = (name: string) => (input(name).value.trim() === '' ? null : Number(input(name).value))
    const threshold = {parameter: tr.dataset.parameter, threshold_min: num('threshold_min'), threshold_max: num('threshold_max'), enabled: input('enabled').checked, email_notify: input('email_notify').checked}
    try {
      const result = await api<{message: string}>(`/alerts/config?source=${encodeURIComponent(source)}`, {method: 'POST', body: [threshold]})
      await this.load(source, {ok: true, text: result.message})
    } catch (error) {
      this.failed(error, `Not saved (${threshold.parameter} for ${source})`)
    }
  }

  private async clear(parameter: string): Promise<void> {
    const source = this.source!
    try {
      const result = await api<{message: string}>(`/alerts/config?source=${encodeURIComponent(source)}&parameter=${encodeURIComponent(parameter)}`, {method: 'DELETE'})
      await this.load(source, {ok: true, text: result.message})
    } catch (error) {
      this.failed(error, `Not cleared (${parameter} for ${source})`)
    }
  }

  private failed(error: unknown, what = 'Cannot load the thresholds'): void {
    if (error instanceof Unauthorized) return this.sessionEnded()
    this.say(false, `${what}: ${error instanceof ApiError ? error.message : String(error)}`)
  }

  private say(ok: boolean, text: string): void {
    const msg = this.el('st-msg')
    msg.className = ok ? 'ok' : 'fail'
    withIcon(msg, ok ? 'save' : 'warn', text)
  }

  private el<T extends HTMLElement = HTMLElement>(id: string): T {
    return this.doc.getElementById(id) as T
  }
}
