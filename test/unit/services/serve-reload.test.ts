import {type ChildProcess, spawn} from 'node:child_process'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {expect} from 'chai'

import {runningServe, signalServeReload} from '../../../src/services/daemon/reload.js'

describe('signalServeReload (the one way to tell serve to reload)', () => {
  let dir: string
  let stranger: ChildProcess

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mfc-reload-'))
    stranger = spawn('sleep', ['60'], {stdio: 'ignore'})
  })
  after(async () => {
    stranger.kill('SIGKILL')
    await rm(dir, {recursive: true, force: true})
  })

  const pidFile = () => join(dir, 'mfc.pid')
  const record = (pid: number, supervisorPid: number | null = null) => JSON.stringify({pid, supervisorPid, startedAt: '', workerStartedAt: '', restarts: 0, ports: {api: 1, dashboard: 2, streamer: 3, http: null}, ready: true, version: '', logFile: ''})

  it('does nothing without a pid file, or with one it cannot read', async () => {
    expect(await signalServeReload(join(dir, 'missing.pid'))).to.equal(undefined)
    await writeFile(pidFile(), '{"pid": "x"')
    expect(await signalServeReload(pidFile())).to.equal(undefined)
    await writeFile(pidFile(), '12345')
    expect(await runningServe(pidFile())).to.equal(undefined)
  })

  it('never signals a live process that is not an mfc serve (a pid reused after a reboot)', async () => {
    await writeFile(pidFile(), record(stranger.pid!))
    expect(await signalServeReload(pidFile())).to.equal(undefined)
    await new Promise((resolve) => setTimeout(resolve, 50))
    // SIGHUP's default action would have ended `sleep`.
    expect(stranger.exitCode).to.equal(null)
    expect(stranger.signalCode).to.equal(null)
  })

  it('never signals the calling process itself', async () => {
    await writeFile(pidFile(), record(process.pid))
    expect(await runningServe(pidFile())).to.equal(undefined)
  })
})
