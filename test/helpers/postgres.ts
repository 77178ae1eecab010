import {execFile, execFileSync} from 'node:child_process'
import {chmod, chown, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePort} from './ports.js'

const run = promisify(execFile)
const BIN = '/usr/lib/postgresql/15/bin'

/** Options for a throw-away PostgreSQL 15 cluster. */
export interface PostgresOptions {
  /** Require TLS on TCP (hostssl only) with a server certificate for 127.0.0.1/localhost. */
  tls?: boolean
  /** Require a password (scram-sha-256) for TCP logins; the role `mfc` gets this password. */
  password?: string
}

/**
 * A real PostgreSQL 15 cluster in a temp directory owned by `postgres`, listening on
 * 127.0.0.1 at a free port. Superuser `mfc` (trust unless `password` is set).
 * `stop()` is idempotent and always removes the directory; `crash()` is `-m immediate`.
 */
export interface TestPostgres {
  port: number
  dir: string
  /** CA that signed the server certificate (when `tls`). */
  caFile?: string
  /** URL of a database (without password). */
  url(database?: string): string
  /** A fresh, empty database; returns its URL. */
  createDatabase(name?: string): Promise<string>
  /** psql -c SQL against `database`; returns stdout (unaligned, tuples only). */
  psql(sql: string, database?: string): Promise<string>
  start(): Promise<void>
  crash(): Promise<void>
  stop(): Promise<void>
}

const asPostgres = (file: string, args: string[]) => run('runuser', ['-u', 'postgres', '--', join(BIN, file), ...args], {timeout: 60_000})

let counter = 0
let owner: {uid: number; gid: number} | undefined
/** PostgreSQL refuses to run as root: its files belong to the `postgres` user. */
const postgresUser = () => owner ??= {
  uid: Number(execFileSync('id', ['-u', 'postgres'], {encoding: 'utf8'})),
  gid: Number(execFileSync('id', ['-g', 'postgres'], {encoding: 'utf8'})),
}
const giveToPostgres = (file: string) => chown(file, postgresUser().uid, postgresUser().gid)

export async function startPostgres(options: PostgresOptions = {}): Promise<TestPostgres> {
  const dir = await mkdtemp(join(tmpdir(), 'cluster-pg-'))
  await giveToPostgres(dir)
  await chmod(dir, 0o700)
  const data = join(dir, 'data')
  const port = await freePort()
  let running = false
  const env = {...process.env, PGPASSWORD: options.password ?? ''}

  const pg: TestPostgres = {
    port,
    dir,
    url: (database = 'postgres') => `postgres://mfc@127.0.0.1:${port}/${database}`,
    async createDatabase(name = `t${process.pid}_${++counter}`) {
      await pg.psql(`CREATE DATABASE ${name}`)
      return pg.url(name)
    },
    async psql(sql, database = 'postgres') {
      const ssl = options.tls ? 'require' : 'disable'
      const {stdout} = await run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', `postgres://mfc@127.0.0.1:${port}/${database}?sslmode=${ssl}`, '-c', sql], {env, timeout: 30_000})
      return stdout.trim()
    },
    async start() {
      await asPostgres('pg_ctl', ['-D', data, '-o', `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1`, '-l', join(dir, 'log'), '-w', 'start'])
      running = true
    },
    async crash() {
      if (!running) return
      running = false
      await asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop'])
    },
    async stop() {
      try {
        if (running) await asPostgres('pg_ctl', ['-D', data, '-m', 'fast', 'stop'])
      } finally {
        running = false
        await rm(dir, {force: true, recursive: true})
      }
    },
  }

  try {
    const pwfile = join(dir, 'pw')
    const initArgs = ['-D', data, '-U', 'mfc', '-A', 'trust', '--no-sync']
    if (options.password) {
      await writeFile(pwfile, options.password + '\n', {mode: 0o600})
      await giveToPostgres(pwfile)
      initArgs.push('--pwfile', pwfile, '--auth-host=scram-sha-256', '--auth-local=trust')
    }

    await asPostgres('initdb', initArgs)
    if (options.tls) pg.caFile = await serverTls(dir, data, options.password ? 'scram-sha-256' : 'trust')
    await pg.start()
    return pg
  } catch (error) {
    await pg.stop().catch(() => {})
    throw error
  }
}

/** A CA + server certificate for 127.0.0.1, ssl=on, and TCP logins over TLS only. */
async function serverTls(dir: string, data: string, method: string): Promise<string> {
  const caKey = join(dir, 'ca.key')
  const caFile = join(dir, 'ca.pem')
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caFile, '-days', '2', '-subj', '/CN=mfc test db CA'])
  await run('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(data, 'server.key'), '-out', join(dir, 'server.csr'), '-subj', '/CN=localhost'])
  await writeFile(join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  await run('openssl', ['x509', '-req', '-in', join(dir, 'server.csr'), '-CA', caFile, '-CAkey', caKey, '-CAcreateserial', '-out', join(data, 'server.crt'), '-days', '2', '-extfile', join(dir, 'ext.cnf')])
  await giveToPostgres(join(data, 'server.key'))
  await giveToPostgres(join(data, 'server.crt'))
  await chmod(join(data, 'server.key'), 0o600)
  await writeFile(join(data, 'postgresql.auto.conf'), "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n", {flag: 'a'})
  // TCP only over TLS: a plain-text login is refused, so a test proves the client used TLS.
  await writeFile(join(data, 'pg_hba.conf'), `local all all trust\nhostssl all all 127.0.0.1/32 ${method}\nhostnossl all all 127.0.0.1/32 reject\n`)
  return caFile
}
