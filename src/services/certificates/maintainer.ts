import type {Clock} from '../../lib/clock.js'
import type {MfcEventBus} from '../../lib/events.js'
import {type Logger, silentLogger} from '../../lib/logger.js'
import type {StoredCert} from '../store/cert-store.js'
import type {RenewalOutcome, RenewalReport} from './cert-manager.js'

const SECOND = 1000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE

/** What the maintainer knows about one lineage (status, --json and /health show it). */
export interface MaintainedCertificate {
  name: string
  domains: string[]
  /** ISO time of the last check that looked at it, null before the first. */
  lastCheck: string | null
  /** The last check's verdict: not-due, renewed, skipped, failed (null before the first). */
  lastResult: RenewalOutcome['status'] | null
  /** The last failure's message (cleared by a success). */
  lastError: string | null
  /** When the next renewal attempt is due: the policy's date, or the next retry after a failure. */
  nextRenewal: string | null
  consecutiveFailures: number
}

/** A snapshot of the maintainer, for status and /health. */
export interface MaintainerStatus {
  enabled: boolean
  lastCheck: string | null
  nextCheck: string | null
  certificates: MaintainedCertificate[]
}

/** The collaborators of a maintainer: the store it watches and the renew path it shares with `mfc cert renew`. */
export interface MaintainerOptions {
  clock: Clock
  events: MfcEventBus
  logger?: Logger
  /** The lineages in the store (for the check interval and the status). */
  lineages(): Promise<StoredCert[]>
  /**
   * One renewal run over `names` (undefined: every lineage): CertManager.renew with the same
   * policy, ARI, lock and issuers as `mfc cert renew`. Must honour `signal`.
   */
  renew(names: string[] | undefined, signal: AbortSignal): Promise<RenewalReport>
  /** 0 <= random() < 1, for jitter (tests may fix it). */
  random?: () => number
  /** Told after every check (serve shows the state on /health). */
  onChange?(status: MaintainerStatus): void
}

/**
 * The check interval for the shortest lifetime held: a fiftieth of it, between 1 s and 10 min
 * (certmagic checks every 10 min; a 6-day certificate still gets hundreds of checks per
 * lifetime, a test certificate of 30 s one a second). Renewal dates are also scheduled exactly,
 * so the interval only bounds how late an outside change (ARI, a replaced file) is noticed.
 */
export function checkInterval(shortestLifetimeMs: number | undefined): number {
  if (shortestLifetimeMs === undefined) return 10 * MINUTE
  return Math.min(10 * MINUTE, Math.max(SECOND, Math.round(shortestLifetimeMs / 50)))
}

/**
 * The wait before retry number `failures` (1 = after the first failure): doubling from 1 min
 * to 6 h (minutes, then hours, like certmagic), scaled down for short lifetimes so that a
 * 6-day or 30-second certificate still gets several tries before it expires; never sooner
 * than the CA's Retry-After.
 */
export function retryDelay(failures: number, lifetimeMs: number, now: Date, retryAfter?: Date): number {
  const first = Math.max(SECOND, Math.min(MINUTE, lifetimeMs / 60))
  const cap = Math.max(first, Math.min(6 * HOUR, lifetimeMs / 6))
  const delay = Math.min(cap, first * 2 ** Math.max(0, failures - 1))
  const hinted = retryAfter ? retryAfter.getTime() - now.getTime() : 0
  return Math.max(delay, hinted)
}

interface State extends MaintainedCertificate {
  /** No attempt before this (ms): the retry schedule after a failure. */
  retryAtMs: number
  renewAtMs: number | null
  lifetimeMs: number
  expiringNotified: boolean
  /** The version the last look at the store found (a skip naming another one: another run renewed it). */
  version: string
}

/**
 * certmagic's maintain loop for `mfc serve`: checks every lineage on a jittered interval that
 * adapts to the shortest lifetime held, at each lineage's renewal date, and whenever asked
 * (`check()`, wired to SIGHUP). A due lineage is renewed through the shared renew path (lock,
 * check again, issue, atomic write, `cert:renewed`); a failure keeps the old certificate
 * (nothing is installed) and is retried on an escalating schedule. Emits
 * `cert:renew-recovered` when a lineage renews after failures and `cert:expiring` once per
 * failure streak when under a sixth of its life remains. Never prints; `stop()` cancels an
 * order in flight and is idempotent.
 */
export class CertificateMaintainer {
  private readonly states = new Map<string, State>()
  private readonly log: Logger
  private readonly random: () => number
  private timer?: NodeJS.Timeout
  private running?: Promise<void>
  private again = false
  private stopped = false
  private readonly abort = new AbortController()
  private lastCheck: string | null = null
  private nextCheckMs: number | null = null

  constructor(private readonly options: MaintainerOptions) {
    this.log = (options.logger ?? silentLogger).child({component: 'maintainer'})
    this.random = options.random ?? Math.random
  }

  /** Starts the loop with a check now. */
  start(): void {
    this.check('start')
  }

