// The order of the runs. Each scenario runs every system once per round, rounds one after
// another (A B C, B C A, C A B …), so that the systems of one round are measured minutes
// apart at most and a drift of the machine's speed hits all of them alike. The start of
// each round rotates, so no system always runs first (fresh page cache, cooler CPU) or
// always right after the same neighbour. A stream scenario and its notification baseline
// share their rounds (round 1 of both, then round 2 of both …), so the stream / notification
// ratio pairs runs a minute apart too.

import { BASELINE_OF, type Scenario } from './config.ts';
import type { SystemName } from './clients/systems.ts';

export interface Planned {
  scenario: Scenario;
  system: SystemName;
  /** 1-based. */
  round: number;
}

const NO_STREAMS: readonly SystemName[] = ['raw', 'socketio', 'socketio-uws', 'birpc'];

/** Systems without a faithful equivalent of a scenario: left out, not run and failed; the report says n/a and why. */
const NOT_APPLICABLE: Partial<Record<Scenario, { systems: readonly SystemName[]; why: string }>> = {
  // birpc has no rooms and no fan-out: a game tick would be 8 separate sends per room.
  'game-tick': { systems: ['birpc'], why: 'no rooms' },
  'stream-down': { systems: NO_STREAMS, why: 'no streams' },
  'stream-up': { systems: NO_STREAMS, why: 'no streams' },
  // The baselines are there to set a system's streams against its notifications.
  'notify-down': { systems: NO_STREAMS, why: 'no streams to compare with' },
  'notify-up': { systems: NO_STREAMS, why: 'no streams to compare with' },
};

/** Why `system` does not run `scenario`, or undefined if it does. */
export function notApplicable(scenario: Scenario, system: SystemName): string | undefined {
  const na = NOT_APPLICABLE[scenario];
  return na?.systems.includes(system) ? na.why : undefined;
}

export function applies(scenario: Scenario, system: SystemName): boolean {
  return notApplicable(scenario, system) === undefined;
}

export function schedule(scenarios: readonly Scenario[], systems: readonly SystemName[], rounds: number): Planned[] {
  const out: Planned[] = [];
  const placed = new Set<Scenario>();
  for (const first of scenarios) {
    if (placed.has(first)) continue;
    // A stream scenario with its baseline, when both are asked for, else one scenario.
    const partner = (Object.entries(BASELINE_OF) as [Scenario, Scenario][]).find(([s, b]) => s === first || b === first);
    const group = partner && scenarios.includes(partner[0]) && scenarios.includes(partner[1]) ? partner : [first];
    for (const s of group) placed.add(s);
    for (let r = 0; r < rounds; r++)
      for (const scenario of group) {
        const here = systems.filter((s) => applies(scenario, s));
        for (let k = 0; k < here.length; k++) out.push({ scenario, system: here[(r + k) % here.length]!, round: r + 1 });
      }
  }
  return out;
}
