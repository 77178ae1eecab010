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

  report(): HealthReport {
    const now = this.clock.now()
    const cert = this.certificate()
    const problems = SERVICE_NAMES.filter((name) => this.states[name] !== 'running').map((name) => `${name} is ${this.states[name]}`)
    const daysLeft = cert ? Math.floor((cert.notAfter.getTime() - now.getTime()) / 86_400_000) : null
    if (cert && cert.notAfter <= now) problems.push('the certificate has expired')
    return {
      status: problems.length === 0 ? 'healthy' : 'degraded',
      timestamp: now.toISOString(),
      uptime_seconds: Math.round((now.getTime() - this.startedAt) / 1000),
      certificate: cert && daysLeft !== null ? {days_left: daysLeft, not_after: cert.notAfter.toISOString()} : null,
      services: {...this.states},
      problems,
    }
  }
}
