import {readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type SmtpPeer, type WebhookPeer, startSmtp, startWebhook} from '../helpers/notify-peers.js'
import {type MintedCerts, freePort, mintCerts} from '../helpers/tls-peers.js'

describe('notifications (real SMTP server with STARTTLS, real webhook receivers)', function () {
  this.timeout(60_000)
  let temp: TempEnv
  let certs: MintedCerts
  let smtp: SmtpPeer
  let plainSmtp: SmtpPeer
  let hook: WebhookPeer
  let failing: WebhookPeer
  let env: NodeJS.ProcessEnv
  let deadUrl: string

  before(async () => {
    temp = await tempEnv('mfc-notify-')
    certs = await mintCerts(join(temp.dir, 'certs'))
    smtp = await startSmtp(certs, {starttls: true})
    plainSmtp = await startSmtp(certs, {starttls: false})
    hook = await startWebhook(200)
    failing = await startWebhook(500)
    deadUrl = `http://127.0.0.1:${await freePort()}/nobody-listens`
    // The SMTP server's certificate is signed by the test CA: trusted the way an admin would.
    env = {...temp.env, NODE_EXTRA_CA_CERTS: certs.caFile}
    writeFileSync(join(temp.dir, 'smtp-pass'), 'smtp-secret\n')
  })

  after(async () => {
    await Promise.all([smtp, plainSmtp, hook, failing].map((peer) => peer?.close()))
    await temp?.cleanup()
  })

  it('notify setup writes notification-config.json 0600 with the original keys, and no secret in --json', async () => {
    const result = await runCli(['notify', 'setup', '--email', '--smtp-server', 'localhost', '--smtp-port', String(smtp.port), '--smtp-username', 'mfc',
      '--smtp-password-file', join(temp.dir, 'smtp-pass'), '--from', 'mfc@lab.example', '--to', 'ops@lab.example,oncall@lab.example',
      '--webhook', hook.url, '--webhook', failing.url, '--level', 'all', '--json'], {env})
    expect(result.code, result.stderr).to.equal(0)
    expect(result.stdout).not.to.include('smtp-secret')
    expect(result.stdout).not.to.include('secret-token')
    const file = join(temp.configDir, 'notification-config.json')
    expect(statSync(file).mode & 0o777).to.equal(0o600)
    const saved = JSON.parse(readFileSync(file, 'utf8'))
    expect(saved).to.include({enabled: true, smtp_server: 'localhost', smtp_port: smtp.port, smtp_username: 'mfc', smtp_password: 'smtp-secret', from_email: 'mfc@lab.example', use_tls: true, level: 'all'})
    expect(saved.to_emails).to.deep.equal(['ops@lab.example', 'oncall@lab.example'])
  })

  it('notify test sends one message per channel over STARTTLS and reports the failing webhook', async () => {
    const result = await runCli(['notify', 'test', '--json'], {env})
    expect(result.code).to.equal(1)
    const report = parseJson<{ok: boolean; channels: {channel: string; ok: boolean; error?: string}[]}>(result)
    expect(report.channels.map((c) => c.ok)).to.deep.equal([true, true, false])
    expect(report.channels[2].error).to.include('HTTP 500')
    expect(smtp.mails).to.have.length(1)
    expect(smtp.mails[0]).to.include({from: 'mfc@lab.example', secure: true, user: 'mfc'})
    expect(smtp.mails[0].to).to.deep.equal(['ops@lab.example', 'oncall@lab.example'])
    expect(smtp.mails[0].body).to.include('Subject: [MFC-SSL] Test notification')
    expect(smtp.mails[0].body).to.include('MFC Monitoring System - SSL Certificate Notification')
    expect(hook.bodies).to.have.length(1)
    expect(hook.bodies[0]).to.include({event: 'test', contentType: 'application/json'})
    expect(hook.bodies[0].text).to.match(/^\[MFC\] Test notification\n/)
  })

  it('cert monitor --notify sends the expiry warning; a dead channel is reported, the exit code stays Nagios', async () => {
    const setup = await runCli(['notify', 'setup', '--webhook', hook.url, '--webhook', deadUrl], {env})
    expect(setup.code, setup.stderr).to.equal(0)
    const mailsBefore = smtp.mails.length
    const hooksBefore = hook.bodies.length
    // mintCerts makes a 20-day certificate: inside the default 30-day renewal window.
    const result = await runCli(['cert', 'monitor', '--cert-file', certs.certFile, '--notify', '--json'], {env})
    expect(result.code).to.equal(1)
    const report = parseJson<{notifications: {channel: string; ok: boolean}[]}>(result)
    expect(report.notifications.map((n) => n.ok)).to.deep.equal([true, true, false])
    expect(hook.bodies.length).to.equal(hooksBefore + 1)
    expect(hook.bodies.at(-1)).to.include({event: 'cert:expiring', kind: 'info', critical: false})
    expect(hook.bodies.at(-1)!.subject).to.match(/expires in 1\d days$/)
    expect(smtp.mails.length).to.equal(mailsBefore + 1)
    expect(smtp.mails.at(-1)!.body).to.match(/Subject: \[MFC-SSL\] Certificate for localhost, 127\.0\.0\.1 expires in 1\d days/)

    const human = await runCli(['cert', 'monitor', '--cert-file', certs.certFile, '--notify'], {env})
    expect(human.code).to.equal(1)
    expect(human.stderr).to.include('Notification via webhook http://127.0.0.1:')
    expect(human.stderr).not.to.include('nobody-listens')
  })

  it('at level "errors" an expiry warning outside the critical window is not sent', async () => {
    await runCli(['notify', 'setup', '--level', 'errors'], {env})
    const before = hook.bodies.length
    const result = parseJson<{notifications: unknown[]}>(await runCli(['cert', 'monitor', '--cert-file', certs.certFile, '--notify', '--json'], {env}))
    expect(result.notifications).to.deep.equal([])
    expect(hook.bodies.length).to.equal(before)
  })

  it('with use_tls, a server that does not offer STARTTLS gets nothing (no plaintext fallback)', async () => {
    await runCli(['notify', 'setup', '--smtp-port', String(plainSmtp.port), '--clear-webhooks'], {env})
    const result = await runCli(['notify', 'test', '--json'], {env})
    expect(result.code).to.equal(1)
    const report = parseJson<{channels: {ok: boolean; error: string}[]}>(result)
    expect(report.channels).to.have.length(1)
    expect(report.channels[0].error).to.match(/STARTTLS/i)
    expect(plainSmtp.mails).to.have.length(0)
  })
})
