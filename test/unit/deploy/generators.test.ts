import {expect} from 'chai'
import {existsSync} from 'node:fs'

import {resolveConfig} from '../../../src/lib/config.js'
import {CRON_TAG, cronLine, installCronLine, isMfcLine, parseSchedule, hostSchedule, removeCronLines} from '../../../src/services/deploy/cron.js'
import {composeFile, dockerfile} from '../../../src/services/deploy/docker.js'
import {dockerOptions, haproxyOptions, nginxOptions, nodePorts, renewalCommand, serveSettingsBehind, systemdOptions} from '../../../src/services/deploy/from-config.js'
import {haproxyConfig} from '../../../src/services/deploy/haproxy.js'
import {nginxSite} from '../../../src/services/deploy/nginx.js'
import {parseUpstreams} from '../../../src/services/deploy/upstreams.js'
import {systemdUnits} from '../../../src/services/deploy/systemd.js'
import {expectSnapshot} from '../../helpers/snapshot.js'

const install = {nodePath: '/usr/bin/node', mfcPath: '/opt/mfc/bin/run.js', root: '/opt/mfc'}

function config(env: Record<string, string> = {}) {
  return resolveConfig({env: {MFC_CONFIG_DIR: '/etc/mfc', MFC_STATE_DIR: '/var/lib/mfc', HOME: '/nonexistent', MFC_SSL_DOMAIN: 'mfc.example.org', ...env}, isRoot: true})
}

