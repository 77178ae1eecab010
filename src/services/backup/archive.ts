import {isAbsolute, posix} from 'node:path'

// The only importer of `tar`: backups are packed and read here and nowhere else.
import * as tar from 'tar'

/** One entry of an archive as read from its headers, before anything is extracted. */
export interface ArchiveEntry {
  path: string
  type: string
  mode: number
  size: number
  linkpath?: string
}

/** Packs `paths` (relative to `cwd`) into a gzip'd tar; symlinks stay symlinks. */
export async function pack(cwd: string, paths: string[], file: string): Promise<void> {
  await tar.c({gzip: true, cwd, file, portable: true, follow: false}, paths)
}

/**
 * Reads every header of the archive. Strict: a truncated or corrupt gzip or tar stream
 * throws instead of ending the listing early.
 */
export async function listEntries(file: string): Promise<ArchiveEntry[]> {
  const entries: ArchiveEntry[] = []
  await tar.t({
    file,
    strict: true,
    onReadEntry(entry) {
      entries.push({path: entry.path, type: entry.type, mode: entry.mode ?? 0, size: entry.size ?? 0, linkpath: entry.linkpath || undefined})
      entry.resume()
    },
  })
  return entries
}

/** Extracts into `cwd`, only after `unsafeEntry` found nothing to refuse. */
export async function extract(file: string, cwd: string): Promise<void> {
  await tar.x({file, cwd, strict: true, preservePaths: false, preserveOwner: false})
}

/**
 * Why an entry must not be extracted, or undefined when it is safe: absolute paths, `..`
 * anywhere, types other than file/dir/symlink, and symlinks whose target leaves `root` (the
 * entry's top-level area) are refused, whatever tar itself would do with them.
 */
export function unsafeEntry(entry: ArchiveEntry): string | undefined {
  const path = entry.path.replace(/\/+$/, '')
  if (isAbsolute(path) || /^[a-zA-Z]:/.test(path)) return `absolute path "${entry.path}"`
  if (path.split('/').includes('..')) return `path "${entry.path}" climbs out with ".."`
  if (!['File', 'OldFile', 'Directory', 'SymbolicLink'].includes(entry.type)) return `entry "${entry.path}" is a ${entry.type}, not a file, directory or symlink`
  if (entry.type === 'SymbolicLink') {
    const target = entry.linkpath ?? ''
    const area = path.split('/').slice(0, path.startsWith('state/') ? 2 : 1).join('/')
    const resolved = posix.normalize(posix.join(posix.dirname(path), target))
    if (isAbsolute(target) || !(resolved === area || resolved.startsWith(area + '/'))) return `symlink "${entry.path}" points outside ${area} ("${target}")`
  }

  return undefined
}
