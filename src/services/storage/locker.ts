import {join} from 'node:path'

import {acquireLock} from '../../lib/lock.js'
import type {HeldLock, Locker} from '../../lib/locker.js'

export type {HeldLock, Locker} from '../../lib/locker.js'

/** The embedded default: lock files with owner pid in `dir` (src/lib/lock.ts). */
export class FileLocker implements Locker {
  constructor(readonly dir: string) {}

  async acquire(name: string, command: string): Promise<HeldLock> {
    const lock = await acquireLock(join(this.dir, `${name}.lock`), command)
    return {name, release: () => lock.release()}
  }
}

