/**
 * `flurry.yaml`: the functions and services a fleet should have, and the
 * plan that brings the fleet to it (docs/manifests.md). Parsing and planning
 * only; `flurry deploy -f` (cli-deploy-commands.ts) reads the modules and
 * applies the plan. Part of the CLI, not of the library: it needs `yaml`.
 *
 *   const manifest = parseManifest(readFileSync('flurry.yaml', 'utf8'), 'flurry.yaml');
 *   const plan = planChanges(desiredOf(manifest, digests), { functions, services });
 *
 * What the manifest states is the truth for what it names: a function's
 * module and its whole `limits` (left out: the fleet's defaults); a service's
 * fields that it states (left out: left as they are). Nothing it does not
 * name is touched.
 */
import { LineCounter, parseDocument, isMap, isScalar, type Node } from 'yaml';
import { z } from 'zod';
import { toBase64 } from './base64.js';
import type { FunctionLimits, FunctionRecord, ServiceRecord } from './types.js';

/** The gateway's rule for function and service names. */
const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const positive = z.number().int().positive();

const limitsSchema = z.strictObject({
  timeoutMs: positive.optional(),
  memoryBytes: positive.optional(),
  outputBytes: positive.optional(),
});

const functionSchema = z.strictObject({
  /** The wasm module, relative to the manifest's directory. */
  module: z.string().min(1),
  /** A shell command run in the manifest's directory before the module is read. */
  build: z.string().min(1).optional(),
  limits: limitsSchema.optional(),
});

const serviceSchema = z.strictObject({
  function: z.string().regex(NAME, 'must be a function name'),
  min: z.number().int().nonnegative().optional(),
  max: z.number().int().positive().optional(),
  targetConcurrency: positive.optional(),
  /** The init input as UTF-8 text. */
  init: z.string().optional(),
  /** Or the name of uploaded data (`flurry data put`). */
  initData: z.string().min(1).optional(),
}).refine((s) => s.init === undefined || s.initData === undefined, { message: 'give init or initData, not both' });

const manifestSchema = z.strictObject({
  functions: z.record(z.string().regex(NAME, 'must be 1-63 lower-case letters, digits or dashes'), functionSchema).default({}),
  services: z.record(z.string().regex(NAME, 'must be 1-63 lower-case letters, digits or dashes'), serviceSchema).default({}),
});

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestService = Manifest['services'][string];

/** A manifest that cannot be applied; the message names the file, the line and the path of what is wrong. */
export class ManifestError extends Error {
  override readonly name = 'ManifestError';
}

