import {readdirSync, readFileSync} from 'node:fs'
import {type IntervalHistogram, monitorEventLoopDelay} from 'node:perf_hooks'

import {TextBuilder} from './metrics.js'

/**
 * The standard process and Node.js metrics every Prometheus user expects from a Node service,
 * under the names prom-client's default collectors use (so existing dashboards and alerts
 * work), written here from `process.*` and `perf_hooks`: a dozen series do not justify a
 * dependency with its own registry and global state. Linux-only series (open/max fds, from
 * /proc) are simply absent elsewhere.
 *
 * Contract: `start()` and `stop()` are idempotent; `render()` works whether started or not
 * (without a running event-loop monitor the lag series are absent) and never throws.
 */
export class ProcessMetrics {
  private histogram: IntervalHistogram | undefined
  private readonly startTimeSeconds = Math.round((Date.now() - process.uptime() * 1000) / 1000)

  /** Starts sampling the event-loop delay (10 ms resolution: cheap, and lag below it is noise). */
  start(): void {
    if (this.histogram) return
    this.histogram = monitorEventLoopDelay({resolution: 10})
    this.histogram.enable()
  }

  stop(): void {
    this.histogram?.disable()
    this.histogram = undefined
  }

  /** Prometheus text exposition format 0.0.4, to append to the other metrics. */
  render(): string {
    const b = new TextBuilder()
    const cpu = process.cpuUsage()
    const memory = process.memoryUsage()
    const fds = openFds()
    const maxFds = maxOpenFds()
    b.metric('process_cpu_user_seconds_total', 'counter', 'User CPU time spent in seconds.', [{value: cpu.user / 1e6}])
    b.metric('process_cpu_system_seconds_total', 'counter', 'System CPU time spent in seconds.', [{value: cpu.system / 1e6}])
    b.metric('process_cpu_seconds_total', 'counter', 'Total user and system CPU time spent in seconds.', [{value: (cpu.user + cpu.system) / 1e6}])
    b.metric('process_start_time_seconds', 'gauge', 'Start time of the process since the Unix epoch in seconds.', [{value: this.startTimeSeconds}])
    b.metric('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [{value: memory.rss}])
    b.metric('process_open_fds', 'gauge', 'Number of open file descriptors.', fds === undefined ? [] : [{value: fds}])
    b.metric('process_max_fds', 'gauge', 'Maximum number of open file descriptors.', maxFds === undefined ? [] : [{value: maxFds}])
    b.metric('nodejs_heap_size_total_bytes', 'gauge', 'Process heap size from Node.js in bytes.', [{value: memory.heapTotal}])
    b.metric('nodejs_heap_size_used_bytes', 'gauge', 'Process heap size used from Node.js in bytes.', [{value: memory.heapUsed}])
    b.metric('nodejs_external_memory_bytes', 'gauge', 'Node.js external memory size in bytes.', [{value: memory.external}])
    const h = this.histogram
    // The histogram is empty until the loop has been sampled once: no series rather than NaN.
    if (h && h.count > 0) {
      const seconds = (ns: number) => ns / 1e9
      b.metric('nodejs_eventloop_lag_min_seconds', 'gauge', 'The minimum recorded event loop delay.', [{value: seconds(h.min)}])
      b.metric('nodejs_eventloop_lag_max_seconds', 'gauge', 'The maximum recorded event loop delay.', [{value: seconds(h.max)}])
      b.metric('nodejs_eventloop_lag_mean_seconds', 'gauge', 'The mean of the recorded event loop delays.', [{value: seconds(h.mean)}])
      b.metric('nodejs_eventloop_lag_p50_seconds', 'gauge', 'The 50th percentile of the recorded event loop delays.', [{value: seconds(h.percentile(50))}])
      b.metric('nodejs_eventloop_lag_p99_seconds', 'gauge', 'The 99th percentile of the recorded event loop delays.', [{value: seconds(h.percentile(99))}])
    }

    b.metric('nodejs_version_info', 'gauge', 'Node.js version info.', [{labels: {version: process.version}, value: 1}])
    return b.text()
  }
}

function openFds(): number | undefined {
  try {
    // readdir itself holds one descriptor on the directory while it reads.
    return readdirSync('/proc/self/fd').length - 1
  } catch {
    return undefined
  }
}

function maxOpenFds(): number | undefined {
  try {
    const line = /^Max open files\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))
    return line ? Number(line[1]) : undefined
  } catch {
    return undefined
  }
}
