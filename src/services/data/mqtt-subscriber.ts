import {rootCertificates} from 'node:tls'

import type {IClientOptions, MqttClient} from 'mqtt'

import type {Logger} from '../../lib/logger.js'
import {backoffDelay} from '../../lib/retry.js'
import {SOURCE_RE} from './ingest.js'

/** Where to subscribe and as whom; the password is read by the caller (file or MFC_MQTT_PASSWORD). */
export interface MqttOptions {
  url: string
  /** A topic with one `<source>` level, e.g. `mfc/<source>/readings`. */
  topic: string
  username?: string | null
  password?: string | null
  /** PEM CA bundle for an mqtts:// broker (added to the system roots). */
  ca?: string | null
  /** PEM client certificate and its key, for a broker that requires one. */
  cert?: string | null
  key?: string | null
  /** Fixed client id: with a persistent session the broker keeps QoS 1 messages while serve is down. */
  clientId: string
  /** Reconnect backoff bounds in ms (tests shorten them). */
  backoff?: {minMs: number; maxMs: number}
}

/** What `mfc status`, /mqtt/status and /metrics show about the subscription. */
export interface MqttStatus {
  /** The broker URL without credentials. */
  url: string
  topic: string
  subscription: string
  /** The user name it logs in as (never the password), or null for an anonymous login. */
  username: string | null
  /** Whether it presents a client certificate. */
  client_certificate: boolean
  connected: boolean
  messages: number
  rejected: number
  reconnects: number
  /** Why the last attempt failed, naming the broker and what to check (never a secret). */
  last_error: string | null
  last_message_at: string | null
}

/**
 * What the subscriber hands one message to. `store` resolves once the readings are durable (the
 * PUBACK goes out only then) and throws a `MFC_DATA_INVALID` error for a bad payload (logged,
 * counted and acknowledged: a broker would redeliver it forever) or any other error when storing
 * failed (no PUBACK: the broker redelivers it after the reconnect that follows).
 */
export type MqttSink = (source: string, payload: Buffer) => Promise<void>

/** `mfc/<source>/readings` -> the subscription `mfc/+/readings` and the level that names the source. */
export function topicPattern(topic: string): {filter: string; level: number} {
  const levels = topic.split('/')
  const level = levels.indexOf('<source>')
  return {filter: levels.map((l, i) => (i === level ? '+' : l)).join('/'), level}
}

/**
 * MQTT ingest over mqtt.js (MQTT 5), the only module that imports it. QoS 1 with manual acks
 * (`customHandleAcks`): mqtt.js sends the PUBACK of a message only when our callback runs, and
 * it runs after the message's readings are committed. mqtt.js handles the packets of one
 * connection one after another, so a message waits for the previous one's commit: throughput
 * per message is one commit (send batches in one message for more; bench/data-bench.ts measures
 * it). A persistent session (clean=false, fixed client id) makes the broker keep and redeliver
 * unacknowledged messages across a crash of serve; the history's (source, timestamp) key drops
 * the redelivered readings that were already stored. Reconnects use mfc's jittered backoff.
 */
export class MqttSubscriber {
  private client: MqttClient | undefined
  private attempt = 0
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private readonly pattern: {filter: string; level: number}
  private readonly state: MqttStatus

  constructor(private readonly options: MqttOptions, private readonly sink: MqttSink, private readonly logger: Logger) {
    this.pattern = topicPattern(options.topic)
    this.state = {
      url: redact(options.url), topic: options.topic, subscription: this.pattern.filter,
      username: options.username ?? null, client_certificate: Boolean(options.cert), connected: false,
      messages: 0, rejected: 0, reconnects: 0, last_error: null, last_message_at: null,
    }
  }

  status(): MqttStatus {
    return {...this.state}
  }

  /** Connects in the background (never throws; failures are logged and retried with backoff). */
  async start(): Promise<void> {
    const {connect} = await import('mqtt')
    if (this.closed) return
    const options: IClientOptions = {
      clientId: this.options.clientId,
      // MQTT 5: mqtt.js honours customHandleAcks only there, and its PUBACK can carry a reason
      // code (0x99 "payload format invalid" for a bad message).
      protocolVersion: 5,
      clean: false,
      // A week: the broker keeps the session (subscription + unacknowledged messages) while serve is down.
      properties: {sessionExpiryInterval: 604_800},
      // Backoff is ours (reconnect() below): mqtt.js's own retry has a fixed period.
      reconnectPeriod: 0,
      connectTimeout: 10_000,
      username: this.options.username ?? undefined,
      password: this.options.password ?? undefined,
      ca: this.options.ca ? [...rootCertificates, this.options.ca] : undefined,
      cert: this.options.cert ?? undefined,
      key: this.options.key ?? undefined,
      rejectUnauthorized: true,
      customHandleAcks: (topic, payload, _packet, done) => void this.handle(topic, payload, done),
    }
    this.client = connect(this.options.url, options)
    this.client.on('connect', (connack) => this.connected(connack.sessionPresent))
    this.client.on('close', () => this.disconnected())
    this.client.on('error', (error) => {
      const explained = explain(error, this.state)
      if (explained === this.state.last_error) return
      this.state.last_error = explained
      this.logger.warn({url: this.state.url, err: explained}, 'mqtt error')
    })
  }

