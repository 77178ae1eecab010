import {expect} from 'chai'
import {readFile, readdir} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {pathToFileURL} from 'node:url'

import {ERROR_CODES} from '../../src/lib/errors.js'
import {ROOT, tempEnv} from '../helpers/cli.js'
import {spawn} from 'node:child_process'

function runNode(args: string[], env: NodeJS.ProcessEnv): Promise<{code: number | null}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {env, stdio: 'ignore'})
    child.on('close', (code) => resolve({code}))
  })
}

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => join(e.parentPath, e.name))
}

const importsOf = (text: string) => [...text.matchAll(/(?:from\s+|import\s*\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1])

/**
 * The layering rules of ARCHITECTURE.md, checked on every file: commands -> cli -> services ->
 * lib, terminal libraries only above services, each protocol/crypto library behind one adapter.
 */
describe('architecture', () => {
  it('services and lib never import the command layer or terminal libraries', async () => {
    const offenders: string[] = []
    for (const file of [...await sources(join(ROOT, 'src', 'services')), ...await sources(join(ROOT, 'src', 'lib'))]) {
      for (const spec of importsOf(await readFile(file, 'utf8'))) {
        if (/^(@oclif\/|listr2|@inquirer\/|inquirer)/.test(spec) || /\/(cli|commands)\//.test(spec)) offenders.push(`${relative(ROOT, file)} -> ${spec}`)
      }
    }

    expect(offenders).to.deep.equal([])
  })

  it('lib imports nothing from services', async () => {
    const offenders: string[] = []
    for (const file of await sources(join(ROOT, 'src', 'lib'))) {
      for (const spec of importsOf(await readFile(file, 'utf8'))) if (spec.includes('/services/')) offenders.push(`${relative(ROOT, file)} -> ${spec}`)
    }

    expect(offenders).to.deep.equal([])
  })

  it('each protocol or crypto library is imported by exactly one adapter module', async () => {
    const adapters: Record<string, string> = {
      'acme-client': 'src/services/issuers/acme-issuer.ts',
      nodemailer: 'src/services/notifications/email-notifier.ts',
      ws: 'src/services/servers/stream-server.ts',
      undici: 'src/services/http-client.ts',
      'better-sqlite3': 'src/services/data/history.ts',
      mqtt: 'src/services/data/mqtt-subscriber.ts',
    }
    const importers: Record<string, Set<string>> = {}
    for (const file of await sources(join(ROOT, 'src'))) {
      for (const spec of importsOf(await readFile(file, 'utf8'))) {
        if (spec in adapters) (importers[spec] ??= new Set()).add(relative(ROOT, file))
      }
    }

    for (const [library, files] of Object.entries(importers)) {
      expect([...files], `importers of ${library}`).to.have.length(1)
    }
  })

  it('outbound HTTP from Node goes through the undici adapter, not the global fetch', async () => {
    // The ARI lookup runs on `cert renew-if-needed`'s nothing-due path, where Node's bundled
    // fetch (already in its start-up snapshot) is ~0.1 s cheaper than importing undici.
    // dashboard-builtin.ts holds browser code as strings.
    const allowed = new Set(['src/services/acme/ari.ts', 'src/services/servers/dashboard-builtin.ts'])
    const offenders: string[] = []
    for (const dir of ['services', 'cli', 'commands', 'lib']) {
      for (const file of await sources(join(ROOT, 'src', dir))) {
        if (/\bfetch\s*\(/.test(await readFile(file, 'utf8')) && !allowed.has(relative(ROOT, file))) offenders.push(relative(ROOT, file))
      }
    }

    expect(offenders).to.deep.equal([])
  })

  for (const args of [['--help'], ['--version'], ['cert', 'monitor', '--json']]) {
    it(`\`mfc ${args.join(' ')}\` loads no heavy module (measured with a resolve hook)`, async function () {
      this.timeout(30_000)
      const t = await tempEnv()
      try {
        const log = join(t.dir, 'imports.log')
        const result = await runNode(['--import', join(ROOT, 'test', 'helpers', 'record-imports.mjs'), join(ROOT, 'bin', 'run.js'), ...args], {...t.env, MFC_TEST_IMPORT_LOG: log})
        expect(result.code).to.be.oneOf([0, 3])
        const loaded = (await readFile(log, 'utf8')).split('\n')
        const heavy = loaded.filter((url) => /node_modules\/(acme-client|fastify|@fastify|ws|undici|better-sqlite3|nodemailer|pino|@peculiar|listr2|@inquirer|uplot|mqtt)\//.test(url))
        expect(heavy).to.deep.equal([])
        // The hook saw the real start-up (--version answers before oclif loads, by design), and
        // oclif came from the CLI bundle: one copy, not node_modules' ~160 files as well.
        expect(loaded.some((url) => url.includes(args[0] === '--version' ? 'bin/run.js' : 'dist/bundle/index.js'))).to.equal(true)
        expect(loaded.filter((url) => url.includes('node_modules/@oclif/core/'))).to.deep.equal([])
      } finally {
        await t.cleanup()
      }
    })
  }

  it('bin/dev.js runs the commands from src/ (through tsx), bin/run.js from the bundle', async function () {
    this.timeout(60_000)
    const t = await tempEnv()
    try {
      const loaded = async (bin: string, log: string) => {
        const tsx = bin === 'dev.js' ? ['--import', 'tsx'] : []
        const result = await runNode([...tsx, '--import', join(ROOT, 'test', 'helpers', 'record-imports.mjs'), join(ROOT, 'bin', bin), 'cert', 'monitor', '--json'], {...t.env, MFC_TEST_IMPORT_LOG: log})
        expect(result.code, bin).to.be.oneOf([0, 3])
        return (await readFile(log, 'utf8')).split('\n')
      }

      const dev = await loaded('dev.js', join(t.dir, 'dev.log'))
      expect(dev.some((url) => url.endsWith('/src/commands/cert/monitor.ts'))).to.equal(true)
      const own = (dir: string) => (url: string) => url.startsWith(pathToFileURL(join(ROOT, dir)).href + '/')
      expect(dev.some(own('dist'))).to.equal(false)
      const built = await loaded('run.js', join(t.dir, 'run.log'))
      expect(built.some((url) => url.endsWith('/dist/bundle/commands/cert/monitor.js'))).to.equal(true)
      expect(built.some(own('src'))).to.equal(false)
    } finally {
      await t.cleanup()
    }
  })

  it('every error code is unique, has an exit code and is documented in the README', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8')
    for (const [code, {exit}] of Object.entries(ERROR_CODES)) {
      expect(exit, code).to.be.a('number')
      expect(readme, `README documents ${code}`).to.contain(code)
    }
  })
})
