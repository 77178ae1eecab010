import {expect} from 'chai'
import {spawn, spawnSync} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {hostname, tmpdir} from 'node:os'
import {join} from 'node:path'

import {EXIT, LockError} from '../../../src/lib/errors.js'
import {acquireLock, withLock} from '../../../src/lib/lock.js'

describe('lock', () => {
  let dir: string
  let file: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-lock-'))
    file = join(dir, 'state', '.mfc.lock')
  })
  afterEach(() => rm(dir, {force: true, recursive: true}))

  it('records the owner and releases idempotently', async () => {
    const lock = await acquireLock(file, 'cert renew')
    const owner = JSON.parse(await readFile(file, 'utf8'))
    expect(owner).to.include({pid: process.pid, command: 'cert renew', host: hostname()})
    await lock.release()
    await lock.release()
    const again = await acquireLock(file, 'cert renew')
    await again.release()
  })

  it('fails a second writer at once with a lock error naming the holder', async () => {
    const lock = await acquireLock(file, 'ssl init')
    try {
      const started = Date.now()
      let caught: unknown
      try {
        await acquireLock(file, 'cert renew')
      } catch (error) {
        caught = error
      }

      expect(caught).to.be.instanceOf(LockError)
      expect((caught as LockError).exitCode).to.equal(EXIT.LOCK)
      expect((caught as LockError).message).to.contain(`pid ${process.pid}`).and.contain('"ssl init"').and.contain(file)
      expect(Date.now() - started).to.be.lessThan(5000) // "at once": no waiting for the holder
    } finally {
      await lock.release()
    }
  })

  it('is held against another process until released', async () => {
    const child = spawn(process.execPath, ['-e', `
      const fs = require('fs'); fs.mkdirSync(${JSON.stringify(join(dir, 'state'))}, {recursive: true});
      fs.writeFileSync(${JSON.stringify(file)}, JSON.stringify({pid: process.pid, host: require('os').hostname(), command: 'other', since: 'now'}));
      console.log('held'); setTimeout(() => {}, 60000)`], {stdio: ['ignore', 'pipe', 'inherit']})
    await new Promise((resolve) => child.stdout.once('data', resolve))
    try {
      await acquireLock(file, 'mine').then(() => expect.fail('took a held lock'), (error) => expect(error).to.be.instanceOf(LockError))
    } finally {
      child.kill('SIGKILL')
      await new Promise((resolve) => child.on('close', resolve))
    }

    // Its owner died without releasing: the stale lock is reclaimed.
    await withLock(file, 'mine', async () => {
      expect(JSON.parse(await readFile(file, 'utf8')).pid).to.equal(process.pid)
    })
  })

  it('reclaims a lock whose pid is dead (a crash or a reboot)', async () => {
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString()
    await acquireLock(file, 'x').then((l) => l.release())
    await writeFile(file, JSON.stringify({pid: Number(dead), host: hostname(), command: 'crashed', since: '2026-01-01T00:00:00Z'}))
    const lock = await acquireLock(file, 'after crash')
    expect(JSON.parse(await readFile(file, 'utf8')).command).to.equal('after crash')
    await lock.release()
  })

  it('releases the lock when the work throws', async () => {
    await withLock(file, 'boom', async () => {
      throw new Error('boom')
    }).catch(() => {})
    const lock = await acquireLock(file, 'next')
    await lock.release()
  })
})
