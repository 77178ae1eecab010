import type {CaaRecord} from './resolver.js'

/** The CAA identities of well-known CAs, for directories that do not publish `meta.caaIdentities`. */
const KNOWN_CAS: [RegExp, string][] = [
  [/(^|\.)api\.letsencrypt\.org$/, 'letsencrypt.org'],
  [/(^|\.)zerossl\.com$/, 'sectigo.com'],
  [/(^|\.)pki\.goog$/, 'pki.goog'],
  [/(^|\.)buypass\.(com|no)$/, 'buypass.com'],
]

export function knownCaaIdentity(directoryUrl: string): string | undefined {
  const host = new URL(directoryUrl).hostname
  return KNOWN_CAS.find(([re]) => re.test(host))?.[1]
}

/** The names RFC 8659 §3 looks at for `name`, most specific first (the "relevant RRset" is the first non-empty). */
export function caaCandidates(name: string): string[] {
  const labels = name.replace(/^\*\./, '').replace(/\.$/, '').split('.')
  return labels.map((_, i) => labels.slice(i).join('.')).filter((n) => n.includes('.') || labels.length === 1)
}

export interface CaaVerdict {
  allowed: boolean
  /** The CA domains the records allow (empty: none, e.g. `issue ";"`). */
  allows: string[]
  /** An unknown tag marked critical: RFC 8659 says no CA may issue. */
  unknownCritical: boolean
}

/** RFC 8659 §4: may the CA with these identities issue for `name` (a wildcard looks at issuewild first)? */
export function judgeCaa(records: CaaRecord[], name: string, identities: string[]): CaaVerdict {
  const tagOf = (r: CaaRecord) => (r.issue !== undefined ? 'issue' : r.issuewild !== undefined ? 'issuewild' : r.iodef !== undefined ? 'iodef' : 'other')
  const unknownCritical = records.some((r) => tagOf(r) === 'other' && (r.critical & 128) !== 0)
  const wild = name.startsWith('*.') && records.some((r) => r.issuewild !== undefined)
  const relevant = records.filter((r) => (wild ? r.issuewild !== undefined : r.issue !== undefined))
  const allows = relevant.map((r) => (wild ? r.issuewild! : r.issue!).split(';')[0].trim().toLowerCase()).filter(Boolean)
  const allowed = !unknownCritical && (relevant.length === 0 || allows.some((a) => identities.includes(a)))
  return {allowed, allows, unknownCritical}
}
