import {isIP} from 'node:net'

import type {Clock} from '../../lib/clock.js'
import {IssuerError, MfcError, UsageError, errnoCode} from '../../lib/errors.js'
import {type Logger, silentLogger} from '../../lib/logger.js'
import {type BackoffOptions, backoffDelay, parseRetryAfter, retry, sleep} from '../../lib/retry.js'
import {type AccountRecord, type AcmeAccountStore, AccountStore} from '../acme/account-store.js'
import type {ChallengeResponder} from '../acme/challenge-responder.js'
import {type ChallengeSolver, HttpSolver, type SolverChallenge} from '../acme/challenge-solver.js'
import type {KeySpec} from '../certificates/key-spec.js'
import {splitPemChain} from '../certificates/inspect.js'
import type {IssueRequest, IssuedCertificate, Issuer} from '../certificates/issuer.js'

// acme-client is CommonJS and weighs ~120 ms at import: loaded only when an order is placed.
type AcmeModule = typeof import('acme-client')
type AcmeClient = InstanceType<AcmeModule['Client']>
type Authorization = Awaited<ReturnType<AcmeClient['getAuthorizations']>>[number]
type Order = Awaited<ReturnType<AcmeClient['createOrder']>>

/** An RFC 7807 problem document as an ACME CA sends it. */
interface Problem {
  type?: string
  detail?: string
  status?: number
  subproblems?: Problem[]
}

interface RawResponse {
  status: number
  headers: Record<string, string | undefined>
  data: unknown
}

/** The shape of acme-client's internal HTTP client that mfc wraps (see `instrument`). */
interface HttpClientInternals {
  request(url: string, method: string, opts?: object): Promise<RawResponse>
  maxBadNonceRetries: number
}

/** RFC 8555 §7.3.4 External Account Binding: the key ID and MAC key a CA hands out (ZeroSSL, step-ca...). */
export interface ExternalAccountBinding {
  kid: string
  /** base64url, as CAs print it. */
  hmacKey: string
}

export interface AcmeIssuerOptions {
  directoryUrl: string
  /** Contact for the account ('' registers without one). */
  email: string
  /** Bound to the account when one is registered; CAs that require it refuse accounts without. */
  externalAccount?: ExternalAccountBinding
  acmeDir: string
  /** Where the account key and record live (cluster mode: the database); default files under `acmeDir`. */
  accounts?: AcmeAccountStore
  /** HTTP-01 through this responder, unless a `solver` is given. */
  responder?: ChallengeResponder
  /** How challenges are answered (DNS-01 over RFC 2136 or hooks, HTTP-01...); wins over `responder`. */
  solver?: ChallengeSolver
  /**
   * The user agreed to the CA's terms of service (--agree-tos or the wizard). Without it a new
   * account is refused (UsageError naming the terms URL); a stored account needs nothing.
   */
  termsOfServiceAgreed?: boolean
  clock: Clock
  logger?: Logger
  /** Transport retries on network errors, HTTP 5xx and short 429s. */
  retry?: BackoffOptions & {attempts: number}
  /** Status polling: a short floor, because Pebble/LE usually validate within a second. */
  poll?: BackoffOptions & {timeoutMs: number}
  /** The longest Retry-After waited out in-process; longer ones fail with the time to retry. */
  maxRetryAfterMs?: number
  requestTimeoutMs?: number
  signal?: AbortSignal
  userAgent?: string
}

const TRANSPORT = {attempts: 4, minMs: 500, maxMs: 4000}
// A 50 ms floor: a CA validates in well under a second, and a CA that wants slower polling says
// so with Retry-After, which wins. acme-client's own floor (5 s) would make every issuance 5 s.
const POLL = {minMs: 50, maxMs: 2000, timeoutMs: 120_000}
const PROBLEM = 'urn:ietf:params:acme:error:'

/** A failed HTTP exchange the transport may retry. */
class TransientError extends Error {
  constructor(message: string, readonly retryAfterMs?: number, readonly response?: RawResponse) {
    super(message)
  }
}

/**
 * Orders certificates from any RFC 8555 CA: the only module that imports acme-client. One
 * account per directory (reused across runs, registered only with the user's consent to the
 * terms), one order for all names, challenges answered by the given solver (HTTP-01, DNS-01), certificate key and CSR made by acme-client's
 * crypto. Every failure is an IssuerError (or the solver's own MfcError) that keeps the
 * CA's problem type and detail; nothing is written outside the account directory.
 */
