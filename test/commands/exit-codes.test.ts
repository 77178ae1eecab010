import {expect} from 'chai'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {ROOT, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {TmuxSession} from '../helpers/tty.js'

/** One cause, one exit code (with and without --json); "not found" for a missing file; did-you-mean; -h. */
describe('exit codes, missing files, did-you-mean and -h', function () {
  this.timeout(120_000)
  let temp: TempEnv

  before(async () => {
    temp = await tempEnv('mfc-exit-codes-')
  })
  after(() => temp.cleanup())

  const both = async (args: string[], env = temp.env) => {
    const human = await runCli(args, {env})
    const json = await runCli([...args, '--json'], {env})
    return {human, json, error: parseJson<{error: {code: string; message: string; exitCode: number}}>(json).error}
  }

  it('a bad --domain value is a usage error (2); the same value from a file or the environment is a config error (3)', async () => {
    const flag = await both(['ssl', 'init', '--domain', 'bad_name!', '--yes'])
    expect(flag.human.code).to.equal(2)
    expect(flag.json.code).to.equal(2)
    expect(flag.human.stderr).to.include('"bad_name!" for "domain" on the command line')
    expect(flag.error).to.include({code: 'MFC_USAGE', exitCode: 2})
    const env = await both(['ssl', 'init', '--yes'], {...temp.env, MFC_SSL_DOMAIN: 'bad_name!'})
    expect([env.human.code, env.json.code]).to.deep.equal([3, 3])
    expect(env.error.message).to.include('MFC_SSL_DOMAIN')
  })

  it('a missing file says "not found", with the exit code of its kind', async () => {
    const nope = join(temp.dir, 'nope')
    const restore = await both(['restore', `${nope}.tar.gz`])
    expect([restore.human.code, restore.json.code]).to.deep.equal([4, 4])
    expect(restore.human.stderr).to.include(`Backup ${nope}.tar.gz not found`).and.not.to.include('truncated')
    const cert = await both(['ssl', 'init', '--domain', 'localhost', '--cert-file', `${nope}.pem`, '--key-file', `${nope}.key`, '--yes'])
    expect([cert.human.code, cert.json.code]).to.deep.equal([4, 4])
    expect(cert.error.message).to.equal(`${nope}.pem not found.`)
    const password = await both(['notify', 'setup', '--email', '--smtp-server', 'smtp.example.org', '--from', 'mfc@example.org', '--to', 'ops@example.org', '--smtp-password-file', nope])
    expect([password.human.code, password.json.code]).to.deep.equal([2, 2])
    expect(password.error).to.include({code: 'MFC_USAGE', message: `The SMTP password file ${nope} not found.`})
    const passphrase = await both(['backup', '--passphrase-file', nope])
    expect([passphrase.human.code, passphrase.json.code]).to.deep.equal([2, 2])
    expect(passphrase.error.message).to.equal(`The passphrase file ${nope} not found.`)
    // The certificate to revoke is a certificate file, as for ssl init --cert-file: 4, not a usage error.
    const revoke = await both(['cert', 'revoke', '--cert-path', `${nope}.pem`])
    expect([revoke.human.code, revoke.json.code]).to.deep.equal([4, 4])
    expect(revoke.error).to.include({code: 'MFC_CERT_INVALID', message: `The certificate ${nope}.pem not found.`})
    // A file given to cert monitor is reported missing as "not found", with no ssl init advice for it.
    const monitor = await runCli(['cert', 'monitor', '--json', `${nope}.pem`], {env: temp.env})
    expect(monitor.code).to.equal(3)
    expect(parseJson<{certificates: {status: string; error: string}[]}>(monitor).certificates[0]).to.include({status: 'missing', error: `${nope}.pem not found.`})
  })

  it('a bad flag value is a usage error (2) naming the flag, also where a file of the same settings is a config error (3)', async () => {
    const webhook = await both(['notify', 'setup', '--webhook', 'not-a-url'])
    expect([webhook.human.code, webhook.json.code]).to.deep.equal([2, 2])
    expect(webhook.error).to.include({code: 'MFC_USAGE', message: 'Invalid value for --webhook: expected a list of http(s) URLs.'})
    const to = await both(['notify', 'setup', '--email', '--to', 'nobody'])
    expect(to.error).to.include({code: 'MFC_USAGE', message: 'Invalid value for --to: expected a list of email addresses.'})
  })

  it('-h works on every command (and on mfc itself)', async () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    const ids = Object.keys(manifest.commands)
    expect(ids.length).to.be.above(10)
    const results = await Promise.all([[], ...ids.map((id) => id.split(':'))].map((words) => runCli([...words, '-h'], {env: temp.env})))
    for (const [i, result] of results.entries()) {
      expect(result.code, `mfc ${['', ...ids][i]} -h: ${result.stderr}`).to.equal(0)
      expect(result.stdout).to.include('USAGE')
    }
  })

  it('an unknown command: did-you-mean with the space separator on a TTY; exit 127 and the help command off one', async () => {
    const plain = await runCli(['cert', 'renw'], {env: temp.env})
    expect(plain.code).to.equal(127)
    expect(plain.stderr).to.include('cert renw is not a mfc command').and.to.include('mfc help cert')

    const tty = new TmuxSession(`${process.execPath} ${join(ROOT, 'bin', 'run.js')} setup systemdd --dry-run`, {...temp.env, TERM: 'xterm'})
    try {
      await tty.waitFor(/Did you mean setup systemd\?/)
      tty.send('Enter')
      // Accepted: the suggestion runs, with the arguments given.
      await tty.waitFor(/\[Unit\]/)
      expect(await tty.exitCode()).to.equal(0)
    } finally {
      tty.close()
    }
  })
})
