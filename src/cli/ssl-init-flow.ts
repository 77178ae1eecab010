import {X509Certificate} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import type {MfcConfig, Settings} from '../lib/config.js'
import {StoreError, UsageError, fileProblem} from '../lib/errors.js'
import {livePaths} from '../lib/paths.js'
import {dryRunDirectory, issuanceDirectory} from '../services/acme/directories.js'
import type {InstallResult, TrialResult} from '../services/certificates/cert-manager.js'
import {checkPair} from '../services/certificates/inspect.js'
import {describeKeySpec, keySpecFromSettings} from '../services/certificates/key-spec.js'
import type {StoredCert} from '../services/store/cert-store.js'
import {type EabFlags, acmeIssuer} from './acme-services.js'
import {type ChallengeFlags, challengeRecord} from './challenge-options.js'
import {askConfirm} from './prompts.js'
import {type Mode, runSteps} from './render.js'
import type {ssl} from './services.js'
import {type SslInitResult, renderSslInit} from './ssl-init-view.js'

export type {SslInitResult} from './ssl-init-view.js'
import {type InitHooks, checkImportNames, consentToTerms, decideInit, withInitHooks} from './ssl-init-options.js'

/** `--dry-run`: what the CA issued and mfc threw away. */
export interface SslInitTrial extends TrialResult {
  action: 'dry-run'
  acmeDirectory: string
}

/** The flags the flows read, beyond the config overrides the command applied already. */
export type InitFlags = {staging: boolean; 'acme-directory'?: string; 'http-port'?: number; webroot?: string; 'agree-tos': boolean; 'cert-name'?: string; expand: boolean; force: boolean; profile?: string; 'required-profile'?: string} & EabFlags & ChallengeFlags

/** One `ssl init` run: its config, services, output mode and how it talks to the user. */
export interface InitContext {
  config: MfcConfig
  services: Awaited<ReturnType<typeof ssl>>
  mode: Mode
  interactive: boolean
  say(line: string): void
  warn(line: string): void
}

function describeInit(context: InitContext, stored: StoredCert, files: {action: SslInitResult['action']; replaced: boolean; configFile?: string; certFile?: string; keyFile?: string; warnings?: string[]}, message?: string): SslInitResult {
  const {meta} = stored
  const {config} = context
  return {
    action: files.action, name: meta.name, issuer: meta.issuer, domains: meta.domains, version: stored.version,
    certFile: files.certFile ?? config.settings.cert_file, keyFile: files.keyFile ?? config.settings.key_file, chainFile: join(dirname(files.certFile ?? config.settings.cert_file), basename(stored.chainFile)),
    caFile: meta.issuer === 'local-ca' ? config.paths.caCertFile : null, configFile: files.configFile ?? config.paths.sslConfigFile,
    serial: meta.serial, notBefore: meta.notBefore, notAfter: meta.notAfter,
    key: meta.keySpec ? describeKeySpec(meta.keySpec) : 'as given', replaced: files.replaced, acmeDirectory: meta.acmeDirectory ?? null,
    profile: meta.profile ?? null, warnings: files.warnings ?? [],
    ...(meta.challenge ? {challenge: meta.challenge.type} : {}), ...(message ? {message} : {}),
  }
}

function installed(context: InitContext, result: InstallResult): SslInitResult {
  const output = describeInit(context, result.stored, {action: result.replaced ? 'replaced' : 'issued', ...result})
  context.say(renderSslInit(output, context.config.settings.https_port_api))
  return output
}

async function readInput(file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8')
  } catch (error) {
    throw new StoreError(`${fileProblem(file, error)}.`, {code: 'MFC_CERT_INVALID', cause: error, suggestions: [`Check the path and permissions of ${file}.`]})
  }
}

/** Your own certificate: named by itself (`--domain`s must be covered); an identical one already live is left alone. */
export async function installCustom(context: InitContext, custom: {certFile: string; keyFile: string}, domains: string[] | undefined, certName: string | undefined, force: boolean): Promise<SslInitResult> {
  const {manager, store} = context.services
  const [certPem, keyPem] = [await readInput(custom.certFile), await readInput(custom.keyFile)]
  // The pair is checked first, so a bad file gets its own message before the names are compared.
  checkPair({certPem, keyPem, certSource: custom.certFile, keySource: custom.keyFile, now: new Date()})
  const sans = checkImportNames(certPem, custom.certFile, domains)
  const name = certName ?? manager.nameFor(domains ?? [...sans.filter((n) => !n.startsWith('*.')), ...sans])
  const existing = await store.live(name)
  if (existing && !force && new X509Certificate(certPem).serialNumber === existing.meta.serial) {
    const message = `${custom.certFile} is already installed as "${name}" (valid until ${existing.meta.notAfter}): nothing to do.`
    context.say(message)
    return describeInit(context, existing, {action: 'unchanged', replaced: false}, message)
  }

  const replace = force || (existing !== undefined && context.interactive && await askConfirm(`A certificate "${name}" exists (expires ${existing.meta.notAfter}). Replace it with ${custom.certFile}?`, false))
  return installed(context, await runSteps(context.mode, `Installing ${custom.certFile}`, async () => manager.importPair({
    certPem, keyPem, certSource: custom.certFile, keySource: custom.keyFile, replace, command: 'ssl init', name,
  })))
}

/**
 * A certificate from the local CA or an ACME CA, certbot's `certonly` way: kept when the same
 * one is valid and not due (exit 0), else issued between the pre/deploy/post hooks, which are
 * saved for renewals along with the challenge record.
 */
