import {randomBytes} from 'node:crypto'
import {promises as fs} from 'node:fs'
import {basename, dirname, join} from 'node:path'

import type {MfcConfig} from '../../lib/config.js'
import {StoreError, UsageError, errnoCode} from '../../lib/errors.js'
import {createFileExclusive, ensureDir} from '../../lib/fs-atomic.js'
import {withLock} from '../../lib/lock.js'
import {extract, listEntries, unsafeEntry} from './archive.js'
import {type Area, DATABASE_DUMP, type Manifest, type ManifestFile, STORAGE_KEY_ENTRY, areasOf, describeTree} from './areas.js'
import {decryptFile, invalidArchive, isEncrypted} from './envelope.js'
import {linkEscape, restoredMode} from './links.js'
import {type PgToolTarget, requireEmpty, restoreDatabase} from './pg-dump.js'
import {signalServeReload} from '../daemon/reload.js'
import type {PgDatabase} from '../storage/postgres.js'

export interface RestoreOptions {
  passphrase?: string
  dryRun?: boolean
  /** Cluster mode: the (empty) PostgreSQL to pg_restore the backup's dump into. */
  database?: {db: PgDatabase; target: PgToolTarget}
  /** Restore the dump into a database that has tables (drops the dump's objects first). */
  replaceDatabase?: boolean
  /** storage_key_file: kept as it is on disk; written from the archive only where it is absent. */
  storageKeyFile?: string
}

export interface RestoreChange {
  /** Where the entry goes on disk. */
  target: string
  change: 'added' | 'changed' | 'removed'
}

export interface RestoreResult {
  file: string
  dryRun: boolean
  backup: {mfcVersion: string; created: string; host: string}
  areas: Area['name'][]
  changes: RestoreChange[]
  unchanged: number
  applied: boolean
  /** The pid of the running `serve` that was sent SIGHUP, if any. */
  reloaded: number | null
  /** Cluster mode: the database restored into (or that would be), with its rows per table. */
  database: {target: string; tables: Record<string, number>} | null
  /**
   * A backup made with --include-storage-key: 'written' to storage_key_file (it was absent),
   * 'unchanged' (the same key is there), 'skipped' (no storage_key_file configured), or null.
   */
  storageKey: 'written' | 'unchanged' | 'skipped' | null
}

/**
 * Restores a backup made by `createBackup`. Everything is checked before anything changes:
 * the passphrase (GCM tag), every tar header (no absolute paths, no "..", no links leaving
 * their area, no device files), every file's sha256 against the manifest and the manifest
 * against the files, then every extracted link resolved as the kernel would (it must stay in
 * its area). Modes lose setuid/setgid and group/world write; keys and tokens get 0600/0700
 * (restoredMode). Then each area is staged next to its target and renamed into place,
 * under the mfc lock; a failure puts back what was already swapped. A running `serve` is
 * sent SIGHUP to reload its certificates.
 */
export async function restoreBackup(config: MfcConfig, file: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const {paths} = config
  await ensureDir(paths.stateDir, 0o700)
  const stage = await fs.mkdtemp(join(paths.stateDir, '.restore-'))
  try {
    const tree = join(stage, 'tree')
    const manifest = await unpackVerified(file, stage, tree, options.passphrase)
    const areas = areasOf(paths).filter((area) => manifest.areas.includes(area.name))
    const planned = await plan(areas, manifest)
    const changes = planned.changes.filter((c) => c.target !== options.storageKeyFile)
    const database = databaseStep(file, manifest, options)
    const result: RestoreResult = {
      file, dryRun: Boolean(options.dryRun), backup: {mfcVersion: manifest.mfcVersion, created: manifest.created, host: manifest.host},
      areas: manifest.areas, changes, unchanged: planned.unchanged, applied: false, reloaded: null,
      database: database ? {target: database.db.label, tables: manifest.database!.tables} : null,
      storageKey: await storageKeyPlan(file, tree, manifest, options.storageKeyFile),
    }
    if (database) await requireEmpty(database.db, options.replaceDatabase === true)
    if (options.dryRun) return result
    await keepStorageKey(areas, tree, options.storageKeyFile)
    await withLock(paths.lockFile, 'restore', async () => {
      // The database first, in one transaction: if it fails, no file has changed yet.
      if (database) result.database!.tables = await restoreDatabase(database.db, database.target, join(tree, DATABASE_DUMP), manifest.database!.tables, options.replaceDatabase === true)
      await swapAll(areas, tree, manifest)
      if (result.storageKey === 'written') await createFileExclusive(options.storageKeyFile!, await fs.readFile(join(tree, STORAGE_KEY_ENTRY)), 0o600)
    })
    result.applied = true
    result.reloaded = await signalServeReload(paths.pidFile) ?? null
    return result
  } finally {
    // A refused extraction may still be writing its last entries: retry ENOTEMPTY.
    await fs.rm(stage, {recursive: true, force: true, maxRetries: 10, retryDelay: 50})
  }
}

