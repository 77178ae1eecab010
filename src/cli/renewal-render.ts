import type {HookRun} from '../services/certificates/hooks.js'
import type {RenewalOutcome, RenewalReport} from '../services/certificates/cert-manager.js'

const LABEL: Record<RenewalOutcome['status'], string> = {
  renewed: 'RENEWED', 'dry-run-ok': 'DRY-RUN OK', 'not-due': 'not due', skipped: 'skipped', failed: 'FAILED',
}

/** One line per certificate, then failed hooks: what `cert renew` prints. */
export function renewalLines(report: RenewalReport): string[] {
  const lines = report.outcomes.map((o) => `${LABEL[o.status].padEnd(10)} ${o.name} (${o.domains.join(', ')}): ${o.status === 'renewed' ? `version ${o.version}, valid until ${o.notAfter}` : o.reason}`)
  for (const o of report.outcomes) {
    if (o.error) for (const s of o.error.suggestions) lines.push(`  Try this: ${s}`)
    if (o.ari && 'error' in o.ari) lines.push(`  (ARI renewal information unavailable for ${o.name}: ${o.ari.error})`)
  }

  lines.push(...hookLines(report.hooks))
  if (report.reloadedPid) lines.push(`Told mfc serve (pid ${report.reloadedPid}) to reload its certificates.`)
  if (report.outcomes.length === 0) lines.push('No certificates are managed yet: run `mfc ssl init`.')
  return lines
}

export function hookLines(hooks: HookRun[]): string[] {
  return hooks.filter((h) => !h.ok).map((h) => `Warning: the ${h.kind} hook ${JSON.stringify(h.command)}${h.name ? ` (for ${h.name})` : ''} ${h.timedOut ? 'timed out after 2 minutes and was killed' : `exited with ${h.exitCode ?? 'an error'}`}${h.output ? `: ${h.output.split('\n').slice(-3).join(' / ')}` : ''}.`)
}

/** The one paragraph cron mails when a renewal failed. */
export function failureParagraph(report: RenewalReport): string {
  const failed = report.outcomes.filter((o) => o.status === 'failed')
  const parts = failed.map((o) => `${o.name}: ${o.reason}${o.error?.suggestions[0] ? ` Try this: ${o.error.suggestions[0]}` : ''}`)
  return `mfc: ${failed.length} of ${report.outcomes.filter((o) => o.status !== 'not-due').length} certificate renewal(s) failed. ${parts.join(' ')} The current certificates stay in place; the next run retries.`
}
