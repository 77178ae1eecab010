import {readFile} from 'node:fs/promises'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {outputMode, runSteps} from '../../cli/render.js'
import {askSslInit, renderSslInit} from '../../cli/ssl-init-view.js'
import {type EabFlags, acmeIssuer} from '../../cli/acme-services.js'
import {type ChallengeFlags, challengeFlags, challengeRecord} from '../../cli/challenge-options.js'
import {ssl} from '../../cli/services.js'
import {type InitHooks, certbotArgv, checkImportNames, consentToTerms, curveOf, decideInit, withInitHooks} from '../../cli/ssl-init-options.js'
import {ConfigError, StoreError, UsageError} from '../../lib/errors.js'
import {livePaths} from '../../lib/paths.js'
import type {CertManager, TrialResult} from '../../services/certificates/cert-manager.js'
import type {StoredCert} from '../../services/store/cert-store.js'
import {dryRunDirectory, issuanceDirectory} from '../../services/acme/directories.js'
import {checkPair} from '../../services/certificates/inspect.js'
import {describeKeySpec, keySpecFromSettings} from '../../services/certificates/key-spec.js'

export interface SslInitResult {
  /** issued: a new lineage; replaced: a new version; unchanged: the valid one was kept (exit 0). */
  action: 'issued' | 'replaced' | 'unchanged'
  name: string
  issuer: string
  domains: string[]
  version: string
  certFile: string
  keyFile: string
  chainFile: string
  caFile: string | null
  configFile: string
  serial: string
  notBefore: string
  notAfter: string
  key: string
  replaced: boolean
  acmeDirectory: string | null
  /** ACME: the challenge type used (and recorded for renewals). */
  challenge?: string
  message?: string
}

/** `--dry-run`: what the CA issued and mfc threw away. */
export interface SslInitTrial extends TrialResult {
  action: 'dry-run'
  acmeDirectory: string
}

type Flagged = {staging: boolean; 'acme-directory'?: string; 'http-port'?: number; webroot?: string; config?: string; 'agree-tos': boolean; 'dry-run': boolean; 'cert-name'?: string} & EabFlags & ChallengeFlags

export default class SslInit extends MfcCommand {
  static override summary = 'Create the certificate the servers use: local CA (default), an ACME CA (HTTP-01 or DNS-01), or your own files.'

  static override description = `Without --cert-file, mfc keeps a local certificate authority in its state directory (ECDSA P-256,
10 years) and signs a 90-day certificate for every --domain (localhost also gets 127.0.0.1 and ::1).
Trust the CA once (the command prints how) and browsers accept every certificate it signs.
With --cert-file and --key-file, your own certificate is checked (key matches, chain order, not
expired) and installed instead; its names come from the certificate. Either way the files go into
the versioned certificate store and ssl-config.json points cert_file/key_file at the live copies.

Running it again is safe (certbot's certonly rules): the same names while the certificate is valid
and not due do nothing (exit 0); more names need --expand, other names or another CA --force.
certbot's flags work as aliases (-m, --server, -w, -n, --test-cert, --http-01-port, --agree-tos...).

On a terminal, missing answers are asked for; with --yes, --json or no terminal nothing is asked.`

  static override examples = [
    {description: 'A development certificate for this machine', command: '<%= config.bin %> <%= command.id %> --domain localhost'},
    {description: 'Several names, RSA keys', command: '<%= config.bin %> <%= command.id %> --domain mfc.lab.example --domain 10.0.0.5 --key-type rsa --rsa-key-size 3072'},
    {description: 'Let\'s Encrypt, answering HTTP-01 on port 80', command: '<%= config.bin %> <%= command.id %> --domain mfc.example.org --email admin@example.org --letsencrypt --agree-tos'},
    {description: 'A wildcard over DNS-01 with RFC 2136 (certbot-dns-rfc2136\'s credentials file)', command: '<%= config.bin %> <%= command.id %> -d \'*.example.org\' -d example.org --preferred-challenges dns --dns-rfc2136-credentials /etc/mfc/rfc2136.ini --letsencrypt --agree-tos'},
    {description: 'DNS-01 through your own scripts (certbot\'s manual hooks)', command: '<%= config.bin %> <%= command.id %> -d \'*.example.org\' --preferred-challenges dns --manual-auth-hook ./add-txt.sh --manual-cleanup-hook ./del-txt.sh --letsencrypt --agree-tos'},
    {description: 'A certbot command line works as it is', command: '<%= config.bin %> <%= command.id %> --webroot -w /var/www/html -d mfc.example.org -m admin@example.org --agree-tos -n'},
    {description: 'Install a certificate you already have', command: '<%= config.bin %> <%= command.id %> --cert-file fullchain.pem --key-file privkey.pem'},
  ]

