import {spawn} from 'node:child_process'

/** One timed run of a command: wall time, exit code and its combined output. */
export interface Sample {
  ms: number
  code: number
  output: string
}

/** Runs `command` with a minimal environment plus `env`, timing the whole process. */
export function timed(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<Sample> {
  return new Promise((done) => {
    const started = performance.now()
    const child = spawn(command, args, {env: {PATH: process.env.PATH, HOME: process.env.HOME, LANG: 'C.UTF-8', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout.on('data', (chunk) => {
      output += chunk
    })
    child.stderr.on('data', (chunk) => {
      output += chunk
    })
    child.on('close', (code) => done({ms: performance.now() - started, code: code ?? -1, output}))
  })
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/** The sample's time, or an error with the tail of its output when the run failed. */
export function check(tool: string, sample: Sample): number {
  if (sample.code !== 0) throw new Error(`${tool} failed (exit ${sample.code}):\n${sample.output.slice(-3000)}`)
  return sample.ms
}
