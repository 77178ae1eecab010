import {isValidName} from '../lib/config.js'
import {askChoice, askText} from './prompts.js'
import {facts} from './render.js'

/** What `mfc ssl init` returns (its --json output) and this view renders. */
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
  /** ACME profile asked for (kept for renewals), null when none. */
  profile: string | null
  /** What did not stop the issuance but should be known (a preferred profile the CA lacks). */
  warnings: string[]
  message?: string
}

export interface SslInitAnswers {
  domains: string[]
  acme: boolean
  email: string
  custom?: {certFile: string; keyFile: string}
}

/** The `ssl init` wizard (the original's `--config-ssl`): names, kind of certificate, email. */
export async function askSslInit(current: {domain: string; email: string; acme: boolean; custom?: SslInitAnswers['custom']}): Promise<SslInitAnswers> {
  const answer = await askText('Domain names (comma-separated):', {
    default: current.domain,
    validate: (value) => splitNames(value).every((d) => isValidName(d)) || 'Give DNS names or IP addresses, separated by commas.',
  })
  const domains = splitNames(answer)
  const choice = current.custom ? 'custom' : await askChoice('Which certificate?', [
    {name: 'Local CA (development, private networks)', value: 'local-ca'},
    {name: 'Let\'s Encrypt / ACME (public names; the CA must reach port 80)', value: 'acme'},
    {name: 'My own certificate files', value: 'custom'},
  ], current.acme ? 'acme' : 'local-ca')
  const acme = choice === 'acme'
  const email = acme ? await askText('Email for the CA account (expiry and policy notices; may be empty):', {default: current.email}) : current.email
  const custom = choice === 'custom' && !current.custom
    ? {certFile: await askText('Certificate file (PEM):'), keyFile: await askText('Private key file (PEM):')}
    : current.custom
  return {domains, acme, email, custom}
}

/** A name or address as the host part of a URL (IPv6 literals in brackets). */
function hostForUrl(name: string): string {
  return name.includes(':') ? `[${name}]` : name
}

function splitNames(value: string): string[] {
  return value.split(',').map((d) => d.trim().toLowerCase()).filter(Boolean)
}

/** What `ssl init` prints: where everything is, how to trust the CA, what to do next; `apiPort` is the configured https_port_api. */
export function renderSslInit(result: SslInitResult, apiPort: number): string {
  const issuer = result.issuer === 'local-ca' ? `local CA (${result.caFile})` : result.issuer === 'acme' ? `ACME (${result.acmeDirectory})` : result.issuer
  const lines = [
    `\n${result.replaced ? 'Replaced' : 'Created'} the certificate for ${result.domains.join(', ')} (version ${result.version}).`,
    facts([
      ['Certificate', result.certFile], ['Private key', result.keyFile], ['Chain', result.chainFile],
      ['Issuer', issuer], ['Key', result.key], ['Valid until', result.notAfter], ['Config', result.configFile],
    ]),
  ]
  if (result.caFile) {
    lines.push(`\nTo trust the local CA (once per machine or browser):
  Debian/Ubuntu:  sudo cp ${result.caFile} /usr/local/share/ca-certificates/mfc-local-ca.crt && sudo update-ca-certificates
  Chrome/Firefox: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n "mfc local CA" -i ${result.caFile}
  macOS:          sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain ${result.caFile}
  Node, curl:     NODE_EXTRA_CA_CERTS=${result.caFile}   curl --cacert ${result.caFile} https://${hostForUrl(result.domains[0])}:${apiPort}/health`)
  }

  if (result.issuer === 'acme') lines.push('\nRenewal: run `mfc cert renew-if-needed` twice a day from cron (it is silent when nothing is due).')
  lines.push('\nNext: `mfc serve` to start the servers, `mfc cert monitor` to check the certificate.')
  return lines.join('\n')
}