  /** Runs a check as soon as possible (coalesced with one in progress). Never throws. */
  check(reason: string): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }

    clearTimeout(this.timer)
    this.running = this.runCheck(reason).finally(() => {
      this.running = undefined
      if (this.again && !this.stopped) {
        this.again = false
        this.check('queued')
      }
    })
  }

  /** Resolves when the check in progress (if any) is over: for tests and shutdown. */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  /** Cancels an order in flight and stops scheduling; resolves once nothing runs. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true
    clearTimeout(this.timer)
    this.abort.abort(new Error('mfc serve is shutting down'))
    await this.idle()
  }

  status(): MaintainerStatus {
    return {
      enabled: true,
      lastCheck: this.lastCheck,
      nextCheck: this.nextCheckMs === null ? null : new Date(this.nextCheckMs).toISOString(),
      certificates: [...this.states.values()].map(({name, domains, lastCheck, lastResult, lastError, nextRenewal, consecutiveFailures}) =>
        ({name, domains, lastCheck, lastResult, lastError, nextRenewal, consecutiveFailures})),
    }
  }

  private async runCheck(reason: string): Promise<void> {
    const now = this.options.clock.now()
    try {
      await this.refresh(await this.options.lineages())
      // Lineages waiting out a retry are left alone; the rest go through the renew path, whose policy decides.
      const eligible = [...this.states.values()].filter((s) => s.retryAtMs <= now.getTime()).map((s) => s.name)
      if (eligible.length > 0) {
        const report = await this.options.renew(eligible.length === this.states.size ? undefined : eligible, this.abort.signal)
        for (const outcome of report.outcomes) this.record(outcome, now)
      }

      this.lastCheck = now.toISOString()
      this.log.debug({reason, eligible}, 'certificate check')
    } catch (error) {
      // A held lock past its wait, an unreadable store: the next check tries again.
      if (!this.abort.signal.aborted) this.log.warn({reason, err: (error as Error).message}, 'certificate check failed')
    } finally {
      this.schedule()
      this.options.onChange?.(this.status())
    }
  }

  /** Keeps one state per lineage in the store (new ones added, deleted ones dropped). */
  private async refresh(lineages: StoredCert[]): Promise<void> {
    const names = new Set(lineages.map((l) => l.name))
    for (const name of this.states.keys()) if (!names.has(name)) this.states.delete(name)
    for (const {name, meta, version} of lineages) {
      const lifetimeMs = new Date(meta.notAfter).getTime() - new Date(meta.notBefore).getTime()
      const state = this.states.get(name)
      if (state) Object.assign(state, {domains: meta.domains, lifetimeMs, version})
      else this.states.set(name, {name, domains: meta.domains, lastCheck: null, lastResult: null, lastError: null, nextRenewal: null, consecutiveFailures: 0, retryAtMs: 0, renewAtMs: null, lifetimeMs, expiringNotified: false, version})
    }
  }

  private record(outcome: RenewalOutcome, now: Date): void {
    const state = this.states.get(outcome.name)
    if (!state) return
    state.lastCheck = now.toISOString()
    state.lastResult = outcome.status
    if (outcome.status === 'failed') {
      if (this.abort.signal.aborted) return
      this.failed(state, outcome, now)
      return
    }

    // The cluster's race, lost: another node (or a cron run) renewed while this one waited for the lock.
    if (outcome.status === 'skipped' && outcome.version !== state.version) {
      this.log.info({name: state.name, version: outcome.version, reason: outcome.reason}, 'Certificate renewal skipped: another mfc run renewed it')
      state.version = outcome.version
    }

    if (outcome.status === 'renewed' && state.consecutiveFailures > 0) {
      this.options.events.emit('cert:renew-recovered', {name: state.name, domains: state.domains, failures: state.consecutiveFailures, version: outcome.version, notAfter: outcome.notAfter})
    }

    Object.assign(state, {consecutiveFailures: 0, lastError: null, retryAtMs: 0, expiringNotified: false})
    // After a renewal the new certificate's date is known at the next check (scheduled at once);
    // a lineage mfc cannot renew (custom, or renewed by another run meanwhile) waits for the interval.
    const renewAt = outcome.status === 'not-due' && outcome.renewAt ? new Date(outcome.renewAt).getTime() : null
    state.renewAtMs = outcome.status === 'renewed' ? now.getTime() : renewAt
    state.nextRenewal = renewAt === null ? null : outcome.renewAt
  }

  private failed(state: State, outcome: RenewalOutcome, now: Date): void {
    state.consecutiveFailures++
    state.lastError = outcome.error?.message ?? outcome.reason
    const retryAfter = outcome.error?.retryAfter ? new Date(outcome.error.retryAfter) : undefined
    const delay = retryDelay(state.consecutiveFailures, state.lifetimeMs, now, retryAfter)
    state.retryAtMs = now.getTime() + delay
    state.renewAtMs = state.retryAtMs
    state.nextRenewal = new Date(state.retryAtMs).toISOString()
    this.log.warn({name: state.name, failures: state.consecutiveFailures, retryAt: state.nextRenewal, err: state.lastError}, 'certificate renewal failed; the current certificate stays in place')
    const msLeft = new Date(outcome.notAfter).getTime() - now.getTime()
    if (!state.expiringNotified && msLeft < state.lifetimeMs / 6) {
      state.expiringNotified = true
      this.options.events.emit('cert:expiring', {name: state.name, domains: state.domains, daysLeft: Math.floor(msLeft / 86_400_000), expired: msLeft <= 0})
    }
  }

  /** The next check: the interval (jittered by up to 10 %), or sooner when a renewal or retry is due. */
  private schedule(): void {
    if (this.stopped) return
    const now = this.options.clock.now().getTime()
    const lifetimes = [...this.states.values()].map((s) => s.lifetimeMs).filter((ms) => ms > 0)
    const interval = checkInterval(lifetimes.length > 0 ? Math.min(...lifetimes) : undefined)
    let next = now + interval * (1 - 0.1 * this.random())
    for (const state of this.states.values()) if (state.renewAtMs !== null) next = Math.min(next, Math.max(state.renewAtMs, state.retryAtMs))
    const delay = Math.max(0, next - now)
    this.nextCheckMs = now + delay
    this.timer = setTimeout(() => this.check('timer'), delay)
    // The servers keep serve alive; a pending check alone must not.
    this.timer.unref()
  }
}
