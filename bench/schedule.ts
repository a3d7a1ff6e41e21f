// The order of the runs. Each scenario runs every system once per round, rounds one after
// another (A B C, B C A, C A B …), so that the systems of one round are measured minutes
// apart at most and a drift of the machine's speed hits all of them alike. The start of
// each round rotates, so no system always runs first (fresh page cache, cooler CPU) or
// always right after the same neighbour.

import type { Scenario } from './config.ts';
import type { SystemName } from './clients/systems.ts';

export interface Planned {
  scenario: Scenario;
  system: SystemName;
  /** 1-based. */
  round: number;
}

/** Systems without a faithful equivalent of a scenario: left out, not run and failed. */
const NOT_APPLICABLE: Partial<Record<Scenario, readonly SystemName[]>> = {
  // birpc has no rooms and no fan-out: a game tick would be 8 separate sends per room.
  'game-tick': ['birpc'],
};

export function applies(scenario: Scenario, system: SystemName): boolean {
  return !NOT_APPLICABLE[scenario]?.includes(system);
}

export function schedule(scenarios: readonly Scenario[], systems: readonly SystemName[], rounds: number): Planned[] {
  const out: Planned[] = [];
  for (const scenario of scenarios) {
    const here = systems.filter((s) => applies(scenario, s));
    for (let r = 0; r < rounds; r++)
      for (let k = 0; k < here.length; k++) out.push({ scenario, system: here[(r + k) % here.length]!, round: r + 1 });
  }
  return out;
}
