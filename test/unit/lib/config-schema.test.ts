import {expect} from 'chai'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {Ajv2020} from 'ajv/dist/2020.js'

import {SETTING_SPECS, type SettingSpec, configJsonSchema} from '../../../src/lib/config-schema.js'
import {resolveConfig} from '../../../src/lib/config.js'

const ROOT = fileURLToPath(new URL('../../..', import.meta.url))

/** Values each kind must accept and refuse (the schema's rows decide which apply). */
function samples(spec: SettingSpec): {good: unknown[]; bad: unknown[]} {
  const bad: unknown[] = [{}, [{}]]
  const good: unknown[] = spec.default === null && spec.defaultNote ? [] : [spec.default]
  if (typeof spec.kind === 'object') return {good: [...good, ...spec.kind.oneOf], bad: [...bad, 'bogus', 1]}
  switch (spec.kind) {
    case 'string': case 'path': return {good: [...good, 'x'], bad: [...bad, '', '   ', null, 1, true]}
    case 'email': return {good: [...good, '', 'ops@example.org'], bad: [...bad, 'not-an-address', null, 1]}
    case 'nullable-string': return {good: [...good, null, 'x'], bad: [...bad, 1, false]}
    case 'bool': return {good: [true, false], bad: [...bad, 'yes', 1, null]}
    case 'port': return {good: [0, 443, 65_535], bad: [...bad, -1, 65_536, 1.5, '443', null]}
    case 'domains': return {good: [['a.example'], 'a.example'], bad: [...bad, [], [''], null, 1]}
    case 'list': return {good: [[], ['10.0.0.0/8']], bad: [...bad, [''], null, 1]}
    case 'storage-url': return {good: [null, '', 'postgres://mfc@db.example:5432/mfc', 'postgresql://db.example/mfc'], bad: [...bad, 'mysql://db/mfc', 'postgres://mfc:secret@db/mfc', 'postgres://db.example', 1]}
    case 'int': case 'number': {
      const inRange = [spec.min, spec.max].filter((n) => n !== undefined)
      const outside = [...(spec.min === undefined ? [] : [spec.min - 1]), ...(spec.max === undefined ? [] : [spec.max + 1])]
      return {good: [...good, ...inRange], bad: [...bad, ...outside, '5', null, true, ...(spec.kind === 'int' ? [(spec.min ?? 0) + 0.5] : [])]}
    }
  }
}

describe('config schema (src/lib/config-schema.ts)', () => {
  let dir: string
  let env: NodeJS.ProcessEnv
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-config-schema-'))
    env = {HOME: dir, MFC_CONFIG_DIR: dir, MFC_STATE_DIR: join(dir, 'state'), MFC_SSL_CONFIG: join(dir, 'ssl-config.json')}
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))
  const accepts = async (raw: Record<string, unknown>) => {
    await writeFile(env.MFC_SSL_CONFIG!, JSON.stringify(raw))
    try {
      const config = resolveConfig({env, isRoot: false})
      return config.warnings.length === 0
    } catch {
      return false
    }
  }

  it('the validator and the generated JSON Schema accept and refuse the same values, defaults included', async () => {
    const validate = new Ajv2020({strict: true, allErrors: true}).compile(configJsonSchema())
    const disagreements: string[] = []
    for (const [key, spec] of Object.entries(SETTING_SPECS)) {
      const {good, bad} = samples(spec)
      for (const value of [...good, ...bad]) {
        const raw = {[key]: value}
        const byValidator = await accepts(raw)
        const bySchema = validate(raw)
        if (byValidator !== bySchema || byValidator !== good.includes(value)) disagreements.push(`${key}=${JSON.stringify(value)}: mfc ${byValidator}, JSON Schema ${bySchema}, expected ${good.includes(value)}`)
      }
    }

    expect(disagreements).to.deep.equal([])
  })

  it('every environment variable is MFC_-prefixed, used by one key only, and sets its key', () => {
    const envs = Object.values(SETTING_SPECS).map((spec) => spec.env).filter((name) => name !== undefined)
    expect(new Set(envs).size).to.equal(envs.length)
    for (const name of envs) expect(name).to.match(/^MFC_[A-Z0-9_]+$/)
    for (const [key, spec] of Object.entries(SETTING_SPECS)) {
      if (spec.env === undefined || spec.kind !== 'int') continue
      const value = String(spec.max ?? (spec.min ?? 0) + 1)
      const config = resolveConfig({env: {...env, MFC_SSL_CONFIG: undefined, [spec.env]: value}, isRoot: false})
      expect(config.settings[key as keyof typeof config.settings], spec.env).to.equal(Number(value))
      expect(config.sources[key as keyof typeof config.sources], spec.env).to.equal('env')
    }
  })

  it('the committed JSON Schema and docs/configuration.md are what the table generates', async () => {
    expect(JSON.parse(await readFile(join(ROOT, 'ssl-config.schema.json'), 'utf8'))).to.deep.equal(configJsonSchema())
    const doc = await readFile(join(ROOT, 'docs', 'configuration.md'), 'utf8')
    const keys = [...doc.matchAll(/^\| `([a-z_0-9]+)` \|/gm)].map((m) => m[1])
    expect(keys.sort()).to.deep.equal(Object.keys(SETTING_SPECS).sort())
  })
})
