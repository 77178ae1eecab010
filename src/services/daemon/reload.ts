import {PidFile, type PidRecord} from './pid-file.js'

/**
 * The `mfc serve` its pid file names, when that process is alive and really is an mfc serve
 * (after a reboot the number may belong to something else); undefined otherwise. A serve
 * never counts itself.
 */
export async function runningServe(pidFile: string): Promise<PidRecord | undefined> {
  const state = await new PidFile(pidFile).read()
  if (!state?.alive) return undefined
  const owner = state.record.supervisorPid ?? state.record.pid
  return owner === process.pid ? undefined : state.record
}

/**
 * The one way to tell a running `mfc serve` to reload (after a renewal, a restore...): SIGHUP
 * to the process that owns its pid file, i.e. the supervisor of `serve --daemon` (which
 * forwards it to its current server process, even one restarted a moment ago) or a
 * foreground serve. serve swaps its certificates without dropping connections. Returns the
 * pid signalled, or undefined when no serve runs. Never throws: the caller's files are already
 * in place, and a serve that is not told still picks up certificate changes by watching them.
 */
export async function signalServeReload(pidFile: string): Promise<number | undefined> {
  const record = await runningServe(pidFile)
  if (!record) return undefined
  const target = record.supervisorPid ?? record.pid
  try {
    process.kill(target, 'SIGHUP')
    return target
  } catch {
    return undefined
  }
}
