import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {expect} from 'chai'

import {ROOT} from './cli.js'

const DIR = join(ROOT, 'test', 'fixtures', 'snapshots')

/**
 * Compares text with test/fixtures/snapshots/<name>. A missing snapshot fails (so CI never
 * records one silently); `UPDATE_SNAPSHOTS=1 npx mocha ...` writes it, then review the diff.
 */
export function expectSnapshot(name: string, text: string): void {
  const file = join(DIR, name)
  if (process.env.UPDATE_SNAPSHOTS === '1') {
    mkdirSync(dirname(file), {recursive: true})
    writeFileSync(file, text)
    return
  }

  if (!existsSync(file)) expect.fail(`Snapshot ${file} is missing: run with UPDATE_SNAPSHOTS=1 and review it.`)
  expect(text).to.equal(readFileSync(file, 'utf8'), `snapshot ${name} differs (UPDATE_SNAPSHOTS=1 to accept)`)
}
