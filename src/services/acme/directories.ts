/** Let's Encrypt's RFC 8555 directories (the same URLs acme-client ships; kept here so that
 * choosing a directory does not load acme-client). */
export const LETSENCRYPT = {
  production: 'https://acme-v02.api.letsencrypt.org/directory',
  staging: 'https://acme-staging-v02.api.letsencrypt.org/directory',
} as const

export interface DirectorySettings {
  acme_directory: string | null
  acme_staging_directory: string | null
  staging: boolean
}

/** Where `ssl init` orders: an explicit directory wins, else Let's Encrypt (staging on request). */
export function issuanceDirectory(settings: DirectorySettings): string {
  if (settings.acme_directory) return settings.acme_directory
  return settings.staging ? settings.acme_staging_directory ?? LETSENCRYPT.staging : LETSENCRYPT.production
}

/**
 * Where `--dry-run` orders (certbot's rule): a certificate from Let's Encrypt's production CA
 * is tried against staging (or the configured `acme_staging_directory`); any other CA, which
 * mfc knows no test twin of, is asked itself, and the result is thrown away.
 */
export function dryRunDirectory(certDirectory: string, settings: DirectorySettings): string {
  if (certDirectory === LETSENCRYPT.production) return settings.acme_staging_directory ?? LETSENCRYPT.staging
  return certDirectory
}

/** A directory name for one CA's account: readable, stable, safe ("acme-v02.api.letsencrypt.org_directory"). */
export function accountDirName(directoryUrl: string): string {
  const url = new URL(directoryUrl)
  const raw = `${url.hostname}${url.port ? '_' + url.port : ''}${url.pathname.replaceAll('/', '_')}`
  return raw.replaceAll(/[^A-Za-z0-9._-]/g, '_').replace(/_+$/, '').slice(0, 120)
}
