// The part of the config a workflow decides with. An activity hands it over, so it is
// recorded in history and replays identically even after the config file changes.
import type { BirthrightRule, JmlConfig } from './config.js';
import type { EntitlementKind } from './types.js';

export interface PolicySnapshot {
  entitlements: Record<string, { kind: EntitlementKind; target: string; ref?: string }>;
  birthright: BirthrightRule[];
  lifecycle: JmlConfig['lifecycle'];
  retries: JmlConfig['retries'];
}

export function policySnapshot(config: JmlConfig): PolicySnapshot {
  return {
    entitlements: Object.fromEntries(config.entitlements.map((e) => [e.id, { kind: e.kind, target: e.target, ...(e.ref ? { ref: e.ref } : {}) }])),
    birthright: config.birthright,
    lifecycle: config.lifecycle,
    retries: config.retries,
  };
}
