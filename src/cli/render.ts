/**
 * How a command shows a long-running service call: a listr2 task list on a TTY, plain
 * "- step" lines otherwise, nothing under --json. The service reports steps through a
 * callback; it never knows which of the three it is talking to.
 */
export type Mode = 'tty' | 'plain' | 'silent'

export function outputMode(json: boolean): Mode {
  if (json) return 'silent'
  // A terminal that reports 0 columns (some CI consoles, `script`, serial lines) cannot hold
  // listr2's redrawn lines: plain lines there.
  return process.stdout.isTTY && (process.stdout.columns ?? 0) > 0 ? 'tty' : 'plain'
}

const COLOUR: Record<string, number> = {OK: 32, WARNING: 33, CRITICAL: 31, UNKNOWN: 35}

/**
 * A Nagios status word (OK, WARNING, CRITICAL, UNKNOWN), coloured when stdout is a terminal and
 * NO_COLOR (https://no-color.org) is unset or empty; plain otherwise (pipes, logs, cron mail).
 */
export function statusWord(word: string, stream: {isTTY?: boolean} = process.stdout, env: NodeJS.ProcessEnv = process.env): string {
  const code = COLOUR[word]
  if (!code || !stream.isTTY || (env.NO_COLOR ?? '') !== '') return word
  return `\u001B[${code}m${word}\u001B[39m`
}

/** A duration for people: "45 s", "12 min 5 s", "3 h 12 min", "4 d 2 h". */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  const [d, h, m] = [Math.floor(s / 86_400), Math.floor((s % 86_400) / 3600), Math.floor((s % 3600) / 60)]
  if (d > 0) return h > 0 ? `${d} d ${h} h` : `${d} d`
  if (h > 0) return m > 0 ? `${h} h ${m} min` : `${h} h`
  if (m > 0) return s % 60 > 0 ? `${m} min ${s % 60} s` : `${m} min`
  return `${s} s`
}

export async function runSteps<T>(mode: Mode, title: string, work: (step: (text: string) => void) => Promise<T>): Promise<T> {
  if (mode === 'silent') return work(() => {})
  if (mode === 'plain') {
    process.stdout.write(`${title}\n`)
    return work((text) => process.stdout.write(`  - ${text}\n`))
  }

  const {Listr} = await import('listr2')
  let result!: T
  const tasks = new Listr([{
    title,
    task: async (_ctx, task) => {
      result = await work((text) => {
        task.output = text
      })
    },
    rendererOptions: {bottomBar: 4, persistentOutput: true},
  }], {exitOnError: true, rendererOptions: {collapseErrors: false}})
  await tasks.run()
  return result
}

/** A two-column list of facts, labels padded to one width. */
export function facts(rows: [string, string | number | null | undefined][]): string {
  const shown = rows.filter(([, value]) => value !== undefined && value !== null && value !== '')
  const width = Math.max(...shown.map(([label]) => label.length))
  return shown.map(([label, value]) => `  ${(label + ':').padEnd(width + 1)} ${value}`).join('\n')
}
