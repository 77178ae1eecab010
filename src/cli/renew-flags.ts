import {Flags} from '@oclif/core'

/** Flags shared by `cert renew` and `cert renew-if-needed` (certbot's names and meanings). */
export const renewFlags = {
  'cert-name': Flags.string({description: 'Only this certificate (its store name, e.g. example.org; repeatable).', multiple: true}),
  'dry-run': Flags.boolean({description: 'Order from the staging CA (or the configured test directory) and throw the result away: nothing is written.'}),
  'pre-hook': Flags.string({description: 'Shell command run once before renewing, only if something will be renewed (config: pre_hook).'}),
  'deploy-hook': Flags.string({description: 'Shell command run once per renewed certificate, with RENEWED_LINEAGE and RENEWED_DOMAINS (config: deploy_hook).'}),
  'post-hook': Flags.string({description: 'Shell command run once at the end, with RENEWED_DOMAINS and FAILED_DOMAINS (config: post_hook).'}),
  'http-port': Flags.integer({aliases: ['http-01-port'], description: 'Port of the HTTP-01 listener (config: http_port).', min: 1, max: 65_535}),
  'non-interactive': Flags.boolean({char: 'n', description: 'certbot\'s -n (renewals never prompt; accepted so certbot command lines work).'}),
  quiet: Flags.boolean({char: 'q', description: 'Print nothing but errors (certbot\'s -q, for cron).'}),
  'agree-tos': Flags.boolean({description: 'Agree to the CA\'s terms of service if a renewal must register a new account (a lost account file).'}),
  'no-random-sleep-on-renew': Flags.boolean({description: 'certbot\'s flag: renew without the random wait of non-interactive runs (as --no-random-sleep).'}),
  webroot: Flags.string({char: 'w', aliases: ['webroot-path'], description: 'Answer HTTP-01 by writing files under DIR/.well-known/acme-challenge/ (config: webroot).'}),
}