describe('deploy generators', () => {
  // The generators are checked with root's default paths, which resolveConfig reads: a real
  // /etc/mfc/ssl-config.json on this machine (a stray test, a real install) would change them.
  before(() => expect(existsSync('/etc/mfc/ssl-config.json'), '/etc/mfc/ssl-config.json exists on this machine: move it away to run these tests').to.equal(false))

  describe('cron', () => {
    const command = renewalCommand(config(), install)

    it('writes a tagged twice-a-day line with absolute paths and stdout discarded', () => {
      const line = cronLine(command, {minute: 17, hours: [3, 15]})
      expectSnapshot('cron-line.txt', line + '\n')
      expect(line).to.match(/^17 3,15 \* \* \* /)
      expect(line).to.include('/usr/bin/node /opt/mfc/bin/run.js cert renew-if-needed >/dev/null')
      expect(line.endsWith(CRON_TAG)).to.equal(true)
      expect(parseSchedule(line)).to.deep.equal({minute: 17, hours: [3, 15]})
    })

    it('picks one stable time per host (hash of the host name), spread over the range, the two runs 12 hours apart', () => {
      expect(hostSchedule('mfc-rig-1')).to.deep.equal(hostSchedule('mfc-rig-1'))
      const schedules = Array.from({length: 200}, (_, i) => hostSchedule(`host-${i}`))
      for (const {minute, hours} of schedules) {
        expect(minute).to.be.within(0, 59)
        expect(hours[0]).to.be.within(0, 11)
        expect(hours[1]).to.equal(hours[0] + 12)
      }

      expect(new Set(schedules.map((s) => s.minute)).size).to.be.above(40)
      expect(new Set(schedules.map((s) => s.hours[0])).size).to.equal(12)
    })

    it('replaces the Python system\'s lines, keeps the rest, and is idempotent', () => {
      const before = [
        'MAILTO=ops@example.org',
        '0 2 * * * /usr/local/bin/mfc-cert-renewal.sh',
        '5 4 * * * /usr/bin/backup-things',
        '0 2 * * * /usr/bin/python3 /opt/mfc/cert_manager.py --monitor --renew-if-needed # mfc-cert-renewal',
        '0 2 * * * /usr/local/bin/mfc-cert-renewal.sh',
        '',
      ].join('\n')
      const first = installCronLine(before, command, {minute: 9, hours: [1, 13]})
      expect(first.changed).to.equal(true)
      expect(first.removed).to.have.length(3)
      expectSnapshot('crontab-after-install.txt', first.text)
      const lines = first.text.trimEnd().split('\n')
      expect(lines.filter((l) => l.includes('mfc-cert-renewal'))).to.have.length(1)
      expect(lines).to.include('5 4 * * * /usr/bin/backup-things')
      expect(lines[0]).to.equal('MAILTO=ops@example.org')

      const second = installCronLine(first.text, command, {minute: 44, hours: [7, 19]})
      expect(second.changed).to.equal(false)
      expect(second.text).to.equal(first.text)
    })

    it('keeps the schedule but rewrites the paths when mfc moved', () => {
      const first = installCronLine('', command, {minute: 9, hours: [1, 13]})
      const moved = installCronLine(first.text, {...command, mfcPath: '/srv/mfc/bin/run.js'}, {minute: 30, hours: [5, 17]})
      expect(moved.changed).to.equal(true)
      expect(moved.line).to.match(/^9 1,13 .*\/srv\/mfc\/bin\/run\.js cert renew-if-needed/)
      expect(moved.text.trimEnd().split('\n')).to.have.length(1)
    })

    it('removes every tagged line and nothing else', () => {
      const text = installCronLine('1 1 * * * true\n', command, {minute: 9, hours: [1, 13]}).text
      const removed = removeCronLines(text)
      expect(removed.text).to.equal('1 1 * * * true\n')
      expect(removeCronLines(removed.text).changed).to.equal(false)
      expect(isMfcLine('0 2 * * * python3 cert_manager.py --monitor # mfc-cert-renewal')).to.equal(false)
    })

    it('quotes paths with spaces for /bin/sh', () => {
      const line = cronLine({...command, mfcPath: "/opt/my mfc/it's/run.js"}, {minute: 1, hours: [2, 14]})
      expect(line).to.include(String.raw`'/opt/my mfc/it'\''s/run.js'`)
    })
  })

  describe('systemd', () => {
    it('runs serve in the foreground, hardened, with no capabilities on high ports', () => {
      const units = systemdUnits(systemdOptions(config(), install, {user: 'mfc', group: 'mfc', name: 'mfc'}))
      expectSnapshot('mfc.service', units.service.text)
      expectSnapshot('mfc-renew.service', units.renewService.text)
      expectSnapshot('mfc-renew.timer', units.renewTimer.text)
      const service = units.service.text
      expect(service).to.include('ExecStart=/usr/bin/node /opt/mfc/bin/run.js serve\n')
      expect(service).not.to.include('--daemon')
      expect(service).to.include('Restart=on-failure')
      expect(service).to.include('ReadWritePaths=/etc/mfc /var/lib/mfc')
      expect(service).to.match(/^CapabilityBoundingSet=$/m)
      expect(service).not.to.include('AmbientCapabilities')
      expect(service).not.to.include('MemoryDenyWriteExecute')
      expect(units.renewTimer.text).to.include('RandomizedDelaySec=12h')
      expect(units.renewTimer.text).to.include('Persistent=true')
    })

    it('grants CAP_NET_BIND_SERVICE only when a port is below 1024', () => {
      const low = systemdUnits(systemdOptions(config({MFC_HTTPS_API_PORT: '443'}), install, {user: 'mfc', group: 'mfc', name: 'mfc'}))
      expect(low.service.text).to.include('CapabilityBoundingSet=CAP_NET_BIND_SERVICE\nAmbientCapabilities=CAP_NET_BIND_SERVICE')
      const acme = systemdUnits(systemdOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true'}), install, {user: 'mfc', group: 'mfc', name: 'mfc'}))
      expect(acme.service.text).to.include('AmbientCapabilities=CAP_NET_BIND_SERVICE')
    })

    it('makes home read-only instead of hiding it when mfc lives there', () => {
      const units = systemdUnits(systemdOptions(config(), {...install, mfcPath: '/home/ana/mfc/bin/run.js'}, {user: 'ana', group: 'ana', name: 'mfc'}))
      expect(units.service.text).to.include('ProtectHome=read-only')
    })
  })

  describe('nginx', () => {
    it('fills the guide\'s site from the config', () => {
      const text = nginxSite(nginxOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true', MFC_HTTP_PORT: '8080'}), {http: 80, https: 443}))
      expectSnapshot('nginx-acme.conf', text)
      expect(text).to.include('server_name mfc.example.org;')
      expect(text).to.include('return 301 https://$host$request_uri;')
      expect(text).to.include('proxy_pass http://mfc_acme;').and.include('server 127.0.0.1:8080 max_fails=2 fail_timeout=10s;')
      expect(text).to.include('ssl_certificate /var/lib/mfc/certs/mfc.example.org/live/fullchain.pem;')
      expect(text).to.include('proxy_ssl_trusted_certificate /etc/ssl/certs/ca-certificates.crt;')
      expect(text).not.to.include('X-XSS-Protection')
      expect(text).to.match(/location \/ws\/ \{[^}]*proxy_set_header Upgrade \$http_upgrade;/)
    })

    it('keeps a non-standard HTTPS port in the redirect and uses a webroot when configured', () => {
      const text = nginxSite(nginxOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true'}), {http: 8000, https: 8400}))
      expect(text).to.include('return 301 https://$host:8400$request_uri;')
      const webroot = nginxOptions(config(), {http: 80, https: 443})
      const withRoot = nginxSite({...webroot, acme: {webroot: '/var/www/acme'}})
      expect(withRoot).to.match(/location \^~ \/\.well-known\/acme-challenge\/ \{\s+root \/var\/www\/acme;/)
    })

    it('names what serve must trust behind it, and adds only what the config lacks', () => {
      const options = nginxOptions(config({MFC_TRUSTED_PROXIES: '10.0.0.0/8', MFC_DASHBOARD_ORIGINS: 'https://mfc.example.org:8400'}), {http: 8000, https: 8400})
      expect(serveSettingsBehind(config(), options)).to.deep.equal({trusted_proxies: ['127.0.0.1'], dashboard_origins: ['https://mfc.example.org:8400'], added: ['127.0.0.1', 'https://mfc.example.org:8400']})
      expect(serveSettingsBehind(config({MFC_TRUSTED_PROXIES: '10.0.0.0/8', MFC_DASHBOARD_ORIGINS: 'https://mfc.example.org:8400'}), options))
        .to.deep.equal({trusted_proxies: ['10.0.0.0/8', '127.0.0.1'], dashboard_origins: ['https://mfc.example.org:8400'], added: ['127.0.0.1']})
      expect(nginxSite(options)).to.include('#   "dashboard_origins": ["https://mfc.example.org:8400"]')
    })

    it('refuses to proxy challenges to its own port', () => {
      expect(() => nginxSite(nginxOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true'}), {http: 80, https: 443}))).to.throw(/same port/)
    })

    it('--upstream: one group per service with every node, passive checks, retry on the next node', () => {
      const upstreams = parseUpstreams('10.0.0.11,10.0.0.12:9443,[fd00::13]', nodePorts(config()))
      const text = nginxSite(nginxOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true'}), {http: 80, https: 443}, {upstreams, proxyAddress: '10.0.0.10'}))
      expect(text).to.match(/upstream mfc_api \{\n {4}server 10\.0\.0\.11:8443 max_fails=2 fail_timeout=10s;\n {4}server 10\.0\.0\.12:9443 [^\n]+\n {4}server \[fd00::13\]:8443 /)
      expect(text).to.match(/upstream mfc_stream \{\n {4}least_conn;\n {4}server 10\.0\.0\.11:8445 /)
      expect(text).to.include('server 10.0.0.12:9444 max_fails=2').and.include('server 10.0.0.12:9445 max_fails=2')
      expect(text).to.match(/upstream mfc_acme \{\n {4}server 10\.0\.0\.11:80 /)
      expect(text).to.include('proxy_pass http://mfc_acme;').and.include('proxy_pass https://mfc_stream/;')
      expect(text).to.include('proxy_next_upstream error timeout http_502 http_503;')
      expect(text).to.include('#   "trusted_proxies": ["10.0.0.10"]')
    })
  })

  describe('upstreams', () => {
    const ports = {api: 8443, dashboard: 8444, streamer: 8445, http: 80}

    it('a bare host gets the config\'s ports; host:port moves all four by the same distance', () => {
      expect(parseUpstreams('a.example, 10.0.0.2:9443 ,[::1]:8543', ports)).to.deep.equal([
        {host: 'a.example', api: 8443, dashboard: 8444, streamer: 8445, http: 80},
        {host: '10.0.0.2', api: 9443, dashboard: 9444, streamer: 9445, http: 1080},
        {host: '::1', api: 8543, dashboard: 8544, streamer: 8545, http: 180},
      ])
    })

    it('names the bad entry and the flag', () => {
      for (const [list, why] of [['', /names no node/], ['a,,a', /listed twice/], ['::1', /without brackets/], ['a:b:c', /more than one/], ['bad_host', /host name or IP/], ['h:70000', /outside 1-65535/], ['h:100', /http port of -8263/]] as const) {
        expect(() => parseUpstreams(list, ports), list).to.throw(/^--upstream "/)
        expect(() => parseUpstreams(list, ports), list).to.throw(why)
      }
    })
  })

  describe('haproxy', () => {
    const listen = {http: 80, https: 443, api: 8443, dashboard: 8444, streamer: 8445}
    const request = (tls: 'terminate' | 'passthrough') => ({tls, listen, crtFile: '/etc/haproxy/mfc.pem', statsSocket: '/run/haproxy/admin.sock', upstreams: parseUpstreams('10.0.0.11,10.0.0.12', nodePorts(config()))})

    it('terminate: one HTTPS port routed by path, re-encrypted and verified, one check per node, the others track it', () => {
      const text = haproxyConfig(haproxyOptions(config({MFC_SSL_USE_LETSENCRYPT: 'true'}), request('terminate')))
      expect(text).to.include('bind :443 ssl crt /etc/haproxy/mfc.pem alpn h2,http/1.1')
      expect(text).to.include('use_backend mfc_stream if stream').and.include('http-request replace-path ^/ws(/.*)$ \\1')
      expect(text).to.include('server node1 10.0.0.11:8443 check ssl verify required ca-file /etc/ssl/certs/ca-certificates.crt verifyhost mfc.example.org sni str(mfc.example.org) check-sni mfc.example.org')
      expect(text).to.match(/server node2 10\.0\.0\.12:8445 track mfc_api\/node2 ssl verify required/)
      expect(text.match(/ check /g)).to.have.length(2 + 2) // two API servers, two ACME servers
      expect(text).to.include('server node1-fallback 10.0.0.11:8444 ssl verify required')
      expect(text).to.match(/backend mfc_stream\n {4}mode http\n {4}balance leastconn/)
      expect(text).to.include('use_backend mfc_acme if acme_challenge').and.include('server node2 10.0.0.12:80 check')
      expect(text).to.include('http-request del-header X-Forwarded-For')
    })

    it('passthrough: mode tcp on the three ports, TLS checks only, no key on the balancer', () => {
      const text = haproxyConfig(haproxyOptions(config(), request('passthrough')))
      expect(text).to.match(/frontend mfc_stream_tls\n {4}bind :8445\n {4}mode tcp/)
      expect(text).to.include('server node1 10.0.0.11:8443 check check-ssl verify required')
      expect(text).to.include('server node1 10.0.0.11:8444 track mfc_api/node1\n')
      expect(text).not.to.match(/bind .*crt/)
      expect(text).not.to.include('mfc_acme')
      expect(text).to.include('http-request redirect prefix https://%[req.hdr(host),field(1,:)]:8444 code 301')
    })
  })

  describe('docker', () => {
    it('writes a node:20 image with a node health check and config/state volumes', () => {
      const options = dockerOptions(config(), install, '/srv/deploy')
      const file = dockerfile(options)
      const compose = composeFile(options)
      expectSnapshot('Dockerfile', file)
      expectSnapshot('compose.yaml', compose)
      expect(file).to.match(/^FROM node:20-/m)
      expect(file).not.to.include('curl')
      expect(file).to.include('CMD ["node", "/app/bin/run.js", "serve"]')
      expect(file).to.include('VOLUME ["/etc/mfc", "/var/lib/mfc"]')
      expect(compose).to.include('"/srv/deploy/config:/etc/mfc"')
    })
  })
})
