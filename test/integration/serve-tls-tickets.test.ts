import {execFile} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {type Running, type TestSite, startServe, testSite} from '../helpers/serve.js'

/** One `openssl s_client` connection; "New" or "Reused" (the session line of its report). */
function handshake(port: number, caFile: string, session: {out?: string; in?: string}, version: '-tls1_2' | '-tls1_3'): Promise<'New' | 'Reused'> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-CAfile', caFile, '-verify_return_error', version, '-ign_eof']
  if (session.out) args.push('-sess_out', session.out)
  if (session.in) args.push('-sess_in', session.in)
  return new Promise((resolve, reject) => {
    const child = execFile('openssl', args, {timeout: 10_000}, (_error, stdout) => {
      const match = /^(New|Reused), TLSv1\.[23]/m.exec(stdout)
      if (match) resolve(match[1] as 'New' | 'Reused')
      else reject(new Error(`openssl s_client printed no session line:\n${stdout}`))
    })
    // A request, so that the server's TLS 1.3 ticket (sent after the handshake) arrives before the close.
    child.stdin!.end('GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  })
}

/** Issue 16: serve replaces its TLS session-ticket key on a timer, for all three ports. */
describe('mfc serve: TLS session-ticket key rotation (openssl s_client resumption)', function () {
  this.timeout(60_000)
  let site: TestSite
  let serve: Running | undefined
  let caFile: string

  before(async () => {
    site = await testSite()
    caFile = join(site.temp.dir, 'ca.pem')
    writeFileSync(caFile, site.caPem)
  })
  afterEach(async () => serve?.close())
  after(async () => site?.temp.cleanup())

  /** Runs `steps` again until no rotation happened while it ran: each run sees one key period. */
  async function inOnePeriod<T>(steps: () => Promise<T>): Promise<T> {
    for (;;) {
      const before = serve!.runtime.tls.ticketRotations
      const result = await steps()
      if (serve!.runtime.tls.ticketRotations === before) return result
    }
  }

  async function nextRotation(): Promise<void> {
    const seen = serve!.runtime.tls.ticketRotations
    while (serve!.runtime.tls.ticketRotations === seen) await new Promise((resolve) => setTimeout(resolve, 50))
  }

  for (const version of ['-tls1_3', '-tls1_2'] as const) {
    it(`${version}: a ticket resumes within its key period, on every port, and not after a rotation; a new one does`, async () => {
      serve = await startServe(site, {config: site.reconfig({tls_ticket_rotation_seconds: 1})})
      const port = (name: 'api' | 'dashboard' | 'streamer') => Number(new URL(serve!.url(name)).port)
      const first = join(site.temp.dir, `first${version}.pem`)
      const second = join(site.temp.dir, `second${version}.pem`)
      const fresh = await inOnePeriod(async () => {
        const made = await handshake(port('api'), caFile, {out: first}, version)
        return [made, await handshake(port('api'), caFile, {in: first}, version), await handshake(port('dashboard'), caFile, {in: first}, version), await handshake(port('streamer'), caFile, {in: first}, version)]
      })
      expect(fresh, 'new, then resumed on the API, dashboard and streamer ports').to.deep.equal(['New', 'Reused', 'Reused', 'Reused'])

      await nextRotation()
      const afterOne = await inOnePeriod(async () => {
        const old = await handshake(port('api'), caFile, {in: first}, version)
        const made = await handshake(port('api'), caFile, {out: second}, version)
        return [old, made, await handshake(port('streamer'), caFile, {in: second}, version)]
      })
      expect(afterOne, 'the old ticket needs a full handshake; a new ticket resumes').to.deep.equal(['New', 'New', 'Reused'])

      await nextRotation()
      expect(await handshake(port('dashboard'), caFile, {in: second}, version), 'after the second rotation').to.equal('New')
    })
  }

  it('without rotation a ticket keeps resuming across a certificate reload', async () => {
    serve = await startServe(site)
    const port = Number(new URL(serve.url('api')).port)
    const file = join(site.temp.dir, 'reload.pem')
    expect(await handshake(port, caFile, {out: file}, '-tls1_3')).to.equal('New')
    await site.reissue()
    expect((await serve.runtime.reload('test')).status).to.equal('reloaded')
    expect(serve.runtime.tls.ticketRotations).to.equal(0)
    expect(await handshake(port, caFile, {in: file}, '-tls1_3')).to.equal('Reused')
  })
})
