import {promises as fs} from 'node:fs'
import {isAbsolute, join, posix, sep} from 'node:path'

import {errnoCode} from '../../lib/errors.js'
import type {ManifestFile} from './areas.js'

/** Areas holding secrets: whatever the archive says, directories 0700 and files 0600 ... */
const PRIVATE_AREAS = ['state/ca', 'state/certs', 'state/acme', 'state/api-token']
/** ... except the certificates and metadata mfc itself writes 0644 (read by nginx and others): at most 0644. */
const PUBLIC_FILE = /^state\/(certs\/[^/]+\/versions\/[^/]+\/(cert|chain|fullchain)\.pem|certs\/[^/]+\/versions\/[^/]+\/meta\.json|ca\/[^/]+\.crt)$/

/** Linux's own limit on links followed while resolving one path (ELOOP). */
const MAX_LINKS = 40

/** The area (top-level part of a backup) an archive path belongs to. */
export function areaOf(path: string): string {
  return path.split('/').slice(0, path.startsWith('state/') ? 2 : 1).join('/')
}

/**
 * The mode a restored entry gets: never setuid, setgid or sticky, never group- or
 * world-writable; under the private areas directories are 0700, keys and everything else
 * 0600, certificates at most 0644. A directory
 * always stays enterable by its owner, so the rest of the restore can proceed.
 */
export function restoredMode(entry: ManifestFile): number {
  // A link's own mode means nothing on Linux (always 0777); its target has its own entry.
  if (entry.type === 'symlink') return entry.mode
  const area = areaOf(entry.path)
  if (PRIVATE_AREAS.includes(area)) {
    if (entry.type === 'dir') return 0o700
    return PUBLIC_FILE.test(entry.path) ? entry.mode & 0o644 : 0o600
  }

  const masked = entry.mode & 0o755
  return entry.type === 'dir' ? masked | 0o700 : masked
}

function inside(root: string, path: string): boolean {
  return path === root || path.startsWith(root + sep)
}

/**
 * Where the link at `tree/<path>` leads, resolved the way the kernel would (every link on the
 * way followed, dangling ones included), or why it must be refused: a step that leaves the
 * link's area, an absolute target, or a loop. Text normalisation is not enough: with
 * `x/l1 -> .`, the target `l1/l1/../../..` climbs three levels although it reads like one.
 */
export async function linkEscape(tree: string, path: string): Promise<string | undefined> {
  // Not realpath of the area itself: an area that is a link must not move its own bounds.
  const area = areaOf(path)
  const root = join(await fs.realpath(join(tree, posix.dirname(area))), posix.basename(area))
  const linkDir = await fs.realpath(join(tree, posix.dirname(path)))
  const pending = (await fs.readlink(join(tree, path))).split('/')
  let current = linkDir
  let followed = 1
  while (pending.length > 0) {
    const part = pending.shift()!
    if (part === '' || part === '.') continue
    const next = part === '..' ? join(current, '..') : join(current, part)
    if (!inside(root, next)) return `it leads outside ${area}`
    const stat = await fs.lstat(next).catch((error) => {
      if (errnoCode(error) === 'ENOENT') return undefined
      throw error
    })
    if (stat?.isSymbolicLink()) {
      if (++followed > MAX_LINKS) return 'it is part of a symlink loop'
      const target = await fs.readlink(next)
      if (isAbsolute(target)) return `it goes through a link with the absolute target "${target}"`
      pending.unshift(...target.split('/'))
      continue
    }

    current = next
  }

  return inside(root, current) ? undefined : `it leads outside ${area}`
}
