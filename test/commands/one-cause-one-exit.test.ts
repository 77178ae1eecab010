import {expect} from 'chai'
import {spawnSync} from 'node:child_process'
import {chmod, chown, mkdtemp, rm} from 'node:fs/promises'
import {createServer, type Server} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type ErrorCode, NAGIOS, exitCodeOf} from '../../src/lib/errors.js'
import {BIN, type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'

interface ErrorJson {error: {code: ErrorCode; message: string; exitCode: number; suggestions: string[]}}

/**
 * One cause, one exit code: real failures run with and without --json, and (for serve) in the
 * foreground and with --daemon, end with the same code and the exit code of its registry row.
 */
describe('one cause, one exit code (foreground, --daemon, --json)', function () {
  this.timeout(180_000)
  let temp: TempEnv
  let blocker: Server
  let takenPort: number
  const free = ['--dashboard-port', '0', '--stream-port', '0', '--no-http', '--no-simulation']

  before(async () => {
    temp = await tempEnv('mfc-one-exit-')
    blocker = createServer().listen(0, '0.0.0.0')
    await new Promise((resolve) => blocker.once('listening', resolve))
    takenPort = (blocker.address() as {port: number}).port
  })
  after(async () => {
    blocker.close()
    await runCli(['stop', '--timeout', '5'], {env: temp.env})
    await temp.cleanup()
  })

  /** Runs `args` human and --json (and with --daemon when `daemon`), one after the other (serve takes the lock). */
  async function variants(args: string[], options: {daemon?: boolean; env?: NodeJS.ProcessEnv} = {}): Promise<{name: string; result: RunResult}[]> {
    const env = options.env ?? temp.env
    const names = ['foreground', 'foreground --json', ...(options.daemon ? ['--daemon', '--daemon --json'] : [])]
    const runs: {name: string; result: RunResult}[] = []
    for (const name of names) runs.push({name, result: await runCli([...args, ...name.split(' ').filter((word) => word !== 'foreground')], {env})})
    return runs
  }

  /** Every variant exits with `code`'s registry exit code; the --json ones name `code`; all say the same. */
  async function expectOneCause(code: ErrorCode, args: string[], options: {daemon?: boolean; env?: NodeJS.ProcessEnv; exit?: number} = {}): Promise<string> {
    const runs = await variants(args, options)
    const exit = options.exit ?? exitCodeOf(code)
    expect(runs.map(({name, result}) => `${name}: ${result.code}`), `mfc ${args.join(' ')}: ${runs.map((r) => r.result.stderr).join('\n')}`).to.deep.equal(runs.map(({name}) => `${name}: ${exit}`))
    const messages = new Set<string>()
    for (const {name, result} of runs) {
      if (name.endsWith('--json')) {
        const {error} = parseJson<ErrorJson>(result)
        expect(error, name).to.include({code, exitCode: exit})
        messages.add(error.message.split('\n')[0])
      } else {
        expect(result.stderr, name).to.match(/^Error: /m).and.not.match(/^\s+at /m)
        messages.add(/^Error: (.*)$/m.exec(result.stderr)![1])
      }
    }

    expect([...messages], 'the same message in every variant').to.have.length(1)
    return [...messages][0]
  }

  it('a taken port: MFC_PORT_IN_USE, exit 6, naming the port', async () => {
    const message = await expectOneCause('MFC_PORT_IN_USE', ['serve', '--api-port', String(takenPort), ...free, '--start-timeout', '15'], {daemon: true})
    expect(exitCodeOf('MFC_PORT_IN_USE')).to.equal(6)
    expect(message).to.include(`port ${takenPort}`)
  })

  it('a port that cannot be opened for another reason (host not of this machine): MFC_LISTEN_FAILED, still exit 6', async () => {
    // 192.0.2.1 (TEST-NET-1) is an address of no machine: EADDRNOTAVAIL.
    const message = await expectOneCause('MFC_LISTEN_FAILED', ['serve', '--host', '192.0.2.1', '--api-port', '0', ...free, '--start-timeout', '15'], {daemon: true})
    expect(message).to.match(/The api port 0 cannot be opened \(.*EADDRNOTAVAIL/)
  })

  it('a port below 1024 for a user that may not bind it: MFC_PORT_DENIED, exit 6', async function () {
    // As `nobody` (root may bind anything): a fresh state directory it owns.
    const home = await mkdtemp(join(tmpdir(), 'mfc-one-exit-nobody-'))
    try {
      await chmod(home, 0o755)
      const nobody = spawnSync('id', ['-u', 'nobody'], {encoding: 'utf8'})
      if (process.getuid?.() !== 0 || nobody.status !== 0 || spawnSync('sysctl', ['-n', 'net.ipv4.ip_unprivileged_port_start'], {encoding: 'utf8'}).stdout.trim() !== '1024') this.skip()
      // A checkout under a private directory (mktemp -d, /root) cannot be run by nobody at all.
      if (spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, '--version'], {cwd: home}).status !== 0) this.skip()
      await chown(home, Number(nobody.stdout.trim()), Number(nobody.stdout.trim()))
      const env = {PATH: process.env.PATH, HOME: home, MFC_CONFIG_DIR: join(home, 'config'), MFC_STATE_DIR: join(home, 'state'), LANG: 'C.UTF-8'}
      const run = (extra: string[]) => spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN, 'serve', '--api-port', '1', ...free, ...extra], {env, encoding: 'utf8', cwd: home, timeout: 60_000})
      const human = run([])
      const json = run(['--json'])
      expect([human.status, json.status], human.stderr).to.deep.equal([6, 6])
      expect(JSON.parse(json.stdout).error).to.include({code: 'MFC_PORT_DENIED', exitCode: 6})
      expect(human.stderr).to.include('The api port 1 needs root (or CAP_NET_BIND_SERVICE).')
    } finally {
      await rm(home, {recursive: true, force: true})
    }
  })

  it('a missing --config file (or MFC_SSL_CONFIG): MFC_CONFIG_NOT_FOUND, exit 3, naming the path', async () => {
    const nope = join(temp.dir, 'nope.json')
    expect(await expectOneCause('MFC_CONFIG_NOT_FOUND', ['serve', '--config', nope, ...free], {daemon: true})).to.include(nope)
    expect(await expectOneCause('MFC_CONFIG_NOT_FOUND', ['serve', ...free], {daemon: true, env: {...temp.env, MFC_SSL_CONFIG: nope}})).to.include(nope)
    expect(await expectOneCause('MFC_CONFIG_NOT_FOUND', ['cert', 'renew-if-needed', '--config', nope])).to.include(nope)
  })

  it('a bad --domain is a usage error (2); the same bad domain from the environment is a config error (3), for serve too', async () => {
    expect(await expectOneCause('MFC_USAGE', ['ssl', 'init', '--domain', 'bad_name!', '--yes'])).to.include('bad_name!')
    expect(await expectOneCause('MFC_CONFIG_VALUE', ['serve', ...free], {daemon: true, env: {...temp.env, MFC_SSL_DOMAIN: 'bad_name!'}})).to.include('MFC_SSL_DOMAIN')
    expect(await expectOneCause('MFC_USAGE', ['serve', '--api-port', '70000', ...free], {daemon: true})).to.include('70000')
  })

  it('a failing pre hook: MFC_HOOK_FAILED, exit 1, nothing ordered', async () => {
    expect(await expectOneCause('MFC_HOOK_FAILED', ['ssl', 'init', '--domain', 'hook.example', '--yes', '--pre-hook', 'exit 4'])).to.include('nothing was ordered')
  })

  it('the Nagios commands (status, cert monitor): any error is UNKNOWN (3), never a CRITICAL 2 for a typo', async () => {
    expect(await expectOneCause('MFC_USAGE', ['status', '--bogus'], {exit: NAGIOS.UNKNOWN})).to.include('--bogus')
    expect(await expectOneCause('MFC_USAGE', ['cert', 'monitor', '--bogus'], {exit: NAGIOS.UNKNOWN})).to.include('--bogus')
    expect(await expectOneCause('MFC_CONFIG_NOT_FOUND', ['cert', 'monitor', '--config', join(temp.dir, 'nope.json')], {exit: NAGIOS.UNKNOWN})).to.include('nope.json')
  })
})
