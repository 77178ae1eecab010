import {readFile} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {askConfirm} from '../../cli/prompts.js'
import {outputMode, runSteps} from '../../cli/render.js'
import {type SslInitResult, askSslInit, renderSslInit} from '../../cli/ssl-init-view.js'
import {type EabFlags, acmeIssuer} from '../../cli/acme-services.js'
import {ssl} from '../../cli/services.js'
import {ConfigError, StoreError, fileProblem} from '../../lib/errors.js'
import type {CertManager} from '../../services/certificates/cert-manager.js'
import {issuanceDirectory} from '../../services/acme/directories.js'
import {describeKeySpec, keySpecFromSettings} from '../../services/certificates/key-spec.js'

export type {SslInitResult} from '../../cli/ssl-init-view.js'

export default class SslInit extends MfcCommand {
  static override summary = 'Create the certificate the servers use: local CA (default) or your own files.'

  static override description = `Without --cert-file, mfc keeps a local certificate authority in its state directory (ECDSA P-256,
10 years) and signs a 90-day certificate for every --domain (localhost also gets 127.0.0.1 and ::1).
Trust the CA once (the command prints how) and browsers accept every certificate it signs.
With --cert-file and --key-file, your own certificate is checked (key matches, chain order, not
expired) and installed instead. Either way the files go into the versioned certificate store and
ssl-config.json points cert_file/key_file at the live copies.

On a terminal, missing answers are asked for; with --yes, --json or no terminal nothing is asked.`

  static override examples = [
    {description: 'A development certificate for this machine', command: '<%= config.bin %> <%= command.id %> --domain localhost'},
    {description: 'Several names, RSA keys', command: '<%= config.bin %> <%= command.id %> --domain mfc.lab.example --domain 10.0.0.5 --key-type rsa --rsa-key-size 3072'},
    {description: 'Let\'s Encrypt, answering HTTP-01 on port 80', command: '<%= config.bin %> <%= command.id %> --domain mfc.example.org --email admin@example.org --letsencrypt'},
    {description: 'Any ACME CA, with a web server already on port 80', command: '<%= config.bin %> <%= command.id %> --domain mfc.example.org --acme-directory https://ca.internal/acme/directory --webroot /var/www/html'},
    {description: 'Install a certificate you already have', command: '<%= config.bin %> <%= command.id %> --domain mfc.example.org --cert-file fullchain.pem --key-file privkey.pem'},
  ]

  static override flags = {
    domain: Flags.string({char: 'd', description: 'A name for the certificate (repeat for more; the first is the primary).', multiple: true}),
    email: Flags.string({description: 'Contact email stored in the config (used by ACME CAs).'}),
    'key-type': Flags.string({description: 'Key algorithm of the certificate.', options: ['ecdsa', 'rsa']}),
    'rsa-key-size': Flags.integer({description: 'RSA key size.', options: ['2048', '3072', '4096'] as never}),
    'elliptic-curve': Flags.string({description: 'ECDSA curve.', options: ['P-256', 'P-384']}),
    'cert-file': Flags.string({description: 'Install this certificate (PEM, leaf first) instead of issuing one.', dependsOn: ['key-file']}),
    'key-file': Flags.string({description: 'The private key of --cert-file (PEM).', dependsOn: ['cert-file']}),
    letsencrypt: Flags.boolean({description: 'Get the certificate from Let\'s Encrypt over ACME (HTTP-01).', exclusive: ['cert-file']}),
    staging: Flags.boolean({description: 'Use Let\'s Encrypt\'s staging CA (untrusted certificates, high limits) for testing.', exclusive: ['cert-file']}),
    'acme-directory': Flags.string({description: 'Directory URL of any RFC 8555 CA (ZeroSSL, step-ca, Pebble...) instead of Let\'s Encrypt.', exclusive: ['cert-file']}),
    'http-port': Flags.integer({description: 'Port of the HTTP-01 listener (default 80, the port CAs validate on).', min: 1, max: 65_535}),
    webroot: Flags.string({description: 'Write challenge files under DIR/.well-known/acme-challenge/ for the web server already on port 80.'}),
    'eab-kid': Flags.string({description: 'External Account Binding key ID, for CAs that require one (ZeroSSL, many step-ca setups); also MFC_ACME_EAB_KID.', dependsOn: ['eab-hmac-key'], exclusive: ['cert-file']}),
    'eab-hmac-key': Flags.string({description: 'External Account Binding HMAC key (base64url) for --eab-kid; also MFC_ACME_EAB_HMAC_KEY. Used once, to register the account; never stored.', dependsOn: ['eab-kid'], exclusive: ['cert-file']}),
    force: Flags.boolean({char: 'f', description: 'Replace an existing certificate without asking (the old version stays in the store).'}),
    yes: Flags.boolean({char: 'y', description: 'Never prompt; fail if something required is missing.'}),
  }

