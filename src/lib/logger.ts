import {dirname} from 'node:path'

/**
 * The structured logger services receive. Implemented by pino in the daemon (JSON to the log
 * file, pretty on a TTY); commands that only print pass `silentLogger`. Never log secrets.
 */
export interface Logger {
  debug(fields: Record<string, unknown> | string, message?: string): void
  info(fields: Record<string, unknown> | string, message?: string): void
  warn(fields: Record<string, unknown> | string, message?: string): void
  error(fields: Record<string, unknown> | string, message?: string): void
  child(bindings: Record<string, unknown>): Logger
}

export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
}

export interface LoggerOptions {
  /** JSON lines are appended here (0600, directory 0700). */
  file?: string
  /** Human-readable lines on stderr as well (a foreground `serve` on a TTY). */
  pretty?: boolean
  level?: 'debug' | 'info' | 'warn' | 'error'
}

/** Builds a pino root logger; pino is loaded only by the processes that log (serve, daemon). */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const {default: pino} = await import('pino')
  const {mkdirSync} = await import('node:fs')
  const streams: {stream: NodeJS.WritableStream | ReturnType<typeof pino.destination>; level?: string}[] = []
  if (options.file) {
    mkdirSync(dirname(options.file), {recursive: true, mode: 0o700})
    streams.push({stream: pino.destination({dest: options.file, mkdir: true, sync: false, mode: 0o600} as never)})
  }

  if (options.pretty) {
    const {default: pretty} = await import('pino-pretty')
    streams.push({stream: pretty({colorize: process.stderr.isTTY, destination: 2, translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname'})})
  }

  const level = options.level ?? 'info'
  const root = pino({level, base: {pid: process.pid}, redact: ['token', 'password', 'secret', '*.token', '*.password', '*.secret', 'headers.authorization', 'headers.cookie']},
    pino.multistream(streams.map((s) => ({...s, level: s.level ?? level})) as never))
  return root as unknown as Logger
}
