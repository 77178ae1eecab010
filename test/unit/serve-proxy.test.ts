import {expect} from 'chai'
import type {IncomingMessage} from 'node:http'

import {PROXY_STREAM_PATH, proxiedOrigin, proxiedStreamUrl} from '../../src/services/servers/proxy.js'

type Req = Pick<IncomingMessage, 'headers' | 'socket'>
const req = (peer: string, headers: IncomingMessage['headers']): Req => ({headers, socket: {remoteAddress: peer} as IncomingMessage['socket']})
const trusted = (ip: string | undefined) => ip === '127.0.0.1'
const allowed = new Set(['https://mfc.example.org', 'https://localhost:9443', 'https://[::1]:9443'])
const origin = (r: Req) => proxiedOrigin(r, trusted, (o) => allowed.has(o))

describe('proxiedOrigin: is this dashboard request coming through the trusted reverse proxy?', () => {
  it('believes a trusted proxy that says https and names an allowed host (X-Forwarded-Host, else Host)', () => {
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', 'x-forwarded-host': 'localhost:9443', host: 'localhost'}))).to.equal('https://localhost:9443')
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', host: 'MFC.example.org'})), 'no X-Forwarded-Host: Host, lower-cased').to.equal('https://mfc.example.org')
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'HTTPS', 'x-forwarded-host': 'mfc.example.org:443'})), ':443 is the default port').to.equal('https://mfc.example.org')
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', 'x-forwarded-host': '[::1]:9443'}))).to.equal('https://[::1]:9443')
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https, http', 'x-forwarded-host': 'localhost:9443, evil.example'})), 'first hop of a list').to.equal('https://localhost:9443')
  })

  it('ignores the headers from anyone else, without https, or for a host browsers may not come from', () => {
    expect(origin(req('10.9.9.9', {'x-forwarded-proto': 'https', 'x-forwarded-host': 'localhost:9443'})), 'untrusted peer').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-host': 'localhost:9443'})), 'no X-Forwarded-Proto').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'http', 'x-forwarded-host': 'localhost:9443'})), 'plain http').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil.example'})), 'not an allowed origin').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', 'x-forwarded-host': 'localhost:9443/x'})), 'not a host').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https', 'x-forwarded-host': "localhost:9443 'unsafe-inline'"})), 'CSP injection').to.equal(undefined)
    expect(origin(req('127.0.0.1', {'x-forwarded-proto': 'https'})), 'no host at all').to.equal(undefined)
  })

  it("points the page's stream at the proxy's /ws/ on that origin", () => {
    expect(PROXY_STREAM_PATH).to.equal('/ws/')
    expect(proxiedStreamUrl('https://localhost:9443')).to.equal('wss://localhost:9443/ws/')
    expect(proxiedStreamUrl('https://mfc.example.org')).to.equal('wss://mfc.example.org/ws/')
  })
})
