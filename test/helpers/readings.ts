import type {Reading} from '../../src/services/data/reading.js'

/** A reading with plausible values; override what a test is about. */
export function reading(overrides: Partial<Reading> = {}): Reading {
  return {
    timestamp: '2026-01-01T00:00:00.000Z',
    source: 'test',
    run_id: null,
    time_hours: 0,
    reservoir_concentration: 25,
    outlet_concentration: 25,
    total_power: 0.002,
    biofilm_thicknesses: [1, 1, 1, 1, 1],
    substrate_addition_rate: 0,
    q_action: 3,
    epsilon: 0.4,
    reward: -36.3,
    cell_voltages: [0.7, 0.7, 0.7, 0.7, 0.7],
    cell_powers: null,
    cell_ph: [7, 7, 7, 7, 7],
    cell_temperatures: [30, 30, 30, 30, 30],
    ...overrides,
  }
}

/** `n` readings one second apart from `start`. */
export function series(n: number, start = Date.UTC(2026, 0, 1), overrides: Partial<Reading> = {}): Reading[] {
  return Array.from({length: n}, (_, i) => reading({timestamp: new Date(start + i * 1000).toISOString(), time_hours: i / 10, reservoir_concentration: 20 + (i % 10), ...overrides}))
}

/** Everything an async iterable yields, in order (Node 20 has no Array.fromAsync). */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = []
  for await (const item of items) all.push(item)
  return all
}
