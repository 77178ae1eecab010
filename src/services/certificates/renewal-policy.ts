const DAY_MS = 86_400_000

export interface Validity {
  notBefore: Date
  notAfter: Date
}

export interface RenewalPolicy {
  /** The config's `renewal_days_before`: renew when fewer days than this remain. */
  renewalDaysBefore: number
  /** At or under this many days left (or expired) a certificate is critical. */
  criticalDays?: number
}

export type RenewalState = 'ok' | 'due' | 'critical' | 'expired'

export interface RenewalDecision {
  renew: boolean
  state: RenewalState
  /** When renewal becomes due (the earliest of the rules that apply). */
  renewAt: Date
  /** Whole days left, rounded down; negative once expired. */
  daysLeft: number
  reason: string
}

/**
 * When to renew, as a pure function (certmagic/certbot/lego): renew once less than 1/3 of the
 * lifetime remains (1/2 for lifetimes of 10 days or less) or fewer than `renewalDaysBefore`
 * days remain, whichever comes first (the days rule not for short-lived certificates of 10 days
 * or less, which it would make due from birth). An ARI window from the CA (RFC 9773) may pull the date
 * earlier, never later.
 */
export function decideRenewal(validity: Validity, now: Date, policy: RenewalPolicy, ariStart?: Date): RenewalDecision {
  const lifetime = validity.notAfter.getTime() - validity.notBefore.getTime()
  const remainingFraction = lifetime <= 10 * DAY_MS ? 1 / 2 : 1 / 3
  const byLifetime = validity.notAfter.getTime() - lifetime * remainingFraction
  // renewal_days_before (30 by default, made for 90-day certificates) would make a 6-day
  // certificate due from birth: short-lived certificates follow the lifetime rule alone.
  const shortLived = lifetime <= 10 * DAY_MS
  const byDays = shortLived ? Number.POSITIVE_INFINITY : validity.notAfter.getTime() - policy.renewalDaysBefore * DAY_MS
  let renewAt = Math.min(byLifetime, byDays)
  let rule = byLifetime <= byDays
    ? `${remainingFraction === 1 / 2 ? 'half' : 'a third'} of its lifetime remains`
    : `fewer than ${policy.renewalDaysBefore} days (renewal_days_before) remain`
  if (ariStart && ariStart.getTime() < renewAt) {
    renewAt = ariStart.getTime()
    rule = 'the CA\'s renewal information (ARI) window has opened'
  }

  const msLeft = validity.notAfter.getTime() - now.getTime()
  const daysLeft = Math.floor(msLeft / DAY_MS)
  const critical = policy.criticalDays ?? 7
  if (msLeft <= 0) {
    return {renew: true, state: 'expired', renewAt: new Date(renewAt), daysLeft, reason: `expired on ${validity.notAfter.toISOString()}`}
  }

  if (now.getTime() >= renewAt) {
    const state = msLeft <= critical * DAY_MS ? 'critical' : 'due'
    return {renew: true, state, renewAt: new Date(renewAt), daysLeft, reason: `due: ${rule} (${daysLeft} days left)`}
  }

  return {renew: false, state: 'ok', renewAt: new Date(renewAt), daysLeft, reason: `not due until ${new Date(renewAt).toISOString()} (${daysLeft} days left)`}
}
