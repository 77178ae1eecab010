import {expect} from 'chai'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {createRequire} from 'node:module'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import fastifyStatic from '@fastify/static'
import Fastify from 'fastify'

import {ROOT} from '../helpers/cli.js'

interface Semver {
  satisfies(version: string, range: string): boolean
  minVersion(range: string): {version: string} | null
}
// semver comes with npm's own tree (oclif, node-gyp); the check needs its range grammar, nothing else.
const semver = createRequire(import.meta.url)('semver') as Semver

interface LockEntry {
  version?: string
  dev?: boolean
  engines?: {node?: string}
}

const readJson = async <T>(file: string): Promise<T> => JSON.parse(await readFile(join(ROOT, file), 'utf8')) as T

/**
 * npm ci must install on Node 20 without EBADENGINE: cookie 2 and content-disposition 3 (pulled in
 * by light-my-request and @fastify/static) declare node >= 22, so package.json pins the last
 * majors that declare Node 20 support through `overrides`, and these tests hold the whole tree to it.
 */
describe('dependencies on Node 20', () => {
  it('every locked package declares support for the Node versions mfc promises', async () => {
    const pkg = await readJson<{engines: {node: string}}>('package.json')
    const lock = await readJson<{packages: Record<string, LockEntry>}>('package-lock.json')
    const oldest = semver.minVersion(pkg.engines.node)!.version
    const offenders = Object.entries(lock.packages)
      .filter(([path, entry]) => path !== '' && entry.engines?.node !== undefined)
      .filter(([, entry]) => !semver.satisfies(process.version, entry.engines!.node!) || (!entry.dev && !semver.satisfies(oldest, entry.engines!.node!)))
      .map(([path, entry]) => `${path}@${entry.version} wants node ${entry.engines!.node}`)
    expect(offenders).to.deep.equal([])
  })

  it('the overrides are exact versions, and they are what is installed', async () => {
    const {overrides} = await readJson<{overrides: Record<string, string>}>('package.json')
    const lock = await readJson<{packages: Record<string, LockEntry>}>('package-lock.json')
    expect(overrides).to.include.keys('cookie', 'content-disposition')
    for (const [name, version] of Object.entries(overrides)) {
      expect(version, `${name} pinned exactly`).to.match(/^\d+\.\d+\.\d+$/)
      const installs = Object.keys(lock.packages).filter((path) => path.endsWith(`node_modules/${name}`))
      expect(installs.length, `${name} is in the tree`).to.be.above(0)
      for (const path of installs) expect((await readJson<{version: string}>(`${path}/package.json`)).version, path).to.equal(version)
    }
  })

  it('the pinned cookie and content-disposition work where fastify uses them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mfc-deps-'))
    const app = Fastify()
    try {
      await writeFile(join(dir, 'report.csv'), 'a,b\n')
      await app.register(fastifyStatic, {root: dir, serve: false})
      app.get('/cookie', (request) => ({cookie: request.headers.cookie}))
      app.get('/download', (_request, reply) => reply.download('report.csv', 'stack é.csv'))
      // light-my-request serialises inject()'s cookies with cookie's stringifySetCookie.
      const echoed = await app.inject({url: '/cookie', cookies: {mfc_session: 'a b;c'}})
      expect(echoed.json()).to.deep.equal({cookie: 'mfc_session=a%20b%3Bc'})
      // @fastify/static builds Content-Disposition with content-disposition's create().
      const download = await app.inject({url: '/download'})
      expect(download.statusCode).to.equal(200)
      expect(download.headers['content-disposition']).to.equal('attachment; filename="stack ?.csv"; filename*=UTF-8\'\'stack%20%C3%A9.csv')
      expect(download.body).to.equal('a,b\n')
    } finally {
      await app.close()
      await rm(dir, {recursive: true, force: true})
    }
  })
})