  async run(): Promise<SslInitResult> {
    const {flags} = await this.parse(SslInit)
    const interactive = this.canPrompt(flags.yes)
    let domains = flags.domain?.flatMap((d) => d.split(',')).map((d) => d.trim().toLowerCase()).filter(Boolean)
    const config = this.loadConfig(flags.config, {
      domains,
      email: flags.email,
      key_type: flags['key-type'] as 'ecdsa' | 'rsa' | undefined,
      rsa_key_size: flags['rsa-key-size'] as 2048 | undefined,
      elliptic_curve: flags['elliptic-curve'] as 'P-256' | undefined,
      staging: flags.staging || undefined,
      acme_directory: flags['acme-directory'],
      http_port: flags['http-port'],
      webroot: flags.webroot,
    }, {mayCreateFile: true})
    let acme = flags.letsencrypt || flags.staging || Boolean(flags['acme-directory']) || (!flags['cert-file'] && config.settings.use_letsencrypt)
    if (!acme && (flags['eab-kid'] || flags['eab-hmac-key'])) {
      throw new ConfigError('--eab-kid and --eab-hmac-key are for ACME CAs, and this run uses the local CA.', {
        code: 'MFC_CONFIG_VALUE', suggestions: ['Add --acme-directory URL (or --letsencrypt) to order from the CA that gave you the key.'],
      })
    }

    let email = config.settings.email
    let custom = flags['cert-file'] ? {certFile: flags['cert-file'], keyFile: flags['key-file']!} : undefined

    if (!domains && config.sources.domain === 'default') {
      if (!interactive) {
        throw new ConfigError('No domain given for the certificate.', {
          code: 'MFC_CONFIG_MISSING',
          suggestions: ['Pass --domain (e.g. `mfc ssl init --domain localhost`), set MFC_SSL_DOMAIN, or set "domain" in ' + config.paths.sslConfigFile + '.'],
        })
      }

      const answers = await askSslInit({domain: config.settings.domain, email, acme, custom})
      ;({domains, acme, email, custom} = answers)
    }

    const services = await ssl(this.loadConfig(flags.config, {}), domains)
    const names = acme ? domains ?? config.settings.domains : services.domains
    const existing = await services.manager.existing(names)
    let replace = flags.force
    if (existing && !replace) {
      if (!interactive) {
        throw new StoreError(`A certificate for ${names[0]} already exists (expires ${existing.meta.notAfter}).`, {
          code: 'MFC_STORE_EXISTS',
          suggestions: ['Add --force to replace it (the old version stays in the store).', 'Run `mfc cert renew` to renew it instead.'],
        })
      }

      replace = await askConfirm(`A certificate for ${names[0]} exists (expires ${existing.meta.notAfter}). Replace it?`, false)
      if (!replace) this.exit(0)
    }

    const mode = outputMode(this.jsonEnabled())
    const result = custom
      ? await runSteps(mode, `Installing ${custom.certFile}`, async () => services.manager.importPair({
        certPem: await this.readInput(custom.certFile), keyPem: await this.readInput(custom.keyFile),
        certSource: custom.certFile, keySource: custom.keyFile, replace, command: 'ssl init',
      }))
      : acme
        ? await this.issueAcme(services.manager, names, email, replace, flags, mode)
        : await runSteps(mode, `Issuing a certificate for ${names.join(', ')} (${describeKeySpec(keySpecFromSettings(config.settings))}, local CA)`, (step) => services.manager.obtain({
          domains: names, issuer: services.localCa, keySpec: keySpecFromSettings(config.settings), replace, command: 'ssl init', onStep: step,
          settings: {email: config.settings.email, use_letsencrypt: false, ca_file: custom ? null : config.paths.caCertFile},
        }))

    const {meta} = result.stored
    const output: SslInitResult = {
      name: meta.name, issuer: meta.issuer, domains: meta.domains, version: result.stored.version,
      certFile: result.certFile, keyFile: result.keyFile, chainFile: join(dirname(result.certFile), basename(result.stored.chainFile)),
      caFile: meta.issuer === 'local-ca' ? config.paths.caCertFile : null, configFile: result.configFile,
      serial: meta.serial, notBefore: meta.notBefore, notAfter: meta.notAfter,
      key: meta.keySpec ? describeKeySpec(meta.keySpec) : 'as given', replaced: result.replaced, acmeDirectory: meta.acmeDirectory ?? null,
    }
    this.say(renderSslInit(output))
    return output
  }

  /** Orders from the ACME CA and remembers how (directory, port, webroot) for renewals. */
  private async issueAcme(manager: CertManager, names: string[], email: string, replace: boolean, flags: {staging: boolean; 'acme-directory'?: string; 'http-port'?: number; webroot?: string; config?: string} & EabFlags, mode: ReturnType<typeof outputMode>) {
    const config = this.loadConfig(flags.config)
    const directory = issuanceDirectory(config.settings)
    const issuer = await acmeIssuer({...config, settings: {...config.settings, email}}, directory, flags)
    const keySpec = keySpecFromSettings(config.settings)
    return runSteps(mode, `Ordering a certificate for ${names.join(', ')} (${describeKeySpec(keySpec)}) from ${directory}`, (step) => manager.obtain({
      domains: names, issuer, keySpec, replace, command: 'ssl init', onStep: step,
      // Only what was given: an absent flag must not erase a key the file already has.
      settings: Object.fromEntries(Object.entries({email, use_letsencrypt: true, staging: flags.staging, ca_file: null, acme_directory: flags['acme-directory'], http_port: flags['http-port'], webroot: flags.webroot}).filter(([, v]) => v !== undefined)),
    }))
  }

  private async readInput(file: string): Promise<string> {
    try {
      return await readFile(file, 'utf8')
    } catch (error) {
      throw new StoreError(`${fileProblem(file, error)}.`, {code: 'MFC_CERT_INVALID', cause: error, suggestions: [`Check the path and permissions of ${file}.`]})
    }
  }
}
