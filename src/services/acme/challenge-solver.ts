import type {ChallengeResponder} from './challenge-responder.js'

/** The ACME challenge types mfc can answer. */
export type ChallengeType = 'http-01' | 'dns-01'

/** One challenge of one authorization, as a solver needs it. */
export interface SolverChallenge {
  /** The authorization's identifier; for `*.example.org` the base name `example.org`. */
  domain: string
  wildcard: boolean
  token: string
  /** http-01: the key authorization (file body); dns-01: the TXT value (RFC 8555 §8.4). */
  validation: string
  /** certbot's CERTBOT_REMAINING_CHALLENGES: challenges still to present after this one. */
  remaining: number
  /** certbot's CERTBOT_ALL_DOMAINS: every name of the order. */
  allDomains: string[]
}

/** What a solver reports instead of printing: the issuer turns these into steps and log lines. */
export interface SolverEvent {
  kind: 'presented' | 'waiting' | 'visible' | 'removed' | 'cleanup-failed'
  message: string
}

/**
 * Makes the CA's validation of one challenge type succeed, and undoes it.
 *
 * Contract: `prepare()` once before the order is created (a port, file or credentials problem
 * surfaces before the CA is asked anything); `present()` is called once per challenge, one at
 * a time, in order; `ready()` resolves when the CA can see every presented challenge (DNS
 * propagation) and throws an MfcError naming what is missing; `cleanup()` is called for every
 * challenge whose `present()` was called (even if it failed), whatever happened, and never
 * throws: failures are reported as `cleanup-failed` events; `close()` is idempotent. A solver
 * never prints, never exits and never logs a secret.
 */
export interface ChallengeSolver {
  readonly type: ChallengeType
  /** For messages: "a listener on port 80", "RFC 2136 updates to 192.0.2.1:53"... */
  readonly description: string
  prepare(report: (event: SolverEvent) => void): Promise<void>
  present(challenge: SolverChallenge): Promise<void>
  ready(challenges: SolverChallenge[]): Promise<void>
  cleanup(challenge: SolverChallenge): Promise<void>
  close(): Promise<void>
}

/** HTTP-01 through an HTTP responder (standalone listener, webroot, shared directory for serve). */
export class HttpSolver implements ChallengeSolver {
  readonly type = 'http-01' as const
  private report: (event: SolverEvent) => void = () => undefined

  constructor(private readonly responder: ChallengeResponder) {}

  get description(): string {
    return this.responder.description
  }

  async prepare(report: (event: SolverEvent) => void): Promise<void> {
    this.report = report
    await this.responder.prepare()
  }

  async present(challenge: SolverChallenge): Promise<void> {
    await this.responder.add(challenge.token, challenge.validation)
  }

  async ready(): Promise<void> {
    // The responder answers as soon as add() returns.
  }

  async cleanup(challenge: SolverChallenge): Promise<void> {
    try {
      await this.responder.remove(challenge.token)
    } catch (error) {
      this.report({kind: 'cleanup-failed', message: `could not remove the HTTP-01 answer for ${challenge.domain}: ${(error as Error).message}`})
    }
  }

  async close(): Promise<void> {
    await this.responder.close()
  }
}

/** The DNS name of a dns-01 TXT record (RFC 8555 §8.4): the wildcard label is not part of it. */
export function dnsRecordName(domain: string): string {
  return `_acme-challenge.${domain.replace(/^\*\./, '').replace(/\.$/, '')}`
}
