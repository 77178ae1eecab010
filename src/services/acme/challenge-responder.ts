/** The path prefix of HTTP-01 (RFC 8555 8.3). */
export const CHALLENGE_PATH = '/.well-known/acme-challenge/'

/** Tokens are base64url (RFC 8555 8.1); anything else is refused before it reaches a path. */
export function isSafeToken(token: string): boolean {
  return /^[A-Za-z0-9_-]{1,256}$/.test(token)
}

/**
 * Something that makes `http://<domain>/.well-known/acme-challenge/<token>` answer with the
 * key authorization while the CA validates.
 *
 * Contract: `prepare()` is called once before the order is created, so a port or directory
 * problem surfaces before the CA is asked for anything; `add`/`remove` are idempotent per
 * token; `close()` is idempotent and releases everything (listener, files) even after a failure.
 */
export interface ChallengeResponder {
  /** For messages: "a listener on port 80", "files under /var/www/html"... */
  readonly description: string
  prepare(): Promise<void>
  add(token: string, keyAuthorization: string): Promise<void>
  remove(token: string): Promise<void>
  close(): Promise<void>
}

/** Fans every call out to several responders (the shared directory plus one way in). */
export class CompositeResponder implements ChallengeResponder {
  constructor(private readonly parts: ChallengeResponder[]) {}

  /** The way the CA gets in (the last part); the shared directory is an internal hand-over. */
  get description(): string {
    return this.parts.at(-1)?.description ?? 'nothing'
  }

  async prepare(): Promise<void> {
    for (const part of this.parts) await part.prepare()
  }

  async add(token: string, keyAuthorization: string): Promise<void> {
    await Promise.all(this.parts.map((p) => p.add(token, keyAuthorization)))
  }

  async remove(token: string): Promise<void> {
    await Promise.all(this.parts.map((p) => p.remove(token)))
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.parts.map((p) => p.close()))
  }
}
