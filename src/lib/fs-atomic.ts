import {randomBytes} from 'node:crypto'
import {constants, promises as fs} from 'node:fs'
import {basename, dirname, join} from 'node:path'

/** Creates a directory (and parents) with the given mode; an existing one keeps its mode. */
export async function ensureDir(dir: string, mode = 0o700): Promise<void> {
  await fs.mkdir(dir, {mode, recursive: true})
}

export function tempName(target: string): string {
  return join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
}

/** fsync a directory so a rename inside it survives a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await fs.open(dir, constants.O_RDONLY)
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Writes a file so that readers see either the old or the new content, never a torn one:
 * a temp file in the same directory, created with `mode` (so a key is never briefly readable),
 * fsync, rename over the target, fsync the directory.
 */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  const temp = tempName(target)
  const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode) // the umask may have narrowed or widened the create mode
    await handle.sync()
  } catch (error) {
    await handle.close()
    await fs.rm(temp, {force: true})
    throw error
  }

  await handle.close()
  try {
    await fs.rename(temp, target)
  } catch (error) {
    await fs.rm(temp, {force: true})
    throw error
  }

  await syncDir(dirname(target))
}

/**
 * Creates `target` complete (temp file, fsync, hard link) only if it does not exist yet;
 * returns false, changing nothing, when it does. Concurrent creators: exactly one wins, and the
 * others read the winner's content instead of replacing it (what rename would do).
 */
export async function createFileExclusive(target: string, data: string | Uint8Array, mode = 0o600): Promise<boolean> {
  const temp = tempName(target)
  const handle = await fs.open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode)
  try {
    await handle.writeFile(data)
    await handle.chmod(mode)
    await handle.sync()
    await handle.close()
    await fs.link(temp, target)
    await syncDir(dirname(target))
    return true
  } catch (error) {
    await handle.close().catch(() => {})
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    await fs.rm(temp, {force: true})
  }
}

/** Replaces (or creates) a symlink atomically: a temp link renamed over the old one. */
export async function replaceSymlink(target: string, linkPath: string): Promise<void> {
  const temp = tempName(linkPath)
  await fs.symlink(target, temp)
  try {
    await fs.rename(temp, linkPath)
  } catch (error) {
    await fs.rm(temp, {force: true})
    throw error
  }

  await syncDir(dirname(linkPath))
}
