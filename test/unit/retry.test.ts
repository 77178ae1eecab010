import {expect} from 'chai'

import {backoffDelay, parseRetryAfter, retry, sleep} from '../../src/lib/retry.js'

describe('retry helpers', () => {
  it('backoff doubles from the floor to the cap, with jitter inside [d/2, d]', () => {
    const fixed = (r: number) => ({minMs: 100, maxMs: 1000, random: () => r})
    expect([0, 1, 2, 3, 4, 5].map((a) => backoffDelay(a, fixed(0.999_999)))).to.deep.equal([100, 200, 400, 800, 1000, 1000])
    expect([0, 1, 4].map((a) => backoffDelay(a, fixed(0)))).to.deep.equal([50, 100, 500])
  })

  it('parses Retry-After as seconds or an HTTP date, and ignores garbage', () => {
    const now = new Date('2026-11-28T12:00:00Z')
    expect(parseRetryAfter('120', now)).to.equal(120_000)
    expect(parseRetryAfter('Sat, 28 Nov 2026 12:01:00 GMT', now)).to.equal(60_000)
    expect(parseRetryAfter('Sat, 28 Nov 2026 11:00:00 GMT', now)).to.equal(0)
    expect(parseRetryAfter('soon', now)).to.equal(undefined)
    expect(parseRetryAfter(undefined, now)).to.equal(undefined)
  })

  it('retries until success, stops at non-retryable errors, and rethrows the last error', async () => {
    let calls = 0
    expect(await retry(async () => {
      if (++calls < 3) throw new Error(`fail ${calls}`)
      return 'done'
    }, {attempts: 5, minMs: 1, maxMs: 2})).to.equal('done')
    expect(calls).to.equal(3)

    calls = 0
    const fatal = await retry(async () => {
      calls++
      throw new TypeError('fatal')
    }, {attempts: 5, minMs: 1, maxMs: 2, retryable: (e) => !(e instanceof TypeError)}).catch((e: Error) => e)
    expect([calls, (fatal as Error).message]).to.deep.equal([1, 'fatal'])

    calls = 0
    const last = await retry(async () => {
      throw new Error(`try ${++calls}`)
    }, {attempts: 3, minMs: 1, maxMs: 2}).catch((e: Error) => e.message)
    expect(last).to.equal('try 3')
  })

  it('waits the server-given delay when the predicate returns one', async () => {
    const delays: number[] = []
    await retry(async (attempt) => {
      if (attempt === 0) throw new Error('429')
    }, {attempts: 2, minMs: 1, maxMs: 2, retryable: () => 30, onRetry: (_e, _a, delay) => delays.push(delay)})
    expect(delays).to.deep.equal([30])
  })

  it('aborts a sleep and a retry loop with the signal\'s reason', async () => {
    const controller = new AbortController()
    const pending = sleep(60_000, controller.signal)
    controller.abort(new Error('stop'))
    expect(await pending.catch((e: Error) => e.message)).to.equal('stop')
    const loop = await retry(async () => {
      throw new Error('x')
    }, {attempts: 10, minMs: 10_000, maxMs: 10_000, signal: AbortSignal.abort(new Error('cancelled'))}).catch((e: Error) => e.message)
    expect(loop).to.equal('cancelled')
  })
})
