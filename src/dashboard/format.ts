/**
 * Formatting shared by cards, charts, alerts and the overview: one unit per quantity, with an
 * SI prefix for the units that take one. The server's alert messages use formatSi in
 * src/services/data/alerts.ts; test/unit/data/dashboard-format.test.ts keeps the two equal.
 */
const PREFIXES: [number, string][] = [[1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, ''], [1e-3, 'm'], [1e-6, 'μ'], [1e-9, 'n'], [1e-12, 'p']]

/** "30.1 μW", not "0.000 W"; units without prefixes (mM, pH, °C, μm) get 3 significant digits. */
export function formatSi(value: number | null | undefined, unit: string): string {
  if (value === null || value === undefined) return '–'
  if (!Number.isFinite(value)) return `${value} ${unit}`.trim()
  if (!['W', 'V', 'A', 's'].includes(unit) || value === 0) return `${Number(value.toPrecision(3))} ${unit}`.trim()
  const [scale, prefix] = PREFIXES.find(([s]) => Math.abs(value) >= s) ?? PREFIXES.at(-1)!
  return `${Number((value / scale).toPrecision(3))} ${prefix}${unit}`
}

/** The unit of each quantity, everywhere on the page. */
export const UNITS: Record<string, string> = {
  reservoir_concentration: 'mM', outlet_concentration: 'mM', total_power: 'W', substrate_addition_rate: 'mmol/h', biofilm_thicknesses: 'μm',
  cell_voltages: 'V', cell_powers: 'W', cell_ph: 'pH', cell_temperatures: '°C', no_data: 's',
}

/** A silence in seconds as people say it: "4 s", "3 min", "2 h". */
export function formatAgo(seconds: number | null): string {
  if (seconds === null) return 'never'
  if (seconds < 90) return `${Math.round(seconds)} s ago`
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`
  return `${Math.round(seconds / 3600)} h ago`
}
