import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {resolveConfig} from '../../src/lib/config.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type SmtpPeer, type WebhookBody, type WebhookPeer, startSmtp, startWebhook} from '../helpers/notify-peers.js'
import {TEST_TOKEN, bearer, fetchText} from '../helpers/serve.js'
import {servedSerial} from '../helpers/serve-process.js'
import {type MintedCerts, freePort, mintCerts} from '../helpers/tls-peers.js'

interface Renewal {
  outcomes: {name: string; status: string; version: string}[]
  reloadedPid: number | null
  notifications: {channel: string; event: string; ok: boolean; error?: string}[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const event = (name: string, extra: (body: WebhookBody) => boolean = () => true) => (body: WebhookBody) => body.event === name && extra(body)

/**
 * Notifications from the real flows: `cert renew` / `renew-if-needed` (local-CA renewals), and
 * a `serve --daemon` whose supervisor restarts its server and whose monitoring raises an alert.
 * Channels: a real SMTP server with STARTTLS, a webhook receiver, and a webhook nobody answers.
 */
describe('notifications from renewals and from mfc serve (real SMTP, webhook receivers)', function () {
  this.timeout(90_000)
  let temp: TempEnv
  let certs: MintedCerts
  let smtp: SmtpPeer
  let hook: WebhookPeer
  let env: NodeJS.ProcessEnv
  let deadUrl: string

  before(async () => {
    temp = await tempEnv('mfc-notify-flows-')
    certs = await mintCerts(join(temp.dir, 'smtp-certs'))
    smtp = await startSmtp(certs, {starttls: true})
    hook = await startWebhook(200)
    deadUrl = `http://127.0.0.1:${await freePort()}/nobody-listens`
    // The SMTP server's certificate comes from the test CA: trusted the way an admin would.
    env = {...temp.env, NODE_EXTRA_CA_CERTS: certs.caFile, MFC_API_TOKEN: TEST_TOKEN}
    writeFileSync(join(temp.dir, 'smtp-pass'), 'smtp-secret\n')
    const init = await runCli(['ssl', 'init', '--domain', 'localhost', '--yes'], {env})
    expect(init.code, init.stderr).to.equal(0)
    const setup = await runCli(['notify', 'setup', '--email', '--smtp-server', 'localhost', '--smtp-port', String(smtp.port), '--smtp-username', 'mfc',
      '--smtp-password-file', join(temp.dir, 'smtp-pass'), '--from', 'mfc@lab.example', '--to', 'ops@lab.example',
      '--webhook', hook.url, '--webhook', deadUrl, '--level', 'all'], {env})
    expect(setup.code, setup.stderr).to.equal(0)
  })

  after(async () => {
    await runCli(['stop', '--timeout', '5'], {env})
    await Promise.all([smtp?.close(), hook?.close()])
    await temp?.cleanup()
  })

  const configFile = () => join(temp.configDir, 'ssl-config.json')
  const editConfig = (changes: Record<string, unknown>) => writeFileSync(configFile(), JSON.stringify({...JSON.parse(readFileSync(configFile(), 'utf8')), ...changes}, null, 2))

  it('cert renew: the renewal goes out by email and webhook; the dead channel is reported and the exit code stays 0', async () => {
    const result = await runCli(['cert', 'renew', '--force', '--json'], {env})
    expect(result.code, result.stderr).to.equal(0)
    const report = parseJson<Renewal>(result)
    expect(report.outcomes.map((o) => [o.status, o.version])).to.deep.equal([['renewed', '0002']])
    expect(report.notifications.map((n) => [n.event, n.ok])).to.deep.equal([['cert:renewed', true], ['cert:renewed', true], ['cert:renewed', false]])
    expect(report.notifications[2].error).to.match(/ECONNREFUSED/)
    expect(smtp.mails.at(-1)!.body).to.include('Subject: [MFC-SSL] Certificate renewed for localhost, 127.0.0.1, ::1')
    expect(smtp.mails.at(-1)).to.include({secure: true, user: 'mfc'})
    const body = await hook.waitFor(event('cert:renewed'))
    expect(body).to.deep.include({kind: 'renewal', critical: false})
    expect(body.details).to.include({Version: '0002'})

    const human = await runCli(['cert', 'renew', '--force'], {env})
    expect(human.code).to.equal(0)
    expect(human.stdout).to.match(/RENEWED +localhost/)
    expect(human.stderr).to.match(/Notification via webhook http:\/\/127\.0\.0\.1:\d+\/… failed/)
    expect(human.stderr).not.to.include('nobody-listens')
  })

  it('cert renew: a failed renewal sends its reason; the exit code is the renewal\'s own (1)', async () => {
    const {caKeyFile} = resolveConfig({env, isRoot: false}).paths
    const key = readFileSync(caKeyFile)
    writeFileSync(caKeyFile, 'not a key\n')
    try {
      const result = await runCli(['cert', 'renew', '--force', '--json'], {env})
      expect(result.code).to.equal(1)
      expect(parseJson<Renewal>(result).notifications.map((n) => n.ok)).to.deep.equal([true, true, false])
    } finally {
      writeFileSync(caKeyFile, key)
    }

    const body = await hook.waitFor(event('cert:renew-failed'))
    expect(body).to.deep.include({kind: 'error', critical: true})
    expect(String((body.details as Record<string, string>).Reason)).to.include(caKeyFile)
    expect(smtp.mails.at(-1)!.body).to.include('Subject: [MFC-SSL CRITICAL] Certificate renewal FAILED for localhost')
  })

  it('cert renew-if-needed: nothing due sends nothing and prints nothing; when due it notifies and reports the dead channel on stderr', async () => {
    const [mails, hooks] = [smtp.mails.length, hook.bodies.length]
    const quiet = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
    expect(quiet.code).to.equal(0)
    expect(quiet.stdout + quiet.stderr).to.equal('')
    expect([smtp.mails.length, hook.bodies.length]).to.deep.equal([mails, hooks])

    editConfig({renewal_days_before: 90})
    try {
      const due = await runCli(['cert', 'renew-if-needed', '--no-random-sleep'], {env})
      expect(due.code, due.stderr).to.equal(0)
      expect(due.stdout).to.match(/^Renewed localhost \(localhost, 127\.0\.0\.1, ::1\): version 0004/)
      expect(due.stderr.trim().split('\n')).to.have.length(1)
      expect(due.stderr).to.match(/^Warning: Notification via webhook http:\/\/127\.0\.0\.1:\d+\/… failed: /)
    } finally {
      editConfig({renewal_days_before: 30})
    }

    expect(hook.bodies.length).to.equal(hooks + 1)
    expect(hook.bodies.at(-1)).to.deep.include({event: 'cert:renewed'})
    expect(smtp.mails.length).to.equal(mails + 1)
  })

  describe('mfc serve --daemon', () => {
    const pid = () => JSON.parse(readFileSync(join(temp.stateDir, 'mfc.pid'), 'utf8')) as {pid: number; supervisorPid: number; ready: boolean; ports: {api: number}}
    const ca = () => readFileSync(join(temp.stateDir, 'ca', 'ca.crt'), 'utf8')

    before(async () => {
      // Readings only from the test, so the one alert is the test's.
      editConfig({simulation_autostart: false})
      const started = await runCli(['serve', '--daemon', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0', '--no-http'], {env})
      expect(started.code, started.stderr).to.equal(0)
    })

    it('cert renew while it runs: the supervisor passes the reload on, the new certificate is served', async () => {
      const before = await servedSerial(pid().ports.api, {ca: ca()})
      const result = parseJson<Renewal>(await runCli(['cert', 'renew', '--force', '--json'], {env}))
      expect(result.outcomes[0].status).to.equal('renewed')
      expect(result.reloadedPid).to.equal(pid().supervisorPid)
      while (await servedSerial(pid().ports.api, {ca: ca()}) === before) await sleep(100)
    })

    it('an alert from ingested data reaches every channel (its threshold has email_notify)', async () => {
      const sample = {timestamp: new Date().toISOString(), time_hours: 1, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0, biofilm_thicknesses: [10, 10, 10, 10, 10]}
      const ingest = await fetchText(`https://127.0.0.1:${pid().ports.api}/data/ingest`, {ca: ca(), method: 'POST', headers: {...bearer(), 'content-type': 'application/json'}, body: JSON.stringify({readings: [sample]})})
      expect(ingest.status, ingest.body).to.equal(200)
      const body = await hook.waitFor(event('alert:raised', (b) => (b.details as Record<string, string>).Parameter === 'total_power'))
      // Every alert names its source (a rig's posted name; `ingest` when the body names none).
      expect(body.subject).to.equal('Alert: ingest total_power = 0 (warning)')
      while (!smtp.mails.some((m) => m.body.includes('Subject: [MFC-SSL] Alert: ingest total_power = 0'))) await sleep(100)
    })

    it('notify setup while it runs says serve must be restarted to use the new channels', async () => {
      const result = await runCli(['notify', 'setup', '--level', 'all'], {env})
      expect(result.code, result.stderr).to.equal(0)
      expect(result.stdout).to.include('mfc serve is running: restart it')
    })

    it('kill -9 of the server process: the supervisor restarts it and says so on every channel; the dead one is logged', async () => {
      const before = pid()
      process.kill(before.pid, 'SIGKILL')
      const body = await hook.waitFor(event('daemon:restarted'))
      expect(body).to.deep.include({kind: 'error'})
      expect(String(body.subject)).to.equal('mfc serve was restarted (killed by SIGKILL)')
      while (!(pid().pid !== before.pid && pid().ready)) await sleep(100)
      const log = () => readFileSync(join(temp.stateDir, 'logs', 'mfc.log'), 'utf8')
      while (!/"event":"daemon:restarted".*"msg":"Notification failed"/.test(log())) await sleep(100)
      expect(log()).not.to.include('nobody-listens')
      const status = await runCli(['status', '--json'], {env})
      expect(status.code, status.stdout).to.equal(0)
    })
  })
})
