#!/usr/bin/env node
// Bundles the CLI (oclif's core, the commands and everything they import, but not the heavy
// packages, which stay lazy imports from node_modules) into dist/bundle/index.js plus chunks for
// the dynamically imported parts. Loading ~160 small CommonJS files of @oclif/core and its
// dependencies one by one was about a third of `mfc cert monitor`'s start-up; one file is not.
// package.json's oclif.commands points at the bundle's COMMANDS ("explicit" strategy), and
// bin/run.js takes `execute` from it, so commands and the runner share one copy of oclif.
import {readFileSync, readdirSync, rmSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const commandsDir = join(root, 'src', 'commands')
const out = join(root, 'dist', 'bundle')

/** Command id (topic:name, as oclif derives it from the file tree) to source file. */
function commandFiles(dir) {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return commandFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

const commands = commandFiles(commandsDir).sort().map((file, index) => {
  const id = relative(commandsDir, file).replace(/\.ts$/, '').replace(/\/index$/, '').split('/').join(':')
  return {id, name: `C${index}`, file: './' + relative(root, file).split('\\').join('/')}
})
const entry = [
  "export {execute} from '@oclif/core'",
  ...commands.map((c) => `import ${c.name} from '${c.file}'`),
  `export const COMMANDS = {${commands.map((c) => `'${c.id}': ${c.name}`).join(', ')}}`,
].join('\n')

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
// Our own dependencies stay in node_modules (lazy imports, native code, data files), except
// oclif's core: that is the part worth bundling. typescript/ts-node: oclif's dev-mode helpers.
const external = [...Object.keys(pkg.dependencies ?? {}).filter((name) => name !== '@oclif/core'), 'typescript', 'ts-node']

rmSync(out, {recursive: true, force: true})
await build({
  stdin: {contents: entry, resolveDir: root, sourcefile: 'mfc-cli.ts', loader: 'ts'},
  outdir: out,
  entryNames: 'index',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  sourcemap: true,
  legalComments: 'none',
  // oclif's CommonJS code calls require() for JSON and lazy modules: give the ESM bundle one.
  banner: {js: "import {createRequire as mfcCreateRequire} from 'node:module'; const require = mfcCreateRequire(import.meta.url);"},
  logLevel: 'warning',
})