/** The database half of a restore, or none; a cluster backup needs a database to go into. */
function databaseStep(file: string, manifest: Manifest, options: RestoreOptions): RestoreOptions['database'] {
  if (!manifest.database) return undefined
  if (!options.database) {
    throw new UsageError(`${file} is a cluster backup (a dump of ${manifest.database.source}), and no database to restore it into is configured. Nothing was changed.`, {
      code: 'MFC_USAGE',
      suggestions: ['Create an empty database and set "storage" in ssl-config.json (or MFC_STORAGE_URL) to it, or pass --storage URL, then run it again.'],
    })
  }

  return options.database
}

/**
 * What happens to a storage key in the archive. It is written only where none is: a node whose
 * key differs keeps its own and the restore stops before changing anything, because the
 * cluster's sealed keys open with one key only and replacing it on one node would lock that
 * node out of the database.
 */
async function storageKeyPlan(file: string, tree: string, manifest: Manifest, keyFile: string | undefined): Promise<RestoreResult['storageKey']> {
  if (!manifest.files.some((f) => f.path === STORAGE_KEY_ENTRY)) return null
  if (!keyFile) return 'skipped'
  const archived = await fs.readFile(join(tree, STORAGE_KEY_ENTRY))
  const current = await fs.readFile(keyFile).catch((error) => {
    if (errnoCode(error) === 'ENOENT') return undefined
    throw error
  })
  if (current === undefined) return 'written'
  if (current.equals(archived)) return 'unchanged'
  throw new StoreError(`${file} holds a storage key that differs from the one in storage_key_file ${keyFile}. Nothing was changed.`, {
    code: 'MFC_BACKUP_INVALID',
    suggestions: [`If the backup's key is the right one (the database's keys were sealed with it), move ${keyFile} aside and run the restore again; otherwise keep this node's key.`],
  })
}

/** The config directory's copy of a backup never holds the storage key: the restored directory keeps the one on disk. */
async function keepStorageKey(areas: Area[], tree: string, keyFile: string | undefined): Promise<void> {
  const config = areas.find((a) => a.name === 'config')
  if (!config || !keyFile || !keyFile.startsWith(config.target + '/')) return
  const staged = join(tree, config.archivePath, keyFile.slice(config.target.length + 1))
  try {
    await ensureDir(dirname(staged), 0o700)
    await fs.copyFile(keyFile, staged)
    await fs.chmod(staged, 0o600)
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error
  }
}

