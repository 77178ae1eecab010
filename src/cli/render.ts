/**
 * How a command shows a long-running service call: a listr2 task list on a TTY, plain
 * "- step" lines otherwise, nothing under --json. The service reports steps through a
 * callback; it never knows which of the three it is talking to.
 */
export type Mode = 'tty' | 'plain' | 'silent'

export function outputMode(json: boolean): Mode {
  if (json) return 'silent'
  return process.stdout.isTTY ? 'tty' : 'plain'
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
