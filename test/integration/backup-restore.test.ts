import {execFileSync} from 'node:child_process'
import {createHash} from 'node:crypto'
import {existsSync, promises as fs, readFileSync, readdirSync, lstatSync, readlinkSync, statSync, truncateSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import Database from 'better-sqlite3'
import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {bearer, fetchText} from '../helpers/serve.js'
import {type ServeProcess, startServeProcess} from '../helpers/serve-process.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** path -> "mode type content-hash|link-target" for everything under the dirs (the lock excluded). */
function snapshot(...roots: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (path: string) => {
    const stat = lstatSync(path)
    const mode = (stat.mode & 0o7777).toString(8)
    if (stat.isSymbolicLink()) out[path] = `${mode} link ${readlinkSync(path)}`
    else if (stat.isDirectory()) {
      out[path] = `${mode} dir`
      for (const child of readdirSync(path)) if (child !== '.mfc.lock') walk(join(path, child))
    } else out[path] = `${mode} file ${createHash('sha256').update(readFileSync(path)).digest('hex')}`
  }

  for (const root of roots) if (existsSync(root)) walk(root)
  return out
}

describe('mfc backup / restore', function () {
  this.timeout(60_000)
  let temp: TempEnv
  let original: Record<string, string>
  let archive: string
  let encrypted: string
  let passFile: string
  let db: Database.Database

  before(async () => {
    temp = await tempEnv('mfc-backup-')
    for (const args of [['ssl', 'init', '--domain', 'localhost', '--yes'], ['ssl', 'init', '--domain', 'localhost', '--yes', '--force']]) {
      const result = await runCli(args, {env: temp.env})
      expect(result.code, result.stderr).to.equal(0)
    }

    // An admin's chmod on a key, the notification config, an ACME account and the API token.
    await fs.chmod(join(temp.stateDir, 'certs/localhost/versions/0001/privkey.pem'), 0o640)
    writeFileSync(join(temp.configDir, 'notification-config.json'), JSON.stringify({enabled: true, smtp_password: 's3cret'}), {mode: 0o600})
    await fs.mkdir(join(temp.stateDir, 'acme/example'), {recursive: true, mode: 0o700})
    writeFileSync(join(temp.stateDir, 'acme/example/account.json'), '{"kid":"x"}', {mode: 0o600})
    writeFileSync(join(temp.stateDir, 'api-token'), 'tok', {mode: 0o600})

    // A history database with writes still in its WAL, held open like a running serve holds it.
    db = new Database(join(temp.stateDir, 'history.sqlite'))
    db.pragma('journal_mode = WAL')
    db.pragma('wal_autocheckpoint = 0')
    db.exec('CREATE TABLE readings (t INTEGER, v REAL)')
    const insert = db.prepare('INSERT INTO readings VALUES (?, ?)')
    db.transaction(() => {
      for (let i = 0; i < 500; i++) insert.run(i, i / 2)
    })()
    await fs.chmod(join(temp.stateDir, 'history.sqlite'), 0o600)

    passFile = join(temp.dir, 'pass')
    writeFileSync(passFile, 'correct horse battery staple\n', {mode: 0o600})
    archive = join(temp.dir, 'out', 'mfc.tar.gz')
    encrypted = join(temp.dir, 'out', 'mfc.tar.gz.enc')
  })

  after(async () => {
    db?.close()
    await temp?.cleanup()
  })

  const state = () => snapshot(temp.configDir, temp.stateDir)
  const withoutDb = (s: Record<string, string>) => Object.fromEntries(Object.entries(s).filter(([k]) => !k.includes('history.sqlite')))

  it('writes a 0600 archive with a manifest of every entry, and an encrypted one', async () => {
    const result = parseJson<{file: string; areas: string[]; encrypted: boolean}>(await runCli(['backup', '--output', archive, '--json'], {env: temp.env}))
    expect(result.areas).to.deep.equal(['config', 'certs', 'ca', 'acme', 'history', 'api-token'])
    expect(statSync(archive).mode & 0o777).to.equal(0o600)
    const listing = execFileSync('tar', ['-tvzf', archive], {encoding: 'utf8'})
    expect(listing).to.match(/state\/certs\/localhost\/live -> versions\/0002/)
    expect(listing).to.include('state/certs/localhost/versions/0001/privkey.pem')
    expect(listing).to.include('config/notification-config.json')

    const enc = parseJson<{encrypted: boolean}>(await runCli(['backup', '--output', encrypted, '--passphrase-file', passFile, '--json'], {env: temp.env}))
    expect(enc.encrypted).to.equal(true)
    expect(readFileSync(encrypted).subarray(0, 8).toString()).to.equal('MFCENC1\n')
    expect(() => execFileSync('tar', ['-tzf', encrypted], {stdio: 'ignore'})).to.throw()
    db.close()
    original = state()
  })

  it('round trip: restores files, modes, the live link and a readable database snapshot', async () => {
    await fs.rm(join(temp.stateDir, 'certs/localhost/versions/0001'), {recursive: true})
    await fs.rm(join(temp.stateDir, 'ca'), {recursive: true})
    writeFileSync(join(temp.configDir, 'ssl-config.json'), '{"domain":"changed.example"}')
    writeFileSync(join(temp.configDir, 'extra.txt'), 'not in the backup')
    await fs.rm(join(temp.stateDir, 'history.sqlite'))

    const dry = parseJson<{changes: {target: string; change: string}[]; applied: boolean}>(await runCli(['restore', archive, '--dry-run', '--json'], {env: temp.env}))
    expect(dry.applied).to.equal(false)
    const byTarget = Object.fromEntries(dry.changes.map((c) => [c.target, c.change]))
    expect(byTarget[join(temp.configDir, 'ssl-config.json')]).to.equal('changed')
    expect(byTarget[join(temp.configDir, 'extra.txt')]).to.equal('removed')
    expect(byTarget[join(temp.stateDir, 'ca/ca.key')]).to.equal('added')
    expect(existsSync(join(temp.stateDir, 'ca'))).to.equal(false)

    const result = await runCli(['restore', archive], {env: temp.env})
    expect(result.code, result.stderr).to.equal(0)
    const restored = state()
    // Keys come back 0600 whatever the archive says (issue 16): the admin's 0640 is not restored.
    const key = join(temp.stateDir, 'certs/localhost/versions/0001/privkey.pem')
    expect(original[key]).to.match(/^640 file/)
    original = {...original, [key]: original[key].replace(/^640/, '600')}
    expect(withoutDb(restored)).to.deep.equal(withoutDb(original))
    expect(restored[join(temp.stateDir, 'history.sqlite')]).to.match(/^600 file/)
    const copy = new Database(join(temp.stateDir, 'history.sqlite'), {readonly: true})
    expect(copy.prepare('SELECT count(*) AS n FROM readings').get()).to.deep.equal({n: 500})
    copy.close()
    expect(readdirSync(temp.dir).filter((n) => n.includes('.restore-') || n.includes('.old-'))).to.deep.equal([])
  })

  it('restores an encrypted backup with the passphrase and refuses a wrong or missing one', async () => {
    const before = state()
    const wrong = join(temp.dir, 'wrong')
    writeFileSync(wrong, 'not the passphrase\n')
    const bad = await runCli(['restore', encrypted, '--passphrase-file', wrong, '--json'], {env: temp.env})
    expect(bad.code).to.equal(4)
    expect(parseJson<{error: {code: string}}>(bad).error.code).to.equal('MFC_BACKUP_PASSPHRASE')
    const missing = await runCli(['restore', encrypted], {env: temp.env})
    expect(missing.code).to.equal(4)
    expect(missing.stderr).to.include('encrypted and no passphrase')
    expect(state()).to.deep.equal(before)

    writeFileSync(join(temp.configDir, 'ssl-config.json'), '{"domain":"changed.example"}')
    const ok = await runCli(['restore', encrypted, '--passphrase-file', passFile], {env: temp.env})
    expect(ok.code, ok.stderr).to.equal(0)
    expect(withoutDb(state())).to.deep.equal(withoutDb(original))
  })

  it('changes nothing when the archive is truncated or tampered with', async () => {
    writeFileSync(join(temp.configDir, 'marker'), 'current state')
    const before = state()
    const cases: [string, (file: string) => void][] = [
      ['truncated', (file) => truncateSync(file, Math.floor(statSync(file).size / 2))],
      ['truncated-encrypted', (file) => truncateSync(file, statSync(file).size - 5)],
      ['flipped-encrypted', (file) => {
        const bytes = readFileSync(file)
        bytes[bytes.length - 100] ^= 0x01
        writeFileSync(file, bytes)
      }],
      ['tampered-file', (file) => {
        const dir = `${file}.d`
        execFileSync('mkdir', [dir])
        execFileSync('tar', ['-xzf', archive, '-C', dir])
        writeFileSync(join(dir, 'state/ca/ca.key'), 'attacker key')
        execFileSync('tar', ['-czf', file, '-C', dir, 'manifest.json', 'config', 'state'])
      }],
    ]
    const reasons: Record<string, RegExp> = {
      truncated: /truncated or corrupt/, 'truncated-encrypted': /passphrase is wrong, or the file was truncated/,
      'flipped-encrypted': /passphrase is wrong, or the file was truncated or modified/, 'tampered-file': /checksum of "state\/ca\/ca.key" does not match/,
    }
    for (const [name, damage] of cases) {
      const file = join(temp.dir, `${name}.tgz`)
      await fs.copyFile(name.includes('encrypted') ? encrypted : archive, file)
      damage(file)
      const result = await runCli(['restore', file, '--passphrase-file', passFile, '--json'], {env: temp.env})
      expect(result.code, `${name}: ${result.stdout}`).to.equal(4)
      expect(parseJson<{error: {message: string}}>(result).error.message, name).to.match(reasons[name])
      expect(state(), name).to.deep.equal(before)
    }
  })

  it('refuses absolute paths, ".." and links escaping the archive', async () => {
    const before = state()
    const base = join(temp.dir, 'evil-base')
    await fs.mkdir(base)
    execFileSync('tar', ['-xzf', archive, '-C', base])
    const outside = join(temp.dir, 'pwned')
    const cases: [string, string[]][] = [
      ['dotdot', ['-P', '-C', base, 'manifest.json', 'config', '../evil-base/../pwned']],
      ['absolute', ['-P', '-C', base, 'manifest.json', 'config', outside]],
      ['symlink', ['-C', base, 'manifest.json', 'config', 'state/link-out']],
    ]
    writeFileSync(outside, 'x')
    await fs.symlink('../../../../etc', join(base, 'state/link-out'))
    for (const [name, args] of cases) {
      const file = join(temp.dir, `${name}.tgz`)
      execFileSync('tar', ['-czf', file, ...args])
      await fs.rm(outside, {force: true})
      const result = await runCli(['restore', file, '--json'], {env: temp.env})
      expect(result.code, name).to.equal(4)
      expect(parseJson<{error: {message: string}}>(result).error.message, name).to.include('unsafe entry')
      expect(existsSync(outside), name).to.equal(false)
      expect(state(), name).to.deep.equal(before)
      writeFileSync(outside, 'x')
    }
  })
})

describe('mfc restore while a real mfc serve runs', function () {
  this.timeout(60_000)
  let temp: TempEnv
  let serve: ServeProcess | undefined

  before(async () => {
    temp = await tempEnv('mfc-restore-serve-')
  })
  after(async () => {
    await serve?.stop()
    await temp?.cleanup()
  })

  const servedSerial = async () => (await fetchText(`${serve!.url('api')}/health`, {ca: serve!.caPem})).peerCert?.serialNumber

  it('puts the backed-up certificate back and tells serve, which serves it again without a restart', async () => {
    serve = await startServeProcess(temp.env)
    const backedUp = await servedSerial()
    const archive = join(temp.dir, 'before.tgz')
    expect((await runCli(['backup', '--output', archive], {env: temp.env})).code).to.equal(0)
    const reissued = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes', '--force'], {env: temp.env})
    expect(reissued.code, reissued.stderr).to.equal(0)
    while (await servedSerial() === backedUp) await sleep(100)

    const result = parseJson<{reloaded: number | null; applied: boolean}>(await runCli(['restore', archive, '--json'], {env: temp.env}))
    expect(result).to.include({applied: true, reloaded: serve.pid})
    while (await servedSerial() !== backedUp) await sleep(100)
    expect(serve.child.exitCode).to.equal(null)
    expect((await fetchText(`${serve.url('api')}/`, {ca: serve.caPem, headers: bearer()})).status).to.equal(200)
  })
})
