#!/usr/bin/env node
// Bundles the dashboard SPA (src/dashboard) into dist/dashboard: app.js (with uPlot from
// node_modules), app.css (with uPlot's CSS), index.html, plus .gz/.br siblings for servers that
// serve pre-compressed files. No CDN, no inline script or style: the strict CSP holds.
import {execFileSync} from 'node:child_process'
import {copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'
import {fileURLToPath} from 'node:url'
import {brotliCompressSync, constants, gzipSync} from 'node:zlib'

import {build} from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const src = join(root, 'src', 'dashboard')
const out = join(root, 'dist', 'dashboard')

execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(src, 'tsconfig.json')], {stdio: 'inherit'})
rmSync(out, {recursive: true, force: true})
mkdirSync(out, {recursive: true})
await build({
  entryPoints: [join(src, 'app.ts'), join(src, 'app.css')],
  outdir: out,
  bundle: true,
  minify: true,
  format: 'iife',
  target: ['chrome110', 'firefox110', 'safari16'],
  legalComments: 'none',
  logLevel: 'warning',
})
copyFileSync(join(src, 'index.html'), join(out, 'index.html'))

let raw = 0
let gz = 0
for (const name of readdirSync(out)) {
  const data = readFileSync(join(out, name))
  raw += data.length
  const zipped = gzipSync(data, {level: 9})
  gz += zipped.length
  writeFileSync(join(out, `${name}.gz`), zipped)
  writeFileSync(join(out, `${name}.br`), brotliCompressSync(data, {params: {[constants.BROTLI_PARAM_QUALITY]: 11}}))
}

console.log(`dashboard: ${(raw / 1024).toFixed(1)} KiB, ${(gz / 1024).toFixed(1)} KiB gzipped -> ${out}`)
