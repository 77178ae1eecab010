import {spawn} from 'node:child_process'
import {readFile} from 'node:fs/promises'

import type {TargetReport} from '../../src/services/probe/probe.js'

export interface TestsslFinding {
  id: string
  severity: string
  finding: string
}

/** Runs testssl.sh (Debian's `testssl`) with JSON output; resolves with its findings. */
export function runTestssl(args: string[], jsonFile: string): Promise<TestsslFinding[]> {
  return new Promise((resolve, reject) => {
    const child = spawn('testssl', ['--quiet', '--color', '0', '--warnings', 'off', '--jsonfile', jsonFile, ...args], {stdio: 'ignore'})
    child.on('error', reject)
    child.on('close', () => {
      readFile(jsonFile, 'utf8').then((text) => resolve(JSON.parse(text) as TestsslFinding[])).catch(reject)
    })
  })
}

/**
 * Finding ids that testssl.sh uses for notes about its own run, not about the target: the ones it
 * files as client-side warnings (`fileout_insert_warning`: old_fart, too_old_openssl,
 * engine_problem — e.g. "No engine or GOST support" from Debian's openssl 3.0.22) and the scan's
 * own state (scanProblem). Ids, never message text: a new wording must not change the verdict.
 */
export const SCANNER_NOTE_IDS: ReadonlySet<string> = new Set(['old_fart', 'too_old_openssl', 'engine_problem', 'scanProblem'])

/** testssl.sh severities that say nothing is wrong with the target. */
const CLEAN_SEVERITIES: ReadonlySet<string> = new Set(['OK', 'INFO', 'DEBUG'])

export interface TestsslVerdict {
  /** Notes about the scanner's environment: logged by the test, never counted. */
  notes: TestsslFinding[]
  /** Findings about the target at LOW or above, and target checks that could not run (WARN/FATAL). */
  problems: TestsslFinding[]
}

/** Splits testssl.sh findings into scanner notes and problems of the target, by id and severity. */
export function judgeTestssl(findings: TestsslFinding[]): TestsslVerdict {
  const notes = findings.filter((f) => SCANNER_NOTE_IDS.has(f.id))
  const problems = findings.filter((f) => !SCANNER_NOTE_IDS.has(f.id) && !CLEAN_SEVERITIES.has(f.severity))
  return {notes, problems}
}

export const describeFinding = (f: TestsslFinding): string => `${f.id} ${f.severity}: ${f.finding}`

/** One finding both tools can report, each side reduced to "yes"/"no" (null: that tool does not report it). */
export interface ComparisonRow {
  finding: string
  mfc: boolean | null
  testssl: boolean | null
}

const offered = (text: string | undefined) => (text === undefined ? null : text.startsWith('offered'))

/**
 * Maps mfc test-ssl checks onto testssl.sh finding ids. The questions are phrased so "yes" means
 * the same thing on both sides (e.g. "TLS 1.0 offered", "chain trusted").
 */
