/** pass/fail decide the exit code; warn and info inform; skip means "could not be tested here". */
export type CheckStatus = 'pass' | 'fail' | 'warn' | 'info' | 'skip'

/** One finding. `id` is stable (JSON consumers and the testssl comparison key on it). */
export interface Check {
  id: string
  title: string
  status: CheckStatus
  detail: string
}

export function check(id: string, title: string, status: CheckStatus, detail: string): Check {
  return {id, title, status, detail}
}

/** What a probe target is: plain TLS, an HTTPS service (headers too) or a WSS endpoint (upgrade too). */
export type TargetKind = 'tls' | 'https' | 'wss'

export interface ProbeTarget {
  /** As the user wrote it, or the service name for configured targets. */
  label: string
  host: string
  port: number
  /** SNI and the name the certificate must carry. */
  servername: string
  kind: TargetKind
  path: string
  /** mfc's API token for the WSS upgrade (only ever set for mfc's own services). */
  token?: string
}
