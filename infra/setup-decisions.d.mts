// Types of setup-decisions.mjs, for its unit test (type-checked by tsconfig.tests.json).

/** What the set-up may do to the machine. */
export interface SetupSystem {
  root: boolean;
  apt: boolean;
}

export type SetupDecision =
  | { action: 'ready' }
  | { action: 'install'; packages: string[]; why: string }
  | { action: 'skip'; what: string; reason: string; how: string }
  | { action: 'missing'; what: string; how: string };

export function howToGet(packages: string[], system: SetupSystem): string;
export function decideNats(findings: { found: boolean; natsUrl: string | undefined; needNats: boolean; system: SetupSystem }): SetupDecision;
export function decideCGuests(findings: { missing: string[]; packages: string[]; system: SetupSystem }): SetupDecision;
export function decidePager(findings: { platform: string; pagerEnv: string | undefined; missingTools: string[]; system: SetupSystem }): SetupDecision;
