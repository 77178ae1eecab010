import {expect} from 'chai'

import {decideRenewal} from '../../../src/services/certificates/renewal-policy.js'

const DAY = 86_400_000
const start = new Date('2026-01-01T00:00:00Z')
const after = (days: number) => new Date(start.getTime() + days * DAY)

describe('renewal policy', () => {
  // [lifetime days, renewal_days_before, age in days, renew?, state]
  const cases: [number, number, number, boolean, string][] = [
    [90, 30, 0, false, 'ok'],
    [90, 30, 59, false, 'ok'], // 31 days left: neither rule yet
    [90, 30, 60.5, true, 'due'], // a third (30 days) left: both rules agree
    [90, 10, 60.5, true, 'due'], // a third left beats a smaller renewal_days_before
    [90, 40, 50.5, true, 'due'], // a larger renewal_days_before comes first
    [90, 30, 83.5, true, 'critical'], // 6.5 days left
    [90, 30, 90.5, true, 'expired'],
    [45, 0, 29, false, 'ok'], // 45-day certs: due at 2/3 = day 30
    [45, 0, 30.5, true, 'due'],
    [6, 0, 2.9, false, 'ok'], // short-lived: half the lifetime
    [6, 0, 3.1, true, 'critical'],
    [365, 30, 200, false, 'ok'],
    [365, 30, 244, true, 'due'],
  ]
  for (const [lifetime, daysBefore, age, renew, state] of cases) {
    it(`${lifetime}-day cert, renewal_days_before ${daysBefore}, at day ${age}: ${renew ? 'renew' : 'keep'} (${state})`, () => {
      const decision = decideRenewal({notBefore: start, notAfter: after(lifetime)}, after(age), {renewalDaysBefore: daysBefore})
      expect(decision.renew).to.equal(renew)
      expect(decision.state).to.equal(state)
      expect(decision.reason).to.be.a('string').and.not.equal('')
    })
  }

  it('reports whole days left, negative once expired', () => {
    expect(decideRenewal({notBefore: start, notAfter: after(90)}, after(10.2), {renewalDaysBefore: 30}).daysLeft).to.equal(79)
    expect(decideRenewal({notBefore: start, notAfter: after(90)}, after(92), {renewalDaysBefore: 30}).daysLeft).to.equal(-2)
  })

  it('lets an ARI window pull renewal earlier but never later', () => {
    const validity = {notBefore: start, notAfter: after(90)}
    const early = decideRenewal(validity, after(40), {renewalDaysBefore: 30}, after(35))
    expect(early.renew).to.equal(true)
    expect(early.reason).to.contain('ARI')
    const late = decideRenewal(validity, after(61), {renewalDaysBefore: 30}, after(80))
    expect(late.renew).to.equal(true)
    expect(late.renewAt.getTime()).to.equal(after(60).getTime())
  })
})
