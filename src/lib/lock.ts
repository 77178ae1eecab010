import {constants, promises as fs} from 'node:fs'
import {hostname} from 'node:os'
import {dirname} from 'node:path'

import {LockError, errnoCode} from './errors.js'
import {ensureDir} from './fs-atomic.js'

export interface LockOwner {
  pid: number
  host: string
  command: string
  since: string
}

/** A held lock; `release()` is idempotent and only removes the file if it is still ours. */
export interface Lock {
  readonly file: string
  release(): Promise<void>
}

/** True if a process with this pid exists (EPERM: it exists but belongs to someone else). */
export function isProcessAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return errnoCode(error) === 'EPERM'
  }
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as LockOwner
  } catch {
    return undefined
  }
}

/**
 * Takes the exclusive lock `file` (O_CREAT|O_EXCL, holding the owner's pid), failing at once
 * when a live process holds it. A lock whose pid is dead on this host (a crash, a reboot) is
 * reclaimed. An unreadable (half-written) lock is given a moment before it counts as stale,
 * because its writer may be between open() and write().
 */
export async function acquireLock(file: string, command: string): Promise<Lock> {
  await ensureDir(dirname(file))
  const owner: LockOwner = {pid: process.pid, host: hostname(), command, since: new Date().toISOString()}
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const handle = await fs.open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600)
      await handle.writeFile(JSON.stringify(owner))
      await handle.close()
      return makeLock(file)
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error
    }

    const holder = await readOwner(file)
    if (holder === undefined) {
      const {mtimeMs} = await fs.stat(file).catch(() => ({mtimeMs: 0}))
      if (Date.now() - mtimeMs < 2000) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        continue
      }
    } else if (holder.host === owner.host && isProcessAlive(holder.pid)) {
      throw new LockError(`Another mfc process (pid ${holder.pid}, "${holder.command}", since ${holder.since}) holds the lock ${file}.`, {
        code: 'MFC_LOCKED',
        suggestions: ['Wait for it to finish and try again.', `If no mfc process is running, remove ${file}.`],
      })
    } else if (holder.host !== owner.host) {
      throw new LockError(`The lock ${file} is held by pid ${holder.pid} on host ${holder.host}.`, {
        code: 'MFC_LOCKED',
        suggestions: [`If that host no longer runs mfc on this directory, remove ${file}.`],
      })
    }

    // Stale: its owner is gone. Remove it and race for it again (O_EXCL decides the winner).
    await fs.rm(file, {force: true})
  }

  throw new LockError(`Could not take the lock ${file}: it keeps changing hands.`, {
    code: 'MFC_LOCKED',
    suggestions: ['Try again in a moment.'],
  })
}

function makeLock(file: string): Lock {
  let released = false
  return {
    file,
    async release() {
      if (released) return
      released = true
      const holder = await readOwner(file)
      if (holder?.pid === process.pid) await fs.rm(file, {force: true})
    },
  }
}

/**
 * Takes the lock, waiting up to `waitMs` while a live process holds it (polling, so a waiter
 * never stalls the holder), then gives up with the holder's LockError. Renewals wait: cron's
 * `renew-if-needed`, `cert renew` and serve's maintainer may start at the same instant, and
 * the one that comes second must see the fresh certificate rather than fail.
 */
export async function acquireLockWaiting(file: string, command: string, waitMs: number, signal?: AbortSignal): Promise<Lock> {
  const deadline = Date.now() + waitMs
  for (;;) {
    try {
      return await acquireLock(file, command)
    } catch (error) {
      if (!(error instanceof LockError) || Date.now() >= deadline) throw error
    }

    signal?.throwIfAborted()
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 100))
  }
}

/** Runs `work` under the lock (waiting up to `waitMs` for it, default 0), releasing it whatever happens. */
export async function withLock<T>(file: string, command: string, work: () => Promise<T>, waitMs = 0, signal?: AbortSignal): Promise<T> {
  const lock = waitMs > 0 ? await acquireLockWaiting(file, command, waitMs, signal) : await acquireLock(file, command)
  try {
    return await work()
  } finally {
    await lock.release()
  }
}
