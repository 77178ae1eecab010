#!/usr/bin/env node
// `mfc --version` is what scripts and health checks call most; answer it without loading
// oclif (~150 ms of module loading), in oclif's own format.
const args = process.argv.slice(2)
if (args.length === 1 && (args[0] === '--version' || args[0] === '-v' || args[0] === 'version')) {
  const {readFileSync} = await import('node:fs')
  const {version} = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
  process.stdout.write(`mfc/${version} ${process.platform}-${process.arch} node-${process.version}\n`)
} else {
  // The CLI bundle (scripts/build-cli.mjs): oclif's core and the commands in one file.
  const {execute} = await import('../dist/bundle/index.js')
  await execute({dir: import.meta.url})
}
