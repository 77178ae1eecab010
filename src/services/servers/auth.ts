import {hash, randomBytes, timingSafeEqual} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {dirname} from 'node:path'

import type {MfcConfig} from '../../lib/config.js'
import {ConfigError, UsageError, errnoCode} from '../../lib/errors.js'
import {ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'

/** One-shot digest: several times cheaper per call than createHash().update().digest(). */
export function sha256(text: string): Buffer {
  return hash('sha256', text, 'buffer')
}

/** Equal-length digests compared with timingSafeEqual: time depends on neither content nor length. */
export function constantTimeEqual(a: string, b: string): boolean {
  return timingSafeEqual(sha256(a), sha256(b))
}

/** Where the API token came from; the token itself is never logged or printed. */
export interface ApiToken {
  readonly token: string
  /** `cluster`: the shared database's sealed secret `api_token` (cluster mode, docs/cluster.md). */
  readonly source: 'env' | 'file' | 'generated' | 'cluster'
  /** The token file (for `file` and `generated`). */
  readonly file?: string
  /** `cluster` only: this node generated the token and stored it (the first node to start). */
  readonly created?: boolean
  /** Something the user should fix but that does not stop serve (a token file others can read). */
  readonly warning?: string
}

/**
 * The cluster's shared secrets (PgSecrets): sealed with the storage key, one value per name.
 * Contract: `get` is undefined when unset; `setIfAbsent` never replaces a value and says
 * whether it wrote (so nodes racing to create one converge on the first); `set` replaces it.
 * `label` names the database for messages (never a password).
 */
export interface SharedSecrets {
  readonly label: string
  get(name: string): Promise<string | undefined>
  setIfAbsent(name: string, value: string): Promise<boolean>
  set(name: string, value: string): Promise<void>
}

/** The name of the API token among the cluster's shared secrets. */
export const API_TOKEN_SECRET = 'api_token'

/** Where a resolved token lives, for messages and --json (never the token). */
export function tokenWhere(token: ApiToken, shared?: SharedSecrets): string {
  if (token.source === 'env') return 'MFC_API_TOKEN'
  if (token.source === 'cluster') return `the cluster database${shared ? ` (${shared.label})` : ''}`
  return `the token file ${token.file}`
}

/** A short, non-secret fingerprint of a token (the first 16 hex digits of its SHA-256), to compare nodes. */
export function tokenFingerprint(token: string): string {
  return sha256(token).toString('hex').slice(0, 16)
}

const GENERATE_HINT = 'Generate one with `openssl rand -base64 32` (or delete the token file and let `mfc serve` write one).'

/**
 * Why `token` is too weak for the API, or undefined when it carries at least 128 bits. The
 * judge is deliberately simple: hex-only text counts 4 bits a character (so 32+ characters),
 * anything else at most 6 (base64's alphabet: 22+ characters, `=` padding not counted); and a
 * token of fewer than 8 distinct characters or made of one short piece repeated
 * (`abcabcabc...`) is refused whatever its length.
 */
export function weakTokenReason(token: string): string | undefined {
  const body = token.replace(/=+$/, '')
  const hex = /^[0-9a-fA-F]+$/.test(body)
  const bits = body.length * (hex ? 4 : 6)
  if (bits < 128) return `it is ${body.length} characters long; at least ${hex ? 32 : 22} are needed for 128 bits${hex ? ' of hex' : ''}`
  if (new Set(body).size < 8) return 'it uses fewer than 8 different characters'
  for (let period = 1; period <= body.length / 2; period++) {
    if (body.slice(period) === body.slice(0, -period)) return `it repeats "${period <= 4 ? body.slice(0, period) : `${body.slice(0, 4)}...`}" (a pattern, not a secret)`
  }

  return undefined
}

/**
 * The API token: MFC_API_TOKEN, else the token file when one is configured (`api_token_file`)
 * or, without `shared` (the embedded default), the default `<state>/api-token`; else, in
 * cluster mode, the shared database's sealed `api_token`; else a new random token (256 bits),
 * written to the token file 0600 or, in cluster mode, stored with set-if-absent so nodes
 * starting at once converge on the first one stored. Never the original's `development-token`.
 * A token from any source must pass `weakTokenReason` (a ConfigError naming where it came from
 * otherwise); a token file readable by group or others gives a `warning`.
 */
export async function resolveApiToken(config: MfcConfig, shared?: SharedSecrets): Promise<ApiToken> {
  const env = envToken(config)
  if (env) return env
  const file = await fileToken(config, shared)
  if (file) return file
  if (shared) return clusterToken(shared)
  const token = newToken()
  const path = apiTokenFile(config)
  await ensureDir(dirname(path), 0o700)
  await writeFileAtomic(path, token + '\n', 0o600)
  return {token, source: 'generated', file: path}
}

/**
 * The token a running serve accepts, without generating one (probes and status): the same
 * sources in the same order as `resolveApiToken`; undefined when none has one or it cannot be
 * read (a database that is down).
 */
export async function readApiToken(config: MfcConfig, shared?: SharedSecrets): Promise<string | undefined> {
  if (config.secrets.apiToken) return config.secrets.apiToken
  if (!shared || config.settings.api_token_file) {
    const token = (await fs.readFile(apiTokenFile(config), 'utf8').catch(() => '')).trim()
    if (token || !shared) return token || undefined
  }

  return shared!.get(API_TOKEN_SECRET).catch(() => undefined)
}

/**
 * Replaces the token in effect with a new random one, where it lives: the token file (atomic,
 * 0600) or the cluster database (one statement). Refuses (UsageError) when MFC_API_TOKEN is set,
 * since mfc cannot change the environment that set it. Running serves keep the token they
 * started with until restarted.
 */
export async function rotateApiToken(config: MfcConfig, shared?: SharedSecrets): Promise<ApiToken> {
  if (config.secrets.apiToken) {
    throw new UsageError('The API token comes from MFC_API_TOKEN, which mfc cannot change.', {
      code: 'MFC_USAGE',
      suggestions: ['Set a new value where MFC_API_TOKEN is set (the service unit or shell): export MFC_API_TOKEN="$(openssl rand -base64 32)", then restart serve.'],
    })
  }

  const token = newToken()
  if (shared && !config.settings.api_token_file) {
    await shared.set(API_TOKEN_SECRET, token)
    return {token, source: 'cluster'}
  }

  const file = apiTokenFile(config)
  await ensureDir(dirname(file), 0o700)
  await writeFileAtomic(file, token + '\n', 0o600)
  return {token, source: 'file', file}
}

/** A new random API token (256 bits, base64url). */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

/** The token file in effect: `api_token_file`, else `<state>/api-token`. */
export function apiTokenFile(config: MfcConfig): string {
  return config.settings.api_token_file ?? config.paths.apiTokenFile
}

function envToken(config: MfcConfig): ApiToken | undefined {
  const token = config.secrets.apiToken
  if (!token) return undefined
  const weak = weakTokenReason(token)
  if (weak) {
    throw new ConfigError(`MFC_API_TOKEN is too weak to guard the API: ${weak}.`, {code: 'MFC_CONFIG_VALUE', suggestions: [`Set MFC_API_TOKEN to a random value: export MFC_API_TOKEN="$(openssl rand -base64 32)".`]})
  }

  return {token, source: 'env'}
}

/** The token file's token; in cluster mode only an explicitly configured file counts. */
async function fileToken(config: MfcConfig, shared?: SharedSecrets): Promise<ApiToken | undefined> {
  if (shared && !config.settings.api_token_file) return undefined
  const file = apiTokenFile(config)
  try {
    const token = (await fs.readFile(file, 'utf8')).trim()
    const weak = weakTokenReason(token)
    if (weak) throw new ConfigError(`The API token in ${file} is too weak to guard the API: ${weak}.`, {code: 'MFC_CONFIG_VALUE', suggestions: [GENERATE_HINT, `For example: openssl rand -base64 32 > ${file} && chmod 600 ${file}`]})
    const mode = (await fs.stat(file)).mode & 0o777
    const warning = mode & 0o077 ? `The API token file ${file} is readable by ${mode & 0o007 ? 'everyone' : 'its group'} (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${file}.` : undefined
    return {token, source: 'file', file, ...(warning ? {warning} : {})}
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error
    return undefined
  }
}

/** The cluster's one token: the stored one, else the first stored by any node (set-if-absent). */
async function clusterToken(shared: SharedSecrets): Promise<ApiToken> {
  let token = await shared.get(API_TOKEN_SECRET)
  let created = false
  if (token === undefined) {
    created = await shared.setIfAbsent(API_TOKEN_SECRET, newToken())
    token = await shared.get(API_TOKEN_SECRET)
    if (token === undefined) throw new Error(`the cluster's API token vanished from ${shared.label} right after it was stored`)
  }

  const weak = weakTokenReason(token)
  if (weak) {
    throw new ConfigError(`The API token in the cluster database (${shared.label}, shared secret "${API_TOKEN_SECRET}") is too weak to guard the API: ${weak}.`, {
      code: 'MFC_CONFIG_VALUE',
      suggestions: ['Replace it for every node with a random one: `mfc api-token rotate` (then restart each node).', 'Or give this node its own: MFC_API_TOKEN or api_token_file (both win over the database).'],
    })
  }

  return {token, source: 'cluster', created}
}

export interface Session {
  id: string
  csrfToken: string
  expiresAt: number
}

/**
 * Where sessions are shared between nodes (cluster mode: PgSessions). Contract: what `save`
 * stored is returned by `load` on every node until it expires or `remove`; errors reject.
 */
export interface SessionReplica {
  save(session: Session): Promise<void>
  load(id: string): Promise<Session | undefined>
  remove(id: string): Promise<void>
}

/**
 * Dashboard login sessions, in memory (a restart logs everyone out, which is the safe
 * direction). With a replica (`share`, cluster mode) a login is also written there, a cookie
 * this node does not know is looked up there once (`adoptShared`), and a logout removes it there. Ids and CSRF tokens are 256-bit random; a session expires `ttlMs` after login.
 * The store holds at most `maxSessions`; the oldest is evicted first.
 *
 * Whatever ends a session (destroy, expiry noticed by `get`, eviction) calls every `onEnd`
 * listener once with its id, synchronously, so what hangs off a session (its WebSockets) ends
 * with it. Expiry is lazy: a session nobody asks about ends at the next `get` or `sweep`.
 */
export class SessionStore {
  private readonly sessions = new Map<string, Session>()
  private readonly listeners = new Set<(id: string) => void>()
  private replica?: SessionReplica

  constructor(private readonly ttlMs = 3_600_000, private readonly maxSessions = 1000, private readonly now: () => number = Date.now) {}

  /** Whether sessions are shared with other nodes (a replica is set). */
  get shared(): boolean {
    return this.replica !== undefined
  }

  /** Shares sessions through `replica` from now on (serve wires it once, before listening). */
  share(replica: SessionReplica): void {
    this.replica = replica
  }

  /**
   * `create()`, then written to the replica before the caller answers, so the browser's next
   * request may reach any node. A replica that fails (database down) leaves a session that
   * works on this node only.
   */
  async createShared(): Promise<Session> {
    const session = this.create()
    await this.replica?.save(session).catch(() => {})
    return session
  }

  /** The id when it is worth asking the replica about: shared sessions on, and unknown here. */
  unknownShared(id: string | undefined): string | undefined {
    return this.replica && id && !this.sessions.has(id) ? id : undefined
  }

  /** Adopts the replica's session `id`, if it has a live one; never rejects. */
  async adoptShared(id: string): Promise<void> {
    const session = await this.replica?.load(id).catch(() => undefined)
    if (session && session.expiresAt > this.now() && !this.sessions.has(id)) {
      if (this.sessions.size >= this.maxSessions) this.end(this.sessions.keys().next().value!)
      this.sessions.set(id, session)
    }
  }

  create(): Session {
    if (this.sessions.size >= this.maxSessions) this.end(this.sessions.keys().next().value!)
    const session = {id: randomBytes(32).toString('base64url'), csrfToken: randomBytes(32).toString('base64url'), expiresAt: this.now() + this.ttlMs}
    this.sessions.set(session.id, session)
    return session
  }

  get(id: string): Session | undefined {
    const session = this.sessions.get(id)
    if (session && session.expiresAt <= this.now()) {
      this.end(id)
      return undefined
    }

    return session
  }

  /** Ends the session (idempotent: an unknown id is ignored), on every node when shared. */
  destroy(id: string): void {
    this.end(id)
    void this.replica?.remove(id).catch(() => {})
  }

  /** Ends the session here only (another node logged it out). */
  forget(id: string): void {
    this.end(id)
  }

  /** The ids held here (cluster mode matches another node's logout against them). */
  ids(): IterableIterator<string> {
    return this.sessions.keys()
  }

  /** Ends every expired session (the streamer calls it on its ping timer). */
  sweep(): void {
    const now = this.now()
    for (const [id, session] of this.sessions) if (session.expiresAt <= now) this.end(id)
  }

  /** Registers a listener for ended sessions; returns the function that removes it. */
  onEnd(listener: (id: string) => void): () => void {
    this.listeners.add(listener)
    return () => {
      this.listeners.delete(listener)
    }
  }

  private end(id: string): void {
    if (!this.sessions.delete(id)) return
    for (const listener of this.listeners) listener(id)
  }
}

export const SESSION_COOKIE = 'mfc_session'
export const CSRF_HEADER = 'x-csrf-token'

/** The value of one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim()
  }

  return undefined
}

export function sessionCookie(session: Session | null): string {
  const value = session ? session.id : ''
  const maxAge = session ? Math.round((session.expiresAt - Date.now()) / 1000) : 0
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAge}; HttpOnly; Secure; SameSite=Strict`
}
