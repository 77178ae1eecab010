import type {MfcPaths} from '../../lib/paths.js'
import {runningServe} from '../daemon/reload.js'
import {type ChallengeResponder, CompositeResponder} from './challenge-responder.js'
import {SharedDirResponder} from './challenge-shared-dir.js'
import {StandaloneResponder} from './challenge-standalone.js'
import {WebrootResponder} from './challenge-webroot.js'

export interface ResponderChoice {
  paths: MfcPaths
  httpPort: number
  webroot: string | null
  /** This process is the `mfc serve` answering on its HTTP port (its maintainer): token files suffice. */
  selfServesHttp?: boolean
  /** Where every serve looks tokens up (cluster mode: the database); default the challenge directory. */
  shared?: ChallengeResponder
}

/**
 * Picks how HTTP-01 is answered. Token files always go to the shared challenge directory, so
 * a running `mfc serve` answers them on its HTTP port; then `--webroot` files if asked, else
 * a standalone listener on `http_port` unless a running serve holds that very port (a serve
 * without its HTTP port, e.g. not root or `--no-http`, answers nothing).
 */
export async function chooseResponder(choice: ResponderChoice): Promise<ChallengeResponder> {
  const parts: ChallengeResponder[] = [choice.shared ?? new SharedDirResponder(choice.paths.challengeDir)]
  if (choice.webroot) {
    parts.push(new WebrootResponder(choice.webroot))
  } else if (!choice.selfServesHttp && (await runningServe(choice.paths.pidFile))?.ports.http !== choice.httpPort) {
    parts.push(new StandaloneResponder(choice.httpPort, choice.paths.challengeDir))
  }

  return new CompositeResponder(parts)
}