  static override flags = {
    domain: Flags.string({char: 'd', aliases: ['domains'], description: 'A name for the certificate (repeat for more; the first is the primary; *.name for a wildcard over DNS-01).', multiple: true}),
    email: Flags.string({char: 'm', description: 'Contact email stored in the config (used by ACME CAs).'}),
    'agree-tos': Flags.boolean({description: 'Agree to the ACME CA\'s terms of service (asked on a terminal; required with -n when a new account is registered).'}),
    'key-type': Flags.string({description: 'Key algorithm of the certificate.', options: ['ecdsa', 'rsa']}),
    'rsa-key-size': Flags.integer({description: 'RSA key size.', options: ['2048', '3072', '4096'] as never}),
    'elliptic-curve': Flags.string({description: 'ECDSA curve (certbot\'s names too).', options: ['P-256', 'P-384', 'secp256r1', 'secp384r1']}),
    'cert-name': Flags.string({description: 'Name of the lineage in the store (default: the first domain), as certbot\'s --cert-name.'}),
    'cert-file': Flags.string({description: 'Install this certificate (PEM, leaf first) instead of issuing one.', dependsOn: ['key-file']}),
    'key-file': Flags.string({description: 'The private key of --cert-file (PEM).', dependsOn: ['cert-file']}),
    letsencrypt: Flags.boolean({description: 'Get the certificate from Let\'s Encrypt over ACME.', exclusive: ['cert-file']}),
    staging: Flags.boolean({aliases: ['test-cert'], description: 'Use Let\'s Encrypt\'s staging CA (or acme_staging_directory) for testing (certbot\'s --test-cert).', exclusive: ['cert-file']}),
    'dry-run': Flags.boolean({description: 'Order from the staging CA (or the configured test directory), check the result and save nothing.', exclusive: ['cert-file']}),
    'acme-directory': Flags.string({aliases: ['server'], description: 'Directory URL of any RFC 8555 CA (ZeroSSL, step-ca, Pebble...) instead of Let\'s Encrypt (certbot\'s --server).', exclusive: ['cert-file']}),
    'http-port': Flags.integer({aliases: ['http-01-port'], description: 'Port of the HTTP-01 listener (default 80, the port CAs validate on).', min: 1, max: 65_535}),
    webroot: Flags.string({char: 'w', aliases: ['webroot-path'], description: 'Write challenge files under DIR/.well-known/acme-challenge/ for the web server already on port 80.'}),
    ...challengeFlags,
    'eab-kid': Flags.string({description: 'External Account Binding key ID, for CAs that require one (ZeroSSL, many step-ca setups); also MFC_ACME_EAB_KID.', dependsOn: ['eab-hmac-key'], exclusive: ['cert-file']}),
    'eab-hmac-key': Flags.string({description: 'External Account Binding HMAC key (base64url) for --eab-kid; also MFC_ACME_EAB_HMAC_KEY. Used once, to register the account; never stored.', dependsOn: ['eab-kid'], exclusive: ['cert-file']}),
    'pre-hook': Flags.string({description: 'Shell command run before ordering (e.g. stop the web server on port 80); saved as pre_hook for renewals.'}),
    'deploy-hook': Flags.string({description: 'Shell command run after a new certificate, with RENEWED_LINEAGE and RENEWED_DOMAINS; saved as deploy_hook.'}),
    'post-hook': Flags.string({description: 'Shell command run at the end, whatever happened; saved as post_hook.'}),
    expand: Flags.boolean({description: 'Replace the existing certificate with one that has the new names too (certbot\'s --expand).'}),
    force: Flags.boolean({char: 'f', aliases: ['force-renewal', 'renew-by-default'], description: 'Replace an existing certificate, even a valid one (the old version stays in the store).'}),
    yes: Flags.boolean({char: 'y', aliases: ['non-interactive'], charAliases: ['n'], description: 'Never prompt; fail if something required is missing (certbot\'s -n).'}),
  }

