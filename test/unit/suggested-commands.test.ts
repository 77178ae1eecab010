import {expect} from 'chai'
import {readdirSync, readFileSync} from 'node:fs'
import {join, relative} from 'node:path'

import {ROOT} from '../helpers/cli.js'

interface ManifestFlag {name: string; char?: string; allowNo?: boolean; type: 'boolean' | 'option'}
const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, {flags: Record<string, ManifestFlag>}>}

function sources(dir: string): string[] {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return sources(path)
    return /\.ts$/.test(entry.name) ? [path] : []
  })
}

const TOP = new Set(Object.keys(manifest.commands).map((id) => id.split(':')[0]))

/**
 * The `mfc ...` written without backticks in one string ("Create a certificate: mfc ssl init
 * (or ...)"): `mfc`, then words and flags up to the first punctuation, when the first word is a
 * command or topic (so "mfc's" and "the mfc monitoring system" are prose, not commands).
 */
function bareCommands(text: string): string[] {
  const prose = text.replaceAll(/\\?`[^`]*\\?`/g, ' ')
  return [...prose.matchAll(/(?<![\w/.$-])mfc((?: (?:--?[\w-]+(?:=[^\s,;)]+)?|[a-z][\w-]*|VALUE))+)/g)]
    .map((m) => m[1].trim())
    .filter((command) => TOP.has(command.split(' ')[0]))
}

/**
 * Every `mfc ...` a message, suggestion or help text names, as code: the escaped \`mfc ...\`
 * inside template literals, and `mfc ...` inside '...' / "..." strings; and the bare mfc ...
 * of any string (bareCommands).
 */
function suggestedCommands(text: string): string[] {
  const found = [...text.matchAll(/\\`mfc ([^`\\]+)\\`/g)].map((m) => m[1])
  for (const literal of text.matchAll(/'(?:[^'\\\n]|\\.)*'|"(?:[^"\\\n]|\\.)*"/g)) {
    found.push(...[...literal[0].matchAll(/`mfc ([^`]+)`/g)].map((m) => m[1]))
    found.push(...bareCommands(literal[0].replaceAll(/\$\{[^}]*\}/g, 'VALUE')))
  }

  for (const template of text.matchAll(/(?<!\\)`(?:[^`\\]|\\.)*`/g)) found.push(...bareCommands(template[0].slice(1, -1).replaceAll(/\$\{[^}]*\}/g, 'VALUE')))
  return found.map((command) => command.replaceAll(/\$\{[^}]*\}/g, 'VALUE').trim())
}

/** Why `mfc <args>` would not parse against the manifest, or undefined when it does. */
function problem(args: string): string | undefined {
  const words = args.split(/\s+/)
  const end = words.findIndex((word) => /^(\||&&|;|>|2>)$/.test(word))
  const tokens = end === -1 ? words : words.slice(0, end)
  let id: string | undefined
  let used = 0
  for (let n = tokens.length; n > 0 && !id; n--) {
    const candidate = tokens.slice(0, n).join(':')
    if (manifest.commands[candidate]) [id, used] = [candidate, n]
  }

  if (!id) return `no command "${tokens.join(' ')}"`
  const flags = Object.values(manifest.commands[id].flags)
  for (const token of tokens.slice(used)) {
    if (/^--(help|json)$/.test(token) || token === '-h') continue
    if (token.startsWith('--')) {
      const name = token.slice(2).split('=')[0]
      const known = flags.some((flag) => flag.name === name || (flag.allowNo && `no-${flag.name}` === name))
      if (!known) return `mfc ${id.replaceAll(':', ' ')} has no flag --${name}`
    } else if (/^-[a-zA-Z]$/.test(token) && !flags.some((flag) => flag.char === token[1])) {
      return `mfc ${id.replaceAll(':', ' ')} has no flag ${token}`
    }
  }

  return undefined
}

describe('every `mfc ...` that src/ suggests is a command that parses', () => {
  const all = sources(join(ROOT, 'src')).flatMap((file) => suggestedCommands(readFileSync(file, 'utf8')).map((command) => ({file: relative(ROOT, file), command})))

  it('finds the suggestions (the extraction itself works)', () => {
    expect(all.length).to.be.above(30)
    expect(all.map((s) => s.command)).to.include.members(['cert renew', 'serve --daemon', 'status'])
    expect(problem('notify setup --enable')).to.equal('mfc notify setup has no flag --enable')
    expect(problem('cert renw')).to.match(/no command/)
    // Bare ones too: prose around them is not a command.
    expect(bareCommands("Create one: mfc ssl init --force (or fix cert_file). mfc's own CA, the mfc monitoring system, mfc serve is down.")).to.deep.equal(['ssl init --force', 'serve is down'])
    expect(suggestedCommands("throw new Error('Renew it: mfc cert renew --force-it.')")).to.deep.equal(['cert renew --force-it'])
  })

  it('each names an existing command with existing flags', () => {
    // A command named through a placeholder (`mfc ${id} --help`) cannot be checked statically.
    const checked = all.filter(({command}) => !command.startsWith('VALUE'))
    const bad = checked.map(({file, command}) => ({file, command, why: problem(command)})).filter((s) => s.why)
    expect(bad.map((s) => `${s.file}: \`mfc ${s.command}\`: ${s.why}`)).to.deep.equal([])
  })
})