/** Parses and validates a manifest; `source` names it in errors (`flurry.yaml:7: functions.spin.limits: ...`). */
export function parseManifest(text: string, source: string): Manifest {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const [syntax] = doc.errors;
  if (syntax) {
    // The message's first line, without the position it ends with (given as file:line instead).
    const message = syntax.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new ManifestError(`${source}:${syntax.linePos?.[0].line ?? '?'}: ${message}`);
  }
  const parsed = manifestSchema.safeParse(doc.toJS() ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const path = issue.path.map(String);
  // An unknown key is named by its own path, and the line is the key's.
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const at = keys.length > 0 ? [...path, keys[0]] : path;
  const message = keys.length > 0 ? `unknown key${keys.length > 1 ? ` (also ${keys.slice(1).join(', ')})` : ''}`
    : issue.code === 'invalid_type' && issue.message.endsWith('received undefined') ? 'missing (required)'
    : issue.code === 'invalid_key' ? `name ${issue.issues[0]?.message ?? 'not allowed'}` : issue.message;
  const line = lineOf(doc.contents, at, lines);
  throw new ManifestError(`${source}${line ? `:${line}` : ''}: ${at.length > 0 ? at.join('.') : '(top level)'}: ${message}`);
}

/** The line of the node at `path` (of its key, for a map entry), as far down the path as the document goes. */
function lineOf(root: Node | null, path: string[], lines: LineCounter): number | undefined {
  let node: Node | null = root;
  let line: number | undefined = node?.range ? lines.linePos(node.range[0]).line : undefined;
  for (const key of path) {
    if (!isMap(node)) break;
    const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
    if (!pair) break;
    const keyNode = pair.key as Node;
    if (keyNode.range) line = lines.linePos(keyNode.range[0]).line;
    node = pair.value as Node | null;
  }
  return line;
}

/** A function as the manifest wants it, its module read and hashed. */
export interface DesiredFunction {
  name: string;
  /** SHA-256 of the module bytes, lower-case hex. */
  digest: string;
  limits: FunctionLimits;
}

/** What the fleet has of the manifest's resources. */
export interface CurrentState {
  functions: FunctionRecord[];
  services: ServiceRecord[];
}

export type Action = 'create' | 'update' | 'unchanged';

/** One resource's change: what is done, and each difference in words (`limits.timeoutMs 10000 -> 2000`). */
export interface FunctionChange {
  kind: 'function';
  name: string;
  action: Action;
  /** Upload the module (new, or its digest differs). */
  upload: boolean;
  /** Set these limits (they differ from the function's). */
  limits?: FunctionLimits;
  /** Set the limits before the upload: a module within the new memory limit only (see orderOf). */
  limitsFirst: boolean;
  changes: string[];
}

export interface ServiceChange {
  kind: 'service';
  name: string;
  action: Action;
  /** For create: the whole spec; for update: the fields that differ. */
  spec: ManifestService;
  changes: string[];
}

export type Change = FunctionChange | ServiceChange;

/**
 * What to do to bring `current` to the manifest: functions first (a service
 * needs its function), each resource once. A service whose function or init
 * differs cannot change in place (its instances are clones of one parent):
 * refused, naming the path, before anything is applied.
 */
export function planChanges(manifest: Manifest, desired: DesiredFunction[], current: CurrentState, source = 'manifest'): Change[] {
  const functions = new Map(current.functions.map((f) => [f.name, f]));
  const services = new Map(current.services.map((s) => [s.name, s]));
  const plan: Change[] = desired.map((want) => planFunction(want, functions.get(want.name)));
  for (const [name, spec] of Object.entries(manifest.services)) plan.push(planService(name, spec, services.get(name), source));
  return plan;
}

function planFunction(want: DesiredFunction, have: FunctionRecord | undefined): FunctionChange {
  const base = { kind: 'function' as const, name: want.name };
  const wantsLimits = Object.keys(want.limits).length > 0;
  if (!have) {
    return { ...base, action: 'create', upload: true, limits: wantsLimits ? want.limits : undefined, limitsFirst: false, changes: [`digest ${short(want.digest)}`, ...limitWords({}, want.limits)] };
  }
  const upload = have.digest !== want.digest;
  const limitChanges = limitWords(have.limits ?? {}, want.limits);
  const changes = [...(upload ? [`digest ${short(have.digest)} -> ${short(want.digest)}`] : []), ...limitChanges];
  return {
    ...base,
    action: changes.length > 0 ? 'update' : 'unchanged',
    upload,
    limits: limitChanges.length > 0 ? want.limits : undefined,
    limitsFirst: limitChanges.length > 0 && raisesMemory(have.limits ?? {}, want.limits),
    changes,
  };
}

/**
 * A new module must fit the memory limit in force when it is uploaded, and
 * the module in force must fit a new limit when it is set: with the limit
 * raised (or dropped), set it first; lowered, upload first. One of the two
 * orders always works when the end state is valid.
 */
function raisesMemory(have: FunctionLimits, want: FunctionLimits): boolean {
  if (want.memoryBytes === undefined) return true;
  return have.memoryBytes !== undefined && want.memoryBytes >= have.memoryBytes;
}

const LIMIT_NAMES = ['timeoutMs', 'memoryBytes', 'outputBytes'] as const;

function limitWords(have: FunctionLimits, want: FunctionLimits): string[] {
  return LIMIT_NAMES.filter((k) => have[k] !== want[k]).map((k) => `limits.${k} ${have[k] ?? 'default'} -> ${want[k] ?? 'default'}`);
}

function planService(name: string, spec: ManifestService, have: ServiceRecord | undefined, source: string): ServiceChange {
  const base = { kind: 'service' as const, name };
  if (!have) return { ...base, action: 'create', spec, changes: [`function ${spec.function}`, ...scaleWords(spec)] };
  const fixed = (field: string, reason: string) => new ManifestError(
    `${source}: services.${name}.${field}: differs from the deployed service's (${reason}); a service's function and init cannot change in place: delete the service first (flurry service rm ${name})`,
  );
  if (spec.function !== have.function) throw fixed('function', `${have.function}`);
  const init = spec.init === undefined ? undefined : toBase64(new TextEncoder().encode(spec.init));
  if (init !== have.init) throw fixed('init', have.init === undefined ? 'none' : 'another init input');
  if (spec.initData !== have.initData) throw fixed('initData', have.initData ?? 'none');
  const update: ManifestService = { function: spec.function };
  const changes: string[] = [];
  for (const k of ['min', 'max', 'targetConcurrency'] as const) {
    if (spec[k] !== undefined && spec[k] !== have[k]) {
      update[k] = spec[k];
      changes.push(`${k} ${have[k]} -> ${spec[k]}`);
    }
  }
  return { ...base, action: changes.length > 0 ? 'update' : 'unchanged', spec: update, changes };
}

function scaleWords(spec: ManifestService): string[] {
  return (['min', 'max', 'targetConcurrency'] as const).filter((k) => spec[k] !== undefined).map((k) => `${k} ${spec[k]}`);
}

function short(digest: string): string {
  return digest.slice(0, 12);
}
