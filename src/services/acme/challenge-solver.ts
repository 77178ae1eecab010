import type {ChallengeResponder} from './challenge-responder.js'

/** An ACME identifier (RFC 8555 §9.7.7 `dns`, RFC 8738 `ip`). */
export interface AcmeIdentifier {
  type: 'dns' | 'ip'
  value: string
}

/** One challenge a solver is asked to answer. */
export interface SolverChallenge {
  identifier: AcmeIdentifier
  /** The challenge type chosen (one of the solver's `types`). */
  type: string
  token: string
  /**
   * What to publish, as acme-client computes it: the key authorization for http-01, the TXT
   * record value (base64url of its SHA-256) for dns-01.
   */
  keyAuthorization: string
}

/**
 * Answers ACME challenges of the types it names: the seam between the ACME issuer and how a
 * name is proven (HTTP-01 token files/listener, DNS-01 through RFC 2136 or hooks...).
 *
 * Contract: `prepare()` runs once per order before the CA is asked for anything, so a port,
 * directory or credential problem surfaces first; `present()` returns once the CA may look
 * (a DNS-01 solver waits for its record to be visible at the zone's servers); `cleanup()` is
 * idempotent and called for every challenge presented, even after a failure; `close()` is
 * idempotent and releases everything. A solver never prints; failures throw MfcErrors that
 * name the identifier and the next step. One solver instance may serve concurrent orders.
 */
export interface ChallengeSolver {
  /** Challenge types it answers, in order of preference ('http-01', 'dns-01'...). */
  readonly types: readonly string[]
  /** For messages: "a listener on port 80", "RFC 2136 updates to 127.0.0.1:53"... */
  readonly description: string
  /** False when it cannot answer for this identifier at all (HTTP-01 and wildcards, DNS-01 and IPs). */
  handles(identifier: AcmeIdentifier): boolean
  prepare(signal?: AbortSignal): Promise<void>
  present(challenge: SolverChallenge, signal?: AbortSignal): Promise<void>
  cleanup(challenge: SolverChallenge): Promise<void>
  close(): Promise<void>
}

/** HTTP-01 through a ChallengeResponder (shared directory, webroot, standalone listener). */
export class Http01Solver implements ChallengeSolver {
  readonly types = ['http-01'] as const

  constructor(private readonly responder: ChallengeResponder) {}

  get description(): string {
    return this.responder.description
  }

  handles(identifier: AcmeIdentifier): boolean {
    return !identifier.value.startsWith('*.')
  }

  prepare(): Promise<void> {
    return this.responder.prepare()
  }

  present(challenge: SolverChallenge): Promise<void> {
    return this.responder.add(challenge.token, challenge.keyAuthorization)
  }

  cleanup(challenge: SolverChallenge): Promise<void> {
    return this.responder.remove(challenge.token)
  }

  close(): Promise<void> {
    return this.responder.close()
  }
}

/**
 * The solver and challenge to use for one authorization: the first solver (in the given
 * order) that handles the identifier and whose type the CA offers. Undefined when none fits.
 */
export function pickSolver<C extends {type: string}>(solvers: readonly ChallengeSolver[], identifier: AcmeIdentifier, offered: readonly C[]): {solver: ChallengeSolver; challenge: C} | undefined {
  for (const solver of solvers) {
    if (!solver.handles(identifier)) continue
    for (const type of solver.types) {
      const challenge = offered.find((c) => c.type === type)
      if (challenge) return {solver, challenge}
    }
  }

  return undefined
}
