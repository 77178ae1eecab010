import {expect} from 'chai'
import {readFile, readdir} from 'node:fs/promises'
import {dirname, join, relative, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'
import ts from 'typescript'

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

/** One parsed source file of src/: its path from the repository root, its imports, its syntax tree. */
interface Parsed {
  file: string
  /** Every module specifier: static and type-only imports, re-exports, `import()`, `typeof import()`. */
  imports: string[]
  tree: ts.SourceFile
}

async function parse(file: string): Promise<Parsed> {
  const tree = ts.createSourceFile(file, await readFile(file, 'utf8'), ts.ScriptTarget.Latest, true)
  const imports: string[] = []
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) imports.push(node.moduleSpecifier.text)
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) imports.push(node.arguments[0].text)
    if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) imports.push(node.argument.literal.text)
    ts.forEachChild(node, visit)
  }

  visit(tree)
  return {file: relative(ROOT, file), imports, tree}
}

const parsedIn = async (...dirs: string[]) => Promise.all((await Promise.all(dirs.map((d) => sources(join(ROOT, 'src', d))))).flat().map((f) => parse(f)))

/** The file a relative specifier names (`./x.js` -> `src/.../x.ts`); undefined for packages. */
function target(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined
  return relative(ROOT, resolve(ROOT, dirname(from), spec)).replace(/\.js$/, '.ts')
}

/** The strongly connected components (size > 1, or a self-import) of a graph: Tarjan's algorithm. */
function cycles(graph: Map<string, Set<string>>): string[][] {
  let next = 0
  const index = new Map<string, number>()
  const low = new Map<string, number>()
  const stack: string[] = []
  const found: string[][] = []
  const connect = (v: string): void => {
    index.set(v, next)
    low.set(v, next++)
    stack.push(v)
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        connect(w)
        low.set(v, Math.min(low.get(v)!, low.get(w)!))
      } else if (stack.includes(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!))
    }

    if (low.get(v) === index.get(v)) {
      const component: string[] = []
      let w: string
      do {
        w = stack.pop()!
        component.push(w)
      } while (w !== v)
      if (component.length > 1 || graph.get(v)?.has(v)) found.push(component.sort())
    }
  }

  for (const v of [...graph.keys()].sort()) if (!index.has(v)) connect(v)
  return found
}

/** The file-level import graph of src/ (type-only imports included: they couple files too). */
async function fileGraph(): Promise<Map<string, Set<string>>> {
  const graph = new Map<string, Set<string>>()
  for (const parsed of await parsedIn('')) {
    graph.set(parsed.file, new Set(parsed.imports.map((spec) => target(parsed.file, spec)).filter((t): t is string => t !== undefined)))
  }

  for (const targets of graph.values()) for (const t of targets) if (!graph.has(t)) targets.delete(t)
  return graph
}

const servicePackage = (file: string) => /^src\/services\/([^/]+)\//.exec(file)?.[1]

/**
 * The layering rules of ARCHITECTURE.md, checked on every file: commands -> cli -> services ->
 * lib, terminal libraries only above services, each protocol/crypto library behind one adapter.
 */
describe('architecture', () => {
  it('services and lib never import the command layer or terminal libraries', async () => {
    const offenders: string[] = []
    for (const parsed of await parsedIn('services', 'lib')) {
      for (const spec of parsed.imports) {
        if (/^(@oclif\/|listr2|@inquirer\/|inquirer)/.test(spec) || /^src\/(cli|commands)\//.test(target(parsed.file, spec) ?? '')) offenders.push(`${parsed.file} -> ${spec}`)
      }
    }

    expect(offenders).to.deep.equal([])
  })

  it('lib imports nothing from services', async () => {
    const offenders = (await parsedIn('lib')).flatMap((p) => p.imports.filter((spec) => target(p.file, spec)?.startsWith('src/services/')).map((spec) => `${p.file} -> ${spec}`))
    expect(offenders).to.deep.equal([])
  })

  it('no import cycles between files of src/', async () => {
    expect(cycles(await fileGraph()).map((c) => c.join(' <-> '))).to.deep.equal([])
  })

  it('no import cycles between service packages (src/services/<package>/)', async () => {
    // No exceptions: a role interface lives in the package that consumes it (the Issuer role in
    // certificates/, implemented by issuers/), so implementations depend on it and never back.
    const graph = new Map<string, Set<string>>()
    for (const [file, targets] of await fileGraph()) {
      const from = servicePackage(file)
      if (!from) continue
      for (const t of targets) {
        const to = servicePackage(t)
        if (to && to !== from) graph.set(from, (graph.get(from) ?? new Set()).add(to))
      }
    }

    expect(cycles(graph).map((c) => c.join(' <-> ')), 'package cycles').to.deep.equal([])
  })

  it('command helpers (src/cli) never import commands', async () => {
    const offenders = (await parsedIn('cli')).flatMap((p) => p.imports.filter((spec) => target(p.file, spec)?.startsWith('src/commands/')).map((spec) => `${p.file} -> ${spec}`))
    expect(offenders).to.deep.equal([])
  })

  it('services never print, exit or read process.env (they return, throw and emit events)', async () => {
    const offenders: string[] = []
    for (const parsed of await parsedIn('services')) {
      const visit = (node: ts.Node): void => {
        if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression)) {
          const use = `${node.expression.text}.${node.name.text}`
          if (node.expression.text === 'console' || /^process\.(env|exit|stdout|stderr)$/.test(use)) {
            offenders.push(`${parsed.file}:${parsed.tree.getLineAndCharacterOfPosition(node.getStart()).line + 1} ${use}`)
          }
        }

        ts.forEachChild(node, visit)
      }

      visit(parsed.tree)
    }

    expect(offenders).to.deep.equal([])
  })

  it('each protocol or crypto library is imported by exactly one adapter module, the one named here', async () => {
    const adapters: Record<string, string> = {
      'acme-client': 'src/services/issuers/acme-issuer.ts',
      nodemailer: 'src/services/notifications/email-notifier.ts',
      ws: 'src/services/servers/stream-server.ts',
      undici: 'src/services/http-client.ts',
      'better-sqlite3': 'src/services/data/history.ts',
      pg: 'src/services/storage/postgres.ts',
      mqtt: 'src/services/data/mqtt-subscriber.ts',
      // DNS on the wire (queries, RFC 2136 UPDATE, TSIG) has one home too.
      'node:dgram': 'src/services/acme/dns-wire.ts',
    }
    const importers: Record<string, Set<string>> = {}
    for (const parsed of await parsedIn('')) {
      for (const spec of parsed.imports) {
        const library = Object.keys(adapters).find((name) => spec === name || spec.startsWith(`${name}/`))
        if (library) (importers[library] ??= new Set()).add(parsed.file)
      }
    }

    for (const [library, adapter] of Object.entries(adapters)) {
      expect([...importers[library] ?? []], `importers of ${library}`).to.deep.equal([adapter])
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
})
