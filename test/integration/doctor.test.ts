import {promises as fs} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'

import {expect} from 'chai'

import {type BindServer, startBind} from '../helpers/bind-server.js'
import {type RunResult, type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type Pebble, startPebble} from '../helpers/pebble.js'
import {freePorts} from '../helpers/ports.js'
import {startServeProcess} from '../helpers/serve-process.js'

interface Check {id: string; subject: string; status: string; detail: string; fix: string | null}
interface Report {checks: Check[]; failures: number; warnings: number}

function expectOk(result: RunResult): void {
  expect(result.code, `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).to.equal(0)
}

const find = (report: Report, id: string, subject: string) => {
  const check = report.checks.find((c) => c.id === id && c.subject.includes(subject))
  expect(check, `${id} ${subject} in ${JSON.stringify(report.checks, null, 1)}`).to.not.equal(undefined)
  return check!
}

/** doctor against a real BIND9 zone with CAA records, a real Pebble, and a machine state with faults planted. */
describe('mfc doctor (integration: BIND9 with CAA, Pebble, taken port, bad key mode, mismatched pair)', function () {
  this.timeout(120_000)
  let bind: BindServer
  let pebble: Pebble
  let t: TempEnv
  let env: NodeJS.ProcessEnv
  let squatter: Server | undefined
  let ports: number[]
  const configFile = () => join(t.configDir, 'ssl-config.json')
  const doctor = (extra: string[]) => runCli(['doctor', '--json', '--dns-server', bind.address, '--caa-identity', 'pebble.mfc.example', ...extra], {env})

  before(async () => {
    ;[bind, pebble] = await Promise.all([startBind('mfc.example', [
      'here IN A 127.0.0.1',
      'far IN A 192.0.2.10',
      'caa-ok IN A 127.0.0.1',
      'caa-ok IN CAA 0 issue "pebble.mfc.example"',
      'caa-bad IN A 127.0.0.1',
      'caa-bad IN CAA 0 issue "letsencrypt.org; validationmethods=http-01"',
      'sub.caa-bad IN A 127.0.0.1',
    ]), startPebble()])
    t = await tempEnv('mfc-doctor-')
    env = {...t.env, ...pebble.env}
    expectOk(await runCli(['ssl', 'init', '--domain', 'here.mfc.example'], {env}))
    expectOk(await runCli(['ssl', 'init', '--domain', 'other.mfc.example', '--force'], {env}))
    ports = await freePorts(4)
  })

  after(async () => {
    await new Promise((resolve) => (squatter ? squatter.close(resolve) : resolve(undefined)))
    await Promise.all([bind?.stop(), pebble?.stop()])
    await t?.cleanup()
  })

  const writeConfig = async (changes: Record<string, unknown>) => {
    const current = JSON.parse(await fs.readFile(configFile(), 'utf8'))
    const here = join(t.stateDir, 'certs', 'here.mfc.example', 'live')
    await fs.writeFile(configFile(), JSON.stringify({
      ...current, domain: 'here.mfc.example', domains: ['here.mfc.example'], cert_file: join(here, 'fullchain.pem'), key_file: join(here, 'privkey.pem'),
      use_letsencrypt: true, acme_directory: pebble.directory, http_port: ports[0], https_port_api: ports[1], https_port_frontend: ports[2], wss_port_streaming: ports[3],
      host: '127.0.0.1', deploy_hook: null, post_hook: null, ...changes,
    }, null, 2))
  }

  it('finds each planted fault, says what to do, and exits 1', async () => {
    const otherKey = join(t.stateDir, 'certs', 'other.mfc.example', 'live', 'privkey.pem')
    await fs.chmod(otherKey, 0o644)
    await writeConfig({key_file: otherKey, deploy_hook: join(t.dir, 'missing-hook.sh --flag'), post_hook: 'true'})
    squatter = createServer()
    await new Promise<void>((resolve) => squatter!.listen(ports[2], '127.0.0.1', () => resolve()))

    const result = await doctor(['-d', 'here.mfc.example', '-d', 'far.mfc.example', '-d', 'ghost.mfc.example', '-d', 'caa-ok.mfc.example', '-d', 'caa-bad.mfc.example', '-d', 'sub.caa-bad.mfc.example'])
    expect(result.code, result.stdout).to.equal(1)
    const report = parseJson<Report>(result)
    expect(find(report, 'dns', 'here.mfc.example')).to.include({status: 'ok'})
    expect(find(report, 'dns', 'far.mfc.example').status).to.equal('warn')
    expect(find(report, 'dns', 'far.mfc.example').detail).to.contain('192.0.2.10')
    expect(find(report, 'dns', 'ghost.mfc.example')).to.include({status: 'fail'})
    expect(find(report, 'dns', 'ghost.mfc.example').fix).to.contain('Add an A')
    expect(find(report, 'caa', 'here.mfc.example').status).to.equal('ok')
    expect(find(report, 'caa', 'caa-ok.mfc.example').status).to.equal('ok')
    const bad = find(report, 'caa', 'caa-bad.mfc.example')
    expect(bad.status).to.equal('fail')
    expect(bad.detail).to.contain('"letsencrypt.org"')
    expect(bad.fix).to.contain('caa-bad.mfc.example. CAA 0 issue "pebble.mfc.example"')
    // CAA is inherited from the closest name that has some (RFC 8659 §3).
    expect(find(report, 'caa', 'sub.caa-bad.mfc.example').detail).to.contain('CAA at caa-bad.mfc.example')
    const taken = find(report, 'port', `:${ports[2]}`)
    expect(taken).to.include({status: 'fail', detail: 'taken by another program'})
    expect(taken.fix).to.contain(`ss -ltnp 'sport = :${ports[2]}'`).and.contain('https_port_frontend')
    expect(find(report, 'port', `:${ports[1]}`).status).to.equal('ok')
    expect(find(report, 'key-mode', otherKey)).to.include({status: 'fail'})
    expect(find(report, 'key-mode', otherKey).fix).to.contain(`chmod 600 ${otherKey}`)
    expect(find(report, 'pair', otherKey)).to.include({status: 'fail', detail: 'the key does not belong to the certificate'})
    expect(find(report, 'chain', 'here.mfc.example').status).to.equal('ok')
    expect(find(report, 'directory', pebble.directory).status).to.equal('ok')
    expect(find(report, 'clock', 'system clock').status).to.equal('ok')
    expect(find(report, 'hook', 'deploy_hook')).to.include({status: 'fail'})
    expect(find(report, 'hook', 'post_hook').status).to.equal('ok')
    expect(report.failures).to.equal(report.checks.filter((c) => c.status === 'fail').length)

    const text = await runCli(['doctor', '--dns-server', bind.address, '--caa-identity', 'pebble.mfc.example'], {env})
    expect(text.code).to.equal(1)
    expect(text.stdout).to.match(/FAIL {2}key-mode/).and.contain('Fix: chmod 600')
  })

  it('a sound setup passes, with serve\'s own ports counted as held by mfc', async () => {
    await new Promise((resolve) => squatter!.close(resolve))
    squatter = undefined
    await writeConfig({})
    const serve = await startServeProcess(env, {ports: {api: ports[1], dashboard: ports[2], streamer: ports[3]}, args: ['--host', '127.0.0.1']})
    try {
      const result = await doctor([])
      expectOk(result)
      const report = parseJson<Report>(result)
      expect(report.checks.filter((c) => c.status === 'fail')).to.deep.equal([])
      expect(find(report, 'port', `:${ports[1]}`).detail).to.equal(`held by mfc serve (pid ${serve.pid})`)
      expect(find(report, 'port', `:${ports[0]}`).detail).to.equal('free')
    } finally {
      await serve.stop()
    }
  })

  it('refuses a --ca-file it cannot read with exit 2, naming it', async () => {
    const result = await runCli(['doctor', '--ca-file', join(t.dir, 'nope.pem')], {env})
    expect(result.code).to.equal(2)
    expect(result.stderr).to.contain('nope.pem')
  })
})
