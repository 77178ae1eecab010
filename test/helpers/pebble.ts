import {type ChildProcess, execFile, spawn} from 'node:child_process'
import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import {request as httpsRequest} from 'node:https'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {freePorts} from './ports.js'

const run = promisify(execFile)

export interface PebbleOptions {
  /** PEBBLE_WFE_NONCEREJECT: percent of good nonces rejected as badNonce (Pebble's default is 5). */
  nonceReject?: number
  /** PEBBLE_AUTHZREUSE: percent of valid authorizations reused (0 forces a challenge every time). */
  authzReuse?: number
  /** certificateValidityPeriod in seconds (Debian's 2.4.0 defaults to 5 years). */
  validityPeriod?: number
  /** Reuse a listener certificate minted earlier (a process that must trust it from its start). */
  tls?: ListenerTls
  /** External Account Binding required, with these key IDs and base64url HMAC keys. */
  externalAccountKeys?: Record<string, string>
  /** Resolve through this DNS server (host:port, e.g. a real BIND9) instead of challtestsrv. */
  dnsServer?: string
}

/** A listener CA and certificate for 127.0.0.1/localhost, shared by Pebble and test stubs. */
export interface ListenerTls {
  dir: string
  /** Trust anchor for clients (NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, LEGO_CA_CERTIFICATES). */
  caFile: string
  certFile: string
  keyFile: string
  ca: string
  cert: string
  key: string
}

/** A running Pebble + pebble-challtestsrv (DNS only) on random loopback ports. */
export interface Pebble {
  directory: string
  managementUrl: string
  /** The port Pebble's VA connects to for HTTP-01: point the client's listener here. */
  httpPort: number
  tls: ListenerTls
  /** Environment for a child CLI so it trusts Pebble's listener. */
  env: NodeJS.ProcessEnv
  /** Pebble's issuing root (regenerated at every start) and intermediate, PEM. */
  root(): Promise<string>
  intermediate(): Promise<string>
  /** Pebble's output so far (for failure messages). */
  logs(): string
  /** Stops Pebble only (the CA goes down); challtestsrv keeps running until stop(). */
  stopCa(): Promise<void>
  /** Stops both processes and removes the temp directory; idempotent. */
  stop(): Promise<void>
}

/** Mints a small CA and a 127.0.0.1/localhost server certificate with the openssl CLI. */
export async function mintListenerTls(dir?: string): Promise<ListenerTls> {
  const base = dir ?? await mkdtemp(join(tmpdir(), 'mfc-tls-'))
  const f = (name: string) => join(base, name)
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.pem'),
    '-days', '2', '-subj', '/CN=mfc test listener CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  await run('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('key.pem'), '-out', f('req.csr'), '-subj', '/CN=localhost'])
  await writeFile(f('ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n')
  await run('openssl', ['x509', '-req', '-in', f('req.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-out', f('cert.pem'), '-extfile', f('ext.cnf')])
  const [ca, cert, key] = await Promise.all([readFile(f('ca.pem'), 'utf8'), readFile(f('cert.pem'), 'utf8'), readFile(f('key.pem'), 'utf8')])
  return {dir: base, caFile: f('ca.pem'), certFile: f('cert.pem'), keyFile: f('key.pem'), ca, cert, key}
}

/** GET over HTTPS trusting only `ca`; resolves status and body. */
export function httpsGet(url: string, ca: string): Promise<{status: number; body: string}> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {ca, timeout: 5000}, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk) => {
        body += chunk
      })
      res.on('end', () => resolve({status: res.statusCode ?? 0, body}))
    })
    req.on('timeout', () => req.destroy(new Error(`timeout: ${url}`)))
    req.on('error', reject)
    req.end()
  })
}

async function waitFor(check: () => Promise<boolean>, what: string, logs: () => string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }

  throw new Error(`${what} did not come up.\n${logs()}`)
}

function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/**
 * Starts pebble-challtestsrv as the DNS server (every name -> 127.0.0.1) and Pebble with
 * PEBBLE_VA_NOSLEEP=1, both on free loopback ports. Callers must `stop()` in an after() hook.
 */
export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  const dir = await mkdtemp(join(tmpdir(), 'mfc-pebble-'))
  const tls = options.tls ?? await mintListenerTls(dir)
  const [listen, management, httpPort, tlsPort, dns, challMgmt] = await freePorts(6)
  const config = {pebble: {
    listenAddress: `127.0.0.1:${listen}`, managementListenAddress: `127.0.0.1:${management}`,
    certificate: tls.certFile, privateKey: tls.keyFile, httpPort, tlsPort,
    ocspResponderURL: '', externalAccountBindingRequired: options.externalAccountKeys !== undefined,
    ...(options.externalAccountKeys ? {externalAccountMACKeys: options.externalAccountKeys} : {}),
    ...(options.validityPeriod ? {certificateValidityPeriod: options.validityPeriod} : {}),
  }}
  await writeFile(join(dir, 'pebble-config.json'), JSON.stringify(config))
  let output = ''
  const collect = (child: ChildProcess, tag: string) => {
    child.stdout?.on('data', (chunk) => {
      output += `[${tag}] ${chunk}`
    })
    child.stderr?.on('data', (chunk) => {
      output += `[${tag}] ${chunk}`
    })
  }

  const chall = spawn('pebble-challtestsrv', ['-dns01', `127.0.0.1:${dns}`, '-http01', '', '-https01', '', '-tlsalpn01', '',
    '-management', `127.0.0.1:${challMgmt}`, '-defaultIPv6', ''], {stdio: ['ignore', 'pipe', 'pipe']})
  collect(chall, 'challtestsrv')
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH, PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: String(options.nonceReject ?? 5),
    PEBBLE_AUTHZREUSE: String(options.authzReuse ?? 0),
  }
  const pebble = spawn('pebble', ['-config', join(dir, 'pebble-config.json'), '-dnsserver', options.dnsServer ?? `127.0.0.1:${dns}`], {env, cwd: dir, stdio: ['ignore', 'pipe', 'pipe']})
  collect(pebble, 'pebble')
  const directory = `https://127.0.0.1:${listen}/dir`
  const managementUrl = `https://127.0.0.1:${management}`
  let stopped = false
  const handle: Pebble = {
    directory, managementUrl, httpPort, tls,
    env: {NODE_EXTRA_CA_CERTS: tls.caFile},
    root: async () => (await httpsGet(`${managementUrl}/roots/0`, tls.ca)).body,
    intermediate: async () => (await httpsGet(`${managementUrl}/intermediates/0`, tls.ca)).body,
    logs: () => output.slice(-8000),
    stopCa: () => stopChild(pebble),
    async stop() {
      if (stopped) return
      stopped = true
      await Promise.all([stopChild(pebble), stopChild(chall)])
      await rm(dir, {force: true, recursive: true})
    },
  }
  try {
    await waitFor(async () => (await httpsGet(directory, tls.ca)).status === 200, 'Pebble', () => handle.logs())
  } catch (error) {
    await handle.stop()
    throw error
  }

  return handle
}