  async run(): Promise<SslInitResult | SslInitTrial> {
    const {flags} = await this.parse(SslInit, certbotArgv(this.argv))
    const interactive = this.canPrompt(flags.yes)
    let domains = flags.domain?.flatMap((d) => d.split(',')).map((d) => d.trim().toLowerCase()).filter(Boolean)
    const hooks: InitHooks = {pre: flags['pre-hook'], deploy: flags['deploy-hook'], post: flags['post-hook']}
    const config = this.loadConfig(flags.config, {
      domains: flags['cert-file'] ? undefined : domains, email: flags.email,
      key_type: flags['key-type'] as 'ecdsa' | 'rsa' | undefined, rsa_key_size: flags['rsa-key-size'] as 2048 | undefined, elliptic_curve: curveOf(flags['elliptic-curve']),
      staging: flags.staging || undefined, acme_directory: flags['acme-directory'], http_port: flags['http-port'], webroot: flags.webroot,
    })
    let acme = flags.letsencrypt || flags.staging || flags['dry-run'] || Boolean(flags['acme-directory']) || (!flags['cert-file'] && config.settings.use_letsencrypt)
    if (!acme && (flags['eab-kid'] || flags['eab-hmac-key'])) {
      throw new ConfigError('--eab-kid and --eab-hmac-key are for ACME CAs, and this run uses the local CA.', {
        code: 'MFC_CONFIG_VALUE', suggestions: ['Add --acme-directory URL (or --letsencrypt) to order from the CA that gave you the key.'],
      })
    }

    let email = config.settings.email
    let custom = flags['cert-file'] ? {certFile: flags['cert-file'], keyFile: flags['key-file']!} : undefined
    if (!domains && !custom && config.sources.domain === 'default') {
      if (!interactive) {
        throw new ConfigError('No domain given for the certificate.', {
          code: 'MFC_CONFIG_MISSING',
          suggestions: ['Pass --domain (e.g. `mfc ssl init --domain localhost`), set MFC_SSL_DOMAIN, or set "domain" in ' + config.paths.sslConfigFile + '.'],
        })
      }

      ;({domains, acme, email, custom} = await askSslInit({domain: config.settings.domain, email, acme, custom}))
    }

    const services = await ssl(config, domains)
    const mode = outputMode(this.jsonEnabled())
    if (custom) return this.install(services, custom, domains, flags['cert-name'], flags.force, interactive)
    const names = acme ? domains ?? config.settings.domains : services.domains
    const directory = acme ? issuanceDirectory(config.settings) : undefined
    // Refuses what cannot work (a wildcard over HTTP-01, DNS-01 with no way to answer) before anything is asked.
    if (acme) challengeRecord(flags, names)
    if (!acme && names.some((n) => n.startsWith('*.'))) throw new UsageError(`The local CA does not sign wildcards (${names.find((n) => n.startsWith('*.'))}).`, {code: 'MFC_USAGE', suggestions: ['List the names instead, or order from an ACME CA over DNS-01 (--preferred-challenges dns).']})
    if (flags['dry-run']) return this.trial(services.manager, names, email, flags, interactive, mode)
    const name = flags['cert-name'] ?? services.manager.nameFor(names)
    const existing = await services.store.live(name)
    const decision = await decideInit(existing, {names, issuer: acme ? 'acme' : 'local-ca', acmeDirectory: directory, expand: flags.expand, force: flags.force, interactive, now: new Date(), renewalDaysBefore: config.settings.renewal_days_before})
    if (decision.action === 'keep') {
      this.say(decision.message)
      return this.describe(existing!, {action: 'unchanged', replaced: false, configFile: config.paths.sslConfigFile, certFile: config.settings.cert_file, keyFile: config.settings.key_file}, decision.message)
    }

    const settings = {...Object.fromEntries(Object.entries({pre_hook: hooks.pre, deploy_hook: hooks.deploy, post_hook: hooks.post}).filter(([, v]) => v !== undefined))}
    const {result, warnings} = await withInitHooks(hooks, async () => acme
      ? this.issueAcme(services.manager, name, names, email, decision.replace, flags, mode, settings, interactive)
      : runSteps(mode, `Issuing a certificate for ${names.join(', ')} (${describeKeySpec(keySpecFromSettings(config.settings))}, local CA)`, (step) => services.manager.obtain({
        domains: names, name, issuer: services.localCa, keySpec: keySpecFromSettings(config.settings), replace: decision.replace, command: 'ssl init', onStep: step,
        settings: {...settings, email: config.settings.email, use_letsencrypt: false, ca_file: config.paths.caCertFile},
      })), (r) => ({RENEWED_LINEAGE: livePaths(config.paths, r.stored.name).dir, RENEWED_DOMAINS: r.stored.meta.domains.join(' ')}))
    for (const warning of warnings) this.warn(warning)
    const output = this.describe(result.stored, {action: result.replaced ? 'replaced' : 'issued', ...result})
    this.say(renderSslInit(output))
    return output
  }

