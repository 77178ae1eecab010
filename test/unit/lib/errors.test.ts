import {expect} from 'chai'
import {readFile, readdir} from 'node:fs/promises'
import {join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'
import ts from 'typescript'

import {OTHER_ENVIRONMENT, SETTING_SPECS} from '../../../src/lib/config-schema.js'
import {ERROR_CODES, EXIT, type ErrorCodeSpec, MfcError, toMfcError} from '../../../src/lib/errors.js'

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

  it('an error carries the exit code of its registered code; anything else thrown becomes MFC_INTERNAL', () => {
    const error = new MfcError('x', {code: 'MFC_USAGE', exitCode: ERROR_CODES.MFC_USAGE.exit})
    expect(error.oclif.exit).to.equal(EXIT.USAGE)
    expect(toMfcError(new Error('boom'))).to.include({code: 'MFC_INTERNAL', exitCode: ERROR_CODES.MFC_INTERNAL.exit})
  })
})
