import {expect} from 'chai'
import {readdir, readlink} from 'node:fs/promises'
import {join} from 'node:path'

import {readFile} from 'node:fs/promises'

import {BIN, type TempEnv, tempEnv} from '../helpers/cli.js'
import {startPebble} from '../helpers/pebble.js'
import {TmuxSession} from '../helpers/tty.js'

describe('mfc ssl init on a terminal', function () {
  this.timeout(60_000)
  let t: TempEnv
  const sessions: TmuxSession[] = []
  const run = (args: string) => {
    const session = new TmuxSession(`${process.execPath} ${BIN} ${args}`, t.env)
    sessions.push(session)
    return session
  }

  beforeEach(async () => {
    t = await tempEnv()
  })
  afterEach(async () => {
    for (const s of sessions.splice(0)) s.close()
    await t.cleanup()
  })

  it('asks for the domains and the kind of certificate, then shows the task list', async () => {
    const tty = run('ssl init')
    await tty.waitFor(/Domain names \(comma-separated\)/)
    tty.send('C-u', 'localhost,mfc.lab.test', 'Enter')
    await tty.waitFor(/Which certificate\?/)
    tty.send('Enter')
    expect(await tty.exitCode()).to.equal(0)
    const screen = tty.screen()
    expect(screen).to.match(/✔ Issuing a certificate for localhost, mfc\.lab\.test/)
    expect(screen).to.contain('Created the certificate for localhost, mfc.lab.test, 127.0.0.1, ::1')
  })

  it('asks before replacing an existing certificate and keeps it on "no"', async () => {
    const first = run('ssl init --domain localhost')
    expect(await first.exitCode()).to.equal(0)
    const live = join(t.stateDir, 'certs', 'localhost', 'live')

    const same = run('ssl init --domain localhost')
    expect(await same.exitCode()).to.equal(0)
    expect(same.screen()).to.contain('Already have a certificate for localhost')

    const no = run('ssl init --domain localhost --domain mfc.lab.test')
    await no.waitFor(/Replace it\?/)
    no.send('n', 'Enter')
    expect(await no.exitCode()).to.equal(0)
    expect(await readlink(live)).to.equal('versions/0001')

    const yes = run('ssl init --domain localhost --domain mfc.lab.test')
    await yes.waitFor(/Replace it\?/)
    yes.send('y', 'Enter')
    expect(await yes.exitCode()).to.equal(0)
    expect(await readlink(live)).to.equal('versions/0002')
  })

  it('never prompts with --yes, even on a terminal', async () => {
    const tty = run('ssl init --yes')
    expect(await tty.exitCode()).to.equal(3)
    expect(tty.screen()).to.contain('No domain given')
  })

  it('offers Let\'s Encrypt / ACME and asks for the account email (against a real Pebble)', async () => {
    const pebble = await startPebble()
    try {
      t.env = {...t.env, ...pebble.env}
      const tty = run(`ssl init --acme-directory ${pebble.directory} --http-port ${pebble.httpPort}`)
      await tty.waitFor(/Domain names \(comma-separated\)/)
      tty.send('C-u', 'interactive.mfc.test', 'Enter')
      await tty.waitFor(/Which certificate\?/)
      await tty.waitFor(/❯ Let's Encrypt \/ ACME/) // --acme-directory makes ACME the default choice
      tty.send('Enter')
      await tty.waitFor(/Email for the CA account/)
      tty.send('ops@mfc.test', 'Enter')
      // Never agreed silently: the directory's terms URL is shown and asked about.
      await tty.waitFor(/The CA's terms of service are at data:text\/plain,Do%20what%20thou%20wilt/)
      await tty.waitFor(/Do you agree to them/)
      tty.send('y', 'Enter')
      expect(await tty.exitCode(), tty.screen()).to.equal(0)
      const config = JSON.parse(await readFile(join(t.configDir, 'ssl-config.json'), 'utf8'))
      expect(config).to.include({domain: 'interactive.mfc.test', email: 'ops@mfc.test'})
      const meta = JSON.parse(await readFile(join(t.stateDir, 'certs', 'interactive.mfc.test', 'live', 'meta.json'), 'utf8'))
      expect(meta.issuer).to.equal('acme')

      // No account yet in a fresh state directory, and the answer is "no": exit 2, nothing registered.
      const fresh = await tempEnv('mfc-tty-tos-')
      try {
        const declined = new TmuxSession(`${process.execPath} ${BIN} ssl init --domain declined.mfc.test --acme-directory ${pebble.directory} --http-port ${pebble.httpPort}`, {...fresh.env, ...pebble.env, TERM: 'xterm-256color'})
        try {
          await declined.waitFor(/Do you agree to them/)
          declined.send('n', 'Enter')
          expect(await declined.exitCode()).to.equal(2)
          expect(declined.screen()).to.contain('--agree-tos').and.contain('data:text/plain,Do%20what%20thou%20wilt')
        } finally {
          declined.close()
        }

        const accounts = await readdir(join(fresh.stateDir, 'acme')).catch(() => [] as string[])
        for (const dir of accounts) expect(await readdir(join(fresh.stateDir, 'acme', dir))).not.to.include('account.json')
      } finally {
        await fresh.cleanup()
      }
    } finally {
      await pebble.stop()
    }
  })
})
