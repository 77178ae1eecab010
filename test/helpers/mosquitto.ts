import {type ChildProcess, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'

/** A real Mosquitto (Debian's) on 127.0.0.1:`port`, configured in `dir`. */
export interface Mosquitto {
  port: number
  output(): string
  stop(): Promise<void>
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host: '127.0.0.1', port}, () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Starts `mosquitto -c FILE` and resolves once it accepts connections. `extra` lines go into the
 * listener's config (TLS files, password_file). In-memory only (persistence false): a restart
 * forgets sessions, as a broker without persistence does.
 */
export async function startMosquitto(dir: string, port: number, extra: string[] = ['allow_anonymous true']): Promise<Mosquitto> {
  const file = join(dir, `mosquitto-${port}.conf`)
  writeFileSync(file, [`listener ${port} 127.0.0.1`, ...extra, 'persistence false', 'log_dest stdout', 'log_type error', 'log_type warning', ''].join('\n'))
  const child: ChildProcess = spawn('mosquitto', ['-c', file], {stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout!.on('data', (c) => (output += c))
  child.stderr!.on('data', (c) => (output += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  for (let i = 0; i < 100 && !(await accepting(port)); i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}):\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  return {
    port,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}
