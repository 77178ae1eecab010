import {isIP} from 'node:net'

import {Flags} from '@oclif/core'

import {MfcCommand} from '../../cli/base-command.js'
import {challengeFlags} from '../../cli/challenge-options.js'
import {outputMode} from '../../cli/render.js'
import {ssl} from '../../cli/services.js'
import {type SslInitResult, type SslInitTrial, installCustom, issueCertificate, rehearse} from '../../cli/ssl-init-flow.js'
import {certbotArgv, curveOf} from '../../cli/ssl-init-options.js'
import {askSslInit} from '../../cli/ssl-init-view.js'
import {ConfigError} from '../../lib/errors.js'

export type {SslInitResult, SslInitTrial} from '../../cli/ssl-init-flow.js'

export default class SslInit extends MfcCommand {
  static override summary = 'Create the certificate the servers use: local CA (default), an ACME CA (HTTP-01 or DNS-01), or your own files.'

  static override description = `Without --cert-file, mfc keeps a local certificate authority in its state directory (ECDSA P-256,
10 years) and signs a 90-day certificate for every --domain (localhost also gets 127.0.0.1 and ::1).
Trust the CA once (the command prints how) and browsers accept every certificate it signs.
In cluster mode (storage set) the CA is the cluster's, kept in the shared database, so every
node signs under one root; each node has a copy of it at the same path (docs/cluster.md).
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
    'ip-address': Flags.string({description: 'An IP address for the certificate (RFC 8738; repeat for more; HTTP-01 on that address). Let\'s Encrypt issues these only with --profile shortlived.', multiple: true}),
    profile: Flags.string({description: 'ACME profile to order under (e.g. shortlived: 6-day certificates); the CA\'s default, with a warning, if it lacks it. Kept for renewals. List them: mfc ssl profiles.', aliases: ['preferred-profile'], exclusive: ['required-profile', 'cert-file']}),
    'required-profile': Flags.string({description: 'Like --profile, but fail (exit 2, naming the profiles the CA offers) if the CA lacks it.', exclusive: ['profile', 'cert-file']}),
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
    let domains = withIpAddresses(flags.domain?.flatMap((d) => d.split(',')).map((d) => d.trim().toLowerCase()).filter(Boolean), flags['ip-address'])
    const config = this.loadConfig(flags.config, {
      domains: flags['cert-file'] ? undefined : domains, email: flags.email,
      key_type: flags['key-type'] as 'ecdsa' | 'rsa' | undefined, rsa_key_size: flags['rsa-key-size'] as 2048 | undefined, elliptic_curve: curveOf(flags['elliptic-curve']),
      staging: flags.staging || undefined, acme_directory: flags['acme-directory'], http_port: flags['http-port'], webroot: flags.webroot,
    }, {mayCreateFile: true})
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
    const context = {config, services, mode: outputMode(this.jsonEnabled()), interactive, say: (line: string) => this.say(line), warn: (line: string) => this.warn(line)}
    if (custom) return installCustom(context, custom, domains, flags['cert-name'], flags.force)
    const names = acme ? domains ?? config.settings.domains : services.domains
    if (flags['dry-run']) return rehearse(context, names, email, flags)
    return issueCertificate(context, {acme, names, email, flags, hooks: {pre: flags['pre-hook'], deploy: flags['deploy-hook'], post: flags['post-hook']}})
  }
}

/** --ip-address values after the names (an address alone becomes the primary name), each checked and written canonically. */
function withIpAddresses(domains: string[] | undefined, ips: string[] | undefined): string[] | undefined {
  if (!ips?.length) return domains
  const addresses = ips.flatMap((ip) => ip.split(',')).map((ip) => ip.trim()).filter(Boolean).map((ip) => {
    const bare = ip.replace(/^\[(.*)\]$/, '$1')
    if (!isIP(bare)) {
      throw new ConfigError(`--ip-address ${ip} is not an IPv4 or IPv6 address.`, {code: 'MFC_CONFIG_VALUE', suggestions: ['Give the address itself (192.0.2.10, 2001:db8::1); names go in --domain.']})
    }

    return isIP(bare) === 6 ? new URL(`http://[${bare}]/`).hostname.slice(1, -1) : bare
  })
  return [...new Set([...(domains ?? []), ...addresses])]
}