export class AcmeIssuer implements Issuer {
  readonly kind = 'acme' as const
  readonly label: string

  constructor(private readonly options: AcmeIssuerOptions) {
    this.label = `ACME ${options.directoryUrl}`
    if (!options.solver && !options.responder) throw new TypeError('AcmeIssuer needs a solver or a responder')
  }

  /**
   * One AcmeOrder per call, so concurrent calls never share a step, a problem document or a
   * Retry-After. `request.signal` cancels between any two requests or polls (and aborts the
   * request in flight): nothing is written, presented challenges are cleaned up.
   */
  issue(request: IssueRequest): Promise<IssuedCertificate> {
    return new AcmeOrder(this.options, request.signal ?? this.options.signal).issue(request)
  }

  /**
   * The profiles this CA offers (directory `meta.profiles`, draft-ietf-acme-profiles): name to
   * description; empty when it offers none. Throws an IssuerError when the directory cannot be read.
   */
  profiles(signal?: AbortSignal): Promise<Record<string, string>> {
    return new AcmeOrder(this.options, signal).profiles()
  }
}

/** The state and steps of one issuance (see AcmeIssuer.issue). */
class AcmeOrder {
  private readonly accounts: AcmeAccountStore
  private readonly log: Logger
  private lastProblem?: Problem & {url: string}
  /** Retry-After of the latest answer per URL: polling honours it. */
  private readonly retryAfters = new Map<string, number | undefined>()
  private step = 'contacting the CA'
  private readonly solver: ChallengeSolver
  private readonly warnings: string[] = []

  constructor(private readonly options: AcmeIssuerOptions, private readonly signal?: AbortSignal) {
    this.solver = options.solver ?? new HttpSolver(options.responder!)
    this.accounts = options.accounts ?? new AccountStore(options.acmeDir)
    this.log = (options.logger ?? silentLogger).child({issuer: 'acme', directory: options.directoryUrl})
  }

  /** The orchestrator of one issuance; every step reports progress through `request.onStep`. */
  async issue(request: IssueRequest): Promise<IssuedCertificate> {
    const {solver} = this
    const presented: SolverChallenge[] = []
    try {
      this.setStep(request, `Preparing the ${solver.type.toUpperCase()} solver (${solver.description})`)
      await solver.prepare((event) => this.setStep(request, event.message, event.kind === 'cleanup-failed'))
      const acme = await loadAcme()
      const profile = await this.chooseProfile(request)
      const {client, order} = await this.order(acme, request, profile)
      // In the order the names were given (CAs list authorizations in any order), like certbot.
      const position = (authz: Authorization) => request.domains.indexOf(`${(authz as {wildcard?: boolean}).wildcard ? '*.' : ''}${authz.identifier.value}`)
      const pending = (await client.getAuthorizations(order)).filter((authz) => authz.status !== 'valid').sort((a, b) => position(a) - position(b))
      const challenges = []
      // One at a time, in order: certbot's hooks count CERTBOT_REMAINING_CHALLENGES down.
      for (const [index, authz] of pending.entries()) challenges.push(await this.present(client, authz, pending.length - 1 - index, presented, request))
      await solver.ready(presented)
      await Promise.all(challenges.map(({authz, challenge}) => this.validate(client, authz, challenge, request)))
      // Fetched fresh first: once its authorizations are valid the order is usually ready already.
      await this.pollStatus(client, await client.getOrder(order), ['ready', 'valid'], 'order')
      const keyPem = await this.createKey(acme, request.keySpec)
      const [, csr] = await acme.crypto.createCsr(csrSubject(request.domains), keyPem)
      this.setStep(request, 'Finalizing the order')
      const finalized = await client.finalizeOrder(order, csr)
      const valid = await this.pollStatus(client, finalized, ['valid'], 'order')
      this.setStep(request, 'Downloading the certificate')
      const [leaf, ...chain] = splitPemChain(await client.getCertificate(valid))
      this.signal?.throwIfAborted()
      // The profile asked for is kept even when this CA lacked it: renewals ask for it again.
      return {certPem: leaf, chainPem: chain.join(''), keyPem, meta: {acmeDirectory: this.options.directoryUrl, ...(request.profile ? {profile: request.profile} : {})}, warnings: this.warnings}
    } catch (error) {
      throw this.wrap(error, request)
    } finally {
      if (presented.length > 0) this.setStep(request, `Removing the ${solver.type.toUpperCase()} answers`)
      await Promise.allSettled(presented.map((challenge) => solver.cleanup(challenge)))
      await solver.close()
    }
  }

