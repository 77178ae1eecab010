import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'

/**
 * Drives a command on a real terminal: tmux runs it in a detached session, `send` types,
 * `waitFor` polls the screen. Used for the interactive prompts (inquirer needs a TTY).
 */
export class TmuxSession {
  readonly name = `mfc-test-${randomBytes(4).toString('hex')}`

  constructor(command: string, env: NodeJS.ProcessEnv) {
    const exports = Object.entries(env).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${shellQuote(v!)}`).join(' ')
    execFileSync('tmux', ['new-session', '-d', '-s', this.name, '-x', '160', '-y', '50', `env -i ${exports} ${command}; echo "EXIT=$?"; sleep 600`])
  }

  /** The terminal's text; with `escapes`, its colour escape sequences too. */
  screen(escapes = false): string {
    return execFileSync('tmux', ['capture-pane', '-p', ...(escapes ? ['-e'] : []), '-t', this.name, '-S', '-200'], {encoding: 'utf8'})
  }

  send(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.name, ...keys])
  }

  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const screen = this.screen()
      if (pattern.test(screen)) return screen
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${pattern} on the terminal:\n${screen}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }

  async exitCode(): Promise<number> {
    const screen = await this.waitFor(/EXIT=\d+/)
    return Number(/EXIT=(\d+)/.exec(screen)![1])
  }

  close(): void {
    try {
      execFileSync('tmux', ['kill-session', '-t', this.name], {stdio: 'ignore'})
    } catch {
      // already gone
    }
  }
}

function shellQuote(value: string): string {
  return `'${value.replaceAll("'", String.raw`'\''`)}'`
}
