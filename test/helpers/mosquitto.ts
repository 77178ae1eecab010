import {type ChildProcess, execFileSync, spawn} from 'node:child_process'
import {chmodSync, writeFileSync} from 'node:fs'
import {mkdtemp, rm} from 'node:fs/promises'
import {connect} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

/** A real Mosquitto (Debian's) on 127.0.0.1:`port`, configured in `dir`. */
export interface Mosquitto {
  port: number
  output(): string
  stop(): Promise<void>
}

function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({host: '127.0.0.1', port}, () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * Starts `mosquitto -c FILE` and resolves once it accepts connections. `extra` lines go into the
 * listener's config (TLS files, password_file). In-memory only (persistence false): a restart
 * forgets sessions, as a broker without persistence does.
 */
export async function startMosquitto(dir: string, port: number, extra: string[] = ['allow_anonymous true']): Promise<Mosquitto> {
  const file = join(dir, `mosquitto-${port}.conf`)
  writeFileSync(file, [`listener ${port} 127.0.0.1`, ...extra, 'persistence false', 'log_dest stdout', 'log_type error', 'log_type warning', ''].join('\n'))
  const child: ChildProcess = spawn('mosquitto', ['-c', file], {stdio: ['ignore', 'pipe', 'pipe']})
  let output = ''
  child.stdout!.on('data', (c) => (output += c))
  child.stderr!.on('data', (c) => (output += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  for (let i = 0; i < 100 && !(await accepting(port)); i++) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited (${child.exitCode}):\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  return {
    port,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

/** A broker with TLS, logins and an ACL, and the files a client needs to reach it. */
export interface SecureMosquitto extends Mosquitto {
  /** TLS listener: user name + password, no client certificate. */
  tlsPort: number
  /** TLS listener with `require_certificate true` (and the same logins). */
  mtlsPort: number
  /** The throwaway CA that signed the broker's and the client's certificates. */
  caFile: string
  /** Another CA (signed nothing the broker presents). */
  wrongCaFile: string
  clientCertFile: string
  clientKeyFile: string
  /** Logins in the broker's password_file (mosquitto_passwd -b), read by the ACL as below. */
  users: {subscriber: {name: string; password: string}; publisher: {name: string; password: string}}
}

/**
 * Debian's Mosquitto with `allow_anonymous false`, a `password_file` made with `mosquitto_passwd
 * -b`, an ACL (the subscriber may read `lab/#`, the publisher write it) and two TLS listeners on
 * free ports, the second requiring a client certificate. Certificates come from a throwaway CA
 * made with openssl (SANs 127.0.0.1 and localhost). Run as root, mosquitto drops to its own user
 * before it loads the files, so they live in a directory of their own owned by that user.
 */
export async function startSecureMosquitto(tlsPort: number, mtlsPort: number): Promise<SecureMosquitto & {dir: string}> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-mosquitto-'))
  const f = (name: string) => join(dir, name)
  const run = (command: string, args: string[]) => execFileSync(command, args, {cwd: dir, stdio: ['ignore', 'pipe', 'pipe']})
  const key = (name: string) => run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f(name)])
  const sign = (name: string, subject: string, ext: string) => {
    key(`${name}.key`)
    run('openssl', ['req', '-new', '-key', f(`${name}.key`), '-subj', subject, '-out', f(`${name}.csr`)])
    writeFileSync(f(`${name}.ext`), ext)
    run('openssl', ['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`)])
  }

  for (const ca of ['ca', 'wrong-ca']) {
    key(`${ca}.key`)
    run('openssl', ['req', '-x509', '-new', '-key', f(`${ca}.key`), '-subj', `/CN=mfc test ${ca}`, '-days', '2', '-out', f(`${ca}.pem`)])
  }

  sign('broker', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n')
  sign('client', '/CN=mfc-client', 'extendedKeyUsage=clientAuth\n')
  const users = {subscriber: {name: 'mfc', password: 'sub-pw-Zq81xK'}, publisher: {name: 'rig-writer', password: 'pub-pw-Lm27vT'}}
  writeFileSync(f('passwd'), '')
  for (const user of Object.values(users)) run('mosquitto_passwd', ['-b', f('passwd'), user.name, user.password])
  writeFileSync(f('acl'), `user ${users.subscriber.name}\ntopic read lab/#\n\nuser ${users.publisher.name}\ntopic write lab/#\n`)
  for (const name of ['ca.key', 'wrong-ca.key', 'broker.key', 'client.key']) chmodSync(f(name), 0o600)
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'mosquitto', dir])
  const tls = [`cafile ${f('ca.pem')}`, `certfile ${f('broker.pem')}`, `keyfile ${f('broker.key')}`]
  const broker = await startMosquitto(dir, tlsPort, [
    'allow_anonymous false', `password_file ${f('passwd')}`, `acl_file ${f('acl')}`, ...tls,
    `listener ${mtlsPort} 127.0.0.1`, ...tls, 'require_certificate true',
  ])
  return {
    ...broker, dir, tlsPort, mtlsPort, users,
    caFile: f('ca.pem'), wrongCaFile: f('wrong-ca.pem'), clientCertFile: f('client.pem'), clientKeyFile: f('client.key'),
    async stop() {
      await broker.stop()
      await rm(dir, {recursive: true, force: true})
    },
  }
}
