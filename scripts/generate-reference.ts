/**
 * Writes the generated references from their one source each:
 *   src/lib/config-schema.ts -> the settings tables of docs/configuration.md (every group and
 *                               the environment) and of the topic pages (one or more groups),
 *                               and ssl-config.schema.json (JSON Schema for editors)
 *   src/lib/errors.ts        -> the exit-code tables (README.md, docs/errors.md) and the
 *                               error-code table of docs/errors.md
 * Only the regions between the GENERATED markers of README.md and docs/*.md are rewritten; the
 * prose around them is hand-written. A region is named by its opening marker:
 *   <!-- BEGIN GENERATED settings ...-->            every group + other environment variables
 *   <!-- BEGIN GENERATED settings:acme,tls ...-->   the keys of those groups (GROUPS in the schema)
 *   <!-- BEGIN GENERATED exit-codes ...-->          EXIT with its meanings
 *   <!-- BEGIN GENERATED error-codes ...-->         ERROR_CODES
 * and ends at the next <!-- END GENERATED -->. Run by `npm run generate`; `npm run
 * check:generated` fails when the committed files differ from what this writes.
 */
import {readFileSync, readdirSync, writeFileSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

import {GROUPS, OTHER_ENVIRONMENT, SETTING_SPECS, configJsonSchema, describeKind} from '../src/lib/config-schema.js'
import {ERROR_CODES, EXIT, EXIT_MEANING, type ErrorCodeSpec, type ExitCode} from '../src/lib/errors.js'

const root = (path: string) => fileURLToPath(new URL(`../${path}`, import.meta.url))
const REGION = /(<!-- BEGIN GENERATED ([a-z-]+)(?::([a-z,]+))? [^\n]*?-->)\n[\s\S]*?(<!-- END GENERATED -->)/g
const cell = (text: string) => text.replaceAll('|', '\\|').replaceAll('\n', ' ')
const value = (v: unknown) => `\`${JSON.stringify(v)}\``
type Group = keyof typeof GROUPS

function groupTable(group: Group): string[] {
  const out = ['| key | kind | default | environment | meaning |', '|---|---|---|---|---|']
  for (const [key, spec] of Object.entries(SETTING_SPECS)) {
    if (spec.group !== group) continue
    out.push(`| \`${key}\` | ${cell(describeKind(spec))} | ${cell(spec.defaultNote ?? value(spec.default))} | ${spec.env ? `\`${spec.env}\`` : '-'} | ${cell(spec.description)} |`)
  }

  return out
}

function allSettings(): string {
  const out: string[] = []
  for (const [group, title] of Object.entries(GROUPS)) out.push(`### ${title}`, '', ...groupTable(group as Group), '')
  out.push('### Other environment variables', '', '| variable | meaning |', '|---|---|')
  for (const [name, meaning] of Object.entries(OTHER_ENVIRONMENT)) out.push(`| \`${name}\` | ${cell(meaning)} |`)
  return out.join('\n')
}

/** One table for several groups: the rows of each, in the order given. */
function someSettings(groups: string, where: string): string {
  const names = groups.split(',')
  const unknown = names.filter((name) => !(name in GROUPS))
  if (unknown.length > 0) throw new Error(`${where}: no settings group ${unknown.join(', ')} (known: ${Object.keys(GROUPS).join(', ')})`)
  const rows = names.flatMap((name) => groupTable(name as Group).slice(2))
  return [...groupTable(names[0] as Group).slice(0, 2), ...rows].join('\n')
}

function exitTable(): string {
  const out = ['| exit | meaning |', '|---|---|']
  for (const code of Object.values(EXIT) as ExitCode[]) out.push(`| ${code} | ${cell(EXIT_MEANING[code])} |`)
  return out.join('\n')
}

function errorTable(): string {
  const exitName = Object.fromEntries(Object.entries(EXIT).map(([name, code]) => [code, name]))
  const out = ['| code | exit | HTTP | meaning |', '|---|---|---|---|']
  for (const [code, spec] of Object.entries(ERROR_CODES) as [string, ErrorCodeSpec][]) {
    const exit = spec.exit === undefined ? '-' : `${spec.exit} (${exitName[spec.exit]})`
    out.push(`| \`${code}\` | ${exit} | ${spec.http ?? '-'} | ${cell(spec.meaning)} |`)
  }

  return out.join('\n')
}

function region(name: string, argument: string | undefined, where: string): string {
  if (name === 'settings') return argument === undefined ? allSettings() : someSettings(argument, where)
  if (name === 'exit-codes' && argument === undefined) return exitTable()
  if (name === 'error-codes' && argument === undefined) return errorTable()
  throw new Error(`${where}: unknown generated region "${name}${argument === undefined ? '' : `:${argument}`}"`)
}

/** Rewrites every generated region of `path`; returns how many it had. */
function fill(path: string): number {
  const text = readFileSync(root(path), 'utf8')
  let regions = 0
  const next = text.replaceAll(REGION, (_match, begin: string, name: string, argument: string | undefined, end: string) => {
    regions++
    return `${begin}\n\n${region(name, argument, path)}\n\n${end}`
  })
  const opened = text.split('<!-- BEGIN GENERATED').length - 1
  if (opened !== regions) throw new Error(`${path}: ${opened} GENERATED markers, ${regions} well-formed regions (each needs a name and an END)`)
  if (next !== text) writeFileSync(root(path), next)
  return regions
}

const pages = ['README.md', ...readdirSync(root('docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`)]
const filled = pages.filter((page) => fill(page) > 0)
for (const required of ['README.md', 'docs/configuration.md', 'docs/errors.md']) {
  if (!filled.includes(required)) throw new Error(`${required} lost its generated region`)
}

writeFileSync(root('ssl-config.schema.json'), JSON.stringify(configJsonSchema(), null, 2) + '\n')
