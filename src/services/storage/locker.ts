import {join} from 'node:path'

import {acquireLock} from '../../lib/lock.js'

/** A held lock. `release()` is idempotent. */
export interface HeldLock {
  readonly name: string
  release(): Promise<void>
}

/**
 * The exclusive lock around everything that writes certificates, keys or config (certmagic's
 * `Locker`). Contract: `acquire` returns at once with the lock, or fails at once with a
 * LockError (code MFC_LOCKED) naming the holder; never waits. A holder that dies (kill -9, a
 * crash, a reboot) loses the lock without anyone's help: the next `acquire` gets it.
 */
export interface Locker {
  acquire(name: string, command: string): Promise<HeldLock>
}

/** The embedded default: lock files with owner pid in `dir` (src/lib/lock.ts). */
export class FileLocker implements Locker {
  constructor(readonly dir: string) {}

  async acquire(name: string, command: string): Promise<HeldLock> {
    const lock = await acquireLock(join(this.dir, `${name}.lock`), command)
    return {name, release: () => lock.release()}
  }
}