  private setStep(request: IssueRequest, step: string, warning = false): void {
    if (!warning) this.signal?.throwIfAborted()
    if (!warning) this.step = step.charAt(0).toLowerCase() + step.slice(1)
    if (warning) this.log.warn({step}, 'acme solver')
    else this.log.debug({step}, 'acme step')
    request.onStep?.(step)
  }

  /** Reuses the stored account of this directory, or registers one (agreeing to the CA's terms). */
  private async account(acme: AcmeParts, request: IssueRequest): Promise<AcmeClient> {
    const {directoryUrl} = this.options
    const key = await this.accounts.key(directoryUrl)
    const record = key.created ? undefined : await this.accounts.record(directoryUrl)
    const client = this.client(acme, key.pem, record?.url)
    if (!record) await this.register(client, request)
    else if (this.options.email && this.options.email !== record.email) await this.updateContact(client, record, request)
    return client
  }

  /**
   * A new --email (or config email) for an existing account: the CA is told, like certbot's
   * update_account. Secondary to the order: if the CA refuses, the order goes on with the old
   * contact (and a forgotten account is registered again, with the new one, by `order`).
   */
  private async updateContact(client: AcmeClient, record: AccountRecord, request: IssueRequest): Promise<void> {
    const {email} = this.options
    this.setStep(request, `Updating the account's contact to ${email}`)
    try {
      await client.updateAccount({contact: [`mailto:${email}`]})
      await this.accounts.save({...record, email})
    } catch (error) {
      this.log.warn({err: (error as Error).message, problem: this.lastProblem}, 'account contact not updated')
      this.lastProblem = undefined
    }
  }

  /** `agreedBefore`: the CA forgot an account the user registered (and agreed for) earlier. */
  private async register(client: AcmeClient, request: IssueRequest, agreedBefore = false): Promise<void> {
    const {directoryUrl, email} = this.options
    // The user deactivated this directory's account: a new one is their act, not a renewal's.
    const retired = agreedBefore || this.options.termsOfServiceAgreed ? undefined : await this.accounts.retired?.(directoryUrl)
    if (retired) throw accountDeactivated(directoryUrl, retired)
    const terms = await client.getTermsOfServiceUrl()
    // RFC 8555 7.3: agreeing is the user's act; mfc never sends it on its own.
    if (terms && !this.options.termsOfServiceAgreed && !agreedBefore) throw termsNotAgreed(directoryUrl, terms)
    this.setStep(request, `Registering an ACME account${email ? ` for ${email}` : ''}`)
    await client.createAccount({...(terms ? {termsOfServiceAgreed: true} : {}), ...(email ? {contact: [`mailto:${email}`]} : {})})
    const eabKid = this.options.externalAccount?.kid
    await this.accounts.save({directory: directoryUrl, url: client.getAccountUrl(), email, ...(eabKid ? {eabKid} : {}), createdAt: this.options.clock.now().toISOString()})
  }

  /**
   * Creates the order. If the CA forgot the stored account (a test CA restarted, an account
   * deactivated), registers the same key again once and retries.
   */
  /** The profiles this CA offers (see AcmeIssuer.profiles). */
  async profiles(): Promise<Record<string, string>> {
    const acme = await loadAcme()
    const {directoryUrl} = this.options
    try {
      const response = await acme.axios.get(directoryUrl, {timeout: this.options.requestTimeoutMs ?? 30_000, headers: {'User-Agent': this.options.userAgent ?? 'mfc node-acme-client/5'}, ...(this.signal ? {signal: this.signal} : {})})
      const profiles = (response.data as {meta?: {profiles?: unknown}}).meta?.profiles
      return typeof profiles === 'object' && profiles !== null ? Object.fromEntries(Object.entries(profiles).map(([name, text]) => [name, String(text)])) : {}
    } catch (error) {
      if (isTlsTrustError(error)) throw this.trustError(directoryUrl, error)
      throw new IssuerError(`Cannot read the ACME directory ${directoryUrl}: ${describeNetworkError(error)}.`, {
        code: 'MFC_ISSUER_UNREACHABLE', cause: error, suggestions: [`Check the directory URL and the network (curl -sS ${directoryUrl}).`],
      })
    }
  }

