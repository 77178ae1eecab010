import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'

import {expect} from 'chai'

import {ROOT} from '../helpers/cli.js'

const require = createRequire(import.meta.url)
// Through a variable: these private paths have no type declarations (that is the point).
const load = (path: string): Promise<Record<string, unknown>> => import(path)

/**
 * The parts of acme-client that mfc's AcmeIssuer relies on beyond its documented API. They are
 * why acme-client is pinned to one exact version: when an upgrade moves one, this fails and
 * says which, before an issuance does.
 */
describe('acme-client contract (the surface mfc relies on)', () => {
  const pinned = (JSON.parse(readFileSync(`${ROOT}/package.json`, 'utf8')) as {dependencies: Record<string, string>}).dependencies['acme-client']

  it('is pinned to the exact version installed', () => {
    expect(pinned, 'package.json must pin acme-client exactly (no ^ or ~): AcmeIssuer uses internals').to.match(/^\d+\.\d+\.\d+$/)
    expect((require('acme-client/package.json') as {version: string}).version, 'installed acme-client differs from the pin').to.equal(pinned)
  })

  it('has the three modules AcmeIssuer imports directly (the index would also load node-forge)', async () => {
    for (const path of ['acme-client/src/client.js', 'acme-client/src/crypto/index.js', 'acme-client/src/axios.js']) {
      const mod = await load(path).catch((error: Error) => expect.fail(`${path} is gone in acme-client ${pinned}: ${error.message}; import from 'acme-client' instead`)) as {default?: unknown}
      expect(mod.default ?? mod, path).to.not.equal(undefined)
    }
  })

  it('a Client has the private HttpClient AcmeIssuer wraps: http.request(url, method, opts) and http.maxBadNonceRetries', async () => {
    const {default: Client} = await load('acme-client/src/client.js') as unknown as {default: new (options: object) => {http: {request: unknown; maxBadNonceRetries: unknown}}}
    const crypto = await load('acme-client/src/crypto/index.js') as unknown as {default: {createPrivateEcdsaKey(): Promise<Buffer>}}
    const client = new Client({directoryUrl: 'https://127.0.0.1:1/dir', accountKey: await crypto.default.createPrivateEcdsaKey()})
    expect(client.http?.request, 'Client#http.request moved: AcmeIssuer.instrument must change').to.be.a('function')
    expect((client.http.request as (...args: unknown[]) => unknown).length, 'HttpClient#request(url, method, opts) changed its arity').to.equal(2)
    expect(client.http.maxBadNonceRetries, 'HttpClient#maxBadNonceRetries moved').to.be.a('number')
  })

  it('the exported axios instance has the interceptor managers AcmeIssuer clears (its own Retry-After sleeping)', async () => {
    const {default: axios} = await load('acme-client/src/axios.js') as unknown as {default: {interceptors: {request: {clear?: unknown}; response: {clear?: unknown}}}}
    expect(axios.interceptors.request.clear).to.be.a('function')
    expect(axios.interceptors.response.clear).to.be.a('function')
  })
})
