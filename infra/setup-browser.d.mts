/** Types of setup-browser.mjs (plain JavaScript: the set-up runs before anything is built). */
import type { SetupDecision, SetupSystem } from './setup-decisions.mjs';

export function chromiumPath(env?: Record<string, string | undefined>): string;
export function findBrowser(env?: Record<string, string | undefined>): { path: string; found: boolean; chosen: boolean };
export function decideBrowser(findings: { path: string; found: boolean; chosen: boolean; system: SetupSystem }): SetupDecision;
