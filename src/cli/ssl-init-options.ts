import {X509Certificate} from 'node:crypto'

import type {Settings} from '../lib/config.js'
import {MfcError, StoreError, UsageError} from '../lib/errors.js'
import {type HookRun, runHook} from '../services/certificates/hooks.js'
import {decideRenewal} from '../services/certificates/renewal-policy.js'
import type {StoredCert} from '../services/store/cert-store.js'
import {askConfirm} from './prompts.js'

/**
 * certbot spells the authenticator `--webroot` (a switch) and its directory `-w DIR`; mfc's
 * `--webroot` takes the directory. A bare `--webroot` (followed by another flag or nothing) is
 * certbot's switch and is dropped, so `--webroot -w DIR` means what it means to certbot.
 */
export function certbotArgv(argv: string[]): string[] {
  return argv.filter((arg, i) => arg !== '--webroot' || (argv[i + 1] !== undefined && !argv[i + 1].startsWith('-')))
}

/** certbot's curve names (secp256r1, secp384r1) and mfc's (P-256, P-384). */
export function curveOf(value: string | undefined): Settings['elliptic_curve'] | undefined {
  if (value === undefined) return undefined
  return ({secp256r1: 'P-256', prime256v1: 'P-256', secp384r1: 'P-384'} as Record<string, Settings['elliptic_curve']>)[value.toLowerCase()] ?? value.toUpperCase() as Settings['elliptic_curve']
}

/** What is being asked for, to compare with the lineage already in the store. */
export interface InitRequest {
  names: string[]
  issuer: 'acme' | 'local-ca'
  acmeDirectory?: string
  expand: boolean
  force: boolean
  interactive: boolean
  now: Date
  renewalDaysBefore: number
}

export type InitDecision = {action: 'issue'; replace: boolean} | {action: 'keep'; message: string}

const sameSet = (a: string[], b: string[]) => a.length === b.length && a.every((n) => b.includes(n))

/**
 * certbot's `certonly` rules for an existing lineage, so runbooks can run `ssl init` again:
 * same names, same CA and not due -> keep it (exit 0); same and due -> renew it; more names ->
 * `--expand`; anything else (other names, another CA) -> `--force`, or a question on a TTY
 * ("no" keeps the certificate, exit 0).
 */
export async function decideInit(existing: StoredCert | undefined, request: InitRequest): Promise<InitDecision> {
  if (!existing) return {action: 'issue', replace: false}
  if (request.force) return {action: 'issue', replace: true}
  const {meta} = existing
  const sameCa = meta.issuer === request.issuer && (request.issuer !== 'acme' || meta.acmeDirectory === request.acmeDirectory)
  const names = meta.domains
  if (sameCa && sameSet(names, request.names)) {
    const decision = decideRenewal({notBefore: new Date(meta.notBefore), notAfter: new Date(meta.notAfter)}, request.now, {renewalDaysBefore: request.renewalDaysBefore})
    if (decision.renew) return {action: 'issue', replace: true}
    return {action: 'keep', message: `Already have a certificate for ${names.join(', ')} (valid until ${meta.notAfter}), not due for renewal until ${decision.renewAt.toISOString()}: nothing to do.`}
  }

  const added = request.names.filter((n) => !names.includes(n))
  const superset = names.every((n) => request.names.includes(n)) && added.length > 0
  if (superset && sameCa && request.expand) return {action: 'issue', replace: true}
  const what = superset && sameCa ? `adds ${added.join(', ')} to` : `differs from`
  const question = `This request (${request.names.join(', ')} from ${request.acmeDirectory ?? request.issuer}) ${what} the certificate "${existing.name}" (${names.join(', ')} from ${meta.acmeDirectory ?? meta.issuer}, valid until ${meta.notAfter}).`
  if (request.interactive) {
    if (await askConfirm(`${question} Replace it?`, false)) return {action: 'issue', replace: true}
    return {action: 'keep', message: `Kept the certificate "${existing.name}" as it is.`}
  }

  throw new StoreError(question, {
    code: 'MFC_STORE_EXISTS',
    suggestions: [
      ...(superset && sameCa ? ['Add --expand to replace it with one certificate for all the names (certbot\'s --expand).'] : []),
      'Add --force to replace it (the old version stays in the store), or --cert-name NAME to keep both.',
    ],
  })
}

