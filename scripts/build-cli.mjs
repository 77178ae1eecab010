#!/usr/bin/env node
// Bundles the CLI into dist/bundle: index.js (oclif's `execute`, for bin/run.js), one entry per
// command under commands/ (oclif's usual file-tree discovery, so a run loads only its own
// command), and shared chunks holding oclif's core and mfc's modules. The heavy packages are not
// bundled: they stay lazy imports from node_modules. Loading ~160 small CommonJS files of
// @oclif/core and its dependencies one by one was about a third of `mfc cert monitor`'s
// start-up; a few chunks are not.
import {readFileSync, readdirSync, rmSync} from 'node:fs'
import {dirname, join, relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {build} from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const commandsDir = join(root, 'src', 'commands')
const out = join(root, 'dist', 'bundle')

function commandFiles(dir) {
  return readdirSync(dir, {withFileTypes: true}).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return commandFiles(path)
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') ? [path] : []
  })
}

const entryPoints = {index: join(root, 'src', 'cli', 'run.ts')}
for (const file of commandFiles(commandsDir)) entryPoints[join('commands', relative(commandsDir, file).replace(/\.ts$/, ''))] = file
// The SQLite history's writer thread (node:worker_threads) starts from its own entry, found beside
// the chunk holding history.ts (both under chunks/, as in dist/services/data/ for tsc's output).
entryPoints['chunks/history-writer'] = join(root, 'src', 'services', 'data', 'history-writer.ts')

const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
// Our own dependencies stay in node_modules (lazy imports, native code, data files), except
// oclif's core: that is the part worth bundling. typescript/ts-node: oclif's dev-mode helpers.
const external = [...Object.keys(pkg.dependencies ?? {}).filter((name) => name !== '@oclif/core'), 'typescript', 'ts-node']

rmSync(out, {recursive: true, force: true})
await build({
  entryPoints,
  outdir: out,
  chunkNames: 'chunks/[name]-[hash]',
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