export function compareFindings(mfc: TargetReport, testssl: TestsslFinding[]): ComparisonRow[] {
  const t = (id: string) => testssl.find((f) => f.id === id)
  const m = (id: string) => mfc.checks.find((c) => c.id === id)
  const mOffered = (id: string) => {
    const c = m(id)
    return c === undefined || c.status === 'skip' ? null : c.status === 'fail'
  }

  const rows: ComparisonRow[] = [
    ...(['1', '1_1', '1_2', '1_3'] as const).map((v) => ({finding: `TLS ${v.replace('_', '.')}${v.length === 1 ? '.0' : ''} offered`, mfc: offered(m(`protocol.tls${v}`)?.detail), testssl: offered(t(`TLS${v}`)?.finding)})),
    {finding: 'NULL / anonymous ciphers offered', mfc: mOffered('cipher.null'), testssl: t('cipherlist_NULL') && t('cipherlist_aNULL') ? Boolean(offered(t('cipherlist_NULL')!.finding) || offered(t('cipherlist_aNULL')!.finding)) : null},
    {finding: 'EXPORT ciphers offered', mfc: mOffered('cipher.export'), testssl: t('cipherlist_EXPORT') ? offered(t('cipherlist_EXPORT')!.finding) : null},
    {finding: '3DES ciphers offered', mfc: mOffered('cipher.3des'), testssl: t('cipherlist_3DES_IDEA') ? offered(t('cipherlist_3DES_IDEA')!.finding) : null},
    {finding: 'CBC (obsolete) ciphers offered', mfc: mOffered('cipher.cbc'), testssl: t('cipherlist_AVERAGE') ? offered(t('cipherlist_AVERAGE')!.finding) : null},
    {finding: 'RSA key exchange offered', mfc: mOffered('cipher.rsa_kex'), testssl: null},
    {finding: 'Chain of trust passed', mfc: m('chain') ? m('chain')!.status === 'pass' : null, testssl: t('cert_chain_of_trust') ? t('cert_chain_of_trust')!.finding.startsWith('passed') : null},
    {finding: 'Hostname matches (SAN)', mfc: m('hostname') ? m('hostname')!.status === 'pass' : null, testssl: t('cert_trust') ? /^Ok via SAN/.test(t('cert_trust')!.finding) : null},
    {finding: 'More than 30 days to expiry', mfc: m('expiry') ? m('expiry')!.status === 'pass' : null, testssl: t('cert_expirationStatus') ? t('cert_expirationStatus')!.severity === 'OK' : null},
    {finding: 'Key of 2048+ bits RSA / 256+ bits EC', mfc: m('key') ? m('key')!.status === 'pass' : null, testssl: t('cert_keySize') ? keyStrong(t('cert_keySize')!.finding) : null},
    {finding: 'Session resumption', mfc: m('resumption') ? m('resumption')!.status === 'pass' : null, testssl: resumption([t('sessionresumption_ticket'), t('sessionresumption_ID')])},
    {finding: 'HSTS sent', mfc: m('headers.hsts') ? m('headers.hsts')!.status !== 'fail' : null, testssl: t('HTTP_status_code') ? Boolean(t('HSTS_time')) : null},
    {finding: 'Content-Security-Policy sent', mfc: m('headers.csp') ? m('headers.csp')!.status === 'pass' : null, testssl: t('HTTP_status_code') ? Boolean(t('Content-Security-Policy')) : null},
    {finding: 'X-Content-Type-Options nosniff', mfc: m('headers.nosniff') ? m('headers.nosniff')!.status === 'pass' : null, testssl: t('HTTP_status_code') ? t('X-Content-Type-Options')?.finding === 'nosniff' : null},
    {finding: 'X-Frame-Options sent', mfc: m('headers.frame_options') ? m('headers.frame_options')!.detail.startsWith('X-Frame-Options') : null, testssl: t('HTTP_status_code') ? Boolean(t('X-Frame-Options')) : null},
    {finding: 'WebSocket upgrade (WSS)', mfc: m('wss.upgrade') ? m('wss.upgrade')!.status === 'pass' : null, testssl: null},
  ]
  return rows
}

function keyStrong(finding: string): boolean {
  const bits = Number(/(\d+) bits/.exec(finding)?.[1] ?? 0)
  return finding.startsWith('EC') ? bits >= 256 : bits >= 2048
}

/**
 * Resumption by ticket or by ID. testssl.sh's own check sometimes fails ("check failed because of
 * connect problem", seen here in about 1 of 6 `-p -s -S` runs against mfc serve, never with
 * `--debug`, while 60 `openssl s_client` handshakes in a row all succeed); a check that failed is
 * no answer, not a "no".
 */
function resumption(findings: (TestsslFinding | undefined)[]): boolean | null {
  const answers = findings.filter((f): f is TestsslFinding => f !== undefined)
  if (answers.some((f) => f.finding === 'supported')) return true
  return answers.length > 0 && answers.every((f) => /^(not supported|No Session ID)/.test(f.finding)) ? false : null
}
