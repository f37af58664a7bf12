/**
 * The migration steps' messages as they come off the wire (`ReceiveStep`,
 * `ReceiveStepReply` in core/src/protocol.ts), checked field by field: the
 * target acts on no step it has not checked, and the source takes a garbled
 * commit answer for a lost one (an unknown outcome), never for a success.
 *
 *   const step = parseReceiveStep(msg.data);        // throws FlurryError('bad_request', ...)
 *   const reply = parseReceiveStepReply(answer.data); // throws Error
 */
import { decode, FlurryError, type ReceiveStep, type ReceiveStepReply } from '@flurry/core';

type Fields = Record<string, unknown>;

const STEPS: readonly string[] = ['prepare', 'apply', 'settle', 'quiesce', 'commit', 'abort', 'ping', 'status'] satisfies ReceiveStep['step'][];
const OUTCOMES: readonly string[] = ['committed', 'refused'] satisfies NonNullable<Extract<ReceiveStepReply, { ok: true }>['outcome']>[];

/** A step as the target receives it; a bad one is refused with bad_request. */
export function parseReceiveStep(data: Uint8Array): ReceiveStep {
  try {
    const m = fields(decode<unknown>(data), 'the step');
    if (typeof m.step !== 'string' || !STEPS.includes(m.step)) throw new Error(`unknown step ${JSON.stringify(m.step)}`);
    text(m, 'migrationId');
    if (m.step === 'prepare') {
      for (const k of ['requestId', 'tenant', 'service', 'instanceId', 'name', 'digest']) text(m, k);
      if (m.init !== undefined) binary(m, 'init');
      if (m.initData !== undefined) {
        const ref = fields(m.initData, 'initData');
        for (const k of ['store', 'name', 'digest']) text(ref, k);
        count(ref, 'bytes');
      }
      count(m, 'memoryBytes');
    }
    if (m.step === 'apply' || m.step === 'commit') {
      if (binary(m, 'pages').length % 4 !== 0) throw new Error('pages is not a list of u32');
      binary(m, 'bytes');
      count(m, 'memoryBytes');
    }
    if (m.step === 'commit') {
      for (const [name, g] of Object.entries(fields(m.globals, 'globals'))) {
        const v = fields(g, `global ${name}`);
        if (!(typeof v.n === 'number' || v.n === null || typeof v.b === 'string')) throw new Error(`global ${name} has no value`);
      }
      count(m, 'expiresAt');
      count(m, 'pagesSent');
      if (m.verify !== undefined && typeof m.verify !== 'boolean') throw new Error('verify is not a boolean');
    }
    return m as unknown as ReceiveStep;
  } catch (err) {
    throw new FlurryError('bad_request', `bad migration step: ${(err as Error).message}`);
  }
}

/** A target's answer as the source receives it. */
export function parseReceiveStepReply(data: Uint8Array): ReceiveStepReply {
  const m = fields(decode<unknown>(data), 'the answer');
  if (m.ok === false) {
    const e = fields(m.error, 'error');
    text(e, 'code');
    text(e, 'message');
    return m as unknown as ReceiveStepReply;
  }
  if (m.ok !== true) throw new Error('the answer has no ok');
  if (m.targetMs !== undefined) {
    const t = fields(m.targetMs, 'targetMs');
    if (typeof t.applyMs !== 'number' || typeof t.totalMs !== 'number') throw new Error('targetMs lacks its times');
  }
  if (m.memoryHash !== undefined) text(m, 'memoryHash');
  if (m.pagesApplied !== undefined) count(m, 'pagesApplied');
  if (m.outcome !== undefined && (typeof m.outcome !== 'string' || !OUTCOMES.includes(m.outcome))) throw new Error(`unknown outcome ${JSON.stringify(m.outcome)}`);
  if (m.reason !== undefined) text(m, 'reason');
  return m as unknown as ReceiveStepReply;
}

function fields(v: unknown, what: string): Fields {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new Error(`${what} is not a map`);
  return v as Fields;
}

function text(m: Fields, k: string): string {
  if (typeof m[k] !== 'string') throw new Error(`${k} is not a string`);
  return m[k];
}

function binary(m: Fields, k: string): Uint8Array {
  if (!(m[k] instanceof Uint8Array)) throw new Error(`${k} is not binary`);
  return m[k];
}

function count(m: Fields, k: string): number {
  const v = m[k];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new Error(`${k} is not a count`);
  return v;
}
