// One run's schedule, the same arithmetic in every worker of every generator: player i
// connects at start + i / ramp, the last one ends the ramp-up, full load holds for the
// duration, then player i leaves at down + i / rampDown. Worker w of W in generator g of G
// runs players g + G·(w + W·j), so together they keep the global order and rate.

export interface Plan {
  /** The bot script: a path (.ts loaded through tsx) or a file URL. */
  script: string;
  url: string;
  /** Players in the whole run (all generators). */
  players: number;
  /** Connects per second in the whole run. */
  ramp: number;
  /** Disconnects per second in the ramp-down. */
  rampDown: number;
  /** Full load, after the ramp-up, ms. */
  durationMs: number;
  /** Open loop: arrivals per second in the whole run of `actions[action]`. */
  rate?: number;
  action?: string;
  /** When player 0 connects, epoch ms on this machine's clock. */
  startAt: number;
  generator: number;
  generators: number;
  worker: number;
  workers: number;
  /** How long a stopping bot's run() may take before its client is closed anyway. */
  graceMs: number;
}

export const rampUpMs = (p: Plan): number => (p.players / p.ramp) * 1000;
export const rampDownMs = (p: Plan): number => (p.players / p.rampDown) * 1000;
/** When the ramp-down starts, epoch ms. */
export const downAt = (p: Plan): number => p.startAt + rampUpMs(p) + p.durationMs;
/** When the last player has been asked to leave, epoch ms. */
export const endAt = (p: Plan): number => downAt(p) + rampDownMs(p);

/** The global indices this worker runs, in connect order. */
export function playersOf(p: Plan): number[] {
  const out: number[] = [];
  const stride = p.generators * p.workers;
  for (let i = p.generator + p.generators * p.worker; i < p.players; i += stride) out.push(i);
  return out;
}

/** Players a generator runs (what its workers' playersOf add up to). */
export const playersOfGenerator = (players: number, generator: number, generators: number): number =>
  Math.max(0, Math.ceil((players - generator) / generators));

export const connectAt = (p: Plan, i: number): number => p.startAt + (i / p.ramp) * 1000;
export const leaveAt = (p: Plan, i: number): number => downAt(p) + (i / p.rampDown) * 1000;
