export type StreamState = 'connecting' | 'open' | 'closed' | 'session-ended'

/** The streamer's close code for "the dashboard session behind this socket ended" (docs/serve-and-security.md). */
const SESSION_ENDED = 4401

/**
 * The WSS stream with reconnect: exponential backoff from 0.5 s to 30 s with jitter, reset
 * once a connection has stayed open. A fresh connection resyncs from `initial_data`. A close
 * with SESSION_ENDED stops reconnecting and reports 'session-ended'.
 */
export class LiveStream {
  private socket: WebSocket | undefined
  private attempt = 0
  private timer: number | undefined
  private stopped = false

  constructor(
    private readonly url: string,
    private readonly onMessage: (message: {type: string; [key: string]: unknown}) => void,
    private readonly onState: (state: StreamState, retryInMs?: number) => void,
  ) {}

  start(): void {
    this.stopped = false
    this.connect()
  }

  stop(): void {
    this.stopped = true
    clearTimeout(this.timer)
    this.socket?.close()
  }

  send(message: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message))
  }

  private connect(): void {
    this.onState('connecting')
    const socket = new WebSocket(this.url)
    this.socket = socket
    socket.addEventListener('open', () => {
      this.attempt = 0
      this.onState('open')
    })
    socket.addEventListener('message', (event) => {
      try {
        this.onMessage(JSON.parse(String(event.data)))
      } catch {
        // A malformed frame is the server's bug; keep the connection.
      }
    })
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket || this.stopped) return
      // Logged out or expired: reconnecting cannot help.
      if (event.code === SESSION_ENDED) return this.onState('session-ended')
      const delay = Math.min(30_000, 500 * 2 ** this.attempt++) * (0.8 + Math.random() * 0.4)
      this.onState('closed', delay)
      this.timer = window.setTimeout(() => this.connect(), delay)
    })
  }
}
