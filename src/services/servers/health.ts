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
}

/**
 * JSON schema of HealthReport, for fastify's compiled serializer (fast-json-stringify): cheaper
 * than JSON.stringify, and it can only ever emit these fields.
 */
export const HEALTH_REPORT_SCHEMA = {
  type: 'object',
  properties: {
    status: {type: 'string'},
    timestamp: {type: 'string'},
    uptime_seconds: {type: 'integer'},
    certificate: {type: ['object', 'null'], properties: {days_left: {type: 'integer'}, not_after: {type: 'string'}}, required: ['days_left', 'not_after']},
    services: {type: 'object', properties: Object.fromEntries(SERVICE_NAMES.map((name) => [name, {type: 'string'}])), required: [...SERVICE_NAMES]},
    problems: {type: 'array', items: {type: 'string'}},
  },
  required: ['status', 'timestamp', 'uptime_seconds', 'certificate', 'services', 'problems'],
} as const

/**
 * The state of the three services of one `serve` process, as /health reports it. Healthy
 * means every service is running and the certificate has not expired.
 */
export class HealthRegistry {
  private readonly states: Record<ServiceName, ServiceState> = {api: 'starting', dashboard: 'starting', streamer: 'starting'}
  private readonly startedAt: number

  constructor(private readonly clock: Clock, private readonly certificate: () => {notAfter: Date} | undefined) {
    this.startedAt = clock.now().getTime()
  }

  set(service: ServiceName, state: ServiceState): void {
    this.states[service] = state
  }

  get(service: ServiceName): ServiceState {
    return this.states[service]
  }

  /** Called for every health probe: no more work than the answer needs. */
  report(): HealthReport {
    const now = this.clock.now()
    const nowMs = now.getTime()
    const cert = this.certificate()
    const problems: string[] = []
    for (const name of SERVICE_NAMES) if (this.states[name] !== 'running') problems.push(`${name} is ${this.states[name]}`)
    let certificate: HealthReport['certificate'] = null
    if (cert) {
      const notAfterMs = cert.notAfter.getTime()
      if (notAfterMs <= nowMs) problems.push('the certificate has expired')
      if (this.notAfterMs !== notAfterMs) [this.notAfterMs, this.notAfterIso] = [notAfterMs, cert.notAfter.toISOString()]
      certificate = {days_left: Math.floor((notAfterMs - nowMs) / 86_400_000), not_after: this.notAfterIso}
    }

    return {
      status: problems.length === 0 ? 'healthy' : 'degraded',
      timestamp: now.toISOString(),
      uptime_seconds: Math.round((nowMs - this.startedAt) / 1000),
      certificate,
      services: {api: this.states.api, dashboard: this.states.dashboard, streamer: this.states.streamer},
      problems,
    }
  }

  /** The served certificate's notAfter as ISO text, kept until the certificate changes. */
  private notAfterMs = Number.NaN
  private notAfterIso = ''
}
