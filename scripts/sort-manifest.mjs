// `oclif manifest` lists commands in the order its parallel directory walk finds them, which
// changes from build to build. Sorting them makes the committed manifest reproducible, so CI
// can tell a stale manifest from a reordered one.
import {readFileSync, writeFileSync} from 'node:fs'

const file = new URL('../oclif.manifest.json', import.meta.url)
const manifest = JSON.parse(readFileSync(file, 'utf8'))
manifest.commands = Object.fromEntries(Object.entries(manifest.commands).sort(([a], [b]) => a.localeCompare(b)))
writeFileSync(file, JSON.stringify(manifest, null, 2) + '\n')
