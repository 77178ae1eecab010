import type {FastifyInstance} from 'fastify'

import type {ServerPlugin} from '../../src/services/servers/types.js'

/**
 * A plugin that records "METHOD URL" of every reply fastify sends (an onSend hook on the whole
 * app: refusals included, nothing a fast path answers before fastify), for the fast-path tests.
 */
export function recordFastifyReplies(routed: string[]): ServerPlugin {
  return Object.assign(async (app: FastifyInstance) => {
    app.addHook('onSend', (req, _reply, payload, done) => {
      routed.push(`${req.method} ${req.url}`)
      done(null, payload)
    })
  }, {[Symbol.for('skip-override')]: true})
}
