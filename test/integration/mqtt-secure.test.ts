import {expect} from 'chai'
import {readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import mqtt from 'mqtt'
import {Agent, fetch} from 'undici'

import {ERROR_CODES} from '../../src/lib/errors.js'
import {parseJson, runCli} from '../helpers/cli.js'
import {type SecureMosquitto, startSecureMosquitto} from '../helpers/mosquitto.js'
import {freePorts} from '../helpers/ports.js'
import {type ServeProcess, spawnServe, writeDataSettings} from '../helpers/serve-site.js'
import {TEST_TOKEN, type TestSite, testSite} from '../helpers/serve.js'

type Json = any

const reading = (ts: number) => ({timestamp: ts, time_hours: 0, reservoir_concentration: 25, outlet_concentration: 24.9, total_power: 0.002, cell_voltages: [0.5, 0.5, 0.5, 0.5, 0.5]})
const HOUR_AGO = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: T
  do {
    last = await probe()
    if (ok(last)) return last
    await new Promise((resolve) => setTimeout(resolve, 100))
  } while (Date.now() < deadline)
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last).slice(0, 500)}`)
}

/**
 * MQTT over TLS with logins, against Debian's Mosquitto with `allow_anonymous false`, a
 * mosquitto_passwd password file, an ACL and a throwaway openssl CA: what a lab's broker looks
 * like. Each case runs its own `mfc serve` with the broker settings under test.
 */
describe('MQTT over TLS with a user name and password, against a real Mosquitto', function () {
  this.timeout(120_000)
  let broker: SecureMosquitto
  let publisher: mqtt.MqttClient
  const sites: TestSite[] = []
  const serves: ServeProcess[] = []
  const dispatchers: Agent[] = []

  /** A site whose serve subscribes to `lab/<source>/readings` on `port` (the TLS listener) with `settings`, and its API. */
  async function site(options: {port?: number; env?: NodeJS.ProcessEnv; settings?: (s: TestSite) => Record<string, unknown>}) {
    const s = await testSite({}, options.env ?? {})
    sites.push(s)
    const port = options.port ?? broker.tlsPort
    writeDataSettings(s, {
      simulation_autostart: false, rate_limit_per_minute: 0, mqtt_topic: 'lab/<source>/readings', mqtt_client_id: `mfc-secure-${sites.length}-${port}`,
      mqtt_url: `mqtts://127.0.0.1:${port}`, mqtt_ca_file: broker.caFile, mqtt_username: broker.users.subscriber.name, ...options.settings?.(s),
    })
    const serve = await spawnServe(s)
    serves.push(serve)
    const dispatcher = new Agent({connect: {ca: s.caPem}})
    dispatchers.push(dispatcher)
    const call = async (path: string, init: {method?: string; body?: unknown} = {}) => {
      const response = await fetch(serve.url('api') + path, {
        method: init.method ?? 'GET', dispatcher, body: init.body === undefined ? undefined : JSON.stringify(init.body),
        headers: {authorization: `Bearer ${TEST_TOKEN}`, ...(init.body === undefined ? {} : {'content-type': 'application/json'})},
      })
      const text = await response.text()
      return {status: response.status, text, json: text.startsWith('{') || text.startsWith('[') ? JSON.parse(text) as Json : undefined}
    }

    return {site: s, serve, call}
  }

  /** A file holding `secret` (with the newline an editor adds) in the site's config dir. */
  const secretFile = (s: TestSite, name: string, secret: string, mode = 0o600) => {
    const file = join(s.temp.configDir, name)
    writeFileSync(file, `${secret}\n`, {mode})
    return file
  }

  /** The `err` of the log's "mqtt error" lines. */
  const logged = (serve: ServeProcess) => readFileSync(serve.logFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as Json).filter((l) => l.msg === 'mqtt error').map((l) => l.err as string)

  /** Everything a user or a log reader can see of a running serve, to look for a secret in. */
  const visible = async (s: TestSite, serve: ServeProcess, call: (path: string) => Promise<{text: string}>) => [
    readFileSync(serve.logFile, 'utf8'), serve.output(), (await call('/mqtt/status')).text, (await call('/metrics')).text, (await call('/health')).text,
    readFileSync(`/proc/${serve.pid}/cmdline`, 'utf8'), (await runCli(['status'], {env: s.env})).stdout, (await runCli(['status', '--json'], {env: s.env})).stdout,
  ].join('\n')

  before(async () => {
    const [tlsPort, mtlsPort] = await freePorts(2)
    broker = await startSecureMosquitto(tlsPort, mtlsPort)
    publisher = await mqtt.connectAsync(`mqtts://127.0.0.1:${tlsPort}`, {
      clientId: `rig-${tlsPort}`, ca: readFileSync(broker.caFile), username: broker.users.publisher.name, password: broker.users.publisher.password, reconnectPeriod: 200,
    })
  })

  after(async () => {
    await publisher?.endAsync(true)
    for (const dispatcher of dispatchers) await dispatcher.close()
    for (const serve of serves) await serve.stop()
    await broker?.stop()
    for (const s of sites) await s.temp.cleanup()
  })

  it('delivers over mqtts with the right CA and a password file, and `mfc status` shows the subscription in text and --json', async () => {
    const password = broker.users.subscriber.password
    const {site: s, serve, call: api} = await site({settings: (t) => ({mqtt_password_file: secretFile(t, 'mqtt-password', password)})})
    await until('the subscription', () => api('/mqtt/status'), (r) => r.json.connected === true)
    await publisher.publishAsync('lab/rig-tls/readings', JSON.stringify([reading(HOUR_AGO), reading(HOUR_AGO + 1000)]), {qos: 1})
    const rows = await until('2 readings', async () => (await api('/data/range?source=rig-tls')).json as Json[], (r) => r.length === 2)
    expect(rows.map((r) => r.source)).to.deep.equal(['rig-tls', 'rig-tls'])
    expect((await api('/mqtt/status')).json).to.include({
      configured: true, connected: true, url: `mqtts://127.0.0.1:${broker.tlsPort}`, subscription: 'lab/+/readings', username: 'mfc', client_certificate: false, messages: 1, last_error: null,
    })

    const text = await runCli(['status'], {env: s.env})
    expect(text.code, text.stdout + text.stderr).to.equal(0)
    expect(text.stdout).to.match(new RegExp(`\\[up\\] +mqtt +mqtts://127\\.0\\.0\\.1:${broker.tlsPort} as mfc lab/\\+/readings +connected, 1 messages, 0 rejected, 0 reconnects, last 20`))
    const json = parseJson<Json>(await runCli(['status', '--json'], {env: s.env}))
    expect(json.mqtt).to.include({url: `mqtts://127.0.0.1:${broker.tlsPort}`, topic: 'lab/<source>/readings', subscription: 'lab/+/readings', connected: true, messages: 1, rejected: 0, username: 'mfc'})
    expect(await visible(s, serve, api)).not.to.include(password)
  })

  it('with a wrong CA: the log, /mqtt/status and `mfc status` name the broker and the cause, and serve goes on serving', async () => {
    const {site: s, serve, call} = await site({settings: () => ({mqtt_ca_file: broker.wrongCaFile}), env: {MFC_MQTT_PASSWORD: broker.users.subscriber.password}})
    const status = await until('the TLS failure', () => call('/mqtt/status'), (r) => r.json?.last_error !== null)
    const expected = `mqtts://127.0.0.1:${broker.tlsPort}: self-signed certificate in certificate chain; its TLS certificate is not trusted: set mqtt_ca_file to the CA that signed it`
    expect(status.json).to.include({connected: false, last_error: expected})
    expect(logged(serve)).to.include(expected)
    const report = await runCli(['status'], {env: s.env})
    expect(report.code, 'degraded: WARNING').to.equal(1)
    expect(report.stdout).to.include(`[down] mqtt      mqtts://127.0.0.1:${broker.tlsPort} as mfc lab/+/readings  not connected`)
    expect(report.stdout).to.include(`Problem: mqtt: not connected to mqtts://127.0.0.1:${broker.tlsPort} (${expected})`)
    // The servers answer and HTTP ingest stores, broker or not.
    expect((await call('/health')).status).to.equal(200)
    const posted = await call('/data/ingest', {method: 'POST', body: {source: 'rig-http', readings: [reading(HOUR_AGO)]}})
    expect(posted.status, posted.text).to.equal(200)
    expect((await call('/data/range?source=rig-http')).json).to.have.length(1)
    expect(await visible(s, serve, call)).not.to.include(broker.users.subscriber.password)
  })

  it('with a wrong password (MFC_MQTT_PASSWORD): "Not authorized" and the user are named, the password never', async () => {
    const wrong = 'wrong-Pa55-w0rd-9137'
    const {site: s, serve, call} = await site({env: {MFC_MQTT_PASSWORD: wrong}})
    const status = await until('the refused login', () => call('/mqtt/status'), (r) => r.json?.last_error !== null)
    expect(status.json.connected).to.equal(false)
    expect(status.json.last_error).to.equal(`mqtts://127.0.0.1:${broker.tlsPort}: Connection refused: Not authorized; the broker refused user "mfc": check mqtt_username and the password (mqtt_password_file or MFC_MQTT_PASSWORD)`)
    expect(logged(serve)).to.include(status.json.last_error)
    const json = parseJson<Json>(await runCli(['status', '--json'], {env: s.env}))
    expect(json.problems.join('\n')).to.include('Not authorized')
    expect(await visible(s, serve, call)).not.to.include(wrong)
  })

  it('refuses a password file its group or others may read, with the chmod to run, and never prints the password', async () => {
    const s = await testSite()
    sites.push(s)
    const password = 'readable-pw-44xq'
    const file = secretFile(s, 'mqtt-password', password, 0o644)
    writeDataSettings(s, {simulation_autostart: false, mqtt_url: `mqtts://127.0.0.1:${broker.tlsPort}`, mqtt_username: 'mfc', mqtt_password_file: file})
    const result = await runCli(['serve', '--no-http', '--api-port', '0', '--dashboard-port', '0', '--stream-port', '0'], {env: s.env})
    expect(result.code, result.stdout + result.stderr).to.equal(ERROR_CODES.MFC_MQTT_CREDENTIALS.exit)
    expect(result.stderr).to.include(`${file} ("mqtt_password_file" in ${s.config.paths.sslConfigFile}) holds a secret but is readable by others (mode 644)`)
    expect(result.stderr).to.include(`chmod 600 ${file}`)
    expect(result.stdout + result.stderr).not.to.include(password)
  })

  it('presents a client certificate (mqtt_cert_file, mqtt_key_file) to a broker with require_certificate, and says when one is missing', async () => {
    const password = broker.users.subscriber.password
    const without = await site({port: broker.mtlsPort, env: {MFC_MQTT_PASSWORD: password}})
    const refused = await until('the refused handshake', () => without.call('/mqtt/status'), (r) => r.json?.last_error !== null)
    expect(refused.json.last_error).to.match(new RegExp(`^mqtts://127\\.0\\.0\\.1:${broker.mtlsPort}: .*certificate required.*; the broker wants a client certificate: set mqtt_cert_file and mqtt_key_file$`))
    await without.serve.stop()

    const {call} = await site({port: broker.mtlsPort, env: {MFC_MQTT_PASSWORD: password}, settings: () => ({mqtt_cert_file: broker.clientCertFile, mqtt_key_file: broker.clientKeyFile})})
    await until('the subscription', () => call('/mqtt/status'), (r) => r.json?.connected === true)
    expect((await call('/mqtt/status')).json).to.include({client_certificate: true, last_error: null})
    await publisher.publishAsync('lab/rig-mtls/readings', JSON.stringify(reading(HOUR_AGO)), {qos: 1})
    await until('the reading', async () => (await call('/data/range?source=rig-mtls')).json as Json[], (r) => r.length === 1)
  })
})
