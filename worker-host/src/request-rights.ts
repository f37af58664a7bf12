/**
 * What a request may make a host do, checked against the tenant it is for.
 * A host's own NATS permissions limit where it may publish; these checks keep
 * one tenant's request from reaching another tenant's objects through a host:
 * a fork names a snapshot whose tenant and module the host knows; a clone's
 * results, failures, progress and large data go where the job's own identity
 * (its tenant and the request's `jobId`) says, never where the message
 * points; uploaded data is read from the tenant's own store.
 */
import { dataStoreName, FlurryError, JobObjects, JobSubjects, Subjects, type ForkRequest, type InitDataRef, type SnapshotDescriptor } from '@flurry/core';

/** A job id is one subject token. */
const JOB_ID = /^[\w-]{1,64}$/;
/** A job's fork request id names its failures subject: a few subject tokens. */
const JOB_REQUEST_ID = /^[\w-]{1,64}(\.[\w-]{1,64}){0,4}$/;
/** A driver's own inbox for results of a fork without a job stream: `flurry.fork.<nuid>` or `flurry.reduce.<nuid>`. */
const DRIVER_INBOX = /^flurry\.(fork|reduce)\.[A-Za-z0-9]{1,64}$/;

function refuse(message: string): never {
  throw new FlurryError('bad_request', message);
}

/** Uploaded data named by a request must be in the store of the request's own tenant. */
export function checkDataRef(tenant: string, ref: InitDataRef | undefined): void {
  if (ref && ref.store !== dataStoreName(tenant)) refuse(`init data of tenant "${tenant}" must come from its own store, not "${ref.store}"`);
}

/** A fork naming a snapshot this host knows must agree with it on the tenant, the function and its module. */
export function checkSnapshotMatch(named: SnapshotDescriptor, known: SnapshotDescriptor | undefined): void {
  if (!known) return;
  if (named.tenant !== known.tenant || named.moduleDigest !== known.moduleDigest || named.function !== known.function) {
    refuse(`the fork request names snapshot ${named.snapshotId} as ${named.tenant}/${named.function}@${named.moduleDigest.slice(0, 12)}, which it is not`);
  }
}

/** A memory server sends a snapshot's chunks by unicast only to a receiver's own page subject of that snapshot. */
export function checkUnicastSubject(d: Pick<SnapshotDescriptor, 'tenant' | 'snapshotId'>, subject: string): void {
  const own = Subjects.unicastPages(d.tenant, d.snapshotId, '');
  if (!subject.startsWith(own) || !/^[\w-]+(\.[\w-]+)*$/.test(subject.slice(own.length))) refuse(`chunks of snapshot ${d.snapshotId} go to ${own}<receiver> only, not "${subject}"`);
}

/**
 * The fork request with every destination derived from the snapshot's tenant
 * and the job's id; throws `bad_request` when the request named others.
 */
export function withDerivedRoutes(req: ForkRequest, d: SnapshotDescriptor): ForkRequest {
  const tenant = d.tenant;
  checkDataRef(tenant, req.initData);
  const forJob = req.perIndexResults || req.progressSubject !== undefined || req.objects !== undefined || req.tasks !== undefined;
  if (!forJob) {
    if (req.keptOutputs) refuse('task outputs kept on a host (keptOutputs) are a job\'s: the request names no job');
    if (!DRIVER_INBOX.test(req.resultSubject)) refuse(`results may go to a driver's inbox (flurry.fork.<id>) only, not "${req.resultSubject}"`);
    return req;
  }
  const jobId = req.jobId;
  if (jobId === undefined || !JOB_ID.test(jobId)) refuse(`a job's fork request must name its job in jobId (one subject token), got "${jobId}"`);
  if (!JOB_REQUEST_ID.test(req.requestId)) refuse(`a job's fork request id must be subject tokens, got "${req.requestId}"`);
  const derived: ForkRequest = { ...req };
  if (req.perIndexResults) {
    derived.resultSubject = mustBe('resultSubject', req.resultSubject, JobSubjects.results(tenant, jobId));
    derived.failSubject = mustBe('failSubject', req.failSubject, JobSubjects.attemptFailures(tenant, req.requestId));
  } else if (!DRIVER_INBOX.test(req.resultSubject)) refuse(`results may go to a driver's inbox (flurry.fork.<id>) only, not "${req.resultSubject}"`);
  if (req.tasks) {
    if (!req.perIndexResults || req.entry === 'reduce') refuse('a task job\'s clones publish each task\'s result to the job\'s results stream (perIndexResults), and reduce has no tasks');
    derived.tasks = { count: req.tasks.count, subject: mustBe('tasks.subject', req.tasks.subject, JobSubjects.tasks(tenant, jobId)), ...(req.tasks.keepOutputs && { keepOutputs: true }) };
  }
  // Outputs kept here are the job's own (kept under its tenant and id, kept-outputs.ts), and only a reduce reads them.
  if (req.keptOutputs && req.entry !== 'reduce') refuse('only a reduce names task outputs kept on its host (keptOutputs)');
  if (req.progressSubject !== undefined) derived.progressSubject = mustBe('progressSubject', req.progressSubject, JobSubjects.progress(tenant, jobId));
  if (req.objects) {
    const own = `${tenant}/${jobId}/`;
    if (req.objects.store !== JobObjects) refuse(`a job's data is in ${JobObjects}, not "${req.objects.store}"`);
    for (const name of Object.values(req.objects.inputs ?? {})) {
      if (!name.startsWith(own)) refuse(`input object "${name}" is not one of job ${jobId}'s`);
    }
    const prefix = req.objects.outputPrefix;
    if (prefix !== undefined && prefix !== `${own}out` && prefix !== `${own}reduce-out`) refuse(`output prefix "${prefix}" is not one of job ${jobId}'s`);
    derived.objects = { ...req.objects, store: JobObjects };
  }
  return derived;
}

function mustBe(field: string, given: string | undefined, derived: string): string {
  if (given !== derived) refuse(`${field} of this fork must be ${derived}, not "${given}"`);
  return derived;
}
