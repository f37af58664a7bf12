/**
 * `flurry job run`'s progress report on stderr: a live bar redrawn in place when stderr is a
 * terminal, one line per event otherwise. Both read the same tally of the job's events.
 */
import { eventLine } from './cli-views.js';
import type { JobEvent } from './jobs.js';
import type { JobRecord, PageCounts } from './types.js';

type CloneState = 'pending' | 'running' | 'done' | 'failed';

/** Where a job stands, as far as its events have told. */
export interface ProgressSnapshot {
  state: string;
  clones: number;
  pending: number;
  running: number;
  done: number;
  failed: number;
  /** Guest progress averaged over the clones, 0..1; a finished clone counts as 1. */
  fraction: number;
  pagesFetched: number;
}

/**
 * Tallies a job's events: each clone's state and last reported progress, and pages fetched.
 *
 * @example
 * const tally = new JobProgress();
 * await handle.wait({ onEvent: (event) => tally.apply(event) });
 */
export class JobProgress {
  private state = 'queued';
  private clones = 0;
  private readonly cloneStates = new Map<number, CloneState>();
  private readonly fractions = new Map<number, number>();
  private readonly clonePages = new Map<number, number>();
  private recordPages = 0;
  /** A job with tasks: the tasks done of all, which is its progress. */
  private taskFraction: number | undefined;

  apply(event: JobEvent): void {
    switch (event.kind) {
      case 'state':
        this.fromRecord(event.job);
        return;
      case 'placed':
      case 'snapshot':
        this.state = 'snapshotting';
        return;
      case 'forked':
        this.state = 'running';
        for (const index of event.indices ?? []) if (!this.finished(index)) this.cloneStates.set(index, 'running');
        return;
      case 'progress': {
        const { index, done, total } = event;
        if (index === undefined) {
          this.taskFraction = total > 0 ? Math.min(1, done / total) : 0;
          return;
        }
        if (!this.finished(index)) this.cloneStates.set(index, 'running');
        this.fractions.set(index, total > 0 ? Math.min(1, Math.max(0, done / total)) : 0);
        return;
      }
      case 'clone.done':
        this.cloneStates.set(event.index, 'done');
        this.fractions.set(event.index, 1);
        if (event.pages !== undefined) this.clonePages.set(event.index, fetchedPages(event.pages));
        return;
      case 'clone.failed':
        // A task's failure: the clone goes on with its next task.
        if (event.task !== undefined && event.final === false) return;
        // Not final: the clone is forked again from the start.
        this.cloneStates.set(event.index, event.final === false ? 'pending' : 'failed');
        if (event.final === false) this.fractions.delete(event.index);
        return;
      case 'clone.lost':
        this.cloneStates.set(event.index, 'pending');
        this.fractions.delete(event.index);
        return;
      case 'reduced':
        this.state = 'reducing';
        return;
      case 'done':
      case 'failed':
      case 'cancelled':
        if (event.job !== undefined) this.fromRecord(event.job);
        this.state = event.kind;
        return;
    }
  }

  snapshot(): ProgressSnapshot {
    const count = (state: CloneState) => [...this.cloneStates.values()].filter((s) => s === state).length;
    const running = count('running');
    const done = count('done');
    const failed = count('failed');
    let sum = 0;
    for (let index = 0; index < this.clones; index++) {
      sum += this.cloneStates.get(index) === 'done' ? 1 : (this.fractions.get(index) ?? 0);
    }
    let clonePages = 0;
    for (const pages of this.clonePages.values()) clonePages += pages;
    return {
      state: this.state,
      clones: this.clones,
      pending: Math.max(0, this.clones - running - done - failed),
      running,
      done,
      failed,
      fraction: this.taskFraction ?? (this.clones > 0 ? sum / this.clones : 0),
      pagesFetched: Math.max(this.recordPages, clonePages),
    };
  }

  private finished(index: number): boolean {
    const state = this.cloneStates.get(index);
    return state === 'done' || state === 'failed';
  }

  private fromRecord(record: JobRecord): void {
    this.state = record.state;
    this.clones = record.clones;
    this.recordPages = record.pagesFetched ?? 0;
    if (record.tasks) this.taskFraction = record.tasks.total > 0 ? record.tasks.done / record.tasks.total : 0;
    for (const clone of record.clonesDetail ?? []) {
      const state: CloneState = clone.state === 'done' || clone.state === 'failed' || clone.state === 'running' ? clone.state : 'pending';
      this.cloneStates.set(clone.index, state);
      if (state === 'done') this.fractions.set(clone.index, 1);
      if (clone.pages !== undefined) this.clonePages.set(clone.index, fetchedPages(clone.pages));
    }
  }
}

/** Pages a clone waited for (as the record's `pagesFetched` counts them): multicast and unicast. */
function fetchedPages(pages: PageCounts): number {
  return (pages.multicast ?? 0) + (pages.unicast ?? 0);
}

/**
 * The bar's one line, cut to `width - 1` columns (a full line would wrap on some terminals).
 * The bar's own width depends only on `width`, so it does not jump as the numbers grow.
 *
 * @example
 * progressLine(tally.snapshot(), process.stderr.columns); // "running      [#####.....]  50%  running 2  done 2/4  failed 0  pages 40"
 */
export function progressLine(snapshot: ProgressSnapshot, width = 80): string {
  const percent = `${String(Math.floor(snapshot.fraction * 100)).padStart(3)}%`;
  const barWidth = Math.max(5, Math.min(30, width - 70));
  const filled = Math.round(snapshot.fraction * barWidth);
  const counts = `running ${snapshot.running}  done ${snapshot.done}/${snapshot.clones}  failed ${snapshot.failed}  pages ${snapshot.pagesFetched}`;
  const line = `${snapshot.state.padEnd(12)} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${percent}  ${counts}`;
  return line.slice(0, Math.max(1, width - 1));
}

/** Receives a job's events and shows them; `finish()` once at the end. */
export interface ProgressReporter {
  event(event: JobEvent): void;
  finish(): void;
}

/** Where a reporter writes: a subset of `process.stderr`. */
export interface ReportStream {
  write(text: string): unknown;
  columns?: number;
}

const REDRAW_MS = 100;

/** The live bar: redrawn in place at most every 100 ms, and once more at the end. */
export class TtyProgress implements ProgressReporter {
  private readonly tally = new JobProgress();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private drawn = false;

  constructor(private readonly stream: ReportStream) {}

  event(event: JobEvent): void {
    this.tally.apply(event);
    if (this.timer === undefined) {
      this.draw();
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.draw();
      }, REDRAW_MS);
    }
  }

  finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.draw();
    if (this.drawn) this.stream.write('\n');
  }

  private draw(): void {
    this.stream.write(`\r\x1b[2K${progressLine(this.tally.snapshot(), this.stream.columns || 80)}`);
    this.drawn = true;
  }
}

/** One line per event, for logs and pipes. */
export class PlainProgress implements ProgressReporter {
  constructor(private readonly stream: ReportStream) {}

  event(event: JobEvent): void {
    this.stream.write(`${eventLine(event)}\n`);
  }

  finish(): void {}
}
