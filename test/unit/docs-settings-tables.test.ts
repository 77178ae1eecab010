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

  it('the topic pages carry the generated tables of their groups', () => {
    const regions = (page: string) => [...readFileSync(join(ROOT, page), 'utf8').matchAll(/<!-- BEGIN GENERATED (settings(?::[a-z,]+)?) /g)].map((m) => m[1])
    expect(regions('docs/configuration.md')).to.deep.equal(['settings'])
    expect(regions('docs/acme.md')).to.deep.equal(['settings:acme'])
    expect(regions('docs/monitoring.md')).to.deep.equal(['settings:monitoring'])
    expect(regions('docs/serve-and-security.md')).to.deep.equal(['settings:servers,limits'])
    expect(regions('docs/cluster.md')).to.deep.equal(['settings:storage'])
  })
})
