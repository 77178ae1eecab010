import {shellQuote} from './cron.js'

export interface SystemdOptions {
  /** Absolute path of node. */
  nodePath: string
  /** Absolute path of mfc's bin/run.js. */
  mfcPath: string
  /** MFC_CONFIG_DIR, MFC_STATE_DIR...: the unit sees the directories the user set up. */
  env: Record<string, string>
  user: string
  group: string
  /** The only paths the service may write (config and state directories). */
  writablePaths: string[]
  /** Every port `serve` binds; one below 1024 grants CAP_NET_BIND_SERVICE, nothing else does. */
  ports: number[]
  /** Unit name stem: `<name>.service`, `<name>-renew.service`, `<name>-renew.timer`. */
  name: string
}

export interface SystemdUnits {
  service: {file: string; text: string}
  renewService: {file: string; text: string}
  renewTimer: {file: string; text: string}
}

const HOME_PREFIXES = ['/home/', '/root/', '/run/user/']

function execLine(options: SystemdOptions, args: string): string {
  return `${shellQuote(options.nodePath)} ${shellQuote(options.mfcPath)} ${args}`
}

function environment(options: SystemdOptions): string[] {
  // systemd's own quoting: the whole assignment in double quotes, inner quotes escaped.
  return Object.entries(options.env).map(([key, value]) => `Environment="${key}=${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`)
}

/**
 * Sandboxing shared by both services. MemoryDenyWriteExecute is left out on purpose: V8's JIT
 * needs writable+executable pages, and node aborts under it.
 */
function hardening(options: SystemdOptions, bindLowPorts: boolean): string[] {
  const touchesHome = [options.nodePath, options.mfcPath, ...options.writablePaths].some((p) => HOME_PREFIXES.some((prefix) => p.startsWith(prefix)))
  return [
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    `ReadWritePaths=${options.writablePaths.map((p) => shellQuote(p)).join(' ')}`,
    // Installed under a home directory: read-only rather than hidden, or node and mfc vanish.
    `ProtectHome=${touchesHome ? 'read-only' : 'yes'}`,
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'SystemCallArchitectures=native',
    'UMask=0077',
    `CapabilityBoundingSet=${bindLowPorts ? 'CAP_NET_BIND_SERVICE' : ''}`,
    ...(bindLowPorts ? ['AmbientCapabilities=CAP_NET_BIND_SERVICE'] : []),
  ]
}

/**
 * The service runs `mfc serve` in the foreground: systemd is the supervisor. The guide's
 * `Type=exec` with `--daemon` is wrong because the main process exits after forking, so
 * systemd considers the service finished and stops or restarts it.
 */
export function systemdUnits(options: SystemdOptions): SystemdUnits {
  const lowPorts = options.ports.some((port) => port > 0 && port < 1024)
  const service = [
    '[Unit]',
    'Description=MFC monitoring system: API, dashboard and WSS streamer (mfc serve)',
    'Documentation=https://github.com/eugenio/mfc-project',
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=exec',
    `User=${options.user}`,
    `Group=${options.group}`,
    ...environment(options),
    `ExecStart=${execLine(options, 'serve')}`,
    // serve re-reads its certificates on SIGHUP: `systemctl reload` needs no restart.
    'ExecReload=/bin/kill -HUP $MAINPID',
    'Restart=on-failure',
    'RestartSec=5s',
    'TimeoutStopSec=30s',
    ...hardening(options, lowPorts),
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ]
  const renewService = [
    '[Unit]',
    `Description=Renew the MFC monitoring certificates when due (mfc cert renew-if-needed)`,
    'After=network-online.target',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=oneshot',
    `User=${options.user}`,
    `Group=${options.group}`,
    ...environment(options),
    `ExecStart=${execLine(options, 'cert renew-if-needed')}`,
    // HTTP-01 may need port 80 when serve is not running to answer it.
    ...hardening(options, options.ports.some((port) => port > 0 && port < 1024)),
    '',
  ]
  const renewTimer = [
    '[Unit]',
    'Description=Try to renew the MFC monitoring certificates twice a day',
    '',
    '[Timer]',
    'OnCalendar=*-*-* 00,12:00:00',
    // Spread the load on the CA over the whole 12 h between runs (certbot's Debian timer does the same).
    'RandomizedDelaySec=12h',
    // A run missed while the machine was off happens at the next boot.
    'Persistent=true',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ]
  return {
    service: {file: `${options.name}.service`, text: service.join('\n')},
    renewService: {file: `${options.name}-renew.service`, text: renewService.join('\n')},
    renewTimer: {file: `${options.name}-renew.timer`, text: renewTimer.join('\n')},
  }
}
