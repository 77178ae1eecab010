import {expect} from 'chai'

import {checkInterval, retryDelay} from '../../../src/services/certificates/maintainer.js'

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