  /** The profile to send: the one asked for when offered; none (with a warning) or an error when not. */
  private async chooseProfile(request: IssueRequest): Promise<string | undefined> {
    const {profile, profileRequired} = request
    if (!profile) return undefined
    this.setStep(request, `Checking that the CA offers the "${profile}" profile`)
    const offered = await this.profiles()
    if (profile in offered) return profile
    const names = Object.keys(offered)
    const list = names.length > 0 ? `it offers ${names.map((n) => `"${n}"`).join(', ')}` : 'it offers no profiles'
    if (profileRequired) {
      throw new UsageError(`The CA at ${this.options.directoryUrl} does not offer the required profile "${profile}" (${list}).`, {
        code: 'MFC_USAGE',
        suggestions: [names.length > 0 ? `Pick one of them: --required-profile ${names[0]} (\`mfc ssl profiles --acme-directory ${this.options.directoryUrl}\` describes each).` : 'Drop --required-profile, or use a CA that offers profiles (Let\'s Encrypt: classic, tlsserver, shortlived).'],
      })
    }

    this.warnings.push(`The CA at ${this.options.directoryUrl} does not offer the profile "${profile}" (${list}): ordered its default instead. Renewals will ask for "${profile}" again.`)
    this.log.warn({profile, offered: names}, 'preferred ACME profile not offered')
    return undefined
  }

  private async order(acme: AcmeParts, request: IssueRequest, profile: string | undefined): Promise<{client: AcmeClient; order: Order}> {
    let client = await this.account(acme, request)
    this.setStep(request, `Ordering a certificate for ${request.domains.join(', ')}`)
    const payload = {identifiers: request.domains.map(identifier), ...(profile ? {profile} : {})}
    try {
      return {client, order: await client.createOrder(payload)}
    } catch (error) {
      if (this.lastProblem?.type !== `${PROBLEM}accountDoesNotExist`) throw error
      client = this.client(acme, (await this.accounts.key(this.options.directoryUrl)).pem)
      await this.register(client, request, true)
      this.setStep(request, `Ordering a certificate for ${request.domains.join(', ')}`)
      return {client, order: await client.createOrder(payload)}
    }
  }

  private client(acme: AcmeParts, accountKey: string, accountUrl?: string): AcmeClient {
    const {directoryUrl, externalAccount} = this.options
    const client = new acme.Client({directoryUrl, accountKey, ...(accountUrl ? {accountUrl} : {}), ...(externalAccount ? {externalAccountBinding: externalAccount} : {})})
    this.instrument(client)
    return client
  }

  /**
   * acme-client's transport retries 5xx/429 with a 5 s step and sleeps through any Retry-After
   * (an hour for a rate limit), and it keeps only the problem's detail. So its axios
   * interceptors are removed (loadAcme) and its HTTP client wrapped here: backoff with jitter,
   * short Retry-Afters honoured, long ones turned into "try again after", the last problem
   * document kept for error messages, and more badNonce retries than its default 5 (a CA may
   * reject a large share of nonces: Pebble's tests use up to 50 %).
   */
  private instrument(client: AcmeClient): void {
    const http = (client as unknown as {http: HttpClientInternals}).http
    const send = http.request.bind(http)
    http.maxBadNonceRetries = 20
    const transport = {...TRANSPORT, ...this.options.retry}
    const maxWait = this.options.maxRetryAfterMs ?? 20_000
    // Per request, not on acme-client's shared axios defaults: timeout, User-Agent and this call's AbortSignal.
    const perRequest = {timeout: this.options.requestTimeoutMs ?? 30_000, userAgent: this.options.userAgent ?? 'mfc node-acme-client/5'}
    http.request = (url, method, opts = {}) => retry(async () => {
      let response: RawResponse
      try {
        const headers = {...(opts as {headers?: Record<string, string>}).headers, 'User-Agent': perRequest.userAgent}
        response = await send(url, method, {...opts, headers, timeout: perRequest.timeout, ...(this.signal ? {signal: this.signal} : {})})
      } catch (error) {
        this.signal?.throwIfAborted()
        if (isTlsTrustError(error)) throw this.trustError(url, error)
        throw new TransientError(`${method.toUpperCase()} ${url} failed: ${describeNetworkError(error)}`)
      }

      this.retryAfters.set(url, parseRetryAfter(response.headers['retry-after']))
      // Kept until the next answer, so an error acme-client raises from it can be explained.
      this.lastProblem = response.status >= 400 && isProblem(response.data) ? {...response.data, url} : undefined
      if (response.status === 429 || response.status >= 500) {
        throw new TransientError(`${method.toUpperCase()} ${url} answered HTTP ${response.status}`, parseRetryAfter(response.headers['retry-after']), response)
      }

      return response
    }, {
      ...transport,
      signal: this.signal,
      retryable: (error) => {
        if (!(error instanceof TransientError)) return false
        if (error.retryAfterMs === undefined) return true
        return error.retryAfterMs <= maxWait ? error.retryAfterMs : false
      },
      onRetry: (error, attempt, delay) => this.log.warn({attempt: attempt + 1, delayMs: delay, error: (error as Error).message}, 'retrying ACME request'),
    }).catch((error: unknown) => {
      throw error instanceof TransientError ? this.transportError(error) : error
    })
  }