  private describe(stored: StoredCert, files: {action: SslInitResult['action']; replaced: boolean; configFile: string; certFile: string; keyFile: string}, message?: string): SslInitResult {
    const {meta} = stored
    return {
      action: files.action, name: meta.name, issuer: meta.issuer, domains: meta.domains, version: stored.version,
      certFile: files.certFile, keyFile: files.keyFile, chainFile: stored.chainFile,
      caFile: meta.issuer === 'local-ca' ? this.loadConfig(undefined).paths.caCertFile : null, configFile: files.configFile,
      serial: meta.serial, notBefore: meta.notBefore, notAfter: meta.notAfter,
      key: meta.keySpec ? describeKeySpec(meta.keySpec) : 'as given', replaced: files.replaced, acmeDirectory: meta.acmeDirectory ?? null,
      ...(meta.challenge ? {challenge: meta.challenge.type} : {}), ...(message ? {message} : {}),
    }
  }

  /** Your own certificate: named by itself; an identical one already live is left alone. */
  private async install({manager, store}: {manager: CertManager; store: {live(name: string): Promise<StoredCert | undefined>}}, custom: {certFile: string; keyFile: string}, domains: string[] | undefined, certName: string | undefined, force: boolean, interactive: boolean): Promise<SslInitResult> {
    const config = this.loadConfig(undefined)
    const [certPem, keyPem] = [await this.readInput(custom.certFile), await this.readInput(custom.keyFile)]
    // The pair is checked first, so a bad file gets its own message before the names are compared.
    checkPair({certPem, keyPem, certSource: custom.certFile, keySource: custom.keyFile, now: new Date()})
    const sans = checkImportNames(certPem, custom.certFile, domains)
    const name = certName ?? manager.nameFor(domains ?? [...sans.filter((n) => !n.startsWith('*.')), ...sans])
    const existing = await store.live(name)
    if (existing && !force) {
      const {X509Certificate} = await import('node:crypto')
      if (new X509Certificate(certPem).serialNumber === existing.meta.serial) {
        const message = `${custom.certFile} is already installed as "${name}" (valid until ${existing.meta.notAfter}): nothing to do.`
        this.say(message)
        return this.describe(existing, {action: 'unchanged', replaced: false, configFile: config.paths.sslConfigFile, certFile: config.settings.cert_file, keyFile: config.settings.key_file}, message)
      }
    }

    const replace = force || (existing !== undefined && interactive && await (await import('../../cli/prompts.js')).askConfirm(`A certificate "${name}" exists (expires ${existing.meta.notAfter}). Replace it with ${custom.certFile}?`, false))
    const result = await runSteps(outputMode(this.jsonEnabled()), `Installing ${custom.certFile}`, async () => manager.importPair({
      certPem, keyPem, certSource: custom.certFile, keySource: custom.keyFile, replace, command: 'ssl init', name,
    }))
    const output = this.describe(result.stored, {action: result.replaced ? 'replaced' : 'issued', ...result})
    this.say(renderSslInit(output))
    return output
  }

