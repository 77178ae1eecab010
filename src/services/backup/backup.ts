import {promises as fs} from 'node:fs'
import {hostname} from 'node:os'
import {dirname, join} from 'node:path'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {StoreError, UsageError, errnoCode} from '../../lib/errors.js'
import {ensureDir, syncDir} from '../../lib/fs-atomic.js'
import {withLock} from '../../lib/lock.js'
import {pack} from './archive.js'
import {type Area, DATABASE_DUMP, type Manifest, STORAGE_KEY_ENTRY, areasOf, describeTree} from './areas.js'
import {encryptFile} from './envelope.js'
import {type PgToolTarget, dumpDatabase} from './pg-dump.js'
import {snapshotSqlite} from '../data/history.js'
import type {PgDatabase} from '../storage/postgres.js'

export interface BackupOptions {
  /** Archive path; default `<backupDir>/mfc-backup-<timestamp>.tar.gz[.enc]`. */
  output?: string
  passphrase?: string
  mfcVersion: string
  /** Replace an existing archive at `output`; without it an existing file is never touched. */
  force?: boolean
  /** Cluster mode: the shared PostgreSQL, dumped into the archive with pg_dump. */
  database?: {db: PgDatabase; target: PgToolTarget}
  /**
   * The storage key file (storage_key_file): left out of the archive (even from the config
   * directory) unless `includeStorageKey`. A backup of the database is useless without it, so
   * it is kept apart on purpose: whoever holds the archive must not hold the key that unseals
   * its keys.
   */
  storageKeyFile?: string
  /** Asked for explicitly (`--include-storage-key`): put storageKeyFile in the archive after all. */
  includeStorageKey?: boolean
}

export interface BackupResult {
  file: string
  encrypted: boolean
  bytes: number
  areas: Area['name'][]
  files: number
  created: string
  /** Cluster mode: the database dumped and the rows of each table in the dump. */
  database: {source: string; tables: Record<string, number>} | null
  /** Whether the storage key file is in the archive (only when asked). */
  storageKeyIncluded: boolean
}

function ioError(action: string, error: unknown, where: string): StoreError {
  return new StoreError(`Backup failed while ${action}: ${(error as Error).message}`, {
    code: 'MFC_BACKUP_IO',
    cause: error,
    suggestions: [`Check free space and permissions of ${where}.`],
  })
}

async function exists(path: string): Promise<boolean> {
  try {
    await fs.lstat(path)
    return true
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false
    throw error
  }
}

/** Copies one area into the staging tree; the history database goes through SQLite's backup API. */
async function stageArea(area: Area, stage: string, exclude?: string): Promise<boolean> {
  if (!(await exists(area.target))) return false
  const destination = join(stage, area.archivePath)
  await ensureDir(dirname(destination), 0o700)
  if (area.name === 'history') {
    await snapshotSqlite(area.target, destination)
    await fs.chmod(destination, (await fs.stat(area.target)).mode & 0o777)
  } else {
    await fs.cp(area.target, destination, {recursive: true, verbatimSymlinks: true, preserveTimestamps: true, errorOnExist: true, force: false, filter: (source) => source !== exclude})
  }

  return true
}

/**
 * Writes one archive (tar.gz, 0600) of the config directory, the certificate store with every
 * version and its `live` links, the local CA, the ACME accounts, the API token and a consistent
 * snapshot of the history database, with a manifest of every entry's type, mode and sha256.
 * The lock is held while copying so no renewal runs half-way through the copy.
 */
