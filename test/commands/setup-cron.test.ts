import {spawn} from 'node:child_process'
import {chmodSync, readFileSync, realpathSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {BIN, ROOT, type RunResult, type TempEnv, parseJson, tempEnv} from '../helpers/cli.js'
import {type CronUser, createCronUser} from '../helpers/cron-user.js'

/** Runs the CLI as the cron test user, so `crontab` edits that user's real crontab. */
function runAs(user: CronUser, args: string[], env: NodeJS.ProcessEnv): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {env: {...env, USER: user.name, LOGNAME: user.name}, cwd: ROOT, uid: user.uid, gid: user.gid})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c) => {
      stdout += c
    })
    child.stderr.on('data', (c) => {
      stderr += c
    })
    child.on('error', reject)
    child.on('close', (code) => resolve({code: code ?? -1, stdout, stderr}))
  })
}

describe('mfc setup-cron (real crontab)', () => {
  let temp: TempEnv
  let user: CronUser

  before(async () => {
    temp = await tempEnv('mfc-cron-')
    chmodSync(temp.dir, 0o755)
    user = createCronUser(temp.dir)
  })

  after(async () => {
    user?.cleanup()
    await temp?.cleanup()
  })

  it('installs one tagged line quietly, and a second run changes nothing', async () => {
    user.setCrontab('MAILTO=""\n0 2 * * * /usr/local/bin/mfc-cert-renewal.sh\n0 2 * * * /usr/local/bin/mfc-cert-renewal.sh\n7 7 * * * /bin/true\n')
    const first = await runAs(user, ['setup-cron'], temp.env)
    expect(first.code, first.stderr).to.equal(0)
    expect(first.stderr).to.equal('')
    const installed = user.crontab()
    const lines = installed.trimEnd().split('\n')
    const ours = lines.filter((l) => l.includes('mfc-cert-renewal'))
    expect(ours).to.have.length(1)
    expect(ours[0]).to.match(/^\d{1,2} \d{1,2},\d{1,2} \* \* \* /)
    expect(ours[0]).to.include(`${realpathSync(process.execPath)} ${join(realpathSync(ROOT), 'bin', 'run.js')} cert renew-if-needed >/dev/null # mfc-cert-renewal`)
    expect(ours[0]).to.include(`MFC_CONFIG_DIR=${temp.configDir}`)
    expect(lines).to.include('7 7 * * * /bin/true')
    expect(lines).to.include('MAILTO=""')

    const second = await runAs(user, ['setup-cron'], temp.env)
    expect(second.code).to.equal(0)
    expect(second.stdout + second.stderr).to.equal('')
    expect(user.crontab()).to.equal(installed)
  })

  it('--dry-run prints the crontab and changes nothing; --json reports the action', async () => {
    const before = user.crontab()
    const dry = await runAs(user, ['setup-cron', '--remove', '--dry-run'], temp.env)
    expect(dry.code).to.equal(0)
    expect(dry.stdout).to.equal(before.split('\n').filter((l) => !l.includes('mfc-cert-renewal')).join('\n'))
    expect(user.crontab()).to.equal(before)

    const out = join(temp.dir, 'crontab.txt')
    const json = parseJson<{action: string; output: string}>(await runAs(user, ['setup-cron', '--remove', '--output', out, '--json'], temp.env))
    expect(json.action).to.equal('removed')
    expect(readFileSync(out, 'utf8')).not.to.include('mfc-cert-renewal')
    expect(user.crontab()).to.equal(before)
  })

  it('--remove takes the line out of the real crontab', async () => {
    const result = await runAs(user, ['setup-cron', '--remove'], temp.env)
    expect(result.code).to.equal(0)
    expect(user.crontab()).to.equal('MAILTO=""\n7 7 * * * /bin/true\n')
  })
})
