import {spawn} from 'node:child_process'
import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
export const BIN = join(ROOT, 'bin', 'run.js')

export interface RunResult {
  code: number
  stdout: string
  stderr: string
}

export interface TempEnv {
  dir: string
  configDir: string
  stateDir: string
  env: NodeJS.ProcessEnv
  cleanup(): Promise<void>
}

/** A fresh config and state directory; the returned env points mfc at them and nothing else. */
export async function tempEnv(prefix = 'mfc-test-'): Promise<TempEnv> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  const configDir = join(dir, 'config')
  const stateDir = join(dir, 'state')
  const env: NodeJS.ProcessEnv = {PATH: process.env.PATH, HOME: dir, MFC_CONFIG_DIR: configDir, MFC_STATE_DIR: stateDir, LANG: 'C.UTF-8'}
  return {dir, configDir, stateDir, env, cleanup: () => rm(dir, {force: true, recursive: true})}
}

/** Runs the built CLI (bin/run.js) as a user would: a real process, no TTY. */
export function runCli(args: string[], options: {env?: NodeJS.ProcessEnv; input?: string; cwd?: string} = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {env: options.env ?? process.env, cwd: options.cwd ?? ROOT, stdio: ['pipe', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => {
      stdout += chunk
    })
    child.stderr.on('data', (chunk) => {
      stderr += chunk
    })
    child.on('error', reject)
    child.on('close', (code) => resolvePromise({code: code ?? -1, stdout, stderr}))
    child.stdin.end(options.input ?? '')
  })
}

/** Parses stdout of a --json run, with the output in the message when it is not JSON. */
export function parseJson<T = Record<string, unknown>>(result: RunResult): T {
  try {
    return JSON.parse(result.stdout) as T
  } catch {
    throw new Error(`stdout is not JSON (exit ${result.code}):\n${result.stdout}\nstderr:\n${result.stderr}`)
  }
}
