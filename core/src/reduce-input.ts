import { concatBytes } from './bytes.js';
import { FlurryError } from './errors.js';
import type { KeptRun } from './protocol.js';

/** The input of `reduce(count)` (docs/guest-abi.md): every clone's output in index order, each as a little-endian u32 length and its bytes. */
export function frameReduceInput(outputs: readonly Uint8Array[]): Uint8Array {
  const framed = new Uint8Array(outputs.reduce((n, o) => n + 4 + o.length, 0));
  const view = new DataView(framed.buffer);
  let offset = 0;
  for (const output of outputs) {
    view.setUint32(offset, output.length, true);
    framed.set(output, offset + 4);
    offset += 4 + output.length;
  }
  return framed;
}

/**
 * Where a walk of `count` frames (frameReduceInput's layout) from `offset` in
 * `framed` ended: at `end`, just past the last of them; or at the `cut` frame
 * (0 for the first walked), whose length (`at: 'length'`) or bytes
 * (`at: 'bytes'`) run past the end of `framed`. `each`, when given, sees every
 * whole frame's bytes as a view of `framed`.
 */
export function walkFrames(
  framed: Uint8Array, offset: number, count: number, each?: (frame: Uint8Array) => void,
): { end: number } | { cut: number; at: 'length' | 'bytes' } {
  const view = new DataView(framed.buffer, framed.byteOffset, framed.byteLength);
  for (let frame = 0; frame < count; frame++) {
    if (offset + 4 > framed.length) return { cut: frame, at: 'length' };
    const length = view.getUint32(offset, true);
    if (offset + 4 + length > framed.length) return { cut: frame, at: 'bytes' };
    each?.(framed.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return { end: offset };
}

/**
 * The `count` outputs framed by frameReduceInput (a task job's results of several tasks: CloneResult.taskRunMs),
 * as views of `framed`; undefined unless it holds exactly `count` frames.
 */
export function unframeOutputs(framed: Uint8Array, count: number): Uint8Array[] | undefined {
  const out: Uint8Array[] = [];
  const walk = walkFrames(framed, 0, count, (frame) => out.push(frame));
  return 'end' in walk && walk.end === framed.length ? out : undefined;
}

/** The tasks first..last a task results subject's last token names (`<first>-<last>`, JobSubjects.taskResults); undefined for any other token. */
export function taskRange(token: string): { first: number; last: number } | undefined {
  const m = /^(\d{1,9})-(\d{1,9})$/.exec(token);
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  return last >= first ? { first, last } : undefined;
}

/**
 * The frames a task job's reduce request carries when its host kept some runs
 * of the outputs itself (ForkRequest.keptOutputs): every output not in one of
 * `kept`, in task order. `outputs` are all the tasks' outputs in task order.
 */
export function framesBesideKept(outputs: readonly Uint8Array[], kept: readonly KeptRun[]): Uint8Array {
  if (kept.length === 0) return frameReduceInput(outputs);
  const inKept = new Uint8Array(outputs.length);
  for (const r of kept) inKept.fill(1, r.first, r.first + r.count);
  return frameReduceInput(outputs.filter((_, t) => inKept[t] === 0));
}

/**
 * The reduce input of `total` task outputs in task order, put together on the
 * reduce's host from the runs it kept (`kept`, each with its framed outputs,
 * as its clone published them) and `given`, the frames of every other task in
 * task order (framesBesideKept). Throws `bad_request` when they do not add up:
 * runs out of order, overlapping or past `total`, a run's bytes not one frame
 * per task, or `given` not exactly the frames of the tasks between them.
 */
export function mergeReduceInput(total: number, kept: readonly (KeptRun & { framed: Uint8Array })[], given: Uint8Array): Uint8Array {
  const bad = (why: string) => new FlurryError('bad_request', `reduce input: ${why}`);
  const parts: Uint8Array[] = [];
  let offset = 0;
  let task = 0;
  /** The given frames of tasks `task` .. `upTo` - 1. */
  const takeGiven = (upTo: number) => {
    const walk = walkFrames(given, offset, upTo - task);
    if ('cut' in walk) {
      const cut = task + walk.cut;
      throw bad(walk.at === 'length' ? `the frames given end before task ${cut}` : `the frame of task ${cut} runs past the frames given`);
    }
    if (walk.end > offset) parts.push(given.subarray(offset, walk.end));
    offset = walk.end;
    task = upTo;
  };
  let end = 0;
  for (const run of kept) {
    if (!(Number.isInteger(run.first) && Number.isInteger(run.count) && run.count >= 1 && run.first >= end && run.first + run.count <= total)) {
      throw bad(`the kept run of tasks ${run.first}+${run.count} is out of order, overlaps another or is past task ${total - 1}`);
    }
    end = run.first + run.count;
  }
  for (const run of kept) {
    takeGiven(run.first);
    if (!unframeOutputs(run.framed, run.count)) throw bad(`the kept run of tasks ${run.first}+${run.count} is not one frame per task`);
    parts.push(run.framed);
    task = run.first + run.count;
  }
  takeGiven(total);
  if (offset !== given.length) throw bad(`${given.length - offset} bytes given past the last task`);
  return concatBytes(parts);
}