  /** Disconnects and stops reconnecting. Idempotent. */
  async close(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    const client = this.client
    this.client = undefined
    if (client) await client.endAsync(true).catch(() => undefined)
  }

  private connected(sessionPresent: boolean): void {
    this.attempt = 0
    this.state.connected = true
    this.state.last_error = null
    this.logger.info({url: this.state.url, subscription: this.pattern.filter, sessionPresent}, 'mqtt connected')
    if (sessionPresent) return
    this.client?.subscribe(this.pattern.filter, {qos: 1}, (error, granted) => {
      // A SUBACK reason code >= 0x80 is a refusal (OASIS MQTT 5.0, 3.9.3), e.g. 0x87 when the broker's ACL forbids the filter.
      const refused = granted?.find((g) => g.qos >= 0x80)
      if (!error && !refused) return
      this.state.last_error = `${this.state.url} refused the subscription ${this.pattern.filter} (${error ? error.message : `reason code 0x${refused!.qos.toString(16)}`}): check the broker's ACL for user ${this.state.username ?? '(anonymous)'}`
      this.logger.error({subscription: this.pattern.filter, err: this.state.last_error}, 'mqtt subscribe failed')
    })
  }

  private disconnected(): void {
    const was = this.state.connected
    this.state.connected = false
    if (this.closed || this.timer) return
    if (was) this.logger.warn({url: this.state.url}, 'mqtt connection lost; reconnecting')
    const delay = backoffDelay(this.attempt++, {minMs: this.options.backoff?.minMs ?? 500, maxMs: this.options.backoff?.maxMs ?? 30_000})
    this.timer = setTimeout(() => {
      this.timer = undefined
      if (this.closed || !this.client) return
      this.state.reconnects++
      this.client.reconnect()
    }, delay)
    this.timer.unref()
  }

  private async handle(topic: string, payload: Buffer, done: (error: Error | number, code?: number) => void): Promise<void> {
    const source = topic.split('/')[this.pattern.level] ?? ''
    try {
      if (!SOURCE_RE.test(source)) throw Object.assign(new Error(`topic ${topic.slice(0, 200)}: "${source.slice(0, 80)}" is not a valid source name`), {code: 'MFC_DATA_INVALID'})
      await this.sink(source, payload)
      this.state.messages++
      this.state.last_message_at = new Date().toISOString()
      done(0)
    } catch (error) {
      const {code, message} = error as {code?: string; message: string}
      if (code === 'MFC_DATA_INVALID') {
        // Acknowledged: a payload that is bad now is bad at every redelivery.
        this.state.rejected++
        this.logger.warn({topic: topic.slice(0, 200), bytes: payload.length, err: message.slice(0, 500)}, 'mqtt message rejected')
        done(PAYLOAD_FORMAT_INVALID)
        return
      }

      // Not acknowledged: reconnecting makes the broker redeliver it (persistent session).
      this.state.last_error = message
      this.logger.error({topic: topic.slice(0, 200), err: message}, 'mqtt message not stored; will be redelivered')
      done(new Error(message))
      this.client?.end(true, undefined, () => this.disconnected())
    }
  }
}

/** MQTT 5 reason code 0x99 (OASIS MQTT 5.0, 3.4.2.1): the PUBACK of a message that cannot be stored. */
const PAYLOAD_FORMAT_INVALID = 0x99

const TLS_TRUST = new Set(['SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'UNABLE_TO_GET_ISSUER_CERT', 'CERT_UNTRUSTED'])

/** A connection error as the operator needs it: the broker, the cause, and the key to check. */
function explain(error: Error & {code?: string | number}, state: MqttStatus): string {
  const {code, message} = error
  const user = state.username === null ? 'an anonymous login' : `user "${state.username}"`
  let hint: string
  if (code === 134 || code === 135 || code === 4 || code === 5) hint = `the broker refused ${user}: check mqtt_username and the password (mqtt_password_file or MFC_MQTT_PASSWORD)`
  else if (typeof code === 'string' && TLS_TRUST.has(code)) hint = 'its TLS certificate is not trusted: set mqtt_ca_file to the CA that signed it'
  else if (code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID') hint = 'its TLS certificate is outside its validity period'
  else if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') hint = 'its TLS certificate does not name the host in mqtt_url'
  else if (code === 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' || /alert certificate required|handshake failure/i.test(message)) hint = 'the broker wants a client certificate: set mqtt_cert_file and mqtt_key_file'
  else if (code === 'ECONNREFUSED') hint = 'nothing listens there: is the broker running, and is the port right?'
  else if (code === 'ECONNRESET' && state.url.startsWith('mqtt:')) hint = 'the broker closed the connection (a TLS listener needs mqtts://)'
  else hint = ''
  // OpenSSL's messages carry a file:line trail; the first clause is the cause.
  const cause = message.split(':').length > 4 ? message.replace(/^.*?:error:[0-9A-F]+:[^:]*:[^:]*:([^:]+).*$/s, '$1') : message
  return `${state.url}: ${cause.trim()}${hint ? `; ${hint}` : ''}`
}

function redact(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.username = ''
    parsed.password = ''
    return parsed.toString().replace(/\/$/, '')
  } catch {
    return 'invalid URL'
  }
}