/** The names a certificate covers (its DNS and IP subjectAltNames). */
export function certificateNames(certPem: string): string[] {
  const leaf = new X509Certificate(certPem)
  return leaf.subjectAltName?.split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '').toLowerCase()) ?? []
}

function covers(sans: string[], name: string): boolean {
  return sans.includes(name) || sans.some((san) => san.startsWith('*.') && name.split('.').slice(1).join('.') === san.slice(2) && !name.startsWith('*.'))
}

/**
 * A custom certificate is named by itself: `--domain`s only choose the lineage and must all be
 * covered by the certificate (a wildcard covers one label), else the install is refused.
 */
export function checkImportNames(certPem: string, certFile: string, requested: string[] | undefined): string[] {
  const sans = certificateNames(certPem)
  const missing = (requested ?? []).filter((name) => !covers(sans, name))
  if (missing.length > 0) {
    throw new UsageError(`${certFile} does not cover ${missing.join(', ')} (it is for ${sans.join(', ') || 'no names'}).`, {
      code: 'MFC_CERT_NAMES',
      suggestions: [`Leave out --domain (the names come from the certificate), or get a certificate that includes ${missing.join(', ')}.`],
    })
  }

  return sans
}

/**
 * The user's consent to a CA's terms before an account is registered: --agree-tos, or a
 * question on a terminal showing the terms URL. Non-interactive without it: exit 2 naming the
 * flag and the URL. `termsUrl` is undefined when no consent is needed (account exists, no terms).
 */
export async function consentToTerms(termsUrl: string | undefined, directory: string, agreeTos: boolean, interactive: boolean): Promise<boolean> {
  if (agreeTos || termsUrl === undefined) return agreeTos
  const refused = new UsageError(`The CA at ${directory} requires agreeing to its terms of service (${termsUrl}) before mfc may register an account.`, {
    code: 'MFC_TOS_REQUIRED',
    suggestions: [`Read ${termsUrl}, then run again with --agree-tos.`],
  })
  if (!interactive) throw refused
  if (await askConfirm(`The CA's terms of service are at ${termsUrl}\nDo you agree to them (needed to register an account)?`, false)) return true
  throw refused
}

/** certbot's hooks on `certonly`: pre before, deploy after a new certificate, post at the end. */
export interface InitHooks {
  pre?: string
  deploy?: string
  post?: string
}

/**
 * Runs `work` between the hooks, certbot's way: a failing pre hook stops the run (it usually
 * frees port 80), deploy runs only for a new certificate, post runs whatever happened. Deploy
 * and post failures are returned as warnings, never thrown.
 */
export async function withInitHooks<T>(hooks: InitHooks, work: () => Promise<T>, deployVars: (result: T) => Record<string, string> | undefined): Promise<{result: T; warnings: string[]}> {
  const warnings: string[] = []
  const note = (run: HookRun) => {
    if (!run.ok) warnings.push(`The ${run.kind} hook failed (${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}): ${run.command}${run.output ? `\n${run.output}` : ''}`)
  }

  if (hooks.pre) {
    const run = await runHook('pre', hooks.pre, {})
    if (!run.ok) throw new MfcError(`The pre hook failed (${run.timedOut ? 'timed out' : `exit ${run.exitCode}`}), so nothing was ordered: ${run.command}${run.output ? `\n${run.output}` : ''}`, {code: 'MFC_HOOK_FAILED', suggestions: ['Run the hook by hand to see why, or leave out --pre-hook.']})
  }

  try {
    const result = await work()
    const vars = deployVars(result)
    if (hooks.deploy && vars) note(await runHook('deploy', hooks.deploy, vars))
    return {result, warnings}
  } finally {
    if (hooks.post) note(await runHook('post', hooks.post, {}))
  }
}
