import {execFileSync} from 'node:child_process'

/** Runs the openssl CLI and returns its stdout (throws with its stderr on a non-zero exit). */
export const openssl = (...args: string[]): string => execFileSync('openssl', args, {encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe']})

/**
 * The subjectAltName entries openssl reads from a certificate, as `DNS:name` / `IP:address` with
 * IPv6 addresses in their canonical compressed form. OpenSSL versions print IPv6 SANs differently
 * (`0:0:0:0:0:0:0:1`, `::1`), so a test compares the addresses, never openssl's text.
 */
export function opensslSans(certFile: string): string[] {
  const text = openssl('x509', '-in', certFile, '-noout', '-ext', 'subjectAltName')
  const line = text.split('\n').slice(1).join(' ').trim()
  return line.split(',').map((entry) => entry.trim()).filter(Boolean).map((entry) => {
    const ip = /^IP Address:(.+)$/.exec(entry)?.[1]
    if (ip === undefined) return entry
    return `IP:${ip.includes(':') ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip}`
  })
}
