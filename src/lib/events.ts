import {EventEmitter} from 'node:events'

/**
 * Lifecycle events of mfc. Services emit them instead of printing; commands turn them into
 * task lists, the daemon into log lines and notifications.
 */
export interface MfcEvents {
  'cert:issuing': {name: string; domains: string[]; issuer: string}
  'cert:issued': {name: string; domains: string[]; issuer: string; version: string; notAfter: string}
  'cert:renewing': {name: string; domains: string[]; reason: string}
  'cert:renewed': {name: string; domains: string[]; version: string; notAfter: string}
  'cert:renew-failed': {name: string; domains: string[]; error: Error}
  /** A renewal succeeded after `failures` failed attempts in a row (serve's maintainer). */
  'cert:renew-recovered': {name: string; domains: string[]; failures: number; version: string; notAfter: string}
  'cert:skipped': {name: string; reason: string}
  'cert:expiring': {name: string; domains: string[]; daysLeft: number; expired: boolean}
  'issuer:step': {name: string; step: string}
  'server:listening': {service: string; url: string}
  'server:closed': {service: string}
  'server:reloaded': {service: string; serial: string}
  'server:reload-failed': {service: string; error: Error}
  'daemon:restarted': {pid: number; restarts: number; reason: string}
  /** `since`: when the episode started (the reading's timestamp; "now" for no_data), which names the episode across nodes. */
  'alert:raised': {source?: string; parameter: string; value: number; message: string; severity: string; email_notify?: boolean; since?: string}
  /** `since` and `email_notify` are the raised episode's. */
  'alert:cleared': {source?: string; parameter: string; value: number; since?: string; email_notify?: boolean}
}

export type MfcEventName = keyof MfcEvents

/** A typed EventEmitter; listeners that throw are the listener's bug, not the emitter's. */
export class MfcEventBus {
  private readonly emitter = new EventEmitter()

  emit<K extends MfcEventName>(name: K, payload: MfcEvents[K]): void {
    this.emitter.emit(name, payload)
  }

  on<K extends MfcEventName>(name: K, listener: (payload: MfcEvents[K]) => void): () => void {
    this.emitter.on(name, listener)
    return () => this.emitter.off(name, listener)
  }

  onAny(listener: <K extends MfcEventName>(name: K, payload: MfcEvents[K]) => void, names: MfcEventName[]): () => void {
    const offs = names.map((name) => this.on(name, (payload) => listener(name, payload)))
    return () => {
      for (const off of offs) off()
    }
  }
}
