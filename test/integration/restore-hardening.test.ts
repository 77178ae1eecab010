import {execFileSync} from 'node:child_process'
import {existsSync, lstatSync, mkdirSync, promises as fs, readdirSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {areasOf, describeTree, type Manifest} from '../../src/services/backup/areas.js'
import {resolveConfig} from '../../src/lib/config.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

/**
 * A real backup, unpacked with the tar CLI, changed the way an attacker would (links, modes),
 * its manifest rebuilt so that every checksum matches, and packed again with the tar CLI: only
 * the link and mode rules can stop it.
 */
async function tamper(archive: string, work: string, out: string, change: (tree: string) => void | Promise<void>): Promise<void> {
  await fs.rm(work, {recursive: true, force: true})
  mkdirSync(work, {recursive: true})
  execFileSync('tar', ['-xzf', archive, '-C', work])
  await change(work)
  const manifest = JSON.parse(await fs.readFile(join(work, 'manifest.json'), 'utf8')) as Manifest
  const paths = resolveConfig({env: {MFC_CONFIG_DIR: '/x/config', MFC_STATE_DIR: '/x/state'}, isRoot: false}).paths
  const roots = areasOf(paths).map((area) => area.archivePath).filter((root) => existsSync(join(work, root)))
  manifest.files = (await Promise.all(roots.map((root) => describeTree(work, root)))).flat()
  writeFileSync(join(work, 'manifest.json'), JSON.stringify(manifest))
  execFileSync('tar', ['-czf', out, '-C', work, 'manifest.json', 'config', 'state'])
}

describe('mfc restore: links and modes from a hostile archive (issue 16)', function () {
  this.timeout(60_000)
  let temp: TempEnv
  let archive: string

  before(async () => {
    temp = await tempEnv('mfc-restore-')
    for (const args of [['ssl', 'init', '--domain', 'localhost', '--yes'], ['ssl', 'init', '--domain', 'localhost', '--yes', '--force']]) {
      const result = await runCli(args, {env: temp.env})
      expect(result.code, result.stderr).to.equal(0)
    }

    writeFileSync(join(temp.stateDir, 'api-token'), 'x'.repeat(43), {mode: 0o600})
    archive = join(temp.dir, 'good.tar.gz')
    const made = await runCli(['backup', '--output', archive, '--json'], {env: temp.env})
    expect(made.code, made.stderr).to.equal(0)
  })
  after(async () => temp?.cleanup())

  it('refuses a chain of links that leaves its area (l1 -> ., versions -> l1/l1/../../../outside), in --dry-run too, and changes nothing', async () => {
    const evil = join(temp.dir, 'evil.tar.gz')
    const outside = join(temp.dir, 'outside')
    await tamper(archive, join(temp.dir, 'work-links'), evil, async (tree) => {
      const lineage = join(tree, 'state/certs/localhost')
      await fs.rm(join(lineage, 'versions'), {recursive: true})
      symlinkSync('.', join(lineage, 'l1'))
      // Read as text this stays in state/certs; resolved from the real store it is <temp>/outside.
      symlinkSync('l1/l1/../../../outside', join(lineage, 'versions'))
    })
    const listing = execFileSync('tar', ['-tvzf', evil], {encoding: 'utf8'})
    expect(listing).to.include('versions -> l1/l1/../../../outside')

    const before = readdirSync(join(temp.stateDir, 'certs/localhost/versions')).sort()
    for (const args of [['restore', evil, '--dry-run', '--json'], ['restore', evil, '--json']]) {
      const result = await runCli(args, {env: temp.env})
      expect(result.code, args.join(' ')).to.equal(4)
      const error = parseJson<{error: {code: string; message: string}}>(result).error
      expect(error.code).to.equal('MFC_BACKUP_INVALID')
      // live -> versions/0002 goes through the same link: whichever is checked first is named.
      expect(error.message).to.match(/the link "state\/certs\/localhost\/(versions|live)"/)
      expect(error.message).to.include('outside state/certs')
    }

    expect(lstatSync(join(temp.stateDir, 'certs/localhost/versions')).isDirectory()).to.equal(true)
    expect(readdirSync(join(temp.stateDir, 'certs/localhost/versions')).sort()).to.deep.equal(before)
    const again = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes', '--force'], {env: temp.env})
    expect(again.code, again.stderr).to.equal(0)
    expect(existsSync(outside), 'a key was written outside the state directory').to.equal(false)
  })

  it('refuses a link loop and a link through another link to an absolute path', async () => {
    for (const [name, make] of [
      ['loop', (dir: string) => {
        symlinkSync('b', join(dir, 'a'))
        symlinkSync('a', join(dir, 'b'))
      }],
      ['absolute', (dir: string) => {
        symlinkSync('/', join(dir, 'root'))
        symlinkSync('root', join(dir, 'hop'))
      }],
    ] as const) {
      const file = join(temp.dir, `${name}.tar.gz`)
      await tamper(archive, join(temp.dir, `work-${name}`), file, (tree) => make(join(tree, 'config')))
      const result = await runCli(['restore', file, '--dry-run', '--json'], {env: temp.env})
      expect(result.code, `${name}: ${result.stdout}`).to.equal(4)
      expect(parseJson<{error: {code: string}}>(result).error.code).to.equal('MFC_BACKUP_INVALID')
    }
  })

  it('masks setuid/setgid and group/world write, and forces 0600/0700 on keys, the CA, ACME and the token', async () => {
    const modes = join(temp.dir, 'modes.tar.gz')
    await tamper(archive, join(temp.dir, 'work-modes'), modes, async (tree) => {
      writeFileSync(join(tree, 'config/run.sh'), '#!/bin/sh\n')
      await fs.chmod(join(tree, 'config/run.sh'), 0o6777)
      writeFileSync(join(tree, 'config/shared.txt'), 'x')
      await fs.chmod(join(tree, 'config/shared.txt'), 0o666)
      await fs.chmod(join(tree, 'config'), 0o1777)
      await fs.chmod(join(tree, 'state/certs/localhost/versions/0002/privkey.pem'), 0o644)
      await fs.chmod(join(tree, 'state/certs/localhost/versions'), 0o755)
      await fs.chmod(join(tree, 'state/ca/ca.key'), 0o666)
      await fs.chmod(join(tree, 'state/api-token'), 0o644)
    })
    expect(execFileSync('tar', ['-tvzf', modes], {encoding: 'utf8'})).to.match(/rwsrwsrwx .* config\/run\.sh/)
    const result = await runCli(['restore', modes, '--json'], {env: temp.env})
    expect(result.code, result.stderr).to.equal(0)
    const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8)
    expect({
      script: mode(join(temp.configDir, 'run.sh')),
      shared: mode(join(temp.configDir, 'shared.txt')),
      configDir: mode(temp.configDir),
      key: mode(join(temp.stateDir, 'certs/localhost/versions/0002/privkey.pem')),
      versions: mode(join(temp.stateDir, 'certs/localhost/versions')),
      caKey: mode(join(temp.stateDir, 'ca/ca.key')),
      token: mode(join(temp.stateDir, 'api-token')),
    }).to.deep.equal({script: '755', shared: '644', configDir: '755', key: '600', versions: '700', caKey: '600', token: '600'})
    // The restored state is what the manifest now says: a second dry run has nothing to change.
    const dry = parseJson<{changes: unknown[]}>(await runCli(['restore', modes, '--dry-run', '--json'], {env: temp.env}))
    expect(dry.changes).to.deep.equal([])
  })
})