export async function createBackup(config: MfcConfig, clock: Clock, options: BackupOptions): Promise<BackupResult> {
  const {paths} = config
  const created = clock.now().toISOString()
  const output = options.output ?? join(paths.backupDir, `mfc-backup-${created.replaceAll(/[:.]/g, '-')}.tar.gz${options.passphrase ? '.enc' : ''}`)
  if (!options.force && await exists(output)) throw alreadyThere(output)
  await ensureDir(paths.stateDir, 0o700)
  const stage = await fs.mkdtemp(join(paths.stateDir, '.backup-'))
  try {
    const {areas, manifest} = await withLock(paths.lockFile, 'backup', async () => {
      const present: Area['name'][] = []
      for (const area of areasOf(paths)) if (await stageArea(area, join(stage, 'tree'), options.storageKeyFile)) present.push(area.name)
      const described = await Promise.all(areasOf(paths).filter((a) => present.includes(a.name)).map((a) => describeTree(join(stage, 'tree'), a.archivePath)))
      const manifest: Manifest = {format: 'mfc-backup', formatVersion: 1, mfcVersion: options.mfcVersion, created, host: hostname(), areas: present, files: described.flat()}
      if (options.database) {
        await ensureDir(join(stage, 'tree'), 0o700)
        const tables = await dumpDatabase(options.database.db, options.database.target, join(stage, 'tree', DATABASE_DUMP))
        await fs.chmod(join(stage, 'tree', DATABASE_DUMP), 0o600)
        manifest.files.push(...await describeTree(join(stage, 'tree'), DATABASE_DUMP))
        manifest.database = {file: DATABASE_DUMP, source: options.database.db.label, tables}
      }

      if (options.includeStorageKey) await stageStorageKey(options.storageKeyFile, join(stage, 'tree'), manifest)
      return {areas: present, manifest}
    }).catch((error) => {
      throw error instanceof StoreError || error instanceof UsageError || (error as {code?: string}).code === 'MFC_LOCKED' ? error : ioError('copying the files', error, paths.stateDir)
    })

    const tree = join(stage, 'tree')
    await ensureDir(tree, 0o700)
    await fs.writeFile(join(tree, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n', {mode: 0o600})
    const plain = join(stage, 'archive.tar.gz')
    const roots = ['manifest.json', ...new Set(manifest.files.map((f) => f.path.split('/')[0]))].filter((v, i, all) => all.indexOf(v) === i)
    try {
      await pack(tree, roots, plain)
      await fs.chmod(plain, 0o600)
      let final = plain
      if (options.passphrase !== undefined) {
        final = join(stage, 'archive.enc')
        await encryptFile(plain, final, options.passphrase)
      }

      await ensureDir(dirname(output), 0o700)
      await moveInto(final, output, options.force === true)
    } catch (error) {
      if (error instanceof StoreError) throw error
      throw ioError(`writing ${output}`, error, dirname(output))
    }

    const database = manifest.database ? {source: manifest.database.source, tables: manifest.database.tables} : null
    const storageKeyIncluded = manifest.files.some((f) => f.path === STORAGE_KEY_ENTRY)
    return {file: output, encrypted: options.passphrase !== undefined, bytes: (await fs.stat(output)).size, areas, files: manifest.files.length, created, database, storageKeyIncluded}
  } finally {
    await fs.rm(stage, {recursive: true, force: true})
  }
}

/** The storage key, only when asked; a key given only in MFC_STORAGE_KEY has no file to copy. */
async function stageStorageKey(keyFile: string | undefined, tree: string, manifest: Manifest): Promise<void> {
  if (!keyFile) {
    throw new UsageError('--include-storage-key needs "storage_key_file": this node reads its storage key from MFC_STORAGE_KEY, which mfc does not copy.', {
      code: 'MFC_USAGE',
      suggestions: ['Back the key up from wherever MFC_STORAGE_KEY is set (your secrets store), or set "storage_key_file" in ssl-config.json.'],
    })
  }

  await ensureDir(tree, 0o700)
  await fs.copyFile(keyFile, join(tree, STORAGE_KEY_ENTRY))
  await fs.chmod(join(tree, STORAGE_KEY_ENTRY), 0o600)
  manifest.files.push(...await describeTree(tree, STORAGE_KEY_ENTRY))
}

function alreadyThere(file: string): StoreError {
  return new StoreError(`${file} already exists; it was left as it is.`, {
    code: 'MFC_BACKUP_EXISTS',
    suggestions: ['Add --force to replace it, or pass another --output FILE.'],
  })
}

/** A temp file next to the target (the staging dir may be on another filesystem), then rename. */
async function moveInto(source: string, target: string, replace: boolean): Promise<void> {
  const temp = join(dirname(target), `.${process.pid}.${Date.now()}.backup.tmp`)
  await fs.copyFile(source, temp)
  await fs.chmod(temp, 0o600)
  const handle = await fs.open(temp, 'r')
  await handle.sync()
  await handle.close()
  if (replace) {
    await fs.rename(temp, target)
  } else {
    // link() fails if the target appeared meanwhile: an archive written by someone else in the
    // meantime is not replaced either.
    try {
      await fs.link(temp, target)
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') throw alreadyThere(target)
      throw error
    } finally {
      await fs.rm(temp, {force: true})
    }
  }

  await syncDir(dirname(target))
}
