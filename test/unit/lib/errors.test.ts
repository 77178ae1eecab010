import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {readFile, readdir} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import ts from 'typescript'

import {OTHER_ENVIRONMENT, SETTING_SPECS} from '../../../src/lib/config-schema.js'
import {ConfigError, ERROR_CODES, EXIT, type ErrorCode, type ErrorCodeSpec, MfcError, UsageError, exitCodeOf, toMfcError} from '../../../src/lib/errors.js'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, {recursive: true, withFileTypes: true})
  return entries.filter((e) => e.isFile() && /\.tsx?$/.test(e.name)).map((e) => join(e.parentPath, e.name))
}

/** Every `MFC_*` name written in src/: string literals, template heads and `x.MFC_*` accesses. */
async function mfcNames(): Promise<{name: string; where: string; dynamic: boolean}[]> {
  const found: {name: string; where: string; dynamic: boolean}[] = []
  for (const file of await sources(join(ROOT, 'src'))) {
    const tree = ts.createSourceFile(file, await readFile(file, 'utf8'), ts.ScriptTarget.Latest, true)
    const where = (node: ts.Node) => `${relative(ROOT, file)}:${tree.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
    const visit = (node: ts.Node): void => {
      if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && /^MFC_[A-Z0-9_]+$/.test(node.text)) found.push({name: node.text, where: where(node), dynamic: false})
      if (ts.isTemplateExpression(node) && /^MFC_[A-Z0-9_]*$/.test(node.head.text)) found.push({name: node.getText(), where: where(node), dynamic: true})
      if (ts.isPropertyAccessExpression(node) && /^MFC_[A-Z0-9_]+$/.test(node.name.text)) found.push({name: node.name.text, where: where(node), dynamic: false})
      ts.forEachChild(node, visit)
    }

    visit(tree)
  }

  return found
}

describe('error-code registry', () => {
  const registry = ERROR_CODES as Record<string, ErrorCodeSpec>
  const environment = new Set([...Object.values(SETTING_SPECS).map((spec) => spec.env).filter(Boolean), ...Object.keys(OTHER_ENVIRONMENT)])

  it('every MFC_* name in src/ is a registered error code or a documented environment variable; none is built at run time', async () => {
    const names = await mfcNames()
    expect(names.length).to.be.greaterThan(40)
    const unknown = names.filter(({name, dynamic}) => dynamic || (!(name in registry) && !environment.has(name)))
    expect(unknown.map(({name, where}) => `${where}: ${name}`), 'add them to ERROR_CODES (src/lib/errors.ts) or to the config schema (src/lib/config-schema.ts)').to.deep.equal([])
    // Every registered code is used somewhere (a stale row is as misleading as a missing one),
    // unless it says it is reserved.
    const used = new Set(names.map(({name}) => name))
    expect(Object.keys(registry).filter((code) => !used.has(code) && registry[code].reserved !== true)).to.deep.equal([])
  })

  it('every code has an exit code of EXIT or an HTTP error status, and a meaning', () => {
    const exits = new Set<number>(Object.values(EXIT))
    for (const [code, spec] of Object.entries(registry)) {
      expect(code).to.match(/^MFC_[A-Z0-9_]+$/)
      expect(spec.exit !== undefined || spec.http !== undefined, `${code} has an exit code or an HTTP status`).to.equal(true)
      if (spec.exit !== undefined) expect(exits.has(spec.exit), `${code}: exit ${spec.exit}`).to.equal(true)
      if (spec.http !== undefined) expect(spec.http, code).to.be.within(400, 599)
      expect(spec.meaning.length, code).to.be.greaterThan(10)
    }
  })

  it('docs/errors.md lists every code, its exit code and HTTP status, and nothing else', async () => {
    const doc = await readFile(join(ROOT, 'docs', 'errors.md'), 'utf8')
    const rows = new Map([...doc.matchAll(/^\| `(MFC_[A-Z0-9_]+)` \| ([^|]+) \| ([^|]+) \|/gm)].map((m) => [m[1], [m[2].trim(), m[3].trim()]]))
    expect([...rows.keys()].sort()).to.deep.equal(Object.keys(registry).sort())
    for (const [code, spec] of Object.entries(registry)) {
      const [exit, http] = rows.get(code)!
      expect(exit.split(' ')[0], code).to.equal(spec.exit === undefined ? '-' : String(spec.exit))
      expect(http, code).to.equal(spec.http === undefined ? '-' : String(spec.http))
    }
  })

  it('an error carries the exit code of its registered code, whatever its class; anything else thrown becomes MFC_INTERNAL', () => {
    for (const code of Object.keys(registry) as ErrorCode[]) {
      const error = new MfcError('x', {code})
      expect([error.exitCode, error.oclif.exit], code).to.deep.equal([registry[code].exit ?? EXIT.FAILURE, registry[code].exit ?? EXIT.FAILURE])
    }

    expect(new UsageError('x', {code: 'MFC_USAGE'}).exitCode).to.equal(EXIT.USAGE)
    expect(new ConfigError('x', {code: 'MFC_CONFIG_VALUE'}).exitCode).to.equal(exitCodeOf('MFC_CONFIG_VALUE'))
    // Without the type checker (mocha runs through tsx), an exitCode option is ignored: the registry decides.
    expect(new MfcError('x', {code: 'MFC_PORT_IN_USE', exitCode: 1} as never).exitCode).to.equal(EXIT.NETWORK)
    expect(toMfcError(new Error('boom'))).to.include({code: 'MFC_INTERNAL', exitCode: ERROR_CODES.MFC_INTERNAL.exit})
  })
})

/**
 * Every raise site in src/: `new X(...)` and `super(...)` of the MfcError family. A kind
 * (ConfigError, StoreError...) accepts only codes whose registry row has its exit code, and no
 * site may pass an exit code of its own. The type checker enforces both; this test says where,
 * and holds where nothing type-checks (mocha runs through tsx).
 */
describe('raise sites: one code, one exit code', () => {
  const registry = ERROR_CODES as Record<string, ErrorCodeSpec>

  /** The exit code each error class fixes for its codes (undefined: MfcError, any code). */
  async function kinds(files: string[]): Promise<Map<string, number | undefined>> {
    const kindOf = new Map<string, number | undefined>([['MfcError', undefined]])
    const errors = await readFile(join(ROOT, 'src', 'lib', 'errors.ts'), 'utf8')
    for (const m of errors.matchAll(/class (\w+) extends MfcError \{\n(?:.*\n)*?\s+constructor\(message: string, options: KindOptions<typeof EXIT\.(\w+)>/g)) {
      kindOf.set(m[1], EXIT[m[2] as keyof typeof EXIT])
    }

    const extensions: [string, string][] = []
    for (const file of files) {
      for (const m of (await readFile(file, 'utf8')).matchAll(/class (\w+) extends (\w+)/g)) extensions.push([m[1], m[2]])
    }

    for (let changed = true; changed;) {
      changed = false
      for (const [child, parent] of extensions) {
        if (!kindOf.has(child) && kindOf.has(parent)) {
          kindOf.set(child, kindOf.get(parent))
          changed = true
        }
      }
    }

    return kindOf
  }

  /** The string-literal codes an expression can evaluate to (both arms of a ?:). */
  function literalCodes(node: ts.Expression): string[] {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return [node.text]
    if (ts.isConditionalExpression(node)) return [...literalCodes(node.whenTrue), ...literalCodes(node.whenFalse)]
    if (ts.isParenthesizedExpression(node)) return literalCodes(node.expression)
    return []
  }

  /** What is wrong at each raise site of `text`; `sites` counts the sites looked at. */
  function problems(file: string, text: string, kindOf: Map<string, number | undefined>): {sites: number; problems: string[]} {
    const tree = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
    const found: string[] = []
    let sites = 0
    const check = (node: ts.CallExpression | ts.NewExpression, cls: string) => {
      sites++
      const where = `${file}:${tree.getLineAndCharacterOfPosition(node.getStart()).line + 1}`
      for (const argument of node.arguments ?? []) {
        if (!ts.isObjectLiteralExpression(argument)) continue
        for (const property of argument.properties) {
          const name = property.name?.getText()
          if (name === 'exitCode') found.push(`${where}: ${cls}(...) is given its own exitCode; the code's registry row decides`)
          if (name !== 'code' || !ts.isPropertyAssignment(property)) continue
          for (const code of literalCodes(property.initializer)) {
            const kind = kindOf.get(cls)
            const exit = registry[code]?.exit
            if (kind !== undefined && exit !== kind) found.push(`${where}: ${cls} (exit ${kind}) raised with ${code}, registered with exit ${exit ?? 'none'}`)
          }
        }
      }
    }

    // `parent`: the class the enclosing class extends, which a super(...) call constructs.
    const visit = (node: ts.Node, parent?: string): void => {
      if (ts.isNewExpression(node) && ts.isIdentifier(node.expression) && kindOf.has(node.expression.text)) check(node, node.expression.text)
      if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.SuperKeyword && parent && kindOf.has(parent)) check(node, parent)
      const heritage = ts.isClassDeclaration(node) ? node.heritageClauses?.[0]?.types[0]?.expression.getText() : undefined
      ts.forEachChild(node, (child) => visit(child, heritage ?? parent))
    }

    visit(tree)
    return {sites, problems: found}
  }

  it('the check finds a wrong kind and an own exit code (it can fail)', async () => {
    const kindOf = await kinds([])
    expect(kindOf.get('ConfigError')).to.equal(EXIT.CONFIG)
    expect(kindOf.get('IssuerError')).to.equal(EXIT.ISSUER)
    const sample = `
      new ConfigError('x', {code: 'MFC_USAGE'})
      new IssuerError('x', {code: busy ? 'MFC_ISSUER_FAILED' : 'MFC_LOCKED'})
      new MfcError('x', {code: 'MFC_HOOK_FAILED', exitCode: 5})
      class HookError extends MfcError { constructor() { super('x', {code: 'MFC_USAGE', exitCode: 1}) } }
      new StoreError('x', {code: 'MFC_STORE_IO'})`
    const {sites, problems: found} = problems('sample.ts', sample, kindOf)
    expect(sites).to.equal(5)
    expect(found).to.deep.equal([
      'sample.ts:2: ConfigError (exit 3) raised with MFC_USAGE, registered with exit 2',
      'sample.ts:3: IssuerError (exit 5) raised with MFC_LOCKED, registered with exit 7',
      'sample.ts:4: MfcError(...) is given its own exitCode; the code\'s registry row decides',
      'sample.ts:5: MfcError(...) is given its own exitCode; the code\'s registry row decides',
    ])
  })

  it('no raise site in src/ gives a code another exit code than its registry row', async () => {
    const files = await sources(join(ROOT, 'src'))
    const kindOf = await kinds(files)
    let sites = 0
    const found: string[] = []
    for (const file of files) {
      const result = problems(relative(ROOT, file), await readFile(file, 'utf8'), kindOf)
      sites += result.sites
      found.push(...result.problems)
    }

    expect(sites).to.be.greaterThan(100)
    expect(found).to.deep.equal([])
  })

  it('no command sets process.exitCode to a bare number (EXIT, NAGIOS or a report\'s exitCode say which)', async () => {
    const bare = (await sources(join(ROOT, 'src'))).flatMap((file) => {
      const tree = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
      const found: string[] = []
      const visit = (node: ts.Node): void => {
        if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.EqualsToken && node.left.getText() === 'process.exitCode' && ts.isNumericLiteral(node.right)) {
          found.push(`${relative(ROOT, file)}:${tree.getLineAndCharacterOfPosition(node.getStart()).line + 1}: ${node.getText()}`)
        }

        ts.forEachChild(node, visit)
      }

      visit(tree)
      return found
    })
    expect(bare).to.deep.equal([])
  })
})
