import type {StreamClient, StreamHub} from './types.js'

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/**
 * The hub `serve` uses until a data hub replaces it: a heartbeat broadcast every
 * `heartbeatMs` (`{"type":"heartbeat","timestamp","clients_connected"}`, the original's
 * message), `ping` -> `pong`, anything else -> `{"type":"error","message":"Unknown message type: X"}`.
 */
export class DefaultStreamHub implements StreamHub {
  readonly clients = new Set<StreamClient>()
  private readonly timer: NodeJS.Timeout

  constructor(heartbeatMs = 2000) {
    this.timer = setInterval(() => this.broadcast({type: 'heartbeat', timestamp: new Date().toISOString(), clients_connected: this.clients.size}), heartbeatMs)
    this.timer.unref()
  }

  onConnect(client: StreamClient): void {
    this.clients.add(client)
  }

  onMessage(client: StreamClient, msg: unknown): void {
    const type = isObject(msg) ? msg.type : undefined
    if (type === 'ping') {
      client.send({type: 'pong', timestamp: new Date().toISOString()})
      return
    }

    client.send({type: 'error', message: `Unknown message type: ${typeof type === 'string' ? type : 'None'}`, timestamp: new Date().toISOString()})
  }

  onClose(client: StreamClient): void {
    this.clients.delete(client)
  }

  /** Sends to every client; slow ones drop themselves (send returns false). Returns how many got it. */
  broadcast(obj: object): number {
    let delivered = 0
    for (const client of this.clients) if (client.send(obj)) delivered++
    return delivered
  }

  close(): void {
    clearInterval(this.timer)
  }
}