async function unpackVerified(file: string, stage: string, tree: string, passphrase: string | undefined): Promise<Manifest> {
  let archive = file
  try {
    if (await isEncrypted(file)) {
      archive = join(stage, 'archive.tar.gz')
      await decryptFile(file, archive, passphrase)
    }
  } catch (error) {
    if (error instanceof StoreError) throw error
    if (errnoCode(error) === 'ENOENT') throw new StoreError(`Backup ${file} not found. Nothing was changed.`, {code: 'MFC_BACKUP_IO', cause: error, suggestions: ['Check the path of the archive (`mfc backup` prints where it wrote it).']})
    throw invalidArchive(file, (error as Error).message, error)
  }

  const entries = await listEntries(archive).catch((error: Error) => {
    throw invalidArchive(file, `the archive is truncated or corrupt (${error.message})`, error)
  })
  const allowed = new Set(['manifest.json', DATABASE_DUMP, STORAGE_KEY_ENTRY, 'config', 'ssl-config.json', 'state', 'state/certs', 'state/ca', 'state/acme', 'state/history.sqlite', 'state/api-token'])
  for (const entry of entries) {
    const reason = unsafeEntry(entry)
    if (reason) throw invalidArchive(file, `it holds an unsafe entry: ${reason}`)
    const path = entry.path.replace(/\/+$/, '')
    const top = path.startsWith('state/') ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]
    if (!allowed.has(top)) throw invalidArchive(file, `it holds "${entry.path}", which no mfc backup contains`)
  }

  await ensureDir(tree, 0o700)
  await extract(archive, tree).catch((error: Error) => {
    throw invalidArchive(file, `the archive cannot be extracted (${error.message})`, error)
  })
  const read = await readManifest(file, tree)
  await verifyTree(file, tree, read)
  await verifyLinks(file, tree, read.files)
  const manifest = {...read, files: read.files.map((entry) => ({...entry, mode: restoredMode(entry)}))}
  await applyModes(tree, manifest.files)
  return manifest
}

/** Every link, resolved in the extracted tree, must stay inside its area (see linkEscape). */
async function verifyLinks(file: string, tree: string, files: ManifestFile[]): Promise<void> {
  for (const entry of files) {
    if (entry.type !== 'symlink') continue
    const reason = await linkEscape(tree, entry.path)
    if (reason) throw invalidArchive(file, `the link "${entry.path}" -> "${entry.target}" is unsafe: ${reason}`)
  }
}

async function readManifest(file: string, tree: string): Promise<Manifest> {
  try {
    const manifest = JSON.parse(await fs.readFile(join(tree, 'manifest.json'), 'utf8')) as Manifest
    if (manifest.format !== 'mfc-backup' || manifest.formatVersion !== 1 || !Array.isArray(manifest.files) || !Array.isArray(manifest.areas)) throw new Error('unknown format')
    return manifest
  } catch (error) {
    throw invalidArchive(file, `its manifest is missing or unreadable (${(error as Error).message})`, error)
  }
}

/** The extracted tree must equal the manifest: same entries, types, checksums and link targets. */
async function verifyTree(file: string, tree: string, manifest: Manifest): Promise<void> {
  const roots = [...new Set(manifest.files.map((f) => (f.path.startsWith('state/') ? f.path.split('/').slice(0, 2).join('/') : f.path.split('/')[0])))]
  const actual = new Map<string, ManifestFile>()
  for (const root of roots) {
    const found = await describeTree(tree, root).catch(() => [])
    for (const entry of found) actual.set(entry.path, entry)
  }

  const expected = new Map(manifest.files.map((f) => [f.path, f]))
  for (const [path, want] of expected) {
    const got = actual.get(path)
    if (!got || got.type !== want.type) throw invalidArchive(file, `"${path}" is listed in the manifest but missing from the archive`)
    if (want.type === 'file' && got.sha256 !== want.sha256) throw invalidArchive(file, `the checksum of "${path}" does not match the manifest (the file was modified)`)
    if (want.type === 'symlink' && got.target !== want.target) throw invalidArchive(file, `the link "${path}" does not match the manifest`)
  }

  for (const path of actual.keys()) if (!expected.has(path)) throw invalidArchive(file, `"${path}" is in the archive but not in its manifest`)
}

/** tar applied the umask; `files` has the modes to restore (restoredMode). Deepest first, so dirs stay enterable. */
async function applyModes(tree: string, files: ManifestFile[]): Promise<void> {
  for (const entry of [...files].reverse()) if (entry.type !== 'symlink') await fs.chmod(join(tree, entry.path), entry.mode & 0o7777)
}

