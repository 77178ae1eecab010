import {expect} from 'chai'

import {accountsDirFor, parseRenewalConf, renewalParams} from '../../../src/services/certbot/certbot-dir.js'
import {caaCandidates, judgeCaa, knownCaaIdentity} from '../../../src/services/doctor/caa.js'

// The shape certbot 2.1 writes (checked against real files made on Pebble in the integration test).
const WEBROOT_CONF = `# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /etc/letsencrypt/archive/example.org
cert = /etc/letsencrypt/live/example.org/cert.pem

# Options used in the renewal process
[renewalparams]
account = 402a60365dddb6cfc6b9ca080c5bb9d1
key_type = rsa
rsa_key_size = 3072
renew_hook = systemctl reload nginx
pre_hook = "echo pre"
server = https://acme-v02.api.letsencrypt.org/directory
authenticator = webroot
webroot_path = /var/www/html,
[[webroot_map]]
example.org = /var/www/html
`

describe('certbot renewal files', () => {
  it('parses sections, nested maps, comments and quoted values', () => {
    const conf = parseRenewalConf(WEBROOT_CONF)
    expect(conf.top).to.include({version: '2.1.0', archive_dir: '/etc/letsencrypt/archive/example.org'})
    expect(conf.params).to.include({account: '402a60365dddb6cfc6b9ca080c5bb9d1', pre_hook: 'echo pre', authenticator: 'webroot'})
    expect(conf.webrootMap).to.deep.equal({'example.org': '/var/www/html'})
  })

  it('maps what has an mfc meaning and lists what does not', () => {
    const {params, unmapped} = renewalParams(parseRenewalConf(WEBROOT_CONF))
    expect(params).to.deep.equal({
      server: 'https://acme-v02.api.letsencrypt.org/directory', account: '402a60365dddb6cfc6b9ca080c5bb9d1', authenticator: 'webroot',
      webroot: '/var/www/html', preHook: 'echo pre', deployHook: 'systemctl reload nginx', keyType: 'rsa', rsaKeySize: 3072,
    })
    expect(unmapped).to.deep.equal([])
    const dns = renewalParams(parseRenewalConf('[renewalparams]\nauthenticator = dns-cloudflare\ndns_cloudflare_credentials = /root/cf.ini\nelliptic_curve = secp384r1\nkey_type = ecdsa\nmanual_public_ip_logging_ok = None\nuser_agent_flag = x\n'))
    expect(dns.params).to.include({ellipticCurve: 'P-384', keyType: 'ecdsa', server: 'https://acme-v02.api.letsencrypt.org/directory'})
    expect(dns.unmapped).to.deep.equal(['authenticator = dns-cloudflare', 'dns_cloudflare_credentials', 'user_agent_flag'])
  })

  it('maps certbot\'s DNS-01 authenticators that mfc has: dns-rfc2136 and manual hooks', () => {
    const rfc2136 = renewalParams(parseRenewalConf('[renewalparams]\nauthenticator = dns-rfc2136\ndns_rfc2136_credentials = /etc/letsencrypt/rfc2136.ini\ndns_rfc2136_propagation_seconds = 30\n'))
    expect(rfc2136.params.challenge).to.deep.equal({type: 'dns-01', rfc2136Credentials: '/etc/letsencrypt/rfc2136.ini', propagationTimeoutS: 30})
    expect(rfc2136.unmapped).to.deep.equal([])
    const manual = renewalParams(parseRenewalConf('[renewalparams]\nauthenticator = manual\npref_challs = dns-01,\nmanual_auth_hook = /usr/local/bin/auth.sh\nmanual_cleanup_hook = /usr/local/bin/clean.sh\n'))
    expect(manual.params.challenge).to.deep.equal({type: 'dns-01', manualAuthHook: '/usr/local/bin/auth.sh', manualCleanupHook: '/usr/local/bin/clean.sh'})
    expect(manual.unmapped).to.deep.equal([])
  })

  it('finds accounts where certbot keeps them: accounts/<host[:port]>/<path>', () => {
    expect(accountsDirFor('/etc/letsencrypt', 'https://acme-v02.api.letsencrypt.org/directory')).to.equal('/etc/letsencrypt/accounts/acme-v02.api.letsencrypt.org/directory')
    expect(accountsDirFor('/x', 'https://127.0.0.1:14000/dir')).to.equal('/x/accounts/127.0.0.1:14000/dir')
  })
})

describe('CAA (RFC 8659)', () => {
  it('climbs from the name towards the zone apex (wildcard label dropped)', () => {
    expect(caaCandidates('a.b.example.org')).to.deep.equal(['a.b.example.org', 'b.example.org', 'example.org'])
    expect(caaCandidates('*.example.org')).to.deep.equal(['example.org'])
  })

  it('judges issue, parameters, issuewild, an empty issue and unknown critical tags', () => {
    const le = ['letsencrypt.org']
    expect(judgeCaa([], 'example.org', le).allowed).to.equal(true)
    expect(judgeCaa([{critical: 0, issue: 'letsencrypt.org; validationmethods=http-01'}], 'example.org', le)).to.deep.equal({allowed: true, allows: ['letsencrypt.org'], unknownCritical: false})
    expect(judgeCaa([{critical: 0, issue: 'sectigo.com'}], 'example.org', le).allowed).to.equal(false)
    expect(judgeCaa([{critical: 0, issue: ';'}], 'example.org', le)).to.include({allowed: false})
    expect(judgeCaa([{critical: 0, iodef: 'mailto:a@example.org'}], 'example.org', le).allowed).to.equal(true)
    // issuewild governs wildcards when present; issue otherwise.
    const both = [{critical: 0, issue: 'letsencrypt.org'}, {critical: 0, issuewild: 'sectigo.com'}]
    expect(judgeCaa(both, '*.example.org', le).allowed).to.equal(false)
    expect(judgeCaa(both, 'www.example.org', le).allowed).to.equal(true)
    expect(judgeCaa([{critical: 0, issue: 'letsencrypt.org'}], '*.example.org', le).allowed).to.equal(true)
    expect(judgeCaa([{critical: 128, issue: 'letsencrypt.org'}, {critical: 128} as never], 'example.org', le).unknownCritical).to.equal(true)
  })

  it('knows the CAA domains of the common CAs', () => {
    expect(knownCaaIdentity('https://acme-staging-v02.api.letsencrypt.org/directory')).to.equal('letsencrypt.org')
    expect(knownCaaIdentity('https://acme.zerossl.com/v2/DV90')).to.equal('sectigo.com')
    expect(knownCaaIdentity('https://127.0.0.1:14000/dir')).to.equal(undefined)
  })
})
