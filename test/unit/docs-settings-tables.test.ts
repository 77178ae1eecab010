import {expect} from 'chai'
import {readFileSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {ROOT} from '../helpers/cli.js'
import {SETTING_SPECS} from '../../src/lib/config-schema.js'

const KEYS = new Set(Object.keys(SETTING_SPECS))

/** The text of `markdown` outside its GENERATED regions (scripts/generate-reference.ts). */
function handWritten(markdown: string): string {
  return markdown.replaceAll(/<!-- BEGIN GENERATED [\s\S]*?<!-- END GENERATED -->/g, '')
}

/**
 * The table rows of `markdown` that describe settings: a first cell made of backticked config
 * keys only (`key` or `a`, `b`). Rows that merely mention a key further right (a doctor check
 * reading `key_file`) are prose, not a second settings table.
 */
function settingRows(markdown: string): string[] {
  return [...handWritten(markdown).matchAll(/^\|([^|\n]*)\|.*$/gm)].filter(([, first]) => {
    const names = first.split(',').map((name) => name.trim())
    return names.every((name) => /^`[a-z0-9_]+`$/.test(name) && KEYS.has(name.slice(1, -1)))
  }).map(([row]) => row)
}

const UNIT: Record<string, number> = {KiB: 1024, MiB: 1024 ** 2, ms: 0.001, s: 1, min: 60, h: 3600}

/**
 * Defaults that prose states beside a key ("`session_ttl_seconds` (3600)", "`body_limit_bytes`
 * (1 MiB; 413)"), as [key, stated value in the key's own unit, schema default].
 */
function statedDefaults(markdown: string): [string, number | string, unknown][] {
  const found: [string, number | string, unknown][] = []
  // "PostgreSQL's `max_connections` (100)" is another program's setting of the same name.
  for (const [, key, number, unit, word] of handWritten(markdown).matchAll(/(?<!'s )`([a-z_]+)` \((?:default:? )?(?:(-?\d+(?:\.\d+)?) ?(KiB|MiB|ms|s|min|h)?|(true|false|null))[;,) ]/g)) {
    if (!KEYS.has(key)) continue
    const spec = SETTING_SPECS[key as keyof typeof SETTING_SPECS]
    if (word !== undefined) {
      found.push([key, word, String(spec.default)])
      continue
    }

    // A time in the unit the key's name says (…_ms, …_seconds, …_s); bytes as they are.
    const scale = unit === undefined ? 1 : key.endsWith('_ms') ? UNIT[unit] * 1000 : UNIT[unit]
    found.push([key, Number(number) * scale, spec.default])
  }

  return found
}

const pages = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`)]

/** Settings are documented in one place: tables generated from src/lib/config-schema.ts. */
describe('docs: no hand-written settings tables', () => {
  it('the check finds a hand-written settings row, and ignores generated ones (it can fail)', () => {
    const sample = ['| key | meaning |', '|---|---|', '| `staging` | use staging |', '| `pre_hook`, `post_hook` | hooks |', '| `dns` | a doctor check |',
      '<!-- BEGIN GENERATED settings:acme by x -->', '| `webroot` | generated |', '<!-- END GENERATED -->'].join('\n')
    expect(settingRows(sample)).to.deep.equal(['| `staging` | use staging |', '| `pre_hook`, `post_hook` | hooks |'])
  })

  it('README.md and docs/*.md name config keys in table rows only inside GENERATED regions', () => {
    const found = pages.flatMap((page) => settingRows(readFileSync(join(ROOT, page), 'utf8')).map((row) => `${page}: ${row.slice(0, 80)}`))
    expect(found, 'replace the table with <!-- BEGIN GENERATED settings:<group> ... --> (npm run generate) or a link to docs/configuration.md').to.deep.equal([])
  })

  it('a default stated in prose beside a key is the schema\'s default (units converted)', () => {
    expect(statedDefaults('`body_limit_bytes` (1 MiB; 413), `headers_timeout_ms` (10 s) and `session_ttl_seconds` (3600) and `enable_hsts` (false), PostgreSQL\'s `max_connections` (100)')).to.deep.equal([
      ['body_limit_bytes', 1_048_576, 1_048_576], ['headers_timeout_ms', 10_000, 10_000], ['session_ttl_seconds', 3600, 3600], ['enable_hsts', 'false', 'true'],
    ])
    const stated = pages.flatMap((page) => statedDefaults(readFileSync(join(ROOT, page), 'utf8')).map((entry) => [page, ...entry] as const))
    expect(stated.length, 'the docs state some defaults in prose').to.be.above(5)
    const stale = stated.filter(([, , value, actual]) => value !== actual).map(([page, key, value, actual]) => `${page}: ${key} stated ${value}, default ${String(actual)}`)
    expect(stale, 'fix the prose, or drop the value and link to docs/configuration.md').to.deep.equal([])
  })

  it('the topic pages carry the generated tables of their groups', () => {
    const regions = (page: string) => [...readFileSync(join(ROOT, page), 'utf8').matchAll(/<!-- BEGIN GENERATED (settings(?::[a-z,]+)?) /g)].map((m) => m[1])
    expect(regions('docs/configuration.md')).to.deep.equal(['settings'])
    expect(regions('docs/acme.md')).to.deep.equal(['settings:acme'])
    expect(regions('docs/monitoring.md')).to.deep.equal(['settings:monitoring'])
    expect(regions('docs/serve-and-security.md')).to.deep.equal(['settings:servers,limits'])
    expect(regions('docs/cluster.md')).to.deep.equal(['settings:storage'])
  })
})
