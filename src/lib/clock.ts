/** Time as services see it; tests pass a fixed or stepping clock. */
export interface Clock {
  now(): Date
}

export const systemClock: Clock = {now: () => new Date()}

export function fixedClock(at: Date | string): Clock {
  const date = new Date(at)
  return {now: () => new Date(date)}
}
