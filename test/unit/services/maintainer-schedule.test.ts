import {expect} from 'chai'

import {MfcEventBus} from '../../../src/lib/events.js'
import type {Logger} from '../../../src/lib/logger.js'
import type {RenewalOutcome} from '../../../src/services/certificates/cert-manager.js'
import {CertificateMaintainer, checkInterval, retryDelay} from '../../../src/services/certificates/maintainer.js'
import type {StoredCert} from '../../../src/services/store/cert-store.js'

const S = 1000
const H = 3_600_000
const DAY = 24 * H

describe('certificate maintainer schedule (unit)', () => {
  it('checks more often the shorter the shortest lifetime held, between 1 s and 10 min', () => {
    expect(checkInterval(undefined)).to.equal(10 * 60 * S)
    expect(checkInterval(90 * DAY)).to.equal(10 * 60 * S)
    expect(checkInterval(6 * DAY)).to.equal(10 * 60 * S)
    expect(checkInterval(2 * H)).to.equal(144 * S)
    expect(checkInterval(30 * S)).to.equal(S)
  })

  it('retries a 90-day certificate after minutes, then hours, doubling up to 6 h', () => {
    const now = new Date('2026-01-01T00:00:00Z')
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((n) => retryDelay(n, 90 * DAY, now))
    expect(delays.slice(0, 3)).to.deep.equal([60 * S, 120 * S, 240 * S])
    expect(delays.at(-1)).to.equal(6 * H)
    for (let i = 1; i < delays.length; i++) expect(delays[i]).to.be.at.least(delays[i - 1])
  })

  it('scales the retries down for a 6-day and a 30-second certificate so they get several tries before expiry', () => {
    const now = new Date('2026-01-01T00:00:00Z')
    expect(retryDelay(20, 6 * DAY, now)).to.equal(6 * H)
    const short = [1, 2, 3, 4].map((n) => retryDelay(n, 30 * S, now))
    expect(short).to.deep.equal([S, 2 * S, 4 * S, 5 * S])
  })

  it('never retries sooner than the CA\'s Retry-After', () => {
    const now = new Date('2026-01-01T00:00:00Z')
    expect(retryDelay(1, 90 * DAY, now, new Date(now.getTime() + 3 * H))).to.equal(3 * H)
    expect(retryDelay(1, 90 * DAY, now, new Date(now.getTime() + S))).to.equal(60 * S)
  })
})

describe('certificate maintainer: a renewal lost to another run (unit)', () => {
  const now = new Date('2026-01-01T00:00:00Z')
  const stored = (version: string) => ({
    name: 'a.example', version, dir: '/nonexistent', fullchainFile: '', certFile: '', chainFile: '', keyFile: '',
    meta: {name: 'a.example', domains: ['a.example'], issuer: 'acme', serial: '01', notBefore: new Date(now.getTime() - DAY).toISOString(), notAfter: new Date(now.getTime() + 2 * DAY).toISOString(), createdAt: now.toISOString()},
  }) as StoredCert
  const outcome = (status: RenewalOutcome['status'], version: string, reason: string): RenewalOutcome => ({name: 'a.example', domains: ['a.example'], issuer: 'acme', status, reason, renewAt: null, notAfter: now.toISOString(), version, ari: null})

  async function checkOnce(result: RenewalOutcome): Promise<{msg: string; fields: Record<string, unknown>}[]> {
    const lines: {msg: string; fields: Record<string, unknown>}[] = []
    const logger: Logger = {
      debug() {}, warn() {}, error() {},
      info: (fields, msg) => lines.push(typeof fields === 'string' ? {msg: fields, fields: {}} : {msg: msg ?? '', fields}),
      child: () => logger,
    }
    const maintainer = new CertificateMaintainer({
      clock: {now: () => now}, events: new MfcEventBus(), logger, lineages: async () => [stored('0002')],
      renew: async () => ({dryRun: false, outcomes: [result], hooks: [], reloadedPid: null}),
    })
    maintainer.start()
    await maintainer.idle()
    await maintainer.stop()
    return lines
  }

  it('logs a skip when another run renewed meanwhile (a newer version), naming that version', async () => {
    const lines = await checkOnce(outcome('skipped', '0003', 'already renewed by another mfc run (now version 0003)'))
    expect(lines.map((l) => l.msg)).to.deep.equal(['Certificate renewal skipped: another mfc run renewed it'])
    expect(lines[0].fields).to.include({name: 'a.example', version: '0003'})
  })

  it('says nothing for a lineage it never renews (same version: a custom certificate)', async () => {
    expect(await checkOnce(outcome('skipped', '0002', 'installed from your own files'))).to.deep.equal([])
  })
})
