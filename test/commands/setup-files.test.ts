import {spawnSync} from 'node:child_process'
import {existsSync, readFileSync, statSync} from 'node:fs'
import {join} from 'node:path'
import {Script} from 'node:vm'

import {expect} from 'chai'
// js-yaml comes with mocha; it is the YAML parser at hand to check the compose file's syntax.
import {load} from 'js-yaml'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {createCronUser} from '../helpers/cron-user.js'

describe('mfc setup systemd / docker (syntax checked by real tools)', () => {
  let temp: TempEnv

  before(async () => {
    temp = await tempEnv('mfc-setup-')
  })

  after(async () => temp?.cleanup())

  it('systemd: --dry-run writes nothing; the written units pass systemd-analyze verify', async () => {
    const dir = join(temp.dir, 'units')
    const dry = await runCli(['setup', 'systemd', '--dry-run', '--output', dir, '--user', 'mfc', '--group', 'mfc'], {env: temp.env})
    expect(dry.code, dry.stderr).to.equal(0)
    expect(dry.stdout).to.include('[Service]')
    expect(existsSync(dir)).to.equal(false)

    // The units run as an account that exists; one that does not is refused, with the useradd line.
    const missing = await runCli(['setup', 'systemd', '--output', dir, '--user', 'mfc-no-such-user'], {env: temp.env})
    expect(missing.code).to.equal(2)
    expect(missing.stderr).to.include('User "mfc-no-such-user" does not exist').and.to.include(`sudo useradd --system --user-group --home-dir ${temp.stateDir} --shell /usr/sbin/nologin mfc-no-such-user`)
    expect(existsSync(dir)).to.equal(false)
    if (process.getuid?.() === 0) {
      // As root, the default is the dedicated mfc account, never root.
      const byDefault = await runCli(['setup', 'systemd', '--dry-run'], {env: temp.env})
      expect(byDefault.stdout).to.match(/^User=mfc$/m).and.not.to.match(/^User=root$/m)
    }

    // A real, ordinary account (a throwaway system user as root, else the current user).
    const account = createCronUser(temp.dir)
    let result: {files: {path: string}[]}
    try {
      result = parseJson(await runCli(['setup', 'systemd', '--output', dir, '--user', account.name, '--json'], {env: temp.env}))
    } finally {
      account.cleanup()
    }

    expect(result.files.map((f) => f.path.split('/').pop())).to.deep.equal(['mfc.service', 'mfc-renew.service', 'mfc-renew.timer'])
    expect(statSync(join(dir, 'mfc.service')).mode & 0o777).to.equal(0o644)
    const verify = spawnSync('systemd-analyze', ['verify', '--man=no', ...result.files.map((f) => f.path)], {encoding: 'utf8', cwd: dir})
    expect(verify.error, 'systemd-analyze (Debian package systemd) must be installed: .ci/run installs it').to.equal(undefined)
    expect(verify.status, verify.stderr).to.equal(0)
    // systemd-analyze prefixes what it finds in a unit with the unit's path; anything else it says
    // is about this machine (no running systemd, other units) and is not a verdict on our files.
    const ours = verify.stderr.split('\n').filter((line) => result.files.some((f) => line.includes(f.path.split('/').pop()!)))
    expect(ours).to.deep.equal([])
  })

  it('docker: writes a Dockerfile and a compose file that parses, with health check, ports and volumes', async () => {
    const dir = join(temp.dir, 'docker')
    const env = {...temp.env, MFC_HTTPS_API_PORT: '9443'}
    const result = await runCli(['setup', 'docker', '--output', dir], {env})
    expect(result.code, result.stderr).to.equal(0)
    const compose = load(readFileSync(join(dir, 'compose.yaml'), 'utf8')) as {services: Record<string, {build: {dockerfile: string}; ports: string[]; volumes: string[]; healthcheck: {test: string[]}}>}
    const service = compose.services.mfc
    expect(service.ports).to.include('9443:9443')
    expect(service.volumes).to.deep.equal([`${dir}/config:/etc/mfc`, 'mfc-state:/var/lib/mfc'])
    expect(service.healthcheck.test.slice(0, 3)).to.deep.equal(['CMD', 'node', '-e'])
    expect(service.healthcheck.test[3]).to.include('port:9443,path:\'/health\'')
    expect(service.build.dockerfile).to.equal(join(dir, 'Dockerfile'))
    const dockerfile = readFileSync(join(dir, 'Dockerfile'), 'utf8')
    // Every instruction line is a known Dockerfile instruction (continuations excepted).
    const instructions = dockerfile.split('\n').filter((l, i, all) => l.trim() && !l.startsWith('#') && !all[i - 1]?.endsWith('\\')).map((l) => l.split(' ')[0])
    expect(instructions.every((word) => ['FROM', 'WORKDIR', 'RUN', 'COPY', 'ENV', 'USER', 'VOLUME', 'EXPOSE', 'HEALTHCHECK', 'CMD'].includes(word)), instructions.join(',')).to.equal(true)
    // The health check's node one-liner must at least parse.
    const script = JSON.parse(dockerfile.match(/CMD \["node", "-e", (".*")\]$/m)![1]) as string
    expect(() => new Script(script)).not.to.throw()
  })
})
