import {createHash, randomBytes} from 'node:crypto'

import {type Session, type SessionReplica, SessionStore} from '../servers/auth.js'
import type {PgDatabase} from './postgres.js'

/**
 * Dashboard login sessions behind one role, so a session made on node 1 works on node 2.
 * Contract: `create` returns a fresh 256-bit id and CSRF token valid for the store's TTL; `get`
 * returns it on any instance over the same storage until it expires or is destroyed, then
 * undefined; `destroy` is idempotent.
 */
export interface SessionRepository {
  create(): Promise<Session>
  get(id: string): Promise<Session | undefined>
  destroy(id: string): Promise<void>
}

/** The embedded default: the in-memory SessionStore of src/services/servers/auth.ts. */
export class MemorySessions implements SessionRepository {
  constructor(private readonly store = new SessionStore()) {}

  async create(): Promise<Session> {
    return this.store.create()
  }

  async get(id: string): Promise<Session | undefined> {
    return this.store.get(id)
  }

  async destroy(id: string): Promise<void> {
    this.store.destroy(id)
  }
}

/** Only a hash of the id is stored: whoever reads the table cannot sign in with it. */
const idHash = (id: string) => createHash('sha256').update(id).digest()

/** The NOTIFY channel of logouts: the SHA-256 (hex) of the ended session's id. */
export const SESSION_CHANNEL = 'mfc_session_end'

/** The hash a logout notification carries, to match against the ids a node holds. */
export const sessionIdHash = (id: string) => idHash(id).toString('hex')

/**
 * Sessions in PostgreSQL; expired rows are swept on create. Also the replica of serve's
 * in-memory SessionStore (save/load/remove), so a login on node 1 works on node 2.
 */
export class PgSessions implements SessionRepository, SessionReplica {
  constructor(private readonly db: PgDatabase, private readonly ttlMs = 3_600_000, private readonly now: () => number = Date.now) {}

  async create(): Promise<Session> {
    const session: Session = {id: randomBytes(32).toString('base64url'), csrfToken: randomBytes(32).toString('base64url'), expiresAt: this.now() + this.ttlMs}
    await this.db.query('DELETE FROM mfc_sessions WHERE expires_at < $1', [new Date(this.now())])
    await this.db.query('INSERT INTO mfc_sessions (id_hash, csrf_token, expires_at) VALUES ($1, $2, $3)', [idHash(session.id), session.csrfToken, new Date(session.expiresAt)])
    return session
  }

  async get(id: string): Promise<Session | undefined> {
    const [row] = await this.db.query<{csrf_token: string; expires_at: Date}>('SELECT csrf_token, expires_at FROM mfc_sessions WHERE id_hash = $1', [idHash(id)])
    if (!row || row.expires_at.getTime() <= this.now()) return undefined
    return {id, csrfToken: row.csrf_token, expiresAt: row.expires_at.getTime()}
  }

  async destroy(id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('DELETE FROM mfc_sessions WHERE id_hash = $1', [idHash(id)])
      await tx.query('SELECT pg_notify($1, $2)', [SESSION_CHANNEL, sessionIdHash(id)])
    })
  }

  async save(session: Session): Promise<void> {
    await this.db.query('DELETE FROM mfc_sessions WHERE expires_at < $1', [new Date(this.now())])
    await this.db.query('INSERT INTO mfc_sessions (id_hash, csrf_token, expires_at) VALUES ($1, $2, $3) ON CONFLICT (id_hash) DO NOTHING', [idHash(session.id), session.csrfToken, new Date(session.expiresAt)])
  }

  load(id: string): Promise<Session | undefined> {
    return this.get(id)
  }

  remove(id: string): Promise<void> {
    return this.destroy(id)
  }
}
