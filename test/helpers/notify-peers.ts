import {EventEmitter} from 'node:events'
import {type Server, createServer} from 'node:http'

import {SMTPServer} from 'smtp-server'

import type {MintedCerts} from './tls-peers.js'

export interface Mail {
  from: string
  to: string[]
  secure: boolean
  user: string | undefined
  body: string
}

export interface SmtpPeer {
  server: SMTPServer
  port: number
  mails: Mail[]
  close(): Promise<void>
}

/** A real SMTP server (smtp-server) on loopback: STARTTLS with the test CA's certificate, login mfc / smtp-secret. */
export function startSmtp(certs: MintedCerts, options: {starttls: boolean}): Promise<SmtpPeer> {
  const mails: Mail[] = []
  const server = new SMTPServer({
    key: certs.keyPem,
    cert: certs.certPem,
    disabledCommands: options.starttls ? [] : ['STARTTLS'],
    allowInsecureAuth: !options.starttls,
    onAuth(auth, _session, callback) {
      if (auth.username === 'mfc' && auth.password === 'smtp-secret') callback(null, {user: auth.username})
      else callback(new Error('bad credentials'))
    },
    onData(stream, session, callback) {
      let body = ''
      stream.on('data', (chunk: Buffer) => {
        body += chunk.toString()
      })
      stream.on('end', () => {
        mails.push({from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '', to: session.envelope.rcptTo.map((r) => r.address), secure: session.secure, user: session.user as string | undefined, body})
        callback()
      })
    },
    logger: false,
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, port: (server.server.address() as {port: number}).port, mails,
    close: () => new Promise<void>((done) => server.close(() => done())),
  })))
}

export type WebhookBody = Record<string, unknown>

export interface WebhookPeer {
  server: Server
  /** A Slack-like URL whose secret is in the path. */
  url: string
  bodies: WebhookBody[]
  /** Resolves with the first body (already received or still to come) that `match` accepts. */
  waitFor(match: (body: WebhookBody) => boolean): Promise<WebhookBody>
  close(): Promise<void>
}

/** A local webhook receiver answering every POST with `status`. */
export function startWebhook(status: number): Promise<WebhookPeer> {
  const bodies: WebhookBody[] = []
  const arrivals = new EventEmitter()
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c) => {
      body += c
    })
    req.on('end', () => {
      const parsed = {...JSON.parse(body), contentType: req.headers['content-type']} as WebhookBody
      bodies.push(parsed)
      arrivals.emit('body', parsed)
      res.writeHead(status).end()
    })
  })
  const waitFor = (match: (body: WebhookBody) => boolean) => new Promise<WebhookBody>((resolve) => {
    const seen = bodies.find(match)
    if (seen) return resolve(seen)
    const listener = (body: WebhookBody) => {
      if (!match(body)) return
      arrivals.off('body', listener)
      resolve(body)
    }

    arrivals.on('body', listener)
  })
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({
    server, url: `http://127.0.0.1:${(server.address() as {port: number}).port}/hooks/T000/secret-token`, bodies, waitFor,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections()
      server.close(() => done())
    }),
  })))
}
