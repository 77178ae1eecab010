/**
 * Backoff with jitter, Retry-After parsing and abortable sleeps: the one retry helper of mfc.
 * Pure apart from timers; callers decide what is retryable.
 */

export interface BackoffOptions {
  /** First delay in ms (the floor). */
  minMs: number
  /** Largest delay in ms. */
  maxMs: number
  /** Growth per attempt (2 doubles). */
  factor?: number
  /**
   * Fraction of each delay that is randomised ("equal jitter"): 0.5 means a delay lands in
   * [d/2, d]. Jitter keeps many clients from hammering a recovering CA in lockstep.
   */
  jitter?: number
  /** Random source in [0, 1) (tests pass a fixed one). */
  random?: () => number
}

/** The delay before retry number `attempt` (0-based), jittered, within [minMs*(1-jitter), maxMs]. */
export function backoffDelay(attempt: number, options: BackoffOptions): number {
  const {minMs, maxMs, factor = 2, jitter = 0.5, random = Math.random} = options
  const base = Math.min(maxMs, minMs * (factor ** Math.max(0, attempt)))
  return Math.round(base * (1 - jitter) + base * jitter * random())
}

/**
 * Parses an HTTP Retry-After header (RFC 9110 10.2.3): delta-seconds or an HTTP date.
 * Returns the wait in ms (0 when the date is past), or undefined when absent or unparseable.
 */
export function parseRetryAfter(header: string | string[] | undefined | null, now: Date = new Date()): number | undefined {
  const value = Array.isArray(header) ? header[0] : header
  if (value === undefined || value === null || value.trim() === '') return undefined
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  if (Number.isNaN(at)) return undefined
  return Math.max(0, at - now.getTime())
}

/** The error a sleep or retry loop rejects with when its signal aborts. */
export function abortError(signal: AbortSignal): Error {
  return signal.reason instanceof Error ? signal.reason : new Error('The operation was aborted.')
}

/** Waits `ms`, rejecting early (and clearing the timer) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(abortError(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer)
      reject(abortError(signal!))
    }

    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, Math.max(0, ms))
    signal?.addEventListener('abort', onAbort, {once: true})
  })
}

export interface RetryOptions extends BackoffOptions {
  /** Total tries including the first. */
  attempts: number
  signal?: AbortSignal
  /**
   * Decides whether `error` deserves another try. Returning a number retries after that
   * many ms instead of the backoff (a server's Retry-After); `false` rethrows at once.
   */
  retryable?: (error: unknown, attempt: number) => boolean | number
  /** Told before each wait (logs, progress lines). */
  onRetry?: (error: unknown, attempt: number, delayMs: number) => void
}

/**
 * Runs `work` until it resolves, a non-retryable error, or `attempts` tries; the last error is
 * rethrown as is so callers keep its type. A server-given delay is honoured even when it is
 * longer than the backoff (never shortened to it).
 */
export async function retry<T>(work: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    if (options.signal?.aborted) throw abortError(options.signal)
    try {
      return await work(attempt)
    } catch (error) {
      const verdict = options.retryable ? options.retryable(error, attempt) : true
      if (verdict === false || attempt + 1 >= options.attempts) throw error
      const delay = typeof verdict === 'number' ? Math.max(verdict, options.minMs) : backoffDelay(attempt, options)
      options.onRetry?.(error, attempt, delay)
      await sleep(delay, options.signal)
    }
  }
}
