import {promises as fs} from 'node:fs'
import {join} from 'node:path'

import type {ChallengeResponder} from '../acme/challenge-responder.js'
import {isSafeToken} from '../acme/challenge-responder.js'
import {SharedDirResponder} from '../acme/challenge-shared-dir.js'
import type {PgDatabase} from './postgres.js'

/**
 * HTTP-01 tokens where every server can answer them (certmagic's distributed solving): the
 * node that places an order adds them, whichever node the CA's request reaches looks them up.
 * Contract: what `add` stored is returned by `lookup` on any instance over the same storage
 * until `remove`; an unknown or unsafe token is undefined (never an error, never a path).
 */
export interface ChallengeTokenStore extends ChallengeResponder {
  lookup(token: string): Promise<string | undefined>
}

/** The embedded default: token files in the state directory (what `mfc serve` answers from). */
export class FileChallengeTokens extends SharedDirResponder implements ChallengeTokenStore {
  constructor(private readonly tokenDir: string) {
    super(tokenDir)
  }

  async lookup(token: string): Promise<string | undefined> {
    if (!isSafeToken(token)) return undefined
    return fs.readFile(join(this.tokenDir, token), 'utf8').catch(() => undefined)
  }
}

/** Tokens in PostgreSQL; a row expires after `ttlMs` even if its `remove` never came (a crash). */
export class PgChallengeTokens implements ChallengeTokenStore {
  readonly description = 'challenge tokens in the shared PostgreSQL (answered by every node)'

  constructor(private readonly db: PgDatabase, private readonly ttlMs = 3_600_000) {}

  async prepare(): Promise<void> {
    await this.db.query('DELETE FROM mfc_challenge_tokens WHERE expires_at < now()')
  }

  async add(token: string, keyAuthorization: string): Promise<void> {
    if (!isSafeToken(token)) throw new Error(`Refusing unsafe challenge token ${JSON.stringify(token)}`)
    await this.db.query(`INSERT INTO mfc_challenge_tokens (token, key_authorization, expires_at) VALUES ($1, $2, now() + $3 * interval '1 millisecond')
      ON CONFLICT (token) DO UPDATE SET key_authorization = excluded.key_authorization, expires_at = excluded.expires_at`, [token, keyAuthorization, this.ttlMs])
  }

  async remove(token: string): Promise<void> {
    if (isSafeToken(token)) await this.db.query('DELETE FROM mfc_challenge_tokens WHERE token = $1', [token])
  }

  async lookup(token: string): Promise<string | undefined> {
    if (!isSafeToken(token)) return undefined
    const [row] = await this.db.query<{key_authorization: string}>('SELECT key_authorization FROM mfc_challenge_tokens WHERE token = $1 AND expires_at > now()', [token])
    return row?.key_authorization
  }

  async close(): Promise<void> {}
}
