import {constants, promises as fs, readFileSync} from 'node:fs'
import {dirname} from 'node:path'

import {LockError, errnoCode} from '../../lib/errors.js'
import {ensureDir, writeFileAtomic} from '../../lib/fs-atomic.js'
import {isProcessAlive} from '../../lib/lock.js'

export interface ServePorts {
  api: number
  dashboard: number
  streamer: number
  http: number | null
}

/** The pid file of a running `mfc serve` (foreground or daemon). */
export interface PidRecord {
  /** The server process (the worker, under a supervisor). */
  pid: number
  /** The supervisor of `serve --daemon`; null for a foreground `serve`. */
  supervisorPid: number | null
  startedAt: string
  /** When the current server process started (differs from startedAt after a restart). */
  workerStartedAt: string
  restarts: number
  /** Actual listening ports once the servers are up (configured ports before). */
  ports: ServePorts
  /** Set once every server listens. */
  ready: boolean
  version: string
  logFile: string
}

export interface PidState {
  record: PidRecord
  /** The owning process (supervisor, else server) still exists and is an mfc serve. */
  alive: boolean
}

/** A process exists and is not a zombie (an exited child nobody reaped still answers kill 0). */
export function isRunning(pid: number): boolean {
  if (!isProcessAlive(pid)) return false
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return isProcessAlive(pid) // no /proc: kill(pid, 0) is all we know
  }
}

/**
 * A pid exists and, where /proc tells us, runs `serve` (after a reboot the number may belong
 * to something else entirely).
 */
export function isServeProcess(pid: number): boolean {
  if (!isRunning(pid)) return false
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('serve')
  } catch {
    return true // no /proc (not Linux): kill(pid, 0) is all we know
  }
}

/**
 * `paths.pidFile`: claimed with O_EXCL so two `serve`s cannot both win; a file whose owner is
 * dead (kill -9, reboot) is stale and reclaimed. `update` and `release` only touch a file
 * this process owns. `release` is idempotent.
 */
export class PidFile {
  constructor(readonly file: string) {}

  async read(): Promise<PidState | undefined> {
    let record: PidRecord
    try {
      record = JSON.parse(await fs.readFile(this.file, 'utf8')) as PidRecord
      if (!Number.isInteger(record?.pid)) throw new Error('not a pid record')
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined
      // Unparseable (a crash mid-write of the claim) or not ours: nobody can be proven to own it.
      return {record: {pid: 0, supervisorPid: null, startedAt: '', workerStartedAt: '', restarts: 0, ports: {api: 0, dashboard: 0, streamer: 0, http: null}, ready: false, version: '', logFile: ''}, alive: false}
    }

    return {record, alive: isServeProcess(record.supervisorPid ?? record.pid)}
  }

  async claim(record: PidRecord): Promise<void> {
    await ensureDir(dirname(this.file), 0o700)
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await fs.open(this.file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644)
        await handle.writeFile(JSON.stringify(record, null, 2) + '\n')
        await handle.close()
        return
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error
      }

      const current = await this.read()
      if (current?.alive) throw alreadyRunning(this.file, current.record)
      await fs.rm(this.file, {force: true})
    }

    throw new LockError(`Could not claim the pid file ${this.file}: another mfc serve is starting.`, {code: 'MFC_DAEMON', suggestions: ['Run `mfc status` in a moment.']})
  }

  async update(patch: Partial<PidRecord>): Promise<void> {
    const current = await this.read()
    if (!current || !this.isOurs(current.record)) return
    await writeFileAtomic(this.file, JSON.stringify({...current.record, ...patch}, null, 2) + '\n', 0o644)
  }

  async release(): Promise<void> {
    const current = await this.read()
    if (current && this.isOurs(current.record)) await fs.rm(this.file, {force: true})
  }

  /** Removes the file whoever wrote it (`mfc stop` after the owner is gone). */
  async remove(): Promise<void> {
    await fs.rm(this.file, {force: true})
  }

  private isOurs(record: PidRecord): boolean {
    return record.supervisorPid === process.pid || (record.supervisorPid === null && record.pid === process.pid)
  }
}

export function alreadyRunning(file: string, record: PidRecord): LockError {
  return new LockError(`mfc serve is already running (pid ${record.pid}${record.supervisorPid ? `, supervisor ${record.supervisorPid}` : ''}, since ${record.startedAt}).`, {
    code: 'MFC_DAEMON',
    suggestions: ['See it with `mfc status`; stop it with `mfc stop`.', `If no mfc serve runs, remove ${file}.`],
  })
}
