import {PidFile, isRunning} from './pid-file.js'

export interface StopResult {
  wasRunning: boolean
  /** A pid file was left by a process that no longer exists; it was removed. */
  removedStalePidFile: boolean
  pid: number | null
  supervisorPid: number | null
  /** SIGTERM was not enough within the timeout: SIGKILL was sent. */
  forced: boolean
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Stops the serve recorded in the pid file: SIGTERM to the supervisor (or the foreground
 * server), wait up to `timeoutMs` for both processes to exit, SIGKILL whatever is left, then
 * remove the pid file. Stopping what is not running is not an error (LSB `stop` semantics).
 */
export async function stopServe(pidFilePath: string, timeoutMs: number): Promise<StopResult> {
  const pidFile = new PidFile(pidFilePath)
  const state = await pidFile.read()
  if (!state) return {wasRunning: false, removedStalePidFile: false, pid: null, supervisorPid: null, forced: false}
  const {pid, supervisorPid} = state.record
  if (!state.alive) {
    await pidFile.remove()
    return {wasRunning: false, removedStalePidFile: true, pid, supervisorPid, forced: false}
  }

  const pids = [supervisorPid, pid].filter((p): p is number => typeof p === 'number' && p > 0)
  const signal = (sig: NodeJS.Signals) => {
    for (const target of pids) {
      try {
        process.kill(target, sig)
      } catch {}
    }
  }

  // The supervisor forwards SIGTERM to its worker; a foreground serve has no supervisor.
  try {
    process.kill(supervisorPid ?? pid, 'SIGTERM')
  } catch {}

  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline && pids.some(isRunning)) await sleep(100)
  const forced = pids.some(isRunning)
  if (forced) {
    signal('SIGKILL')
    const killDeadline = Date.now() + 5000
    while (Date.now() < killDeadline && pids.some(isRunning)) await sleep(50)
  }

  await pidFile.remove()
  return {wasRunning: true, removedStalePidFile: false, pid, supervisorPid, forced}
}
