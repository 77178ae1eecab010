import {type ChildProcess, spawn} from 'node:child_process'
import {openSync, closeSync} from 'node:fs'

import type {MfcEventBus} from '../../lib/events.js'
import type {Logger} from '../../lib/logger.js'
import type {PidFile, ServePorts} from './pid-file.js'

export interface SupervisorOptions {
  /** The server process: executable and arguments (`node bin/run.js serve --worker ...`). */
  command: string
  args: string[]
  env: NodeJS.ProcessEnv
  /** The worker's stdout/stderr are appended here (a crash's stack trace ends up in the log). */
  logFile: string
  pidFile: PidFile
  logger: Logger
  events?: MfcEventBus
  /** First restart delay; doubled per restart inside the window, up to maxDelayMs. */
  initialDelayMs?: number
  maxDelayMs?: number
  /** More than maxRestarts crashes inside windowMs: give up (something is persistently wrong). */
  maxRestarts?: number
  windowMs?: number
  /** SIGTERM, then SIGKILL after this long. */
  stopTimeoutMs?: number
}

/** What a worker tells its supervisor over the IPC channel. */
export type WorkerMessage = {type: 'ready'; ports: ServePorts}

/**
 * Keeps one server process running: spawns it, restarts it when it dies unexpectedly with
 * exponential backoff, gives up after `maxRestarts` crashes in `windowMs`, and keeps the pid
 * file current (worker pid, restarts, ports). Every restart is logged and emitted as
 * `daemon:restarted`. `stop()` forwards SIGTERM (SIGKILL after stopTimeoutMs); `run()`
 * resolves with the exit code the supervisor should exit with.
 */
export class Supervisor {
  private child?: ChildProcess
  private stopping = false
  private restarts = 0
  private crashes: number[] = []
  private finish!: (code: number) => void
  private delayTimer?: NodeJS.Timeout
  private everReady = false

  constructor(private readonly options: SupervisorOptions) {}

  run(): Promise<number> {
    const done = new Promise<number>((resolve) => {
      this.finish = resolve
    })
    this.spawnWorker()
    return done
  }

  /** Forwards a signal (SIGHUP: reload the certificate) to the worker. */
  signal(signal: NodeJS.Signals): void {
    this.child?.kill(signal)
  }

  stop(): void {
    if (this.stopping) return
    this.stopping = true
    clearTimeout(this.delayTimer)
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return this.finish(0)
    this.options.logger.info({pid: child.pid}, 'Stopping the server process')
    child.kill('SIGTERM')
    const killer = setTimeout(() => {
      this.options.logger.warn({pid: child.pid}, 'The server process did not stop in time; killing it')
      child.kill('SIGKILL')
    }, this.options.stopTimeoutMs ?? 15_000)
    child.once('exit', () => clearTimeout(killer))
  }

  private spawnWorker(): void {
    const {logger} = this.options
    const fd = openSync(this.options.logFile, 'a', 0o600)
    const child = spawn(this.options.command, this.options.args, {env: this.options.env, stdio: ['ignore', fd, fd, 'ipc']})
    closeSync(fd)
    this.child = child
    const startedAt = new Date().toISOString()
    logger.info({pid: child.pid, restarts: this.restarts}, 'Server process started')
    void this.options.pidFile.update({pid: child.pid!, workerStartedAt: startedAt, restarts: this.restarts, ready: false})
    child.on('message', (message: WorkerMessage) => {
      if (message?.type !== 'ready') return
      this.everReady = true
      void this.options.pidFile.update({pid: child.pid!, ports: message.ports, ready: true})
    })
    child.on('error', (error) => logger.error({err: error.message}, 'Cannot start the server process'))
    child.on('exit', (code, signal) => this.onExit(code, signal))
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const {logger} = this.options
    if (this.stopping) {
      logger.info({code, signal}, 'Server process stopped')
      return this.finish(0)
    }

    const reason = signal ? `killed by ${signal}` : `exited with code ${code}`
    if (!this.everReady) {
      // The first start failed (a port in use, a bad certificate): restarting cannot help.
      logger.error({reason}, `Server process ${reason} before it was ready; not restarting`)
      return this.finish(code || 1)
    }

    const now = Date.now()
    const windowMs = this.options.windowMs ?? 60_000
    this.crashes = [...this.crashes.filter((at) => now - at < windowMs), now]
    const maxRestarts = this.options.maxRestarts ?? 5
    if (this.crashes.length > maxRestarts) {
      logger.error({reason, crashes: this.crashes.length, windowMs}, `Server process ${reason}; ${this.crashes.length} crashes within ${windowMs / 1000} s, giving up`)
      return this.finish(1)
    }

    const delay = Math.min(this.options.maxDelayMs ?? 30_000, (this.options.initialDelayMs ?? 500) * 2 ** (this.crashes.length - 1))
    logger.warn({reason, delayMs: delay, restart: this.restarts + 1}, `Server process ${reason}; restarting in ${delay} ms`)
    void this.options.pidFile.update({ready: false})
    this.delayTimer = setTimeout(() => {
      this.restarts++
      this.spawnWorker()
      this.options.events?.emit('daemon:restarted', {pid: this.child!.pid!, restarts: this.restarts, reason})
    }, delay)
  }
}
