import {randomBytes} from 'node:crypto'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {Agent, type Headers, fetch} from 'undici'
import WebSocket from 'ws'

import {TEST_TOKEN, type TestSite, testSite} from './serve.js'
import {type ServeProcess, spawnServe, writeDataSettings} from './serve-site.js'

type Json = any

/** One `mfc serve` node of a test cluster: its own config/state dirs and local CA, the shared database. */
export interface ClusterNode {
  site: TestSite
  serve: ServeProcess
  call(method: string, path: string, body?: unknown): Promise<{status: number; json: Json; text: string; headers: Headers}>
  stream(): LiveClient
  /** SIGTERM, then removes its dirs; resolves with serve's exit code (idempotent). */
  stop(): Promise<number | null>
}

/** A WSS client that keeps every message it got; `until` waits (bounded) for a condition over them. */
export class LiveClient {
  readonly messages: Json[] = []
  readonly socket: WebSocket
  readonly opened: Promise<void>
  private wake: (() => void) | undefined

  constructor(url: string, ca: string) {
    this.socket = new WebSocket(url, {ca, headers: {authorization: `Bearer ${TEST_TOKEN}`}})
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve())
      this.socket.once('error', reject)
    })
    this.socket.on('error', () => {})
    this.socket.on('message', (data) => {
      this.messages.push(JSON.parse(data.toString()))
      this.wake?.()
    })
  }

  /** Points of every data_update so far, in arrival order. */
  points(source?: string): Json[] {
    return this.messages.filter((m) => m.type === 'data_update').flatMap((m) => m.data).filter((p: Json) => source === undefined || p.source === source)
  }

  async until(done: () => boolean, what: string, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`stream client: timed out waiting for ${what}`)
      await new Promise<void>((resolve) => {
        this.wake = resolve
        setTimeout(resolve, 100)
      })
    }
  }

  close(): void {
    this.socket.terminate()
  }
}

/** Extras of every node of a test cluster. */
export interface ClusterNodeOptions {
  /** Keys for every ssl-config.json. */
  settings?: Record<string, unknown>
  /** A webhook every node notifies (level "all"). */
  webhook?: string
}

/**
 * `count` serve nodes on the database at `storageUrl` (migrated by the caller), each with its
 * own local-CA certificate, history and config.
 */
export async function startClusterNodes(count: number, storageUrl: string, options: ClusterNodeOptions = {}): Promise<ClusterNode[]> {
  const key = randomBytes(32).toString('base64')
  const nodes: ClusterNode[] = []
  try {
    for (let i = 0; i < count; i++) nodes.push(await startNode(storageUrl, key, options))
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()))
    throw error
  }

  return nodes
}

async function startNode(storageUrl: string, key: string, options: ClusterNodeOptions): Promise<ClusterNode> {
  const site = await testSite()
  const keyFile = join(site.temp.configDir, 'storage.key')
  writeFileSync(keyFile, key + '\n', {mode: 0o600})
  writeDataSettings(site, {simulation_autostart: false, rate_limit_per_minute: 0, storage: storageUrl, storage_key_file: keyFile, ...options.settings})
  if (options.webhook) writeFileSync(site.config.paths.notificationConfigFile, JSON.stringify({webhooks: [options.webhook], level: 'all'}) + '\n', {mode: 0o600})
  let serve: ServeProcess
  try {
    serve = await spawnServe(site)
  } catch (error) {
    await site.temp.cleanup()
    throw error
  }

  const dispatcher = new Agent({connect: {ca: site.caPem}})
  const clients: LiveClient[] = []
  let stopping: Promise<number | null> | undefined
  return {
    site,
    serve,
    async call(method, path, body) {
      const response = await fetch(serve.url('api') + path, {
        method, dispatcher, headers: {authorization: `Bearer ${TEST_TOKEN}`, ...(body === undefined ? {} : {'content-type': 'application/json'})},
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await response.text()
      let json: Json
      try {
        json = JSON.parse(text)
      } catch {}

      return {status: response.status, json, text, headers: response.headers}
    },
    stream() {
      const client = new LiveClient(serve.url('streamer') + '/', site.caPem)
      clients.push(client)
      return client
    },
    stop() {
      stopping ??= (async () => {
        for (const c of clients) c.close()
        const code = await serve.stop()
        await dispatcher.close()
        await site.temp.cleanup()
        return code
      })()
      return stopping
    },
  }
}
