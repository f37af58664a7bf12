import { describe, expect, it } from 'vitest';
import { JobObjects, JobSubjects, type ForkRequest, type SnapshotDescriptor } from '@flurry/core';
import { checkDataRef, checkSnapshotMatch, checkUnicastSubject, withDerivedRoutes } from './request-rights.js';

const d = { snapshotId: 'snap_1', tenant: 'acme', function: 'f', moduleDigest: 'a'.repeat(64) } as SnapshotDescriptor;
const base: ForkRequest = { requestId: 'drive-1', descriptor: new Uint8Array(0), clones: [], count: 1, resultSubject: 'flurry.fork.Abc123', prefetch: false };
const rid = 'job_x1.3.lz4abc0123';
/** A fork request as the coordinator sends it (gateway/src/jobs/job-run.ts). */
const jobFork: ForkRequest = {
  ...base, requestId: rid, jobId: 'job_x1', resultSubject: JobSubjects.results('acme', 'job_x1'), perIndexResults: true,
  failSubject: JobSubjects.attemptFailures('acme', rid), progressSubject: JobSubjects.progress('acme', 'job_x1'),
  objects: { store: JobObjects, inputs: { 0: 'acme/job_x1/inputs/0' }, outputPrefix: 'acme/job_x1/out', minOutputBytes: 1 },
};

describe('request rights', () => {
  it("accept the coordinator's own fork requests and a driver's inbox", () => {
    expect(withDerivedRoutes(jobFork, d)).toEqual(jobFork);
    expect(withDerivedRoutes(base, d)).toEqual(base);
    const reduce = { ...base, requestId: 'job_x1.reduce.lz4', jobId: 'job_x1', resultSubject: 'flurry.reduce.N1', objects: { store: JobObjects, inputs: { 0: 'acme/job_x1/reduce-input' }, outputPrefix: 'acme/job_x1/reduce-out' } };
    expect(withDerivedRoutes(reduce, d)).toEqual(reduce);
    // A task job's clones on the reduce's host keep their outputs; its reduce names them.
    const keeping = { ...jobFork, tasks: { count: 8, subject: JobSubjects.tasks('acme', 'job_x1'), keepOutputs: true } };
    expect(withDerivedRoutes(keeping, d)).toEqual(keeping);
    const named = { ...reduce, entry: 'reduce' as const, keptOutputs: [{ requestId: rid, first: 0, count: 4 }] };
    expect(withDerivedRoutes(named, d)).toEqual(named);
  });

  it('refuse kept outputs named outside a job\'s reduce', () => {
    const kept = [{ requestId: rid, first: 0, count: 4 }];
    expect(() => withDerivedRoutes({ ...base, keptOutputs: kept }, d)).toThrow(/names no job/);
    expect(() => withDerivedRoutes({ ...jobFork, keptOutputs: kept }, d)).toThrow(/only a reduce/);
  });

  it("refuse destinations other than the job's own", () => {
    expect(() => withDerivedRoutes({ ...jobFork, resultSubject: JobSubjects.results('other', 'job_x1') }, d)).toThrow(/resultSubject/);
    expect(() => withDerivedRoutes({ ...jobFork, failSubject: JobSubjects.attemptFailures('acme', 'job_y.1.a') }, d)).toThrow(/failSubject/);
    expect(() => withDerivedRoutes({ ...jobFork, progressSubject: 'flurry.jobs.acme.job_y.progress' }, d)).toThrow(/progressSubject/);
    expect(() => withDerivedRoutes({ ...jobFork, objects: { ...jobFork.objects!, store: 'flurry_modules' } }, d)).toThrow(/job's data/);
    expect(() => withDerivedRoutes({ ...jobFork, objects: { ...jobFork.objects!, outputPrefix: 'acme/job_y/out' } }, d)).toThrow(/output prefix/);
    expect(() => withDerivedRoutes({ ...jobFork, requestId: 'job.x.>' }, d)).toThrow(/request id/);
    expect(() => withDerivedRoutes({ ...jobFork, jobId: undefined }, d)).toThrow(/jobId/);
    expect(() => withDerivedRoutes({ ...jobFork, jobId: 'job_x1.>' }, d)).toThrow(/jobId/);
    // The job is the one named, not the start of the request id.
    expect(() => withDerivedRoutes({ ...jobFork, jobId: 'job_y' }, d)).toThrow(/resultSubject/);
    expect(() => withDerivedRoutes({ ...base, resultSubject: 'flurry.fork.*' }, d)).toThrow(/driver's inbox/);
    expect(() => withDerivedRoutes({ ...base, resultSubject: 'flurry.results.acme.job_x1' }, d)).toThrow(/driver's inbox/);
  });

  it('refuse a snapshot named as another tenant, function or module, and uploads of another tenant', () => {
    expect(() => checkSnapshotMatch(d, undefined)).not.toThrow();
    expect(() => checkSnapshotMatch(d, { ...d })).not.toThrow();
    expect(() => checkSnapshotMatch({ ...d, tenant: 'evil' }, d)).toThrow(/names snapshot/);
    expect(() => checkSnapshotMatch({ ...d, moduleDigest: 'b'.repeat(64) }, d)).toThrow(/names snapshot/);
    expect(() => checkDataRef('acme', { store: 'flurry_data_acme', name: 'x', digest: 'sha256:0', bytes: 1 })).not.toThrow();
    expect(() => checkDataRef('acme', { store: 'flurry_data_other', name: 'x', digest: 'sha256:0', bytes: 1 })).toThrow(/own store/);
  });

  it("send unicast chunks only to a receiver's own page subject of the snapshot", () => {
    expect(() => checkUnicastSubject(d, 'flurry.snap.acme.snap_1.to.host-2.Nuid1')).not.toThrow();
    expect(() => checkUnicastSubject(d, 'flurry.snap.acme.snap_2.to.host-2.x')).toThrow(/only/);
    expect(() => checkUnicastSubject(d, 'flurry.results.acme.job.0')).toThrow(/only/);
    expect(() => checkUnicastSubject(d, 'flurry.snap.acme.snap_1.to.*')).toThrow(/only/);
  });
});
