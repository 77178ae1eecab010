import {expect} from 'chai'
import {existsSync} from 'node:fs'
import {readFile, readdir} from 'node:fs/promises'
import {dirname, join, relative, resolve} from 'node:path'

import {ROOT} from '../helpers/cli.js'

/** GitHub's heading anchor: lower case, punctuation dropped (not `-` or `_`), spaces to `-`. */
function slug(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
}

/** Text outside fenced code blocks and inline code, where a link is a link. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, (code) => (code.includes('](') ? '' : code))
}

/** Every anchor a file offers, numbered as GitHub numbers repeated headings (`x`, `x-1`, ...). */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const [, heading] of markdown.replace(/^```[\s\S]*?^```/gm, '').matchAll(/^#{1,6} +(.+?) *#*$/gm)) {
    const base = slug(heading)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

/** Relative links of `file` that name a missing file or a missing `#anchor`, as `target (why)`. */
async function brokenLinks(file: string, text: string): Promise<string[]> {
  const broken: string[] = []
  for (const [, target] of prose(text).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto:...: not ours to check
    const [path, anchor] = target.split('#', 2)
    const dest = path === '' ? file : resolve(dirname(file), decodeURIComponent(path))
    if (!existsSync(dest)) {
      broken.push(`${target} (no such file)`)
      continue
    }
    if (anchor === undefined || !dest.endsWith('.md')) continue
    if (!anchors(path === '' ? text : await readFile(dest, 'utf8')).has(anchor)) {
      broken.push(`${target} (no heading #${anchor} in ${relative(ROOT, dest)})`)
    }
  }
  return broken
}

async function docsFiles(): Promise<string[]> {
  const docs = (await readdir(join(ROOT, 'docs'))).filter((f) => f.endsWith('.md')).map((f) => join(ROOT, 'docs', f))
  return [join(ROOT, 'README.md'), ...docs]
}

describe('README and docs/ links', () => {
  it('every relative link and #anchor resolves', async () => {
    const broken: string[] = []
    for (const file of await docsFiles()) {
      for (const link of await brokenLinks(file, await readFile(file, 'utf8'))) broken.push(`${relative(ROOT, file)}: ${link}`)
    }
    expect(broken).to.deep.equal([])
  })

  it('reports a missing file, a missing anchor, and accepts GitHub-style anchors', async () => {
    const file = join(ROOT, 'README.md')
    const text = [
      '# Exit codes', '## `mfc cert monitor [FILE]`', '## Settings (ssl-config.json keys)', '## Exit codes',
      '[a](docs/nope.md) [b](docs/acme.md#no-such-heading) [c](#exit-codes) [d](#mfc-cert-monitor-file)',
      '[e](#settings-ssl-configjson-keys) [f](#exit-codes-1) [g](https://example.org/x.md) [h](#missing)',
      '```', '[in code](docs/also-nope.md)', '```',
    ].join('\n')
    expect(anchors(text)).to.include.members(['exit-codes', 'mfc-cert-monitor-file', 'settings-ssl-configjson-keys', 'exit-codes-1'])
    const broken = await brokenLinks(file, text)
    expect(broken).to.include('docs/nope.md (no such file)')
    expect(broken).to.include('docs/acme.md#no-such-heading (no heading #no-such-heading in docs/acme.md)')
    expect(broken).to.include('#missing (no heading #missing in README.md)')
    expect(broken).to.have.length(3)
  })

  it('the README stays an overview: at most 300 lines', async () => {
    const lines = (await readFile(join(ROOT, 'README.md'), 'utf8')).trimEnd().split('\n').length
    expect(lines).to.be.at.most(300)
  })
})
