import {expect} from 'chai'
import {createHash} from 'node:crypto'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {humanDuration, statusWord} from '../../src/cli/render.js'
import {ROOT, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {TmuxSession} from '../helpers/tty.js'

const BIN = `${process.execPath} ${join(ROOT, 'bin', 'run.js')}`

describe('output for people: colours, durations, live paths, backup overwrite, stable cron time, listr2 fallback', function () {
  this.timeout(120_000)
  let temp: TempEnv

  before(async () => {
    temp = await tempEnv('mfc-output-')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env: temp.env})
    expect(init.code, init.stderr).to.equal(0)
    // live/ paths, never versions/NNNN, in what ssl init prints.
    expect(init.stdout).to.include(join(temp.stateDir, 'certs', 'localhost', 'live', 'chain.pem'))
    expect(init.stdout).not.to.match(/versions\/\d{4}/)
  })
  after(() => temp.cleanup())

  it('human durations', () => {
    expect([humanDuration(45), humanDuration(725), humanDuration(11_520), humanDuration(3 * 3600), humanDuration(4 * 86_400 + 7300)])
      .to.deep.equal(['45 s', '12 min 5 s', '3 h 12 min', '3 h', '4 d 2 h'])
  })

  it('status words: coloured on a terminal, plain with NO_COLOR or off a terminal', () => {
    expect(statusWord('CRITICAL', {isTTY: true}, {})).to.equal('\u001B[31mCRITICAL\u001B[39m')
    expect(statusWord('CRITICAL', {isTTY: true}, {NO_COLOR: '1'})).to.equal('CRITICAL')
    expect(statusWord('CRITICAL', {isTTY: false}, {})).to.equal('CRITICAL')
  })

  it('on a real terminal (tmux) `cert monitor` colours OK green; NO_COLOR=1 and a pipe do not', async () => {
    const coloured = new TmuxSession(`${BIN} cert monitor`, {...temp.env, TERM: 'xterm-256color'})
    const plain = new TmuxSession(`${BIN} cert monitor`, {...temp.env, TERM: 'xterm-256color', NO_COLOR: '1'})
    try {
      expect(await coloured.exitCode()).to.equal(0)
      expect(coloured.screen(true)).to.include('\u001B[32mOK\u001B[39m  localhost')
      expect(await plain.exitCode()).to.equal(0)
      expect(plain.screen(true)).to.match(/^OK\s+localhost/m)
    } finally {
      coloured.close()
      plain.close()
    }

    const piped = await runCli(['cert', 'monitor'], {env: temp.env})
    expect(piped.stdout).to.match(/^OK {2}localhost/m)
    expect(piped.stdout).not.to.include('\u001B[')
  })

  it('listr2 falls back to plain step lines on a 0-column terminal', async () => {
    const tty = new TmuxSession(`sh -c 'stty cols 0 && exec ${BIN} ssl init --domain localhost --force --yes'`, {...temp.env, TERM: 'xterm-256color'})
    try {
      expect(await tty.exitCode()).to.equal(0)
      expect(tty.screen()).to.match(/^ {2}- Signing a certificate for localhost/m)
    } finally {
      tty.close()
    }
  })

  it('backup never overwrites without --force, and says to copy the archive off the machine', async () => {
    const archive = join(temp.dir, 'mfc.tar.gz')
    const first = await runCli(['backup', '--output', archive], {env: temp.env})
    expect(first.code, first.stderr).to.equal(0)
    expect(first.stdout).to.include('Copy it off this machine')
    const sha = () => createHash('sha256').update(readFileSync(archive)).digest('hex')
    const original = sha()
    for (const json of [false, true]) {
      const again = await runCli(['backup', '--output', archive, ...(json ? ['--json'] : [])], {env: temp.env})
      expect(again.code).to.equal(4)
      if (json) expect(parseJson<{error: {code: string}}>(again).error.code).to.equal('MFC_BACKUP_EXISTS')
      else expect(again.stderr).to.include(`${archive} already exists`).and.to.include('--force')
    }

    expect(sha()).to.equal(original)
    writeFileSync(join(temp.configDir, 'allowed-ips.txt'), '127.0.0.1\n')
    const forced = await runCli(['backup', '--output', archive, '--force'], {env: temp.env})
    expect(forced.code, forced.stderr).to.equal(0)
    expect(sha()).not.to.equal(original)
  })

  it('setup-cron --dry-run shows the same time on every run (stable per host)', async () => {
    const line = async () => (await runCli(['setup-cron', '--dry-run'], {env: temp.env})).stdout.split('\n').find((l) => l.includes('# mfc-cert-renewal'))
    const [a, b] = [await line(), await line()]
    expect(a).to.match(/^\d{1,2} \d{1,2},\d{1,2} \* \* \* /)
    expect(b).to.equal(a)
  })
})
