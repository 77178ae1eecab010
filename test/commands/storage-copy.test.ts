import {expect} from 'chai'
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {systemClock} from '../../src/lib/clock.js'
import type {MfcPaths} from '../../src/lib/paths.js'
import {AccountStore} from '../../src/services/acme/account-store.js'
import {LocalCaIssuer} from '../../src/services/issuers/local-ca-issuer.js'
import {openHistory} from '../../src/services/data/history.js'
import type {History} from '../../src/services/data/history-types.js'
import type {Reading} from '../../src/services/data/reading.js'
import {FileCertStore} from '../../src/services/store/file-cert-store.js'
import {mintBundle, mintCa} from '../helpers/certs.js'
import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'
import {reading, series} from '../helpers/readings.js'

interface CopyJson {lineages: number; versions: number; accounts: number; token: string; localCa: string; verified: boolean; history: {readings: number; sources: number; settings: number; verified: boolean}}
const DIRECTORY = 'https://ca.example/dir'

describe('mfc storage copy (real PostgreSQL 15)', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  const envs: TempEnv[] = []
  const key = randomBytes(32).toString('base64')

  before(async () => {
    pg = await startPostgres()
  })
  after(async () => {
    await Promise.all(envs.map((t) => t.cleanup()))
    await pg?.stop()
  })

  async function site(url: string): Promise<TempEnv> {
    const t = await tempEnv()
    envs.push(t)
    await mkdir(t.configDir, {recursive: true})
    await writeFile(join(t.configDir, 'ssl-config.json'), JSON.stringify({storage: url}))
    t.env.MFC_STORAGE_KEY = key
    return t
  }

  const caPaths = (t: TempEnv) => ({caDir: join(t.stateDir, 'ca'), caCertFile: join(t.stateDir, 'ca', 'ca.crt'), caKeyFile: join(t.stateDir, 'ca', 'ca.key')}) as MfcPaths

  /** Three versions of one lineage (0002 live, after a rollback), an ACME account, a token, the machine's local CA. */
  async function populate(t: TempEnv): Promise<void> {
    const ca = await mintCa()
    const store = new FileCertStore(join(t.stateDir, 'certs'))
    for (let i = 0; i < 3; i++) await store.put('example.test', await mintBundle(ca, 'example.test'))
    await store.rollback('example.test', '0002')
    const accounts = new AccountStore(join(t.stateDir, 'acme'))
    await accounts.key(DIRECTORY)
    await accounts.save({directory: DIRECTORY, url: 'https://ca.example/acct/7', email: 'ops@example.org', createdAt: new Date(0).toISOString()})
    await writeFile(join(t.stateDir, 'api-token'), 'tok-' + randomBytes(16).toString('hex') + '\n', {mode: 0o600})
    await new LocalCaIssuer(caPaths(t), systemClock).ensureCa()
  }

  it('moves every version, the account and the token into PostgreSQL and back out, verified, never overwriting', async () => {
    const url = await pg.createDatabase()
    const one = await site(url)
    expect((await runCli(['storage', 'migrate'], {env: one.env})).code).to.equal(0)
    await populate(one)
    const paths = (t: TempEnv) => ({certs: join(t.stateDir, 'certs'), acme: join(t.stateDir, 'acme'), token: join(t.stateDir, 'api-token')})

    const to = await runCli(['storage', 'copy', '--to', url, '--json'], {env: one.env})
    expect(to.code, to.stdout + to.stderr).to.equal(0)
    expect(parseJson<CopyJson>(to)).to.include({lineages: 1, versions: 3, accounts: 1, token: 'copied', localCa: 'copied', verified: true})
    const db = url.split('/').pop()
    expect(await pg.psql('SELECT count(*) FROM mfc_certs', db)).to.equal('3')
    expect(await pg.psql('SELECT cert_pem FROM mfc_local_ca', db)).to.equal((await readFile(caPaths(one).caCertFile, 'utf8')).trim())
    expect(await pg.psql("SELECT encode(key_sealed, 'escape') FROM mfc_certs UNION ALL SELECT encode(value_sealed, 'escape') FROM mfc_secrets UNION ALL SELECT encode(key_sealed, 'escape') FROM mfc_local_ca", db)).not.to.contain('PRIVATE KEY')
    expect(to.stdout).not.to.contain((await readFile(paths(one).token, 'utf8')).trim())

    // A second copy into the same database stops before writing anything.
    const again = await runCli(['storage', 'copy', '--to', url, '--json'], {env: one.env})
    expect(again.code).to.equal(4)
    expect(parseJson<{error: {code: string; message: string}}>(again).error).to.include({code: 'MFC_STORE_EXISTS'})
    expect(await pg.psql('SELECT count(*) FROM mfc_certs', db)).to.equal('3')

    // Another machine with a CA of its own: the cluster has one already, so nothing is written.
    const other = await site(url)
    await new LocalCaIssuer(caPaths(other), systemClock).ensureCa()
    const otherCa = await runCli(['storage', 'copy', '--to', url, '--json'], {env: other.env})
    expect(otherCa.code, otherCa.stdout).to.equal(4)
    expect(parseJson<{error: {code: string; message: string}}>(otherCa).error.message).to.include('already has a different local CA').and.include('Nothing was copied')
    expect(await pg.psql('SELECT count(*) FROM mfc_local_ca', db)).to.equal('1')

    // Back out into an empty machine: the same versions, live version, account and token.
    const two = await site(url)
    const from = await runCli(['storage', 'copy', '--from', url, '--json'], {env: two.env})
    expect(from.code, from.stdout + from.stderr).to.equal(0)
    expect(parseJson<CopyJson>(from)).to.include({lineages: 1, versions: 3, accounts: 1, token: 'copied', localCa: 'copied'})
    for (const file of ['caCertFile', 'caKeyFile'] as const) expect(await readFile(caPaths(two)[file], 'utf8'), file).to.equal(await readFile(caPaths(one)[file], 'utf8'))
    const [a, b] = [new FileCertStore(paths(one).certs), new FileCertStore(paths(two).certs)]
    expect(await b.versions('example.test')).to.deep.equal(['0001', '0002', '0003'])
    expect((await b.live('example.test'))!.version).to.equal('0002')
    for (const version of ['0001', '0002', '0003']) {
      const [x, y] = [(await a.version('example.test', version))!, (await b.version('example.test', version))!]
      for (const file of ['fullchainFile', 'keyFile', 'chainFile'] as const) expect(await readFile(y[file], 'utf8'), `${version} ${file}`).to.equal(await readFile(x[file], 'utf8'))
      expect(y.meta).to.deep.equal(x.meta)
    }

    const [accountsOne, accountsTwo] = [new AccountStore(paths(one).acme), new AccountStore(paths(two).acme)]
    expect((await accountsTwo.key(DIRECTORY)).pem).to.equal((await accountsOne.key(DIRECTORY)).pem)
    expect(await accountsTwo.record(DIRECTORY)).to.deep.equal(await accountsOne.record(DIRECTORY))
    expect(await readFile(paths(two).token, 'utf8')).to.equal(await readFile(paths(one).token, 'utf8'))
  })

  it('needs the storage key (exit 3, naming the settings) and a migrated schema (exit 4, naming the next step)', async () => {
    const url = await pg.createDatabase()
    const t = await site(url)
    const unmigrated = await runCli(['storage', 'copy', '--to', url], {env: t.env})
    expect(unmigrated.code).to.equal(4)
    expect(unmigrated.stderr).to.contain('mfc storage migrate')
    expect((await runCli(['storage', 'migrate'], {env: t.env})).code).to.equal(0)
    delete t.env.MFC_STORAGE_KEY
    const keyless = await runCli(['storage', 'copy', '--to', url], {env: t.env})
    expect(keyless.code).to.equal(3)
    expect(keyless.stderr).to.contain('storage_key_file')
    expect(keyless.stderr).to.contain('MFC_STORAGE_KEY')
    const both = await runCli(['storage', 'copy', '--to', url, '--from', url], {env: t.env})
    expect(both.code).to.equal(2)
  })

  it('moves the history (every reading, the sources, the thresholds) into PostgreSQL and back out, reading for reading', async () => {
    const url = await pg.createDatabase()
    const one = await site(url)
    expect((await runCli(['storage', 'migrate'], {env: one.env})).code).to.equal(0)
    const open = (t: TempEnv) => openHistory(join(t.stateDir, 'history.sqlite'), {retentionDays: 0, clock: {now: () => new Date()}})
    const local = await open(one)
    // Three pages of one rig, the CSV follower's rows that share one timestamp (told apart by seq),
    // a source registered without data, the thresholds and a follower offset.
    await local.insert(series(2500, Date.UTC(2026, 0, 1), {source: 'rig-1'}))
    await local.insert(Array.from({length: 5}, (_, i) => reading({source: 'file:a.csv.gz', time_hours: i})), {seqs: [0, 1, 2, 3, 4], setting: {key: 'follow:a.csv.gz', value: '5'}})
    await local.insert(series(10, Date.UTC(2026, 0, 1), {source: 'simulator', run_id: 'run-1', cell_powers: [0.1, 0.2, 0.3, 0.4, 0.5]}))
    await local.putSource({name: 'rig-1', description: 'Stack A', location: 'Lab 2'})
    await local.putSource({name: 'rig-9', cells: 3})
    await local.putSetting('alerts:thresholds', JSON.stringify([{parameter: 'total_power', min: 0.001}]))
    await local.close()

    const to = await runCli(['storage', 'copy', '--to', url, '--json'], {env: one.env})
    expect(to.code, to.stdout + to.stderr).to.equal(0)
    expect(parseJson<CopyJson>(to).history).to.deep.equal({readings: 2515, sources: 4, settings: 2, verified: true})
    expect(to.stdout).to.not.contain('PRIVATE')
    const db = url.split('/').pop()
    expect(await pg.psql('SELECT count(*) FROM mfc_readings', db)).to.equal('2515')

    const again = await runCli(['storage', 'copy', '--to', url, '--json'], {env: one.env})
    expect(again.code).to.equal(4)
    expect(parseJson<{error: {code: string; message: string}}>(again).error.message).to.contain('2515 reading(s)')
    expect(await pg.psql('SELECT count(*) FROM mfc_readings', db)).to.equal('2515')

    const two = await site(url)
    const from = await runCli(['storage', 'copy', '--from', url, '--json'], {env: two.env})
    expect(from.code, from.stdout + from.stderr).to.equal(0)
    expect(parseJson<CopyJson>(from).history).to.deep.equal({readings: 2515, sources: 4, settings: 2, verified: true})
    const [a, b] = [await open(one), await open(two)]
    try {
      const all = async (h: History, source: string) => {
        const readings: Reading[] = []
        for await (const page of h.pages({source})) readings.push(...page)
        return readings
      }

      expect(await b.sources()).to.deep.equal(await a.sources())
      for (const {name} of await a.sources()) expect(await all(b, name), name).to.deep.equal(await all(a, name))
      for (const key of ['alerts:thresholds', 'follow:a.csv.gz']) expect(await b.getSetting(key)).to.equal(await a.getSetting(key))
      expect(await b.count()).to.equal(2515)
    } finally {
      await a.close()
      await b.close()
    }
  })
})
