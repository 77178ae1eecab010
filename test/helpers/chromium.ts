import {mkdtemp, rm} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {type BrowserContext, chromium} from 'playwright-core'

/** TEST-INFRA.md's flags for Debian's chromium (plus --headless). */
export const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

export interface Chromium {
  context: BrowserContext
  close(): Promise<void>
}

/**
 * Debian's chromium with a fresh profile. CSP violations are reported as console errors (the
 * init script runs before the page's own scripts; CSP does not apply to it). The test CA is
 * not installed in the profile: certificate errors are ignored (browser-trust.test.ts covers trust).
 * `extraArgs` are appended to the flags (e.g. `--host-rules` to make a port unreachable).
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Chromium> {
  const profile = await mkdtemp(join(tmpdir(), 'mfc-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {executablePath: '/usr/bin/chromium', args: [...CHROMIUM_FLAGS, ...extraArgs], ignoreHTTPSErrors: true})
  await context.addInitScript({content: "document.addEventListener('securitypolicyviolation', (e) => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"})
  return {
    context,
    async close() {
      await context.close()
      await rm(profile, {recursive: true, force: true})
    },
  }
}

/** Page-side predicate (a function, not a string: the page's CSP forbids eval). No DOM types here. */
export function morePoints({id, n}: {id: string; n: number}): boolean {
  const page = globalThis as unknown as {document: {querySelector(s: string): {getAttribute(a: string): string | null} | null}}
  return Number(page.document.querySelector(id)?.getAttribute('data-points') ?? 0) > n
}
