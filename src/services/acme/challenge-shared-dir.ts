import {promises as fs} from 'node:fs'
import {join} from 'node:path'

import {ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'
import type {ChallengeResponder} from './challenge-responder.js'
import {isSafeToken} from './challenge-responder.js'

/**
 * Writes `<dir>/<token>` holding the key authorization: the hand-over to a running
 * `mfc serve`, which answers `/.well-known/acme-challenge/<token>` from this directory.
 * Files are removed after validation; the directory stays (0700, owned by mfc's user).
 */
export class SharedDirResponder implements ChallengeResponder {
  readonly description: string

  constructor(private readonly dir: string) {
    this.description = `token files in ${dir} (answered by a running \`mfc serve\`)`
  }

  async prepare(): Promise<void> {
    await ensureDir(this.dir, 0o700)
  }

  async add(token: string, keyAuthorization: string): Promise<void> {
    if (!isSafeToken(token)) throw new Error(`Refusing unsafe challenge token ${JSON.stringify(token)}`)
    await writeFileAtomic(join(this.dir, token), keyAuthorization, 0o644)
  }

  async remove(token: string): Promise<void> {
    if (isSafeToken(token)) await fs.rm(join(this.dir, token), {force: true})
  }

  async close(): Promise<void> {}
}
