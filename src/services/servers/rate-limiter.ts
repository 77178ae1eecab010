export type RateDecision = {allowed: true} | {allowed: false; retryAfterSeconds: number}

/** Shared by every allowed request: nothing to allocate on the common path. */
const ALLOWED: RateDecision = Object.freeze({allowed: true})

interface Bucket {
  tokens: number
  at: number
}

/**
 * A token bucket per key (client IP): `perMinute` tokens, refilled continuously, so a client
 * may burst up to the limit and then gets one request per 60/perMinute seconds. A denied
 * request costs nothing, and Retry-After says when the next token arrives.
 * `perMinute` 0 disables the limiter. Memory is bounded by sweeping full buckets.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>()
  private readonly perMs: number
  private sweeps = 0

  constructor(readonly perMinute: number, private readonly now: () => number = Date.now) {
    this.perMs = perMinute / 60_000
  }

  /** Takes one token for `key`. */
  take(key: string): RateDecision {
    if (this.perMinute === 0) return ALLOWED
    const bucket = this.refill(key)
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1
      return ALLOWED
    }

    return {allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000))}
  }

  /** Whether `key` is out of tokens, without taking one. */
  check(key: string): RateDecision {
    if (this.perMinute === 0 || !this.buckets.has(key)) return ALLOWED
    const bucket = this.refill(key)
    return bucket.tokens >= 1 ? ALLOWED : {allowed: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - bucket.tokens) / this.perMs / 1000))}
  }

  private refill(key: string): Bucket {
    const now = this.now()
    let bucket = this.buckets.get(key)
    if (bucket) {
      bucket.tokens = Math.min(this.perMinute, bucket.tokens + (now - bucket.at) * this.perMs)
      bucket.at = now
    } else {
      bucket = {tokens: this.perMinute, at: now}
      this.buckets.set(key, bucket)
      if (++this.sweeps % 1024 === 0) this.sweep(now)
    }

    return bucket
  }

  /** Forgets clients whose bucket has refilled: they are indistinguishable from new ones. */
  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.at) * this.perMs >= this.perMinute) this.buckets.delete(key)
    }
  }
}
