import {LockError} from './errors.js'

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

/**
 * Runs `work` holding `name` on `locker`, releasing it in `finally`. A held lock is retried
 * every 100-300 ms (jittered, so a crowd of nodes does not knock in step) until `waitMs` has
 * passed, then its LockError is thrown; `signal` ends the wait early. Used where a second
 * writer should wait its turn and then look again (a renewal that another node may finish).
 */
export async function withLocker<T>(locker: Locker, name: string, command: string, work: () => Promise<T>, waitMs = 0, signal?: AbortSignal): Promise<T> {
  const deadline = Date.now() + waitMs
  let held: HeldLock | undefined
  while (!held) {
    signal?.throwIfAborted()
    try {
      held = await locker.acquire(name, command)
    } catch (error) {
      if (!(error instanceof LockError) || Date.now() >= deadline) throw error
      await pause(100 + Math.random() * 200, signal)
    }
  }

  try {
    return await work()
  } finally {
    await held.release()
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, {once: true})
    function done() {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
  })
}
