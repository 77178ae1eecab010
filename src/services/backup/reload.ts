import {promises as fs} from 'node:fs'

import {isProcessAlive} from '../../lib/lock.js'

/**
 * Sends SIGHUP to the `serve` process named in the pid file (plain pid or JSON with `pid`),
 * so it reloads certificates and config. Returns the pid signalled, or null when no live
 * process is named. Never throws: a reload is best effort after the files are in place.
 */
export async function signalServe(pidFile: string): Promise<number | null> {
  let text: string
  try {
    text = (await fs.readFile(pidFile, 'utf8')).trim()
  } catch {
    return null
  }

  let pid = Number(text)
  if (!Number.isInteger(pid)) {
    try {
      pid = Number((JSON.parse(text) as {pid?: unknown}).pid)
    } catch {
      return null
    }
  }

  if (!isProcessAlive(pid) || pid === process.pid) return null
  try {
    process.kill(pid, 'SIGHUP')
    return pid
  } catch {
    return null
  }
}
