import {request} from 'node:https'

import {expect} from 'chai'

import {type Running, TEST_TOKEN, type TestSite, startServe, testSite} from '../helpers/serve.js'

interface Raw {status: number; headers: [string, string][]}

/** One request; the response's raw header lines (lowercased names), so a duplicate would show. */
function raw(url: string, ca: string, headers: Record<string, string> = {}): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(url, {ca, headers, agent: false, servername: 'localhost'}, (res) => {
      res.resume()
      res.on('end', () => {
        const lines: [string, string][] = []
        for (let i = 0; i < res.rawHeaders.length; i += 2) lines.push([res.rawHeaders[i].toLowerCase(), res.rawHeaders[i + 1]])
        resolve({status: res.statusCode ?? 0, headers: lines})
      })
    })
    req.on('error', reject)
    req.end()
  })
}

// Headers whose values change from one response to the next.
const VOLATILE = new Set(['date', 'content-length', 'etag', 'last-modified', 'keep-alive', 'connection'])

/**
 * The security headers come either from the pre-serialized block written by the servers'
 * ServerResponse class (the default) or, with `security_header_block: false` (or a Node without
 * the hook), set on each response. Both paths must send the same headers, once each.
 */
describe('serve: the same security headers with and without the header block', function () {
  this.timeout(60_000)
  let site: TestSite
  const running: Running[] = []

  before(async () => {
    site = await testSite()
  })
  after(async () => {
    await Promise.all(running.map((r) => r.close()))
    await site?.temp.cleanup()
  })

  async function responses(block: boolean): Promise<Record<string, Raw>> {
    const serve = await startServe(site, {config: site.reconfig({security_header_block: block})})
    running.push(serve)
    const api = serve.url('api')
    const dashboard = serve.url('dashboard')
    const streamer = serve.url('streamer').replace('wss:', 'https:')
    const auth = {authorization: `Bearer ${TEST_TOKEN}`}
    const targets: Record<string, [string, Record<string, string>?]> = {
      'api /health': [`${api}/health`], 'api / with token': [`${api}/`, auth], 'api / without token': [`${api}/`],
      'api 404': [`${api}/nope`, auth], 'dashboard /login': [`${dashboard}/login`], 'dashboard / (redirect)': [`${dashboard}/`, {accept: 'text/html'}],
      'streamer /health': [`${streamer}/health`], 'streamer plain GET': [`${streamer}/`],
    }
    const out: Record<string, Raw> = {}
    for (const [name, [url, headers]] of Object.entries(targets)) out[name] = await raw(url, site.caPem, headers)
    return out
  }

  it('every response of the three servers: same status, same header names and values, no header twice', async () => {
    const withBlock = await responses(true)
    const perResponse = await responses(false)
    for (const [name, response] of Object.entries(withBlock)) {
      const names = response.headers.map(([header]) => header)
      expect(new Set(names).size, `${name}: a header sent twice: ${names.join(', ')}`).to.equal(names.length)
      expect(names, name).to.include.members(['content-security-policy', 'x-content-type-options', 'x-frame-options', 'referrer-policy', 'strict-transport-security'])
      // The two runs listen on different ports, which the CSP and redirects name.
      const stable = (r: Raw) => r.headers.filter(([header]) => !VOLATILE.has(header)).map(([header, value]) => [header, value.replaceAll(/:\d{2,5}\b/g, ':PORT')]).sort(([a], [b]) => a.localeCompare(b))
      expect({status: perResponse[name].status, headers: stable(perResponse[name])}, name).to.deep.equal({status: response.status, headers: stable(response)})
    }
  })
})
