import {expect} from 'chai'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {constantTimeEqual, readCookie} from '../../src/services/servers/auth.js'
import {nestedDeeperThan} from '../../src/services/servers/http-app.js'
import {IpFilter, normalizeIp} from '../../src/services/servers/ip-filter.js'
import {RateLimiter} from '../../src/services/servers/rate-limiter.js'
import {buildSecurityHeaders} from '../../src/services/servers/security-headers.js'

describe('serve security units', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-ipf-'))
  })
  after(async () => rm(dir, {recursive: true, force: true}))

  describe('IpFilter', () => {
    it('matches CIDRs (IPv4, IPv6, IPv4-mapped) — the original compared strings and never matched one', async () => {
      await writeFile(join(dir, 'allowed.txt'), '# comment\n10.0.0.0/8\n\n192.168.1.0/24  # lab\nfd00::/8\n2001:db8::1\nnot-an-ip\n1.2.3.4/40\n')
      await writeFile(join(dir, 'blocked.txt'), '10.6.6.0/24\n')
      const filter = await IpFilter.load(join(dir, 'allowed.txt'), join(dir, 'blocked.txt'), [])
      expect(filter.sources.allowed.invalid).to.deep.equal(['not-an-ip', '1.2.3.4/40'])
      expect(['10.1.2.3', '::ffff:10.200.0.1', '192.168.1.77', 'fd12:3456::1', '2001:db8::1'].map((ip) => filter.isAllowed(ip))).to.deep.equal([true, true, true, true, true])
      expect(['11.0.0.1', '192.168.2.1', '127.0.0.1', '::1', '2001:db8::2'].map((ip) => filter.isAllowed(ip))).to.deep.equal([false, false, false, false, false])
      expect(filter.isAllowed('10.6.6.6'), 'the block list wins').to.equal(false)
    })

    it('a missing allow list means loopback and private networks; an empty one allows everyone', async () => {
      const missing = await IpFilter.load(join(dir, 'nope.txt'), join(dir, 'nope2.txt'), [])
      expect(['127.0.0.9', '::1', '10.0.0.1', '172.20.1.1', '192.168.5.5'].every((ip) => missing.isAllowed(ip))).to.equal(true)
      expect(missing.isAllowed('8.8.8.8')).to.equal(false)
      await writeFile(join(dir, 'empty.txt'), '# nothing\n')
      const empty = await IpFilter.load(join(dir, 'empty.txt'), join(dir, 'nope2.txt'), [])
      expect(empty.isAllowed('8.8.8.8')).to.equal(true)
    })

    it('X-Forwarded-For: only from trusted proxies, right-most untrusted hop, garbage ignored', async () => {
      const filter = await IpFilter.load(join(dir, 'nope.txt'), join(dir, 'nope2.txt'), ['10.0.0.0/8', '::1'])
      expect(filter.clientIp('203.0.113.5', '1.1.1.1')).to.equal('203.0.113.5')
      expect(filter.clientIp('10.0.0.2', '1.1.1.1')).to.equal('1.1.1.1')
      expect(filter.clientIp('::ffff:10.0.0.2', '6.6.6.6, 1.1.1.1, 10.0.0.3')).to.equal('1.1.1.1')
      // Not an address: returned as it is, so admission denies it (never the proxy's own address).
      expect(filter.clientIp('10.0.0.2', 'nonsense')).to.equal('nonsense')
      expect(filter.clientIp('::1', ['2.2.2.2', '3.3.3.3'])).to.equal('3.3.3.3')
      expect(normalizeIp('::ffff:127.0.0.1')).to.equal('127.0.0.1')
    })

    it('refuses invalid trusted_proxies with a config error naming them', async () => {
      const error = await IpFilter.load(join(dir, 'nope.txt'), join(dir, 'nope2.txt'), ['10.0.0.0/8', 'proxy.local']).catch((e: Error) => e)
      expect(error).to.have.property('code', 'MFC_CONFIG_VALUE')
      expect((error as Error).message).to.include('proxy.local')
    })
  })

  describe('RateLimiter', () => {
    it('allows a burst of the limit, then refuses with Retry-After until a token refills', () => {
      let now = 0
      const limiter = new RateLimiter(60, () => now)
      for (let i = 0; i < 60; i++) expect(limiter.take('a').allowed).to.equal(true)
      expect(limiter.take('a')).to.deep.equal({allowed: false, retryAfterSeconds: 1})
      expect(limiter.take('b').allowed, 'per key').to.equal(true)
      now += 1000
      expect(limiter.take('a').allowed).to.equal(true)
      expect(limiter.take('a').allowed).to.equal(false)
    })

    it('Retry-After grows with a lower limit; check() takes nothing; 0 disables', () => {
      let now = 0
      const limiter = new RateLimiter(2, () => now)
      limiter.take('a')
      limiter.take('a')
      expect(limiter.check('a')).to.deep.equal({allowed: false, retryAfterSeconds: 30})
      now += 30_000
      expect(limiter.check('a').allowed).to.equal(true)
      expect(limiter.check('a').allowed).to.equal(true)
      const off = new RateLimiter(0)
      for (let i = 0; i < 1000; i++) expect(off.take('x').allowed).to.equal(true)
    })
  })

  describe('tokens and cookies', () => {
    it('constantTimeEqual compares fixed-size digests: prefixes, extensions and case changes all fail', () => {
      const token = 'abcdefghijklmnopqrstuvwxyz012345'
      expect(constantTimeEqual(token, token)).to.equal(true)
      for (const candidate of ['', 'a', token.slice(0, -1), token + 'x', token.toUpperCase(), 'x'.repeat(10_000)]) {
        expect(constantTimeEqual(candidate, token), candidate.slice(0, 20)).to.equal(false)
      }
    })

    it('readCookie finds one cookie among several', () => {
      expect(readCookie('a=1; mfc_session=xyz; b=2', 'mfc_session')).to.equal('xyz')
      expect(readCookie('mfc_session_old=1', 'mfc_session')).to.equal(undefined)
      expect(readCookie(undefined, 'mfc_session')).to.equal(undefined)
    })
  })

  describe('security headers', () => {
    it('HSTS only when enabled; CSP without inline/eval and with the API/streamer origins in connect-src', () => {
      const headers = buildSecurityHeaders({enableHsts: true, hstsMaxAge: 300, enableCsp: true, connectSources: ['https://localhost:8443', 'wss://localhost:8445'], noStore: false})
      expect(headers['strict-transport-security']).to.equal('max-age=300; includeSubDomains')
      expect(headers['content-security-policy']).to.include("connect-src 'self' https://localhost:8443 wss://localhost:8445")
      expect(headers['content-security-policy']).not.to.match(/unsafe/)
      expect(headers['cache-control']).to.equal(undefined)
      const off = buildSecurityHeaders({enableHsts: false, hstsMaxAge: 300, enableCsp: false, connectSources: [], noStore: true})
      expect(off).not.to.have.any.keys('strict-transport-security', 'content-security-policy')
      expect(off['cache-control']).to.equal('no-store')
    })
  })

  describe('nestedDeeperThan (JSON bodies)', () => {
    it('counts the value itself as level 1, arrays and objects alike, past strings that look like brackets', () => {
      const nest = (levels: number) => JSON.parse('['.repeat(levels) + ']'.repeat(levels)) as unknown
      expect(nestedDeeperThan(nest(32), 32)).to.equal(false)
      expect(nestedDeeperThan(nest(33), 32)).to.equal(true)
      expect(nestedDeeperThan(JSON.parse('{"a":'.repeat(33) + '1' + '}'.repeat(33)), 32)).to.equal(true)
      expect(nestedDeeperThan(JSON.parse('{"a":'.repeat(32) + '"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["' + '}'.repeat(32)), 32)).to.equal(false)
      // The deep path may come after many shallow ones, and inside an object inside an array.
      const wide = {readings: [...Array.from({length: 1000}, () => ({v: [1, 2, 3]})), {deep: nest(31)}]}
      expect(nestedDeeperThan(wide, 32)).to.equal(true)
      expect(nestedDeeperThan({readings: Array.from({length: 1000}, () => ({v: [1, 2, 3]}))}, 32)).to.equal(false)
      for (const scalar of [null, 1, 'x', true]) expect(nestedDeeperThan(scalar, 0)).to.equal(false)
      // 100,000 levels: no stack overflow, the answer at the 33rd.
      expect(nestedDeeperThan(nest(100_000), 32)).to.equal(true)
    })
  })
})
