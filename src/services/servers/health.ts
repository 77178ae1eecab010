import type {Clock} from '../../lib/clock.js'
import {SERVICE_NAMES, type ServiceName, type ServiceState} from './types.js'

/** The body of `GET /health`: nothing an anonymous caller should not know (no paths, no versions). */
export interface HealthReport {
  status: 'healthy' | 'degraded'
  timestamp: string
  uptime_seconds: number
  certificate: {days_left: number; not_after: string} | null
  services: Record<ServiceName, ServiceState>
  /** Why the status is degraded (empty when healthy). */
  problems: string[]
  /**
   * serve's certificate maintainer, per lineage (names are on the certificate anyway; error
   * texts are not shown here, they go to the log and `mfc status`). Absent with auto_renew off.
   */
  renewal?: {
    last_check: string | null
    next_check: string | null
    certificates: {name: string; last_check: string | null; last_result: string | null; next_renewal: string | null; consecutive_failures: number}[]
  }
}

/** The maintainer's side of /health (CertificateMaintainer.status(), reduced). */
export type RenewalHealth = NonNullable<HealthReport['renewal']>

/**
 * `new Date(ms).toISOString()`, remembered for the last millisecond asked; within the same
 * second only the milliseconds are replaced (formatting a Date is the costly part).
 */
export function isoAt(ms: number): string {
  if (ms === lastIsoMs) return lastIso
  const second = Math.floor(ms / 1000)
  if (second === lastSecond && Number.isSafeInteger(ms)) {
    const millis = ms - second * 1000
    lastIso = `${lastSecondPrefix}${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
  } else {
    lastIso = new Date(ms).toISOString()
    // "…T12:34:56." (any year length): everything but the "mmmZ".
    ;[lastSecond, lastSecondPrefix] = [second, lastIso.slice(0, -4)]
  }

  lastIsoMs = ms
  return lastIso
}

let lastIsoMs = Number.NaN
let lastIso = ''
let lastSecond = Number.NaN
let lastSecondPrefix = ''

/** A health report ready to send: its HTTP status and JSON text. */
export interface HealthAnswer {
  readonly statusCode: 200 | 503
  readonly body: string
}

/**
 * The state of the three services of one `serve` process, as /health reports it. Healthy
 * means every service is running and the certificate has not expired.
 */
export class HealthRegistry {
  private readonly states: Record<ServiceName, ServiceState> = {api: 'starting', dashboard: 'starting', streamer: 'starting'}
  private readonly startedAt: number
  private lastAnswer?: HealthAnswer & {at: number; certMs: number}
  /**
   * The report's JSON after `uptime_seconds` (certificate, services, problems, renewal) and its
   * status: they change with a state, the certificate or its day count, not every millisecond.
   */
  private lastTail?: {certMs: number; daysLeft: number; expired: boolean; status: HealthReport['status']; failing: boolean; text: string}
  private certIso?: {ms: number; iso: string}
  private renewal?: RenewalHealth
  private readonly dependencies = new Map<string, string>()

  constructor(private readonly clock: Clock, private readonly certificate: () => {notAfter: Date} | undefined) {
    this.startedAt = clock.now().getTime()
  }

  set(service: ServiceName, state: ServiceState): void {
    this.states[service] = state
    this.lastAnswer = undefined
    this.lastTail = undefined
  }

  /** The maintainer's latest state (called on every change of it; rebuilds the next answer). */
  setRenewal(renewal: RenewalHealth | undefined): void {
    this.renewal = renewal
    this.lastAnswer = undefined
    this.lastTail = undefined
  }

  /**
   * A shared dependency's problem (cluster mode: the database), undefined once it recovered.
   * It makes the status `degraded` with the reason in `problems`, but the answer stays 200:
   * the node still serves TLS, the dashboard and the stream, and an outage every node shares
   * must not make a load balancer take all of them out at once.
   */
  setDependency(name: string, problem: string | undefined): void {
    if (problem === undefined) this.dependencies.delete(name)
    else this.dependencies.set(name, problem)
    this.lastAnswer = undefined
    this.lastTail = undefined
  }

  get(service: ServiceName): ServiceState {
    return this.states[service]
  }

  /**
   * `report()` as sent by the /health routes. Everything in a report derives from the service
   * states, the certificate and the current millisecond, so one JSON text serves every probe
   * within the same millisecond (many, under load balancers or a benchmark): identical bytes,
   * built once.
   */
  answer(): HealthAnswer {
    const nowMs = this.clock.now().getTime()
    const cert = this.certificate()
    const certMs = cert ? cert.notAfter.getTime() : -1
    const last = this.lastAnswer
    if (last && last.at === nowMs && last.certMs === certMs) return last
    const tail = this.tailAt(nowMs, cert, certMs)
    // JSON.stringify(report()) byte for byte (test/unit/serve-hot-path.test.ts): an ISO date
    // and an integer need no escaping.
    const body = `{"status":"${tail.status}","timestamp":"${isoAt(nowMs)}","uptime_seconds":${Math.round((nowMs - this.startedAt) / 1000)},${tail.text}`
    const answer = {at: nowMs, certMs, statusCode: tail.failing ? 503 as const : 200 as const, body}
    this.lastAnswer = answer
    return answer
  }

  private tailAt(nowMs: number, cert: {notAfter: Date} | undefined, certMs: number): NonNullable<HealthRegistry['lastTail']> {
    const daysLeft = cert ? Math.floor((certMs - nowMs) / 86_400_000) : 0
    const expired = cert !== undefined && certMs <= nowMs
    const last = this.lastTail
    if (last && last.certMs === certMs && last.daysLeft === daysLeft && last.expired === expired) return last
    const {status, timestamp: _timestamp, uptime_seconds: _uptime, ...rest} = this.reportAt(nowMs, cert)
    // A dependency's problem (setDependency) degrades the status but is no reason for a 503.
    const failing = rest.problems.length > this.dependencies.size
    this.lastTail = {certMs, daysLeft, expired, status, failing, text: JSON.stringify(rest).slice(1)}
    return this.lastTail
  }

  report(): HealthReport {
    return this.reportAt(this.clock.now().getTime(), this.certificate())
  }

  private reportAt(nowMs: number, cert: {notAfter: Date} | undefined): HealthReport {
    const problems: string[] = []
    for (const name of SERVICE_NAMES) if (this.states[name] !== 'running') problems.push(`${name} is ${this.states[name]}`)
    let certificate: HealthReport['certificate'] = null
    if (cert) {
      const notAfterMs = cert.notAfter.getTime()
      if (notAfterMs <= nowMs) problems.push('the certificate has expired')
      certificate = {days_left: Math.floor((notAfterMs - nowMs) / 86_400_000), not_after: this.notAfterIso(notAfterMs)}
    }

    for (const [name, problem] of this.dependencies) problems.push(`${name}: ${problem}`)

    return {
      status: problems.length === 0 ? 'healthy' : 'degraded',
      timestamp: isoAt(nowMs),
      uptime_seconds: Math.round((nowMs - this.startedAt) / 1000),
      certificate,
      services: {api: this.states.api, dashboard: this.states.dashboard, streamer: this.states.streamer},
      problems,
      ...(this.renewal ? {renewal: this.renewal} : {}),
    }
  }

  /** The served certificate's notAfter as ISO text, kept until the certificate changes. */
  private notAfterIso(ms: number): string {
    if (this.certIso?.ms !== ms) this.certIso = {ms, iso: new Date(ms).toISOString()}
    return this.certIso.iso
  }
}