export async function issueCertificate(context: InitContext, request: {acme: boolean; names: string[]; email: string; flags: InitFlags; hooks: InitHooks}): Promise<SslInitResult> {
  const {config, services, mode, interactive} = context
  const {acme, names, flags, hooks} = request
  if (!acme && names.some((n) => n.startsWith('*.'))) {
    throw new UsageError(`The local CA does not sign wildcards (${names.find((n) => n.startsWith('*.'))}).`, {code: 'MFC_USAGE', suggestions: ['List the names instead, or order from an ACME CA over DNS-01 (--preferred-challenges dns).']})
  }

  // Refuses what cannot work (a wildcard over HTTP-01, DNS-01 with no way to answer) before anything is asked.
  const challenge = acme ? challengeRecord(flags, names) : undefined
  const directory = acme ? issuanceDirectory(config.settings) : undefined
  const name = flags['cert-name'] ?? services.manager.nameFor(names)
  const existing = await services.store.live(name)
  const decision = await decideInit(existing, {names, issuer: acme ? 'acme' : 'local-ca', acmeDirectory: directory, expand: flags.expand, force: flags.force, interactive, now: new Date(), renewalDaysBefore: config.settings.renewal_days_before})
  if (decision.action === 'keep') {
    context.say(decision.message)
    return describeInit(context, existing!, {action: 'unchanged', replaced: false}, decision.message)
  }

  const saved: Partial<Settings> = Object.fromEntries(Object.entries({pre_hook: hooks.pre, deploy_hook: hooks.deploy, post_hook: hooks.post}).filter(([, v]) => v !== undefined))
  const keySpec = keySpecFromSettings(config.settings)
  const {result, warnings} = await withInitHooks(hooks, async () => {
    if (!directory || !challenge) {
      return runSteps(mode, `Issuing a certificate for ${names.join(', ')} (${describeKeySpec(keySpec)}, local CA)`, (step) => services.manager.obtain({
        domains: names, name, issuer: services.localCa, keySpec, replace: decision.replace, command: 'ssl init', onStep: step,
        settings: {...saved, email: config.settings.email, use_letsencrypt: false, ca_file: config.paths.caCertFile},
      }))
    }

    const agreed = await termsConsent(context, directory, flags['agree-tos'])
    const issuer = await acmeIssuer({...config, settings: {...config.settings, email: request.email}}, directory, flags, challenge, agreed)
    return runSteps(mode, `Ordering a certificate for ${names.join(', ')} (${describeKeySpec(keySpec)}, ${challenge.type}) from ${directory}`, (step) => services.manager.obtain({
      domains: names, name, issuer, keySpec, replace: decision.replace, command: 'ssl init', onStep: step, challenge, profile: profileOf(flags),
      // Only what was given: an absent flag must not erase a key the file already has.
      settings: Object.fromEntries(Object.entries({...saved, email: request.email, use_letsencrypt: true, staging: flags.staging, ca_file: null, acme_directory: flags['acme-directory'], http_port: flags['http-port'], webroot: flags.webroot}).filter(([, v]) => v !== undefined)),
    }))
  }, (r) => ({RENEWED_LINEAGE: livePaths(config.paths, r.stored.name).dir, RENEWED_DOMAINS: r.stored.meta.domains.join(' ')}))
  for (const warning of [...warnings, ...result.warnings]) context.warn(warning)
  return installed(context, result)
}

/** --profile/--preferred-profile (fall back with a warning) or --required-profile (fail). */
function profileOf(flags: InitFlags): {name: string; required: boolean} | undefined {
  const name = flags['required-profile'] ?? flags.profile
  return name ? {name, required: flags['required-profile'] !== undefined} : undefined
}

/** certbot's --dry-run: the test directory, the same checks, nothing saved. */
export async function rehearse(context: InitContext, names: string[], email: string, flags: InitFlags): Promise<SslInitTrial> {
  const {config, services, mode} = context
  const challenge = challengeRecord(flags, names)
  const directory = dryRunDirectory(issuanceDirectory(config.settings), config.settings)
  const agreed = await termsConsent(context, directory, flags['agree-tos'])
  const issuer = await acmeIssuer({...config, settings: {...config.settings, email}}, directory, flags, challenge, agreed)
  const result = await runSteps(mode, `Dry run: ordering a test certificate for ${names.join(', ')} from ${directory} (nothing is saved)`, (step) => services.manager.trial({
    domains: names, name: flags['cert-name'], issuer, keySpec: keySpecFromSettings(config.settings), replace: false, command: 'ssl init --dry-run', onStep: step,
  }))
  context.say(`The dry run succeeded: ${directory} issued a test certificate for ${result.domains.join(', ')} (valid until ${result.notAfter}); nothing was saved.`)
  return {action: 'dry-run', acmeDirectory: directory, ...result}
}

/** Asked before the progress display starts: a prompt cannot share the terminal with listr2. */
async function termsConsent(context: InitContext, directory: string, agreeTos: boolean): Promise<boolean> {
  if (agreeTos) return true
  const {termsToAccept} = await import('../services/issuers/acme-issuer.js')
  // A CA that cannot be reached is reported by the order itself, with its own advice.
  const url = await termsToAccept(directory, context.config.paths.acmeDir).catch(() => undefined)
  return consentToTerms(url, directory, false, context.interactive)
}
