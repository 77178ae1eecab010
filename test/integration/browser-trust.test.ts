import {expect} from 'chai'
import {execFileSync} from 'node:child_process'
import {mkdir, readFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:https'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {chromium} from 'playwright-core'

import type {SslInitResult} from '../../src/commands/ssl/init.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/**
 * "Browsers accept the leaf once the CA is trusted": real Chromium, with the local CA added to
 * the NSS database of a throwaway HOME (what `certutil -A` in the printed instructions does).
 */
describe('a browser trusts the local CA leaf', function () {
  this.timeout(90_000)
  let t: TempEnv
  let server: Server

  before(async () => {
    t = await tempEnv()
    const out = parseJson<SslInitResult>(await runCli(['ssl', 'init', '--domain', 'localhost', '--json'], {env: t.env}))
    server = createServer({cert: await readFile(out.certFile), key: await readFile(out.keyFile)}, (_req, res) => {
      res.end('<title>mfc trust</title>trusted')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  })
  after(async () => {
    await new Promise((resolve) => server?.close(resolve))
    await t.cleanup()
  })

  async function visit(home: string): Promise<string> {
    const context = await chromium.launchPersistentContext(join(home, 'profile'), {executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS, env: {...process.env, HOME: home}})
    try {
      const page = await context.newPage()
      const port = (server.address() as AddressInfo).port
      try {
        await page.goto(`https://localhost:${port}/`)
        return await page.title()
      } catch (error) {
        return (error as Error).message
      }
    } finally {
      await context.close()
    }
  }

  it('is rejected before the CA is trusted and accepted after', async () => {
    const untrusted = join(t.dir, 'home-untrusted')
    await mkdir(untrusted)
    expect(await visit(untrusted)).to.match(/ERR_CERT_AUTHORITY_INVALID/)

    const trusted = join(t.dir, 'home-trusted')
    const nssdb = join(trusted, '.pki', 'nssdb')
    await mkdir(nssdb, {recursive: true})
    execFileSync('certutil', ['-d', `sql:${nssdb}`, '-N', '--empty-password'])
    execFileSync('certutil', ['-d', `sql:${nssdb}`, '-A', '-t', 'C,,', '-n', 'mfc local CA', '-i', join(t.stateDir, 'ca', 'ca.crt')])
    expect(await visit(trusted)).to.equal('mfc trust')
  })
})
