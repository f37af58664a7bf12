/** Where a task clone's tasks come from and its task outputs go (fork/task-feed.ts: the job's task server), as the pool sees it. */
import { toWireError, type WireError } from '@flurry/core';
import type { TaskStep } from './thread-messages.js';

export interface TaskSource {
  /** The next tasks to run, in order; none when the clone is to end. */
  next(): Promise<number[]>;
  started(task: number): void;
  done(task: number, output: Uint8Array, runMs: number): void;
  failed(task: number, error: WireError): void;
}

/** Hands a task clone's thread steps to `source`; a `want` is answered with its next tasks, or with why there are none. */
export function taskStepsTo(source: TaskSource): (step: TaskStep, answer: (tasks: number[], error?: WireError) => void) => void {
  return (step, answer) => {
    if (step.kind === 'want') source.next().then((tasks) => answer(tasks), (err: unknown) => answer([], toWireError(err)));
    else if (step.kind === 'start') source.started(step.task);
    else if (step.kind === 'done') source.done(step.task, step.output, step.runMs);
    else source.failed(step.task, step.error);
  };
}
