import {promises as fs} from 'node:fs'

import {isProcessAlive} from '../../lib/lock.js'

/**
 * The pid of a running `mfc serve`, from its pid file (JSON `{"pid": N, ...}` or a plain
 * number), or undefined when there is none or it is dead.
 */
export async function runningServePid(pidFile: string): Promise<number | undefined> {
  let text: string
  try {
    text = (await fs.readFile(pidFile, 'utf8')).trim()
  } catch {
    return undefined
  }

  let pid: number
  try {
    const parsed = JSON.parse(text) as unknown
    pid = typeof parsed === 'number' ? parsed : Number((parsed as {pid?: unknown})?.pid)
  } catch {
    pid = Number(text)
  }

  return Number.isInteger(pid) && pid > 0 && pid !== process.pid && isProcessAlive(pid) ? pid : undefined
}

/**
 * Tells a running `mfc serve` to reload its certificates (SIGHUP; serve swaps the TLS context
 * without dropping connections). Returns the pid signalled, or undefined when none runs.
 * A failure to signal is not an error of the renewal: the files are already in place.
 */
export async function signalServeReload(pidFile: string): Promise<number | undefined> {
  const pid = await runningServePid(pidFile)
  if (pid === undefined) return undefined
  try {
    process.kill(pid, 'SIGHUP')
    return pid
  } catch {
    return undefined
  }
}
