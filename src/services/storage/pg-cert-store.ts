import {randomBytes} from 'node:crypto'
import {constants, promises as fs} from 'node:fs'
import {join} from 'node:path'

import {StoreError, errnoCode} from '../../lib/errors.js'
import {ensureDir, replaceSymlink, syncDir} from '../../lib/fs-atomic.js'
import {type CertBundle, type CertMeta, type CertStore, type StoredCert, rollbackTarget, storedCertAt} from '../store/cert-store.js'
import type {KeySealer} from './key-sealer.js'
import type {PgDatabase} from './postgres.js'

interface CertRow extends Record<string, unknown> {
  name: string
  version: number
  cert_pem: string
  chain_pem: string
  key_sealed: Buffer
  meta: CertMeta
}

const pad = (version: number) => String(version).padStart(4, '0')

/**
 * The NOTIFY channel of certificate changes: every `put`, `rollback` and `remove` sends
 * `<name>` on it when its transaction commits, so every node reloads at once.
 */
export const CERT_CHANNEL = 'mfc_cert'
const context = (name: string, version: number) => `certificate "${name}" version ${pad(version)}`

/**
 * The certificate store on PostgreSQL (cluster mode), with FileCertStore's contract. One row
 * per version holds cert, chain, sealed key and meta; `mfc_cert_live` points at the live one.
 * `put` inserts the next version and switches live in one transaction; `live` reads both in
 * one statement, so a reader never sees a certificate without its key. Only `remove` (the
 * explicit `cert delete`) deletes.
 *
 * Servers load PEM files, so each version a node reads is materialised once under `cacheDir`
 * (`<name>/versions/0001/...`, key 0600, written under a temp name and renamed: a version
 * never changes once written, so an existing directory is complete), and every read of the
 * live version points `<name>/live` at it (the FileCertStore layout, so serve's live paths and
 * its reload work unchanged). Two readers on one node racing with a switch both check the
 * database again after moving the link, so the last one leaves it at the live version.
 */
export class PgCertStore implements CertStore {
  constructor(private readonly db: PgDatabase, private readonly sealer: KeySealer, readonly cacheDir: string) {}

  async live(name: string): Promise<StoredCert | undefined> {
    const [row] = await this.db.query<CertRow>(`SELECT c.name, c.version, c.cert_pem, c.chain_pem, c.key_sealed, c.meta
      FROM mfc_cert_live l JOIN mfc_certs c USING (name, version) WHERE l.name = $1`, [name])
    return row ? this.materialiseLive(row) : undefined
  }

  async list(): Promise<StoredCert[]> {
    const rows = await this.db.query<CertRow>(`SELECT c.name, c.version, c.cert_pem, c.chain_pem, c.key_sealed, c.meta
      FROM mfc_cert_live l JOIN mfc_certs c USING (name, version) ORDER BY c.name`)
    return Promise.all(rows.map((row) => this.materialiseLive(row)))
  }

  async versions(name: string): Promise<string[]> {
    const rows = await this.db.query<{version: number}>('SELECT version FROM mfc_certs WHERE name = $1 ORDER BY version', [name])
    return rows.map((r) => pad(r.version))
  }

  async version(name: string, version: string): Promise<StoredCert | undefined> {
    if (!/^\d{4,}$/.test(version)) return undefined
    const [row] = await this.db.query<CertRow>('SELECT name, version, cert_pem, chain_pem, key_sealed, meta FROM mfc_certs WHERE name = $1 AND version = $2', [name, Number(version)])
    return row ? this.materialise(row) : undefined
  }

