import {expect} from 'chai'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {MIGRATIONS} from '../../src/services/storage/migrations.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'

const PASSWORD = 'pg-Secret-7c41'

interface MigrateJson {applied: {version: number; name: string}[]; current: number; latest: number; storage: string}

describe('mfc storage migrate (real PostgreSQL 15 with TLS and a password)', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  let t: TempEnv

  before(async () => {
    pg = await startPostgres({tls: true, password: PASSWORD})
  })
  after(async () => pg?.stop())
  beforeEach(async () => {
    t = await tempEnv()
    await mkdir(t.configDir, {recursive: true})
  })
  afterEach(async () => t.cleanup())

  async function configure(url: string, extra: Record<string, unknown> = {}): Promise<void> {
    const passwordFile = join(t.dir, 'pg-password')
    await writeFile(passwordFile, PASSWORD + '\n', {mode: 0o600})
    await writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage: url, storage_password_file: passwordFile, storage_ca_file: pg.caFile, ...extra}))
  }

  it('creates the schema once when five nodes migrate at the same moment; a rerun changes nothing', async () => {
    const url = await pg.createDatabase()
    await configure(url)
    const runs = await Promise.all(Array.from({length: 5}, () => runCli(['storage', 'migrate', '--json'], {env: t.env})))
    for (const run of runs) expect(run.code, run.stdout + run.stderr).to.equal(0)
    const results = runs.map((run) => parseJson<MigrateJson>(run))
    expect(results.filter((r) => r.applied.length > 0)).to.have.length(1)
    expect(results.every((r) => r.current === r.latest && r.latest >= 1)).to.equal(true)
    const db = url.split('/').pop()
    // Every step applied once (versions may have gaps: the count is of steps, not the latest number).
    expect(await pg.psql('SELECT count(*) FROM mfc_migrations', db)).to.equal(String(MIGRATIONS.length))
    expect(await pg.psql("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('mfc_certs', 'mfc_cert_live')", db)).to.equal('2')

    const again = await runCli(['storage', 'migrate'], {env: t.env})
    expect(again.code).to.equal(0)
    expect(again.stdout).to.contain('up to date')
  })

  it('takes the password from PGPASSWORD and never prints it, not even in --json', async () => {
    const url = await pg.createDatabase()
    await writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage_ca_file: pg.caFile}))
    const run = await runCli(['storage', 'migrate', '--json'], {env: {...t.env, MFC_STORAGE_URL: url, PGPASSWORD: PASSWORD}})
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout + run.stderr).not.to.contain(PASSWORD)
    expect(parseJson<MigrateJson>(run).storage).to.equal(url)
  })

  it('a wrong password: exit 4, the database named, the password nowhere in the output', async () => {
    const url = await pg.createDatabase()
    const run = await runCli(['storage', 'migrate'], {env: {...t.env, MFC_STORAGE_URL: url, PGPASSWORD: 'not-' + PASSWORD, MFC_STORAGE_CA_FILE: pg.caFile}})
    expect(run.code).to.equal(4)
    expect(run.stderr).to.contain(`127.0.0.1:${pg.port}`)
    expect(run.stderr).to.contain('storage_password_file or PGPASSWORD')
    expect(run.stderr).not.to.contain(PASSWORD)
    expect(run.stderr).not.to.match(/\n\s+at /)
  })

  it('without storage_ca_file the server certificate is not trusted: a clear error naming storage_ca_file', async () => {
    const url = await pg.createDatabase()
    const run = await runCli(['storage', 'migrate', '--json'], {env: {...t.env, MFC_STORAGE_URL: url + '?sslmode=verify-full', PGPASSWORD: PASSWORD}})
    expect(run.code).to.equal(4)
    const {error} = parseJson<{error: {code: string; message: string; suggestions: string[]}}>(run)
    expect(error.code).to.equal('MFC_STORE_IO')
    expect(error.suggestions.join(' ')).to.contain('storage_ca_file')
  })

  it('refuses a password inside the URL (config file or env) without echoing it', async () => {
    await writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage: `postgres://mfc:${PASSWORD}@127.0.0.1:${pg.port}/postgres`}))
    const fromFile = await runCli(['storage', 'migrate'], {env: t.env})
    expect(fromFile.code).to.equal(3)
    expect(fromFile.stderr).to.contain('"storage"')
    expect(fromFile.stderr).to.contain('storage_password_file')
    expect(fromFile.stderr).not.to.contain(PASSWORD)
  })

  it('says how to configure storage when none is set (exit 2), and rejects a URL that is not postgres://', async () => {
    const none = await runCli(['storage', 'migrate'], {env: t.env})
    expect(none.code).to.equal(2)
    expect(none.stderr).to.contain('MFC_STORAGE_URL')
    const bad = await runCli(['storage', 'migrate'], {env: {...t.env, MFC_STORAGE_URL: 'mysql://db/mfc'}})
    expect(bad.code).to.equal(3)
    expect(bad.stderr).to.contain('MFC_STORAGE_URL')
  })
})
