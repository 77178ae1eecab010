import {createHash} from 'node:crypto'
import {createReadStream, promises as fs} from 'node:fs'
import {join, relative} from 'node:path'

import type {MfcPaths} from '../../lib/paths.js'

/**
 * What a backup holds, each part ("area") with its place in the archive and on disk. Logs,
 * the pid file, the lock and old backups are left out on purpose.
 */
export interface Area {
  name: 'config' | 'ssl-config' | 'certs' | 'ca' | 'acme' | 'history' | 'api-token'
  /** Path inside the archive. */
  archivePath: string
  target: string
  kind: 'dir' | 'file'
}

export function areasOf(paths: MfcPaths): Area[] {
  const areas: Area[] = [{name: 'config', archivePath: 'config', target: paths.configDir, kind: 'dir'}]
  // MFC_SSL_CONFIG may put ssl-config.json outside the config directory.
  if (relative(paths.configDir, paths.sslConfigFile).startsWith('..')) areas.push({name: 'ssl-config', archivePath: 'ssl-config.json', target: paths.sslConfigFile, kind: 'file'})
  areas.push(
    {name: 'certs', archivePath: 'state/certs', target: paths.storeDir, kind: 'dir'},
    {name: 'ca', archivePath: 'state/ca', target: paths.caDir, kind: 'dir'},
    {name: 'acme', archivePath: 'state/acme', target: paths.acmeDir, kind: 'dir'},
    {name: 'history', archivePath: 'state/history.sqlite', target: paths.historyDb, kind: 'file'},
    {name: 'api-token', archivePath: 'state/api-token', target: paths.apiTokenFile, kind: 'file'},
  )
  return areas
}

export interface ManifestFile {
  /** Path inside the archive, '/'-separated. */
  path: string
  type: 'file' | 'dir' | 'symlink'
  mode: number
  size?: number
  sha256?: string
  target?: string
}

/** Where a cluster backup keeps the database (pg_dump --format=custom) inside the archive. */
export const DATABASE_DUMP = 'database.pgdump'

/** Where `mfc backup --include-storage-key` puts the storage key file inside the archive. */
export const STORAGE_KEY_ENTRY = 'storage-key'

export interface Manifest {
  format: 'mfc-backup'
  formatVersion: 1
  mfcVersion: string
  created: string
  host: string
  areas: Area['name'][]
  files: ManifestFile[]
  /** Cluster mode: the dump of the shared database (redacted URL) and its rows per table. */
  database?: {file: typeof DATABASE_DUMP; source: string; tables: Record<string, number>}
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk)
  return hash.digest('hex')
}

/** Every file, directory and symlink under `root/base` (lstat: links are not followed). */
export async function describeTree(root: string, base: string): Promise<ManifestFile[]> {
  const full = join(root, base)
  const stat = await fs.lstat(full)
  const mode = stat.mode & 0o7777
  if (stat.isSymbolicLink()) return [{path: base, type: 'symlink', mode, target: await fs.readlink(full)}]
  if (stat.isFile()) return [{path: base, type: 'file', mode, size: stat.size, sha256: await sha256File(full)}]
  if (!stat.isDirectory()) return []
  const children = (await fs.readdir(full)).sort()
  const nested = await Promise.all(children.map((child) => describeTree(root, `${base}/${child}`)))
  return [{path: base, type: 'dir', mode}, ...nested.flat()]
}