  /** Hands one authorization's challenge of the solver's type to the solver (not yet to the CA). */
  private async present(client: AcmeClient, authz: Authorization, remaining: number, presented: SolverChallenge[], request: IssueRequest): Promise<{authz: Authorization; challenge: Authorization['challenges'][number]}> {
    const {type} = this.solver
    const domain = authz.identifier.value
    const challenge = authz.challenges.find((c) => c.type === type)
    if (!challenge) {
      const wildcard = (authz as {wildcard?: boolean}).wildcard === true
      throw new IssuerError(`The CA offers no ${type.toUpperCase()} challenge for ${wildcard ? '*.' : ''}${domain} (only ${authz.challenges.map((c) => c.type).join(', ') || 'none'}).`, {
        code: 'MFC_CHALLENGE_FAILED',
        suggestions: [wildcard || type === 'http-01' ? 'Wildcard names need DNS-01: add --preferred-challenges dns with --dns-rfc2136-credentials FILE or --manual-auth-hook CMD.' : `Use a CA that offers ${type.toUpperCase()} for this name.`],
      })
    }

    const validation = await client.getChallengeKeyAuthorization(challenge)
    const solved: SolverChallenge = {domain, wildcard: (authz as {wildcard?: boolean}).wildcard === true, token: challenge.token, validation, remaining, allDomains: request.domains}
    presented.push(solved)
    this.setStep(request, `Presenting the ${type.toUpperCase()} challenge for ${solved.wildcard ? '*.' : ''}${domain}`)
    await this.solver.present(solved)
    return {authz, challenge}
  }

  /** Tells the CA the challenge is ready and waits until it has validated it. */
  private async validate(client: AcmeClient, authz: Authorization, challenge: Authorization['challenges'][number], request: IssueRequest): Promise<void> {
    this.setStep(request, `Answering the ${challenge.type.toUpperCase()} challenge for ${authz.identifier.value}`)
    await client.completeChallenge(challenge)
    try {
      await this.pollStatus(client, authz, ['valid'], 'authorization')
    } catch (error) {
      throw await this.challengeError(client, authz, challenge.token, error)
    }
  }

  /**
   * Polls an order or authorization (POST-as-GET) until it reaches one of `done`: a 50 ms
   * floor doubling to 2 s, or the CA's Retry-After when it sends one; bounded by `timeoutMs`.
   */
  private async pollStatus<T extends Order | Authorization>(client: AcmeClient, item: T, done: string[], kind: 'order' | 'authorization'): Promise<T> {
    const poll = {...POLL, ...this.options.poll}
    const deadline = Date.now() + poll.timeoutMs
    let current = item
    for (let attempt = 0; ; attempt++) {
      if (done.includes(current.status)) return current
      if (current.status === 'invalid') {
        const problem = (current as {error?: Problem}).error
        throw new IssuerError(`The CA marked the ${kind} invalid${problem?.detail ? `: ${problem.detail}` : ''}.`, {code: 'MFC_ISSUER_FAILED', problem: {...problem, url: current.url}})
      }

      if (Date.now() >= deadline) {
        throw new IssuerError(`The ${kind} at ${current.url} is still "${current.status}" after ${Math.round(poll.timeoutMs / 1000)} s.`, {
          code: 'MFC_ISSUER_FAILED',
          suggestions: ['The CA is slow or stuck: try again later.'],
        })
      }

      const hinted = this.retryAfters.get(current.url)
      await sleep(Math.min(Math.max(hinted ?? backoffDelay(attempt, poll), poll.minMs), Math.max(0, deadline - Date.now())), this.signal)
      current = (kind === 'order' ? await client.getOrder(current as Order) : (await client.getAuthorizations({authorizations: [current.url]} as Order))[0]) as T
    }
  }

