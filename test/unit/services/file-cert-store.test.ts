import {expect} from 'chai'
import {spawn} from 'node:child_process'
import {lstat, mkdtemp, readFile, readdir, readlink, rm, stat, chmod} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import type {CertBundle} from '../../../src/services/store/cert-store.js'
import {FileCertStore} from '../../../src/services/store/file-cert-store.js'
import {type TestCa, mintBundle, mintCa, pairMatches} from '../../helpers/certs.js'
import {ROOT} from '../../helpers/cli.js'
import {certStoreContract} from '../../contracts/cert-store.js'

const WRITER = join(ROOT, 'test', 'helpers', 'store-writer.ts')

function runWriter(args: string[], bundles: CertBundle[]): Promise<{code: number | null; signal: NodeJS.Signals | null}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WRITER, ...args], {stdio: ['pipe', 'ignore', 'inherit'], cwd: ROOT})
    child.on('close', (code, signal) => resolve({code, signal}))
    child.stdin.end(JSON.stringify(bundles))
  })
}

/** The invariant every crash must keep: live resolves to a complete version whose key matches. */
async function expectValidLive(store: FileCertStore, name: string, allowed: string[]): Promise<string> {
  const live = await store.live(name)
  expect(live, 'a live version').not.to.equal(undefined)
  const [fullchain, key] = await Promise.all([readFile(live!.fullchainFile, 'utf8'), readFile(live!.keyFile, 'utf8')])
  expect(pairMatches(fullchain, key), 'live cert and key match').to.equal(true)
  expect(allowed).to.include(live!.meta.serial)
  expect((await stat(live!.keyFile)).mode & 0o777).to.equal(0o600)
  return live!.meta.serial
}

let contractDir: string | undefined
certStoreContract('FileCertStore', {
  async make() {
    contractDir = await mkdtemp(join(tmpdir(), 'mfc-store-'))
    return new FileCertStore(join(contractDir, 'certs'))
  },
  async dispose() {
    if (contractDir) await rm(contractDir, {force: true, recursive: true})
  },
})

/** What only the file store promises: the on-disk layout, modes, and surviving kill -9 mid-write. */
describe('FileCertStore', function () {
  this.timeout(120_000)
  let dir: string
  let ca: TestCa
  let first: CertBundle
  let second: CertBundle

  before(async () => {
    ca = await mintCa()
    first = await mintBundle(ca, 'example.test')
    second = await mintBundle(ca, 'example.test')
  })
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-store-'))
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))

  it('writes versions with 0600 keys, 0700 directories and a live symlink', async () => {
    const store = new FileCertStore(join(dir, 'certs'))
    const v1 = await store.put('example.test', first)
    const v2 = await store.put('example.test', second)
    expect([v1.version, v2.version]).to.deep.equal(['0001', '0002'])
    expect(await readlink(join(dir, 'certs', 'example.test', 'live'))).to.equal('versions/0002')
    expect((await stat(v2.keyFile)).mode & 0o777).to.equal(0o600)
    expect((await stat(v2.fullchainFile)).mode & 0o777).to.equal(0o644)
    for (const d of [join(dir, 'certs'), join(dir, 'certs', 'example.test', 'versions'), v2.dir]) {
      expect((await stat(d)).mode & 0o777, d).to.equal(0o700)
    }

    expect(await store.versions('example.test')).to.deep.equal(['0001', '0002'])
    expect((await store.live('example.test'))!.meta.serial).to.equal(second.meta.serial)
    expect(await readFile(v2.fullchainFile, 'utf8')).to.equal(second.certPem.trim() + '\n' + second.chainPem.trim() + '\n')
  })

  it('keeps the mode and group an admin gave the live key across a new version', async () => {
    const store = new FileCertStore(join(dir, 'certs'))
    const v1 = await store.put('example.test', first)
    await chmod(v1.keyFile, 0o640)
    const v2 = await store.put('example.test', second)
    expect((await stat(v2.keyFile)).mode & 0o777).to.equal(0o640)
    expect((await stat(v2.keyFile)).gid).to.equal((await stat(v1.keyFile)).gid)
  })

  for (const step of ['version-dir-created', 'files-written', 'version-renamed', 'live-switched']) {
    it(`keeps a valid matching pair live when killed at "${step}" of a renewal`, async () => {
      const root = join(dir, 'certs')
      const store = new FileCertStore(root)
      await store.put('example.test', first)
      const {signal} = await runWriter([root, 'example.test', step], [second])
      expect(signal).to.equal('SIGKILL')
      const serial = await expectValidLive(store, 'example.test', [first.meta.serial, second.meta.serial])
      expect(serial).to.equal(step === 'live-switched' ? second.meta.serial : first.meta.serial)
      // The next write cleans up the crash's leftovers and carries on.
      await store.put('example.test', second)
      expect((await readdir(join(root, 'example.test', 'versions'))).filter((e) => e.startsWith('.tmp-'))).to.deep.equal([])
    })
  }

  it('leaves nothing live (and nothing half-made visible) when the very first write is killed', async () => {
    const root = join(dir, 'certs')
    const {signal} = await runWriter([root, 'example.test', 'files-written'], [first])
    expect(signal).to.equal('SIGKILL')
    const store = new FileCertStore(root)
    expect(await store.live('example.test')).to.equal(undefined)
    expect(await store.list()).to.deep.equal([])
  })

  it('survives being killed at random instants while writing versions in a loop', async () => {
    const root = join(dir, 'certs')
    const store = new FileCertStore(root)
    await store.put('example.test', first)
    for (let round = 0; round < 8; round++) {
      const child = spawn(process.execPath, ['--import', 'tsx', WRITER, root, 'example.test', 'loop'], {stdio: ['pipe', 'pipe', 'inherit'], cwd: ROOT})
      child.stdin.end(JSON.stringify([first, second]))
      await new Promise<void>((resolve) => {
        child.stdout.once('data', () => resolve())
      })
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.random() * 150))
      child.kill('SIGKILL')
      await new Promise((resolve) => child.on('close', resolve))
      await expectValidLive(store, 'example.test', [first.meta.serial, second.meta.serial])
      expect((await lstat(join(root, 'example.test', 'live'))).isSymbolicLink()).to.equal(true)
    }
  })
})