  /** Orders from the ACME CA and remembers how (directory, challenge, port, webroot) for renewals. */
  private async issueAcme(manager: CertManager, name: string, names: string[], email: string, replace: boolean, flags: Flagged, mode: ReturnType<typeof outputMode>, hookSettings: object, interactive: boolean) {
    const config = this.loadConfig(flags.config)
    const directory = issuanceDirectory(config.settings)
    const agreed = await this.terms(directory, flags['agree-tos'], interactive)
    const challenge = challengeRecord(flags, names)
    const issuer = await acmeIssuer({...config, settings: {...config.settings, email}}, directory, flags, challenge, agreed)
    const keySpec = keySpecFromSettings(config.settings)
    return runSteps(mode, `Ordering a certificate for ${names.join(', ')} (${describeKeySpec(keySpec)}, ${challenge.type}) from ${directory}`, (step) => manager.obtain({
      domains: names, name, issuer, keySpec, replace, command: 'ssl init', onStep: step, challenge,
      // Only what was given: an absent flag must not erase a key the file already has.
      settings: Object.fromEntries(Object.entries({...hookSettings, email, use_letsencrypt: true, staging: flags.staging, ca_file: null, acme_directory: flags['acme-directory'], http_port: flags['http-port'], webroot: flags.webroot}).filter(([, v]) => v !== undefined)),
    }))
  }

  /** certbot's --dry-run: the test directory, the same checks, nothing saved. */
  private async trial(manager: CertManager, names: string[], email: string, flags: Flagged, interactive: boolean, mode: ReturnType<typeof outputMode>): Promise<SslInitTrial> {
    const config = this.loadConfig(flags.config)
    const directory = dryRunDirectory(issuanceDirectory(config.settings), config.settings)
    const agreed = await this.terms(directory, flags['agree-tos'], interactive)
    const issuer = await acmeIssuer({...config, settings: {...config.settings, email}}, directory, flags, challengeRecord(flags, names), agreed)
    const keySpec = keySpecFromSettings(config.settings)
    const result = await runSteps(mode, `Dry run: ordering a test certificate for ${names.join(', ')} from ${directory} (nothing is saved)`, (step) => manager.trial({
      domains: names, name: flags['cert-name'], issuer, keySpec, replace: false, command: 'ssl init --dry-run', onStep: step,
    }))
    this.say(`The dry run succeeded: ${directory} issued a test certificate for ${result.domains.join(', ')} (valid until ${result.notAfter}); nothing was saved.`)
    return {action: 'dry-run', acmeDirectory: directory, ...result}
  }

  private async terms(directory: string, agreeTos: boolean, interactive: boolean): Promise<boolean> {
    if (agreeTos) return true
    const {termsToAccept} = await import('../../services/issuers/acme-issuer.js')
    // A CA that cannot be reached is reported by the order itself, with its own advice.
    const url = await termsToAccept(directory, this.loadConfig(undefined).paths.acmeDir).catch(() => undefined)
    return consentToTerms(url, directory, false, interactive)
  }

  private async readInput(file: string): Promise<string> {
    try {
      return await readFile(file, 'utf8')
    } catch (error) {
      throw new StoreError(`Cannot read ${file}: ${(error as Error).message}`, {code: 'MFC_CERT_INVALID', cause: error, suggestions: [`Check the path and permissions of ${file}.`]})
    }
  }
}