  private async createKey(acme: AcmeParts, spec: KeySpec): Promise<string> {
    const key = spec.type === 'ecdsa' ? await acme.crypto.createPrivateEcdsaKey(spec.curve) : await acme.crypto.createPrivateRsaKey(spec.size)
    return key.toString()
  }

  /** A failed authorization, told the way a user can act on: the CA's words and the URL it tried. */
  private async challengeError(client: AcmeClient, authz: Authorization, token: string, cause: unknown): Promise<MfcError> {
    if (cause instanceof MfcError && !(cause instanceof IssuerError && cause.code === 'MFC_ISSUER_FAILED')) return cause
    const domain = authz.identifier.value
    const [latest] = await client.getAuthorizations({authorizations: [authz.url]} as Order).catch(() => [authz])
    const challenge = latest.challenges.find((c) => c.type === this.solver.type) as {error?: Problem; validationRecord?: {url?: string}[]} | undefined
    const problem: Problem = challenge?.error ?? (cause as IssuerError).problem ?? {detail: (cause as Error).message}
    if (this.solver.type === 'dns-01') {
      const record = `_acme-challenge.${domain}`
      return new IssuerError(`The CA could not validate ${domain}: ${problem.detail ?? 'no detail given'}${problem.type ? ` (${problem.type.replace(PROBLEM, '')})` : ''}. It looked up TXT ${record}.`, {
        code: 'MFC_CHALLENGE_FAILED', cause, problem: {type: problem.type, detail: problem.detail, status: problem.status, url: record},
        suggestions: [`Check what the world sees: dig +short TXT ${record} (through a public resolver), and that the zone's NS records point at the server mfc updated (${this.solver.description}).`],
      })
    }

    // Boulder lists the URL in validationRecord; Pebble only inside its detail text.
    const tried = challenge?.validationRecord?.find((r) => r.url)?.url
      ?? problem.detail?.match(/https?:\/\/[^\s"']+/)?.[0]
      ?? `http://${domain}/.well-known/acme-challenge/${token}`
    return new IssuerError(`The CA could not validate ${domain}: ${problem.detail ?? 'no detail given'}${problem.type ? ` (${problem.type.replace(PROBLEM, '')})` : ''}. It fetched ${tried}.`, {
      code: 'MFC_CHALLENGE_FAILED',
      cause,
      problem: {type: problem.type, detail: problem.detail, status: problem.status, url: tried},
      suggestions: [
        `Check that ${domain} resolves (A/AAAA) to this machine and that HTTP to it reaches ${this.solver.description}.`,
        `Test from outside: curl -i ${tried.replace(token, 'test')} should reach this machine (a 404 from mfc is fine).`,
      ],
    })
  }

  /** A certificate the CA's HTTPS listener presents that Node does not trust: retrying cannot help. */
  private trustError(url: string, error: unknown): IssuerError {
    return new IssuerError(`The CA's HTTPS certificate at ${new URL(url).host} is not trusted: ${describeNetworkError(error)}.`, {
      code: 'MFC_ISSUER_UNREACHABLE',
      cause: error,
      problem: {detail: (error as Error).message, url},
      suggestions: ['For a private or test CA (step-ca, Pebble), trust its root: NODE_EXTRA_CA_CERTS=/path/to/root.pem mfc ...', `Check that ${this.options.directoryUrl} is the right directory URL.`],
    })
  }

  private transportError(error: TransientError): IssuerError {
    const status = error.response?.status
    const problem = isProblem(error.response?.data) ? error.response.data : undefined
    if (status === 429 || problem?.type === `${PROBLEM}rateLimited`) {
      const waitMs = error.retryAfterMs
      const when = waitMs === undefined ? 'later' : `after ${new Date(this.options.clock.now().getTime() + waitMs).toISOString()}`
      return new IssuerError(`The CA rate-limited ${this.step}: ${problem?.detail ?? `HTTP ${status}`}. Try again ${when}.`, {
        code: 'MFC_ISSUER_RATE_LIMITED',
        problem: {type: problem?.type, detail: problem?.detail, status, url: this.options.directoryUrl},
        ...(waitMs === undefined ? {} : {retryAfter: new Date(this.options.clock.now().getTime() + waitMs)}),
        suggestions: [`Wait until ${when === 'later' ? 'the limit resets' : when.slice(6)} before renewing again; repeated attempts can extend the limit.`,
          'Use --staging (or --dry-run) while testing: staging limits are far higher.'],
      })
    }

    const down = status === undefined
    const retryAfter = error.retryAfterMs === undefined ? undefined : new Date(this.options.clock.now().getTime() + error.retryAfterMs)
    return new IssuerError(`The CA at ${this.options.directoryUrl} ${down ? 'could not be reached' : `failed (HTTP ${status})`} while ${this.step}, after ${(this.options.retry ?? TRANSPORT).attempts} attempts: ${problem?.detail ?? error.message}.`, {
      code: down ? 'MFC_ISSUER_UNREACHABLE' : 'MFC_ISSUER_FAILED',
      cause: error,
      ...(retryAfter ? {retryAfter} : {}),
      problem: {type: problem?.type, detail: problem?.detail ?? error.message, status, url: error.response ? undefined : this.options.directoryUrl},
      suggestions: [
        down ? `Check the network and the directory URL (curl -sS ${this.options.directoryUrl}).` : 'The CA has a problem: check its status page and try again later.',
        'Nothing was changed: the current certificate stays in place.',
      ],
    })
  }

  /** Every error leaves as an MfcError; acme-client's plain Errors get the CA's problem document back. */
  private wrap(error: unknown, request: IssueRequest): MfcError {
    if (error instanceof MfcError) return error
    if (this.signal?.aborted) return abortedError(request, this.step, this.signal)
    const problem = this.lastProblem
    const rateLimited = problem?.type === `${PROBLEM}rateLimited`
    const detail = problem?.detail ?? (error as Error).message
    const type = problem?.type ? ` (${problem.type.replace(PROBLEM, '')})` : ''
    return new IssuerError(`The CA at ${this.options.directoryUrl} refused ${this.step} for ${request.domains.join(', ')}: ${detail}${type}.`, {
      code: rateLimited ? 'MFC_ISSUER_RATE_LIMITED' : 'MFC_ISSUER_FAILED',
      cause: error,
      problem: problem ? {type: problem.type, detail: problem.detail, status: problem.status, url: problem.url} : {detail},
      suggestions: suggestionsFor(problem?.type, detail, errnoCode(error), request),
    })
  }
}

type AcmeParts = Pick<AcmeModule, 'Client' | 'crypto' | 'axios'>
let loaded: Promise<AcmeParts> | undefined

/**
 * Imports acme-client once and replaces its transport policy with mfc's (see `instrument`).
 * Its index also loads node-forge for a legacy API mfc never calls (the full import costs
 * about 1.2x the CPU time of these three modules, measured with hyperfine), so the three are
 * imported directly (acme-client 5 has no exports map). These paths, the private HttpClient and
 * the interceptor managers are internals: acme-client is pinned to one exact version and
 * test/unit/acme-client-contract.test.ts fails, naming the part, when an upgrade moves one.
 * Nothing process-wide is changed beyond acme-client's own axios instance, which only this
 * module uses: timeouts, User-Agent and the AbortSignal travel with each request.
 */
async function loadAcme(): Promise<AcmeParts> {
  loaded ??= (async () => {
    const load = async (path: string) => {
      const mod = await import(path) as {default?: unknown}
      return mod.default ?? mod
    }

    const [Client, crypto, axios] = await Promise.all(['acme-client/src/client.js', 'acme-client/src/crypto/index.js', 'acme-client/src/axios.js'].map((path) => load(path)))
    const acme = {Client, crypto, axios} as AcmeParts
    acme.axios.interceptors.request.clear()
    acme.axios.interceptors.response.clear()
    return acme
  })()
  return loaded
}

/** Exit 2, like any missing flag: the user must read and accept the terms (certbot's --agree-tos). */
function termsNotAgreed(directoryUrl: string, terms: string): UsageError {
  return new UsageError(`The CA at ${directoryUrl} requires agreeing to its terms of service (${terms}) before mfc may register an account.`, {
    code: 'MFC_TOS_REQUIRED',
    suggestions: [`Read ${terms}, then run again with --agree-tos (or on a terminal without --yes, to be asked).`],
  })
}

/** Issuance after `mfc account deactivate`: registering a new account needs the user's word. */
function accountDeactivated(directoryUrl: string, retired: {url: string; retiredAt: string}): IssuerError {
  return new IssuerError(`The ACME account ${retired.url} at ${directoryUrl} was deactivated (${retired.retiredAt}, \`mfc account deactivate\`): mfc will not register a new account without your consent.`, {
    code: 'MFC_ACCOUNT_DEACTIVATED',
    suggestions: [`Register a new account for every node with one renewal that agrees to the CA's terms: mfc cert renew --force --agree-tos (on any node). The current certificates stay in place meanwhile.`],
  })
}

/**
 * The CA's terms-of-service URL when registering at `directoryUrl` would need the user's
 * consent (no stored account for it yet); undefined when there is an account or no terms.
 * Lets a command ask before its progress display starts.
 */
export async function termsToAccept(directoryUrl: string, acmeDir: string): Promise<string | undefined> {
  if (await new AccountStore(acmeDir).record(directoryUrl)) return undefined
  const acme = await loadAcme()
  const client = new acme.Client({directoryUrl, accountKey: Buffer.alloc(0)})
  return (await client.getTermsOfServiceUrl()) ?? undefined
}

/** A cancelled order (serve shutting down): nothing was written, the next run starts afresh. */
function abortedError(request: IssueRequest, step: string, signal: AbortSignal): IssuerError {
  return new IssuerError(`The order for ${request.domains.join(', ')} was cancelled while ${step}.`, {
    code: 'MFC_ISSUER_FAILED',
    cause: signal.reason,
    suggestions: ['Nothing was changed: the current certificate stays in place; the next renewal run orders again.'],
  })
}

function identifier(name: string): {type: 'dns' | 'ip'; value: string} {
  return {type: isIP(name) ? 'ip' : 'dns', value: name}
}

/** CN is optional for ACME and limited to 64 bytes: set it to the first DNS name that fits. */
function csrSubject(domains: string[]): {commonName?: string; altNames: string[]} {
  const commonName = domains.find((d) => !isIP(d) && d.length <= 64)
  return commonName ? {commonName, altNames: domains} : {altNames: domains}
}

function isProblem(data: unknown): data is Problem {
  return typeof data === 'object' && data !== null && typeof (data as Problem).type === 'string'
}

const TLS_TRUST_CODES = /^(UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|ERR_TLS_CERT_ALTNAME_INVALID|HOSTNAME_MISMATCH)/

function isTlsTrustError(error: unknown): boolean {
  return TLS_TRUST_CODES.test((error as {code?: string}).code ?? '')
}

function describeNetworkError(error: unknown): string {
  const code = (error as {code?: string}).code
  const message = (error as Error).message
  return code && !message.includes(code) ? `${message} (${code})` : message
}

function suggestionsFor(type: string | undefined, detail: string, errno: string | undefined, request: IssueRequest): string[] {
  const kind = type?.replace(PROBLEM, '')
  // A binding the CA could not verify comes as `unauthorized` or `malformed`, told by its detail.
  if (kind !== 'externalAccountRequired' && /external account/i.test(detail)) {
    return ['The CA could not verify the External Account Binding: copy the key ID and HMAC key again from the CA (--eab-kid, --eab-hmac-key or MFC_ACME_EAB_*); some CAs accept each pair only once.']
  }

  switch (kind) {
    case 'rejectedIdentifier':
    case 'unsupportedIdentifier':
      if (request.domains.some((d) => isIP(d)) && request.profile !== 'shortlived') {
        return ['This CA refuses IP-address certificates under this profile: Let\'s Encrypt issues them only as 6-day certificates. Add --profile shortlived (or --required-profile shortlived).']
      }

      return ['The CA will not issue for one of these names: check the spelling, and that it is a public DNS name.']
    case 'caa':
      return ['A CAA record forbids this CA: add it to the CAA records of the domain.']
    case 'invalidContact':
      return ['Fix the email address (--email) and try again.']
    case 'userActionRequired':
      return ['Open the CA\'s terms of service (see its directory) and accept them.']
    case 'externalAccountRequired':
      return ['This CA registers accounts only with External Account Binding: get a key ID and HMAC key from the CA (ZeroSSL: Developer section of its dashboard) and pass --eab-kid and --eab-hmac-key, or set MFC_ACME_EAB_KID and MFC_ACME_EAB_HMAC_KEY.']
    default:
      return [errno ? 'Check the network connection to the CA.' : 'Run again with --debug for the full exchange.', 'Nothing was changed: the current certificate stays in place.']
  }
}
