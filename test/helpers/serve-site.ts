import {readFileSync, writeFileSync} from 'node:fs'

import type {DataSettings} from '../../src/services/data/data-settings.js'
import type {TestSite} from './serve.js'
import {type ServeProcess, startServeProcess} from './serve-process.js'

export type {ServeProcess} from './serve-process.js'
export type ServiceName = 'api' | 'dashboard' | 'streamer'

/** Adds data keys (simulation speed, autostart ...) to the site's ssl-config.json. */
export function writeDataSettings(site: TestSite, settings: Partial<DataSettings> & Record<string, unknown>): void {
  const file = site.config.paths.sslConfigFile
  let current: Record<string, unknown> = {}
  try {
    current = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>
  } catch {}

  writeFileSync(file, JSON.stringify({...current, ...settings}, null, 2) + '\n')
}

/**
 * Starts `mfc serve --no-http` with the site's environment (temp config/state dirs,
 * MFC_API_TOKEN) on the given ports (0: the kernel picks) and resolves once it is ready.
 */
export function spawnServe(site: TestSite, ports: Partial<Record<ServiceName, number>> = {}): Promise<ServeProcess> {
  return startServeProcess(site.env, {ports, token: site.env.MFC_API_TOKEN ?? null})
}
