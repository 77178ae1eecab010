import {promises as fs} from 'node:fs'
import {join} from 'node:path'

import {IssuerError, errnoCode} from '../../lib/errors.js'
import {writeFileAtomic} from '../../lib/fs-atomic.js'
import type {ChallengeResponder} from './challenge-responder.js'
import {isSafeToken} from './challenge-responder.js'

/**
 * certbot's `--webroot`: the web server already on port 80 serves the token files, which mfc
 * writes under `<webroot>/.well-known/acme-challenge/` (0644, world-readable so a server
 * running as another user can read them) and removes afterwards.
 */
export class WebrootResponder implements ChallengeResponder {
  readonly description: string
  private readonly dir: string
  private createdDir = false

  constructor(private readonly webroot: string) {
    this.dir = join(webroot, '.well-known', 'acme-challenge')
    this.description = `files under ${this.dir} (served by your web server)`
  }

  async prepare(): Promise<void> {
    try {
      const stat = await fs.stat(this.webroot)
      if (!stat.isDirectory()) throw Object.assign(new Error('not a directory'), {code: 'ENOTDIR'})
      const existed = await fs.stat(this.dir).then(() => true, () => false)
      await fs.mkdir(this.dir, {recursive: true, mode: 0o755})
      this.createdDir = !existed
    } catch (error) {
      throw new IssuerError(`Cannot use the webroot ${this.webroot}: ${(error as Error).message}.`, {
        code: 'MFC_CHALLENGE_FAILED',
        cause: error,
        suggestions: [
          errnoCode(error) === 'ENOENT' ? `Create ${this.webroot} or give the document root your web server serves for this domain.` : `Check that mfc may write to ${this.webroot}.`,
          'Or drop --webroot and let mfc listen on the HTTP port itself.',
        ],
      })
    }
  }

  async add(token: string, keyAuthorization: string): Promise<void> {
    if (!isSafeToken(token)) throw new Error(`Refusing unsafe challenge token ${JSON.stringify(token)}`)
    await writeFileAtomic(join(this.dir, token), keyAuthorization, 0o644)
  }

  async remove(token: string): Promise<void> {
    if (isSafeToken(token)) await fs.rm(join(this.dir, token), {force: true})
  }

  async close(): Promise<void> {
    // Only a directory mfc created, and only if empty: a user's own files are never touched.
    if (this.createdDir) await fs.rmdir(this.dir).catch(() => {})
  }
}