async function currentFiles(area: Area): Promise<Map<string, ManifestFile>> {
  const found = await describeTree(dirname(area.target), basename(area.target)).catch((error) => {
    if (errnoCode(error) === 'ENOENT') return []
    throw error
  })
  return new Map(found.map((f) => [area.archivePath + f.path.slice(basename(area.target).length), f]))
}

async function plan(areas: Area[], manifest: Manifest): Promise<{changes: RestoreChange[]; unchanged: number}> {
  const changes: RestoreChange[] = []
  let unchanged = 0
  for (const area of areas) {
    const current = await currentFiles(area)
    const wanted = manifest.files.filter((f) => f.path === area.archivePath || f.path.startsWith(area.archivePath + '/'))
    const onDisk = (path: string) => area.target + path.slice(area.archivePath.length)
    for (const want of wanted) {
      const have = current.get(want.path)
      if (!have) changes.push({target: onDisk(want.path), change: 'added'})
      else if (have.type !== want.type || have.sha256 !== want.sha256 || have.target !== want.target || have.mode !== want.mode) changes.push({target: onDisk(want.path), change: 'changed'})
      else unchanged++
    }

    for (const path of current.keys()) if (!wanted.some((f) => f.path === path)) changes.push({target: onDisk(path), change: 'removed'})
  }

  return {changes, unchanged}
}

interface Swap {
  target: string
  old: string | null
}

/** SQLite's side files belong to the database they sit next to: they move with it. */
function companions(area: Area): string[] {
  return area.name === 'history' ? ['', '-wal', '-shm'] : ['']
}

async function moveAside(path: string, suffix: string): Promise<string | null> {
  const aside = join(dirname(path), `.${basename(path)}.old-${suffix}`)
  try {
    await fs.rename(path, aside)
    return aside
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return null
    throw error
  }
}

/** Puts the staged area next to its target (copying when on another filesystem). */
async function stageNextTo(source: string, target: string, suffix: string, files: ManifestFile[], archivePath: string): Promise<string> {
  const staged = join(dirname(target), `.${basename(target)}.restore-${suffix}`)
  try {
    await fs.rename(source, staged)
  } catch (error) {
    if (errnoCode(error) !== 'EXDEV') throw error
    await fs.cp(source, staged, {recursive: true, verbatimSymlinks: true, preserveTimestamps: true})
    const inArea = files.filter((f) => f.path === archivePath || f.path.startsWith(archivePath + '/'))
    await applyModes(dirname(staged), inArea.map((f) => ({...f, path: basename(staged) + f.path.slice(archivePath.length)})))
  }

  return staged
}

async function swapAll(areas: Area[], tree: string, manifest: Manifest): Promise<void> {
  const suffix = randomBytes(4).toString('hex')
  const done: Swap[] = []
  let staged: string | undefined
  try {
    for (const area of areas) {
      await ensureDir(dirname(area.target), 0o700)
      staged = await stageNextTo(join(tree, area.archivePath), area.target, suffix, manifest.files, area.archivePath)
      for (const extra of companions(area)) {
        const old = await moveAside(area.target + extra, suffix)
        done.push({target: area.target + extra, old})
      }

      await fs.rename(staged, area.target)
      staged = undefined
    }
  } catch (error) {
    if (staged) await fs.rm(staged, {recursive: true, force: true})
    for (const swap of done.reverse()) {
      await fs.rm(swap.target, {recursive: true, force: true})
      if (swap.old) await fs.rename(swap.old, swap.target)
    }

    throw new StoreError(`Restore failed and was rolled back: ${(error as Error).message}`, {
      code: 'MFC_BACKUP_IO', cause: error, suggestions: ['Check free space and the permissions of the config and state directories, then run it again.'],
    })
  }

  for (const swap of done) if (swap.old) await fs.rm(swap.old, {recursive: true, force: true})
}
