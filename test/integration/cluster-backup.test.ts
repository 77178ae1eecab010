import {execFileSync} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {expect} from 'chai'

import {type TempEnv, parseJson, runCli, tempEnv} from '../helpers/cli.js'
import {type TestPostgres, startPostgres} from '../helpers/postgres.js'

interface BackupJson {file: string; database: {source: string; tables: Record<string, number>}}
interface RestoreJson {applied: boolean; database: {target: string; tables: Record<string, number>}}
interface ErrorJson {error: {code: string; message: string; suggestions: string[]}}

const PASSWORD = 'db-pass-' + randomBytes(6).toString('hex')

describe('cluster backup: mfc backup / restore with pg_dump and pg_restore (real PostgreSQL 15)', function () {
  this.timeout(180_000)
  let pg: TestPostgres
  let node: TempEnv
  let source: string
  let archive: string
  let original: Record<string, string>
  const key = randomBytes(32).toString('base64')
  const db = (url: string) => url.split('/').pop()!

  /** table -> "rows md5-of-all-rows", for every mfc table and the extra one. */
  async function fingerprint(database: string): Promise<Record<string, string>> {
    const tables = (await pg.psql("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1", database)).split('\n').filter(Boolean)
    const out: Record<string, string> = {}
    for (const table of tables) out[table] = await pg.psql(`SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), '-') FROM ${table} t`, database)
    return out
  }

  before(async () => {
    pg = await startPostgres({password: PASSWORD})
    source = await pg.createDatabase('mfc_source')
    node = await tempEnv('mfc-cluster-backup-')
    await mkdir(node.configDir, {recursive: true})
    // The storage key lies in the config directory, the place an operator would likely put it.
    const keyFile = join(node.configDir, 'storage.key')
    await writeFile(keyFile, key + '\n', {mode: 0o600})
    Object.assign(node.env, {MFC_STORAGE_URL: source, MFC_STORAGE_KEY_FILE: keyFile, PGPASSWORD: PASSWORD})
    // The single-machine state first (with storage set, ssl init would write to the database), then migrate and copy it in.
    const {MFC_STORAGE_URL: _url, ...embedded} = node.env
    for (const args of [['ssl', 'init', '--domain', 'localhost', '--yes'], ['storage', 'migrate'], ['storage', 'copy', '--to', source]]) {
      const result = await runCli(args, {env: args[0] === 'ssl' ? embedded : node.env})
      expect(result.code, `${args.join(' ')}: ${result.stdout}${result.stderr}`).to.equal(0)
    }

    // A table mfc does not know: the dump is of the whole database.
    await pg.psql('CREATE TABLE site_notes (id serial PRIMARY KEY, note text); INSERT INTO site_notes (note) SELECT \'note \' || g FROM generate_series(1, 250) g', db(source))
    original = await fingerprint(db(source))
    expect(original.mfc_certs).to.match(/^1 /)
  })

  after(async () => {
    await node?.cleanup()
    await pg?.stop()
  })

  it('backup: pg_dump of the database in the archive with its row counts; no storage key, no password in the output', async () => {
    archive = join(node.dir, 'cluster.tar.gz')
    const result = await runCli(['backup', '--output', archive, '--json'], {env: node.env})
    expect(result.code, result.stderr).to.equal(0)
    const json = parseJson<BackupJson>(result)
    expect(json.database.source).to.equal(source)
    expect(json.database.tables).to.include({'public.mfc_certs': 1, 'public.site_notes': 250})
    expect(result.stdout + result.stderr).not.to.include(PASSWORD)
    const entries = execFileSync('tar', ['-tzf', archive], {encoding: 'utf8'}).split('\n')
    expect(entries).to.include('database.pgdump')
    expect(entries.filter((e) => e.includes('storage.key'))).to.deep.equal([])
    expect(entries).to.include('config/ssl-config.json')
  })

  it('restore refuses a cluster backup when no database is configured, and a database that has tables', async () => {
    const noStorage = await runCli(['restore', archive, '--json'], {env: {...node.env, MFC_STORAGE_URL: ''}})
    expect(noStorage.code).to.equal(2)
    expect(parseJson<ErrorJson>(noStorage).error.message).to.include('cluster backup')
    const nonEmpty = await runCli(['restore', archive, '--json'], {env: node.env})
    expect(nonEmpty.code).to.equal(4)
    const error = parseJson<ErrorJson>(nonEmpty).error
    expect(error.code).to.equal('MFC_RESTORE_NOT_EMPTY')
    expect(error.message).to.include('mfc_source').and.include('nothing was restored')
    expect(error.suggestions.join(' ')).to.include('--force')
    expect(await fingerprint(db(source))).to.deep.equal(original)
  })

  it('dropped and restored into an empty database: every table with the same rows (count and hash), the key file kept', async () => {
    await pg.psql('DROP DATABASE mfc_source')
    const target = await pg.createDatabase('mfc_restored')
    const dry = await runCli(['restore', archive, '--storage', target, '--dry-run', '--json'], {env: node.env})
    expect(dry.code, dry.stderr).to.equal(0)
    expect(await pg.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", 'mfc_restored')).to.equal('0')
    const result = await runCli(['restore', archive, '--storage', target, '--json'], {env: node.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    const json = parseJson<RestoreJson>(result)
    expect(json.applied).to.equal(true)
    expect(json.database.tables).to.include({'public.mfc_certs': 1, 'public.site_notes': 250})
    expect(await fingerprint('mfc_restored')).to.deep.equal(original)
    expect((await readFile(join(node.configDir, 'storage.key'), 'utf8')).trim()).to.equal(key)
    // The restored database serves mfc: the certificate comes back out through its store.
    const out = await tempEnv('mfc-cluster-backup-out-')
    try {
      const copy = await runCli(['storage', 'copy', '--from', target, '--json'], {env: {...out.env, MFC_STORAGE_KEY: key, PGPASSWORD: PASSWORD}})
      expect(copy.code, copy.stdout + copy.stderr).to.equal(0)
      expect(parseJson<{lineages: number; verified: boolean}>(copy)).to.include({lineages: 1, verified: true})
    } finally {
      await out.cleanup()
    }
  })

  it('--force restores over a database that has tables, replacing the backup\'s objects', async () => {
    const target = pg.url('mfc_restored')
    await pg.psql('DELETE FROM site_notes WHERE id > 10', 'mfc_restored')
    const result = await runCli(['restore', archive, '--storage', target, '--force', '--json'], {env: node.env})
    expect(result.code, result.stdout + result.stderr).to.equal(0)
    expect(await fingerprint('mfc_restored')).to.deep.equal(original)
  })

  it('--include-storage-key (only with a passphrase): the key in the archive, written back only where none is, never over another', async () => {
    const passFile = join(node.dir, 'pass')
    await writeFile(passFile, 'correct horse battery staple\n', {mode: 0o600})
    const keyed = join(node.dir, 'keyed.tgz.enc')
    const env = {...node.env, MFC_STORAGE_URL: pg.url('mfc_restored')}
    const plain = await runCli(['backup', '--output', keyed, '--include-storage-key', '--json'], {env})
    expect(plain.code).to.equal(2)
    expect(plain.stderr + plain.stdout).to.include('passphrase-file')
    const made = await runCli(['backup', '--output', keyed, '--include-storage-key', '--passphrase-file', passFile, '--json'], {env})
    expect(made.code, made.stderr).to.equal(0)
    expect(parseJson<{storageKeyIncluded: boolean; encrypted: boolean}>(made)).to.include({storageKeyIncluded: true, encrypted: true})

    // A node with another key keeps it, and nothing changes.
    const keyFile = join(node.configDir, 'storage.key')
    await writeFile(keyFile, randomBytes(32).toString('base64') + '\n', {mode: 0o600})
    const other = await readFile(keyFile, 'utf8')
    const refused = await runCli(['restore', keyed, '--passphrase-file', passFile, '--force', '--json'], {env})
    expect(refused.code).to.equal(4)
    expect(parseJson<ErrorJson>(refused).error.message).to.include('differs from the one in storage_key_file')
    expect(await readFile(keyFile, 'utf8')).to.equal(other)

    // A node that lost its key gets it back, 0600.
    await rm(keyFile)
    const restored = await runCli(['restore', keyed, '--passphrase-file', passFile, '--force', '--json'], {env})
    expect(restored.code, restored.stdout + restored.stderr).to.equal(0)
    expect(parseJson<{storageKey: string}>(restored).storageKey).to.equal('written')
    expect((await readFile(keyFile, 'utf8')).trim()).to.equal(key)
    expect((await stat(keyFile)).mode & 0o777).to.equal(0o600)
  })

  it('without pg_dump on PATH: a clear error naming the tool and the package, and no archive', async () => {
    const output = join(node.dir, 'no-tools.tar.gz')
    const result = await runCli(['backup', '--output', output, '--json'], {env: {...node.env, MFC_STORAGE_URL: pg.url('mfc_restored'), PATH: join(node.dir, 'empty-bin')}})
    expect(result.code).to.equal(4)
    const error = parseJson<ErrorJson>(result).error
    expect(error.code).to.equal('MFC_PG_TOOLS')
    expect(error.message).to.include('pg_dump was not found')
    expect(error.suggestions.join(' ')).to.include('postgresql-client')
    expect(execFileSync('ls', [node.dir], {encoding: 'utf8'})).not.to.include('no-tools.tar.gz')
  })
})
