import {randomBytes} from 'node:crypto'
import {constants, promises as fs} from 'node:fs'
import {join} from 'node:path'

import {StoreError, errnoCode} from '../../lib/errors.js'
import {ensureDir, replaceSymlink, syncDir} from '../../lib/fs-atomic.js'
import {type CertBundle, type CertMeta, type CertStore, type StoredCert, rollbackTarget, storedCertAt} from './cert-store.js'

/** Named instants inside `put`, reported to `onStep` (tests kill the process at each). */
export type PutStep = 'version-dir-created' | 'files-written' | 'version-renamed' | 'live-switched'

export interface FileCertStoreOptions {
  onStep?: (step: PutStep) => void
}

const VERSION_RE = /^\d{4,}$/

/**
 * The certificate store on disk:
 *
 *     <root>/<name>/versions/0001/{cert,chain,fullchain,privkey}.pem, meta.json
 *     <root>/<name>/live -> versions/0001
 *
 * A version directory is written complete under a temp name, fsynced, then renamed into place;
 * `live` is a symlink replaced by rename. Both renames are atomic, so the live cert and key
 * always come from one complete version. Keys are 0600 from creation, directories 0700; the
 * mode and group an admin gave the live key carry over to the next version.
 */
export class FileCertStore implements CertStore {
  constructor(readonly root: string, private readonly options: FileCertStoreOptions = {}) {}

  async live(name: string): Promise<StoredCert | undefined> {
    const link = join(this.root, name, 'live')
    let target: string
    try {
      target = await fs.readlink(link)
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined
      throw this.ioError(`read ${link}`, error)
    }

    return this.load(name, target.split('/').pop()!)
  }

  async list(): Promise<StoredCert[]> {
    let names: string[]
    try {
      names = await fs.readdir(this.root)
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return []
      throw this.ioError(`list ${this.root}`, error)
    }

    const stored = await Promise.all(names.filter((n) => !n.startsWith('.')).sort().map((name) => this.live(name)))
    return stored.filter((s): s is StoredCert => s !== undefined)
  }

  async versions(name: string): Promise<string[]> {
    try {
      return (await fs.readdir(join(this.root, name, 'versions'))).filter((v) => VERSION_RE.test(v)).sort()
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return []
      throw this.ioError(`list versions of ${name}`, error)
    }
  }

  async version(name: string, version: string): Promise<StoredCert | undefined> {
    if (!VERSION_RE.test(version) || !(await this.versions(name)).includes(version)) return undefined
    return this.load(name, version)
  }

  async put(name: string, bundle: CertBundle): Promise<StoredCert> {
    const lineage = join(this.root, name)
    const versionsDir = join(lineage, 'versions')
    try {
      await ensureDir(versionsDir, 0o700)
      await fs.chmod(this.root, 0o700)
      await this.removeLeftovers(versionsDir)
      const previous = await this.live(name).catch(() => undefined)
      const keyMode = await this.keyModeOf(previous)

      const existing = await this.versions(name)
      const version = String(existing.length === 0 ? 1 : Number(existing.at(-1)) + 1).padStart(4, '0')
      const temp = join(versionsDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`)
      await fs.mkdir(temp, {mode: 0o700})
      this.options.onStep?.('version-dir-created')

      const chain = bundle.chainPem.trim() === '' ? '' : bundle.chainPem.trim() + '\n'
      await writeSynced(join(temp, 'privkey.pem'), bundle.keyPem, keyMode.mode, keyMode.gid)
      await writeSynced(join(temp, 'cert.pem'), bundle.certPem.trim() + '\n', 0o644)
      await writeSynced(join(temp, 'chain.pem'), chain, 0o644)
      await writeSynced(join(temp, 'fullchain.pem'), bundle.certPem.trim() + '\n' + chain, 0o644)
      await writeSynced(join(temp, 'meta.json'), JSON.stringify(bundle.meta, null, 2) + '\n', 0o644)
      await syncDir(temp)
      this.options.onStep?.('files-written')

      await fs.rename(temp, join(versionsDir, version))
      await syncDir(versionsDir)
      this.options.onStep?.('version-renamed')

      await replaceSymlink(`versions/${version}`, join(lineage, 'live'))
      this.options.onStep?.('live-switched')
      return this.load(name, version)
    } catch (error) {
      if (error instanceof StoreError) throw error
      throw this.ioError(`write certificate "${name}" to ${lineage}`, error)
    }
  }

  async rollback(name: string, version?: string): Promise<StoredCert> {
    const target = rollbackTarget(name, await this.live(name), await this.versions(name), version)

    await replaceSymlink(`versions/${target}`, join(this.root, name, 'live'))
    return this.load(name, target)
  }

  async remove(name: string): Promise<boolean> {
    const lineage = join(this.root, name)
    // One rename takes the lineage out of sight (list/live skip dot names); the slow recursive
    // delete happens after, and a crash during it leaves only an invisible leftover.
    const graveyard = join(this.root, `.deleted-${name}-${randomBytes(4).toString('hex')}`)
    try {
      await fs.rename(lineage, graveyard)
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false
      throw this.ioError(`delete certificate "${name}" (${lineage})`, error)
    }

    await syncDir(this.root)
    await fs.rm(graveyard, {force: true, recursive: true})
    return true
  }

  private async load(name: string, version: string): Promise<StoredCert> {
    const dir = join(this.root, name, 'versions', version)
    const metaFile = join(dir, 'meta.json')
    let meta: CertMeta
    try {
      meta = JSON.parse(await fs.readFile(metaFile, 'utf8')) as CertMeta
    } catch (error) {
      throw this.ioError(`read ${metaFile}`, error)
    }

    return storedCertAt(name, version, dir, meta)
  }

  /** Temp version directories left by a crash mid-write: never live, safe to remove. */
  private async removeLeftovers(versionsDir: string): Promise<void> {
    for (const entry of await fs.readdir(versionsDir)) {
      if (entry.startsWith('.tmp-')) await fs.rm(join(versionsDir, entry), {force: true, recursive: true})
    }
  }

  /** certbot's habit: an admin's `chgrp ssl-cert; chmod 0640` on the live key survives renewal. */
  private async keyModeOf(previous: StoredCert | undefined): Promise<{mode: number; gid?: number}> {
    if (!previous) return {mode: 0o600}
    try {
      const stat = await fs.stat(previous.keyFile)
      return {mode: stat.mode & 0o770, gid: stat.gid}
    } catch {
      return {mode: 0o600}
    }
  }

  private ioError(action: string, error: unknown): StoreError {
    const code = errnoCode(error)
    const hint = code === 'EACCES' || code === 'EPERM'
      ? `Run as the user that owns ${this.root} (or root), or set MFC_STATE_DIR to a directory you own.`
      : code === 'ENOSPC' ? 'Free some disk space and try again.' : `Check ${this.root} (permissions, disk space).`
    return new StoreError(`Cannot ${action}: ${(error as Error).message}`, {code: 'MFC_STORE_IO', cause: error, suggestions: [hint]})
  }
}

async function writeSynced(file: string, data: string, mode: number, gid?: number): Promise<void> {
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    await handle.writeFile(data)
    if (gid !== undefined && gid !== process.getgid?.()) await handle.chown(process.getuid?.() ?? -1, gid).catch(() => {})
    await handle.chmod(mode)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