  async put(name: string, bundle: CertBundle): Promise<StoredCert> {
    const chain = bundle.chainPem.trim() === '' ? '' : bundle.chainPem.trim() + '\n'
    const row = await this.db.transaction(async (tx) => {
      // Two writers of one lineage (which the lock should prevent) still get distinct versions.
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`mfc-cert:${name}`])
      const [{next}] = await tx.query<{next: number}>('SELECT coalesce(max(version), 0) + 1 AS next FROM mfc_certs WHERE name = $1', [name])
      const sealed = this.sealer.seal(bundle.keyPem, context(name, next))
      const [inserted] = await tx.query<CertRow>(`INSERT INTO mfc_certs (name, version, cert_pem, chain_pem, key_sealed, meta)
        VALUES ($1, $2, $3, $4, $5, $6) RETURNING name, version, cert_pem, chain_pem, key_sealed, meta`,
      [name, next, bundle.certPem.trim() + '\n', chain, sealed, JSON.stringify(bundle.meta)])
      await this.switchLive(tx, name, next)
      return inserted
    })
    return this.materialiseLive(row)
  }

  async rollback(name: string, version?: string): Promise<StoredCert> {
    const target = rollbackTarget(name, await this.live(name), await this.versions(name), version)

    await this.db.transaction((tx) => this.switchLive(tx, name, Number(target)))
    return (await this.live(name))!
  }

  /**
   * Deletes the lineage's rows (live pointer first, then every version) in one transaction, so
   * other nodes see all of it or none of it; then this node's materialised PEM copies.
   */
  async remove(name: string): Promise<boolean> {
    const removed = await this.db.transaction(async (tx) => {
      await tx.query('DELETE FROM mfc_cert_live WHERE name = $1', [name])
      const rows = await tx.query<{version: number}>('DELETE FROM mfc_certs WHERE name = $1 RETURNING version', [name])
      await tx.query('SELECT pg_notify($1, $2)', [CERT_CHANNEL, name])
      return rows.length > 0
    })
    await fs.rm(join(this.cacheDir, name), {recursive: true, force: true}).catch((error: unknown) => {
      throw this.cacheError(join(this.cacheDir, name), error)
    })
    return removed
  }

  private async switchLive(tx: Pick<PgDatabase, 'query'>, name: string, version: number): Promise<void> {
    await tx.query(`INSERT INTO mfc_cert_live (name, version) VALUES ($1, $2)
      ON CONFLICT (name) DO UPDATE SET version = excluded.version, switched_at = now()`, [name, version])
    await tx.query('SELECT pg_notify($1, $2)', [CERT_CHANNEL, name])
  }

  /**
   * `row` materialised, and `<name>/live` pointing at the version that is live in the database
   * once the link is written (see the class comment).
   */
  private async materialiseLive(row: CertRow): Promise<StoredCert> {
    const stored = await this.materialise(row)
    let target = stored
    for (let attempt = 0; attempt < 5; attempt++) {
      await this.pointLive(target)
      const [now] = await this.db.query<{version: number}>('SELECT version FROM mfc_cert_live WHERE name = $1', [row.name])
      const next = now && pad(now.version) !== target.version ? await this.version(row.name, pad(now.version)) : undefined
      if (!next) break
      target = next
    }

    return stored
  }

  private async pointLive(stored: StoredCert): Promise<void> {
    const link = join(this.cacheDir, stored.name, 'live')
    const target = `versions/${stored.version}`
    try {
      if (await fs.readlink(link).catch(() => undefined) === target) return
      await replaceSymlink(target, link)
    } catch (error) {
      throw this.cacheError(link, error)
    }
  }

  private async materialise(row: CertRow): Promise<StoredCert> {
    const version = pad(row.version)
    const versionsDir = join(this.cacheDir, row.name, 'versions')
    const dir = join(versionsDir, version)
    const stored = storedCertAt(row.name, version, dir, row.meta)
    try {
      await fs.access(join(dir, 'meta.json'))
      return stored
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw this.cacheError(dir, error)
    }

    const keyPem = this.sealer.open(row.key_sealed, context(row.name, row.version))
    try {
      await ensureDir(versionsDir, 0o700)
      await fs.chmod(this.cacheDir, 0o700)
      const temp = join(versionsDir, `.tmp-${version}-${randomBytes(4).toString('hex')}`)
      await fs.mkdir(temp, {mode: 0o700})
      await writeSynced(join(temp, 'privkey.pem'), keyPem, 0o600)
      await writeSynced(join(temp, 'cert.pem'), row.cert_pem, 0o644)
      await writeSynced(join(temp, 'chain.pem'), row.chain_pem, 0o644)
      await writeSynced(join(temp, 'fullchain.pem'), row.cert_pem + row.chain_pem, 0o644)
      await writeSynced(join(temp, 'meta.json'), JSON.stringify(row.meta, null, 2) + '\n', 0o644)
      await syncDir(temp)
      try {
        await fs.rename(temp, dir)
      } catch (error) {
        // Another reader on this node materialised the same (immutable) version first.
        await fs.rm(temp, {force: true, recursive: true})
        if (!['ENOTEMPTY', 'EEXIST'].includes(errnoCode(error) ?? '')) throw error
      }

      await syncDir(versionsDir)
      return stored
    } catch (error) {
      throw this.cacheError(dir, error)
    }
  }

  private cacheError(dir: string, error: unknown): StoreError {
    return new StoreError(`Cannot write the local copy of a certificate to ${dir}: ${(error as Error).message}`, {
      code: 'MFC_STORE_IO',
      cause: error,
      suggestions: [`Check the permissions and free space of ${this.cacheDir} (set MFC_STATE_DIR to a directory you own).`],
    })
  }
}

async function writeSynced(file: string, data: string, mode: number): Promise<void> {
  const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode)
    await handle.sync()
  } finally {
    await handle.close()
  }
}
