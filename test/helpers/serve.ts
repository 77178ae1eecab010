import {readFileSync} from 'node:fs'
import {request as httpsRequest} from 'node:https'
import {request as httpRequest} from 'node:http'
import type {PeerCertificate, TLSSocket} from 'node:tls'

import {systemClock} from '../../src/lib/clock.js'
import {type MfcConfig, type SettingOverrides, resolveConfig} from '../../src/lib/config.js'
import {MfcEventBus} from '../../src/lib/events.js'
import {silentLogger, type Logger} from '../../src/lib/logger.js'
import {CertManager} from '../../src/services/certificates/cert-manager.js'
import {LocalCaIssuer} from '../../src/services/issuers/local-ca-issuer.js'
import {FileCertStore} from '../../src/services/store/file-cert-store.js'
import {ServeRuntime, type ServeInfo, type ServeRuntimeOptions} from '../../src/services/servers/runtime.js'
import {type TempEnv, tempEnv} from './cli.js'

export const TEST_TOKEN = 'test-token-0123456789abcdefghijklmnop'

export interface TestSite {
  temp: TempEnv
  config: MfcConfig
  caPem: string
  env: NodeJS.ProcessEnv
  /** Issues a new certificate version through the local CA (what `ssl init --force` does). */
  reissue(): Promise<{serial: string}>
  reconfig(overrides?: SettingOverrides): MfcConfig
}

/** A temp config/state dir with a local-CA certificate for localhost, minted now. */
export async function testSite(overrides: SettingOverrides = {}, extraEnv: NodeJS.ProcessEnv = {}): Promise<TestSite> {
  const temp = await tempEnv('mfc-serve-')
  const env = {...temp.env, MFC_API_TOKEN: TEST_TOKEN, ...extraEnv}
  const make = (o: SettingOverrides = overrides) => resolveConfig({env, overrides: o, isRoot: false})
  const config = make()
  const issue = async () => {
    const current = make()
    const manager = new CertManager(current, new FileCertStore(current.paths.storeDir), systemClock, new MfcEventBus())
    const result = await manager.obtain({
      domains: ['localhost', '127.0.0.1', '::1'], issuer: new LocalCaIssuer(current.paths, systemClock),
      keySpec: {type: 'ecdsa', curve: 'P-256'}, replace: true, command: 'test', settings: {ca_file: current.paths.caCertFile},
    })
    return {serial: result.stored.meta.serial}
  }

  await issue()
  const site: TestSite = {
    temp, env, config, caPem: readFileSync(config.paths.caCertFile, 'utf8'),
    reissue: issue,
    reconfig: (o) => make(o ?? overrides),
  }
  site.config = make()
  return site
}

export interface Running {
  runtime: ServeRuntime
  info: ServeInfo
  url(name: 'api' | 'dashboard' | 'streamer'): string
  close(): Promise<void>
}

/** Starts the three servers on port 0 (HTTP port off unless asked). */
export async function startServe(site: TestSite, options: Partial<ServeRuntimeOptions> = {}, logger: Logger = silentLogger): Promise<Running> {
  const runtime = new ServeRuntime({
    config: options.config ?? site.config,
    logger,
    apiToken: {token: TEST_TOKEN, source: 'env'},
    version: '0.0.0-test',
    ports: {api: 0, dashboard: 0, streamer: 0, http: null, ...options.ports},
    dashboardAssetsDir: null,
    ...options,
  })
  const info = await runtime.start()
  return {
    runtime,
    info,
    url: (name) => info.services.find((s) => s.name === name)!.url.replace('localhost', '127.0.0.1'),
    close: () => runtime.close(),
  }
}

export interface Reply {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json: any
  peerCert?: PeerCertificate
}

export interface RequestOptions {
  method?: string
  headers?: Record<string, string>
  body?: string | Buffer
  ca?: string
  /** false: a new TLS connection per request (the default, so each sees the current certificate). */
  agent?: any
}

/** One HTTPS (or HTTP) request trusting the test CA; resolves with status, headers, body. */
export function fetchText(url: string, options: RequestOptions = {}): Promise<Reply> {
  const target = new URL(url)
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest
  // Node sends DELETE/OPTIONS bodies without a length unless told.
  const headers = options.body === undefined ? options.headers : {...options.headers, 'content-length': String(Buffer.byteLength(options.body))}
  return new Promise((resolve, reject) => {
    const req = send(target, {
      method: options.method ?? 'GET', headers, ca: options.ca, agent: options.agent ?? false, servername: 'localhost',
    } as never, (res) => {
      const chunks: Buffer[] = []
      const peerCert = target.protocol === 'https:' ? (res.socket as TLSSocket).getPeerCertificate?.() : undefined
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString()
        let json: unknown
        try {
          json = JSON.parse(body)
        } catch {}

        resolve({status: res.statusCode ?? 0, headers: res.headers, body, json, peerCert})
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(options.body)
  })
}

export function bearer(token = TEST_TOKEN): Record<string, string> {
  return {authorization: `Bearer ${token}`}
}
