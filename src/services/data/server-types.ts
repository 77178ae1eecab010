import type {FastifyInstance} from 'fastify'

/*
 * The extension points agreed with the `serve` branch (issue 4). They will live in
 * src/services/servers/types.ts; until that lands they are declared here with the same shapes,
 * and this file re-exports theirs once merged.
 */

/** A route plugin the API server registers after its auth/security layers. */
export type ApiPlugin = (app: FastifyInstance) => Promise<void> | void

/** One connected WSS client as the streamer hands it to a hub. */
export interface StreamClient {
  id: string
  /** Queues a JSON message; false when it was dropped because the client is not keeping up. */
  send(obj: object): boolean
  close(code?: number, reason?: string): void
}

/** What the streamer drives: one call per connect, message and close, never concurrently. */
export interface StreamHub {
  onConnect(client: StreamClient): void
  onMessage(client: StreamClient, msg: unknown): void
  onClose(client: StreamClient): void
}
