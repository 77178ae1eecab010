import {getServers} from 'node:dns'

import {IssuerError} from '../../lib/errors.js'
import {runHook} from '../certificates/hooks.js'
import {type ChallengeSolver, type ChallengeType, type SolverChallenge, type SolverEvent, dnsRecordName} from './challenge-solver.js'
import {type PropagationOptions, findZone, parseServer, waitForTxt, zoneServers} from './dns-propagation.js'
import type {DnsServer} from './dns-wire.js'

/** certbot's `--manual` with hooks: the commands, and for DNS-01 where to look for the record. */
export interface ManualHooks {
  authHook: string
  cleanupHook?: string
  /**
   * The server asked for the zone's SOA and NS (`--dns-nameserver`), whose servers are then
   * asked on its port; without one, the system resolver finds them and they are asked on 53.
   */
  nameserver?: DnsServer
}

/**
 * certbot-compatible `--manual-auth-hook` / `--manual-cleanup-hook`: the auth hook runs once per
 * challenge, one at a time, with CERTBOT_DOMAIN, CERTBOT_VALIDATION, CERTBOT_TOKEN,
 * CERTBOT_REMAINING_CHALLENGES and CERTBOT_ALL_DOMAINS; the cleanup hook gets the same plus
 * CERTBOT_AUTH_OUTPUT. A failing auth hook fails the order (cleanup still runs). For DNS-01,
 * `ready()` waits until the zone's authoritative servers answer the TXT value.
 */
export class ManualHookSolver implements ChallengeSolver {
  readonly description: string
  private report: (event: SolverEvent) => void = () => undefined
  private readonly outputs = new Map<string, string>()

  constructor(readonly type: ChallengeType, private readonly hooks: ManualHooks, private readonly propagation: PropagationOptions) {
    this.description = `the manual auth hook (${hooks.authHook})`
  }

  async prepare(report: (event: SolverEvent) => void): Promise<void> {
    this.report = report
  }

  async present(challenge: SolverChallenge): Promise<void> {
    const run = await runHook('manual-auth', this.hooks.authHook, this.env(challenge))
    this.outputs.set(this.key(challenge), run.output)
    if (!run.ok) {
      throw new IssuerError(`The manual auth hook failed for ${challenge.domain} (${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}): ${this.hooks.authHook}${run.output ? `\n${run.output}` : ''}`, {
        code: 'MFC_AUTH_HOOK_FAILED',
        suggestions: [`Run it by hand with CERTBOT_DOMAIN=${challenge.domain} CERTBOT_VALIDATION=test to see why.`],
      })
    }

    this.report({kind: 'presented', message: `The auth hook ran for ${challenge.domain}`})
  }

  async ready(challenges: SolverChallenge[]): Promise<void> {
    if (this.type !== 'dns-01') return
    const {nameserver} = this.hooks
    const start = nameserver ?? parseServer(getServers()[0] ?? '127.0.0.1')
    const recursive = nameserver === undefined
    await Promise.all(challenges.map(async (challenge) => {
      const name = dnsRecordName(challenge.domain)
      const zone = await findZone(start, name, recursive)
      const servers = await zoneServers(start, zone, recursive, nameserver?.port ?? 53)
      this.report({kind: 'waiting', message: `Waiting for TXT ${name} at ${servers.map((s) => s.name).join(', ')}`})
      await waitForTxt(servers, name, challenge.validation, this.propagation)
    }))
    this.report({kind: 'visible', message: 'Every TXT record is visible at the zone\'s servers'})
  }

  async cleanup(challenge: SolverChallenge): Promise<void> {
    if (!this.hooks.cleanupHook) return
    const run = await runHook('manual-cleanup', this.hooks.cleanupHook, {...this.env(challenge), CERTBOT_AUTH_OUTPUT: this.outputs.get(this.key(challenge)) ?? ''})
    if (run.ok) this.report({kind: 'removed', message: `The cleanup hook ran for ${challenge.domain}`})
    else this.report({kind: 'cleanup-failed', message: `The manual cleanup hook failed for ${challenge.domain} (${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}): ${run.output}`})
  }

  async close(): Promise<void> {
    // Hooks are processes that have exited.
  }

  private key(challenge: SolverChallenge): string {
    return `${challenge.domain} ${challenge.token}`
  }

  private env(challenge: SolverChallenge): Record<string, string> {
    return {
      CERTBOT_DOMAIN: challenge.domain,
      CERTBOT_VALIDATION: challenge.validation,
      CERTBOT_TOKEN: challenge.token,
      CERTBOT_REMAINING_CHALLENGES: String(challenge.remaining),
      CERTBOT_ALL_DOMAINS: challenge.allDomains.join(','),
    }
  }
}
