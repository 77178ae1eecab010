import {promises as fs} from 'node:fs'
import {dirname, resolve} from 'node:path'

import type {Clock} from '../../lib/clock.js'
import type {MfcConfig} from '../../lib/config.js'
import {parseCertificates} from './inspect.js'
import {decideRenewal} from './renewal-policy.js'

/** The configured certificate's line in a renewal report (a RenewalOutcome without issuer/version/ari). */
export interface UnmanagedOutcome {
  /** The file, as the report's name. */
  name: string
  domains: string[]
  status: 'failed' | 'skipped'
  reason: string
  renewAt: string | null
  notAfter: string
  error?: {code: string; message: string; suggestions: string[]}
}

/**
 * The certificate ssl-config.json names when it lives outside mfc's store (certbot's
 * /etc/letsencrypt/live/..., a file copied in by hand): mfc cannot renew it, so a renewal run
 * must never look like success while it is due. Returns undefined when cert_file is managed
 * (inside the store); a `failed` outcome when it is due or unreadable, naming the file and the
 * import command; `skipped` (with its due date) otherwise.
 */
export async function unmanagedConfiguredCert(config: MfcConfig, clock: Clock): Promise<UnmanagedOutcome | undefined> {
  const file = resolve(config.settings.cert_file)
  if (file.startsWith(resolve(config.paths.storeDir) + '/')) return undefined
  const certbotDir = /^(.*)\/live\/[^/]+\/[^/]+$/.exec(file)?.[1]
  const adopt = certbotDir
    ? `Adopt it so that mfc renews it: mfc cert import --from-certbot ${certbotDir}`
    : `Renew it with the tool that made it, or install a certificate mfc manages: mfc ssl init (or --cert-file ${file} --key-file ... --force to copy a renewed one in).`
  const outcome: UnmanagedOutcome = {name: file, domains: config.settings.domains, status: 'skipped', reason: '', renewAt: null, notAfter: ''}
  let leaf
  try {
    [leaf] = parseCertificates(await fs.readFile(file, 'utf8'), file)
  } catch (error) {
    const reason = `${config.paths.sslConfigFile} names ${file} as cert_file, which mfc does not manage and cannot read (${(error as Error).message}).`
    return {...outcome, status: 'failed', reason, error: {code: 'MFC_CERT_UNMANAGED', message: reason, suggestions: [adopt, `Or point cert_file in ${config.paths.sslConfigFile} at a certificate in ${config.paths.storeDir}.`]}}
  }

  const notAfter = new Date(leaf.validTo)
  const decision = decideRenewal({notBefore: new Date(leaf.validFrom), notAfter}, clock.now(), {renewalDaysBefore: config.settings.renewal_days_before})
  Object.assign(outcome, {renewAt: decision.renewAt.toISOString(), notAfter: notAfter.toISOString(), domains: leaf.subjectAltName?.split(', ').map((s) => s.replace(/^(DNS|IP Address):/, '')) ?? outcome.domains})
  if (!decision.renew) return {...outcome, reason: `not managed by mfc (in ${dirname(file)}); not due until ${decision.renewAt.toISOString()}. ${adopt}`}
  const reason = `${config.paths.sslConfigFile} names ${file} as cert_file (expires ${notAfter.toISOString()}, due since ${decision.renewAt.toISOString()}), but mfc did not issue it and cannot renew it.`
  return {...outcome, status: 'failed', reason, error: {code: 'MFC_CERT_UNMANAGED', message: reason, suggestions: [adopt]}}
}
