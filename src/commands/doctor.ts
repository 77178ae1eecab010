import {readFile} from 'node:fs/promises'

import {Flags} from '@oclif/core'

import {apiTokenFacts} from '../cli/api-token.js'
import {MfcCommand} from '../cli/base-command.js'
import {systemClock} from '../lib/clock.js'
import {EXIT, UsageError} from '../lib/errors.js'
import type {CheckStatus, DoctorReport} from '../services/doctor/doctor.js'

const MARK: Record<CheckStatus, string> = {ok: 'ok  ', warn: 'WARN', fail: 'FAIL', skip: 'skip'}

export default class Doctor extends MfcCommand {
  static override summary = 'Check the machine for what breaks certificates and serve: DNS, ports, CAA, files, chain, clock, CA, hooks.'

  static override description = `The deployment guide's troubleshooting list as one read-only command. It checks that each
name resolves (A/AAAA) to this machine; that port 80 (for ACME) and the three HTTPS ports are
free or held by mfc serve; that CAA records let the CA issue; that the key file is not readable
by others and belongs to the certificate; that the chain reaches a trusted root; that the clock
agrees with the CA's; that the CA's directory answers; that configured hooks exist and are
executable; and that the API token serve would use (in cluster mode the database's) is strong.
Every problem comes with what to do. Exit 0 when nothing failed (warnings allowed),
1 when a check failed, 2 for bad flags. Writes nothing.`

  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --domain example.org --domain www.example.org --json',
    {description: 'Ask the zone\'s own server, and trust a private CA', command: '<%= config.bin %> <%= command.id %> --dns-server 192.0.2.53 --ca-file /etc/ssl/private-root.pem'},
  ]

  static override flags = {
    domain: Flags.string({char: 'd', description: 'A name to check (repeatable; default: the config\'s domains).', multiple: true}),
    server: Flags.string({description: 'ACME directory URL of the CA (default: the configured one).'}),
    'dns-server': Flags.string({description: 'DNS server to ask, host or host:port (repeatable; default: the system\'s).', multiple: true}),
    'caa-identity': Flags.string({description: 'The CA\'s CAA domain when its directory publishes none (e.g. for a private CA).'}),
    'ca-file': Flags.string({description: 'Extra trusted root (PEM) for the chain check.'}),
  }

  async run(): Promise<DoctorReport> {
    const {flags} = await this.parse(Doctor)
    const config = this.loadConfig(flags.config)
    const trustPem = flags['ca-file'] ? await readFile(flags['ca-file'], 'utf8').catch((error: Error) => {
      throw new UsageError(`Cannot read --ca-file ${flags['ca-file']}: ${error.message}.`, {code: 'MFC_USAGE', suggestions: ['Give a PEM certificate file.']})
    }) : undefined
    const {Doctor: DoctorService} = await import('../services/doctor/doctor.js')
    const report = await new DoctorService(config, systemClock).run({
      domains: flags.domain, dnsServers: flags['dns-server'], directory: flags.server, caaIdentity: flags['caa-identity'], trustPem, apiToken: await apiTokenFacts(config),
    })
    for (const c of report.checks) {
      this.say(`${MARK[c.status]}  ${c.id.padEnd(9)} ${c.subject}: ${c.detail}`)
      if (c.fix) this.say(`                Fix: ${c.fix}`)
    }

    this.say(`\n${report.failures} failed, ${report.warnings} warning(s), ${report.checks.filter((c) => c.status === 'ok').length} ok.`)
    if (report.failures > 0) process.exitCode = EXIT.FAILURE
    return report
  }
}
