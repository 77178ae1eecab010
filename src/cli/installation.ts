import {realpathSync} from 'node:fs'
import {join} from 'node:path'

import type {Installation} from '../services/deploy/from-config.js'

/** The absolute paths of the node binary and the mfc package running this command. */
export function installation(root: string): Installation {
  const realRoot = realpathSync(root)
  return {nodePath: realpathSync(process.execPath), mfcPath: join(realRoot, 'bin', 'run.js'), root: realRoot}
}
