import {Command, Flags, type Interfaces} from '@oclif/core'

import {type MfcConfig, type ResolveOptions, type SettingOverrides, resolveConfig} from '../lib/config.js'
import {EXIT, MfcError, NAGIOS, toMfcError} from '../lib/errors.js'

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof MfcCommand)['baseFlags'] & T['flags']>

/**
 * The base of every mfc command: `--json`, `--config`, `--debug`, config resolution, and one
 * error path that prints "Error: ... / Try this: ..." (or a JSON error object) and exits with
 * the error's code. A stack trace only with --debug or MFC_DEBUG.
 */
export abstract class MfcCommand extends Command {
  static override baseFlags = {
    config: Flags.string({
      description: 'Path of ssl-config.json (default: $MFC_SSL_CONFIG, else the config directory).',
      helpGroup: 'GLOBAL',
    }),
    debug: Flags.boolean({description: 'Show stack traces and debug logs (also MFC_DEBUG=1).', helpGroup: 'GLOBAL'}),
    help: Flags.help({char: 'h', description: 'Show this help (certbot\'s -h too).', helpGroup: 'GLOBAL'}),
  }

  static override enableJsonFlag = true

  /**
   * A Nagios plugin (`cert monitor`, `status`): its report decides 0-2, and any error, whatever
   * its code, exits UNKNOWN (3) so that a monitoring system never reads a typo as CRITICAL.
   */
  static nagios?: boolean

  private resolved?: MfcConfig

  /**
   * Resolves the config once, with this command's flags applied on top. `lenient` (stop,
   * status): a config error is a warning, printed to stderr even under --json.
   */
  protected loadConfig(configFile: string | undefined, overrides: SettingOverrides = {}, options: Pick<ResolveOptions, 'lenient' | 'mayCreateFile'> = {}): MfcConfig {
    if (!this.resolved) {
      this.resolved = resolveConfig({configFile, overrides, ...options})
      if (!this.jsonEnabled()) for (const warning of this.resolved.warnings) this.warn(warning)
      else if (options.lenient) for (const warning of this.resolved.warnings) process.stderr.write(`Warning: ${warning}\n`)
    }

    return this.resolved
  }

  /** True when the command may ask questions: a TTY on both ends, no --json, no --yes. */
  protected canPrompt(yes = false): boolean {
    return !yes && !this.jsonEnabled() && Boolean(process.stdin.isTTY && process.stdout.isTTY)
  }

  /** Prints a line for humans (never under --json). */
  protected say(message = ''): void {
    if (!this.jsonEnabled()) this.log(message)
  }

  protected override async catch(error: Error & {oclif?: {exit?: number}; skipOclifErrorHandling?: boolean}): Promise<never> {
    // this.exit(n) is not a failure: let oclif exit with n.
    if ((error as {code?: string}).code === 'EEXIT') throw error
    const debug = this.argv.includes('--debug') || /^(1|true|yes|on)$/i.test(process.env.MFC_DEBUG ?? '')
    // oclif's own parse errors (unknown flag, missing value) are usage errors: exit 2.
    const mfcError = error instanceof MfcError
      ? error
      : error.oclif?.exit === EXIT.USAGE || /(Unexpected argument|Nonexistent flag|Expected|Missing required flag|--\S+ cannot also be provided|requires)/.test(error.message)
        ? new MfcError(usageMessage(error.message), {code: 'MFC_USAGE', suggestions: [`See \`mfc ${this.id?.replaceAll(':', ' ') ?? ''} --help\`.`], cause: error})
        : toMfcError(error)

    const exitCode = (this.constructor as typeof MfcCommand).nagios ? NAGIOS.UNKNOWN : mfcError.exitCode
    if (this.jsonEnabled()) {
      this.logJson({error: {code: mfcError.code, message: mfcError.message, exitCode, suggestions: mfcError.suggestions}})
    } else {
      process.stderr.write(`Error: ${mfcError.message}\n`)
      for (const suggestion of mfcError.suggestions) process.stderr.write(`Try this: ${suggestion}\n`)
    }

    if (debug) process.stderr.write(`${(mfcError.cause as Error | undefined)?.stack ?? mfcError.stack}\n`)
    process.exitCode = exitCode
    // Printed already: oclif must only exit with our code.
    Object.assign(error, {oclif: {exit: exitCode}, skipOclifErrorHandling: true})
    throw error
  }
}

/** oclif's parse errors can be "The following error occurred:" plus indented lines: keep the reasons. */
function usageMessage(message: string): string {
  const lines = message.split('\n').map((line) => line.trim()).filter((line) => line && !/^(The following errors? occurred:|See more help with --help)$/.test(line))
  return lines.join(' ') || message
}
