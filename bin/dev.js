#!/usr/bin/env -S node --import tsx
// Runs the commands from src/ through tsx, without a build (bin/run.js runs the built bundle
// named by oclif.commands in package.json): the root plugin reads src/commands and ignores the
// manifest, which describes the bundle.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {Config, Plugin, flush, handle, run} from '@oclif/core'

process.env.NODE_ENV = 'development'
const root = fileURLToPath(new URL('..', import.meta.url))
const pjson = JSON.parse(readFileSync(new URL('package.json', new URL('..', import.meta.url)), 'utf8'))
pjson.oclif.commands = './src/commands'
const plugins = [new Plugin({root, isRoot: true, pjson, ignoreManifest: true})]
for (const name of pjson.oclif.plugins ?? []) plugins.push(new Plugin({root: join(root, 'node_modules', name), type: 'core'}))
await Promise.all(plugins.map((plugin) => plugin.load()))
const config = await Config.load({root, plugins: new Map(plugins.map((plugin) => [plugin.name, plugin]))})
await run(process.argv.slice(2), config).then(() => flush()).catch((error) => handle(error))
