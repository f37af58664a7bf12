/**
 * The fleet's NATS users and what each may publish and subscribe to: the
 * `authorization` block of nats-server's configuration (docs/security.md has
 * the table). Roles:
 *
 * - `admin`: operators' tools, tests and benchmarks; no limits.
 * - `gateway` (every gateway replica): publishes anything (it is the trusted
 *   coordinator and owns every bucket and stream), subscribes to fleet
 *   subjects and its own inbox only.
 * - `host-<id>`, one per worker host: subscribes to its own subjects, the
 *   fleet subjects hosts serve and its own inbox; publishes only what a host
 *   produces, and reads (never writes) modules, function records, job inputs
 *   and tenants' uploads.
 *
 * Users are user/password pairs (random 32-byte passwords): the server
 * names the user in every permission violation it logs, and a credentials
 * file (0600, in the fleet's state folder) is as secret as an nkey seed.
 *
 *   const creds = FleetCredentials.generate(['host-1', 'host-2']);
 *   writeFileSync(file, creds.authorizationConfig(), { mode: 0o600 });
 */
import { randomBytes } from 'node:crypto';
import {
  Buckets, ControllerBuckets, ControllerSubjects, FailuresStream, GuestLogsStream, GuestLogSubjects, hostUser, inboxPrefixFor, JobBuckets, JobEventsStream, JobOutputObjects, JobSubjects,
  ObjectStores, ResultsStream, ServiceBuckets, Subjects, type NatsAuth,
} from '@flurry/core';
import { secret, type SecretValue } from './nats-config.js';

export interface Permissions {
  publish: { allow: string[]; deny?: string[] };
  subscribe: { allow: string[]; deny?: string[] };
  /** May reply to requests it received (their reply subjects are nobody's to guess). */
  allowResponses: boolean;
}

/** A host id is part of subjects and of its NATS user name: one subject token. */
export const HOST_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const ADMIN_USER = 'admin';
export const GATEWAY_USER = 'gateway';

/** JetStream's destructive APIs: no role but `admin` and the gateway may call them. */
const JS_DESTRUCTIVE = ['$JS.API.STREAM.DELETE.>', '$JS.API.STREAM.PURGE.>', '$JS.API.STREAM.MSG.DELETE.>', '$JS.API.CONSUMER.DELETE.>'];

/**
 * The JetStream API subjects that read streams (KV get and watch, object get, with ephemeral
 * ordered consumers), for every stream: tenants' upload stores are one per tenant, and a
 * subject wildcard cannot match part of a stream name.
 */
const JS_READ = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.*',
  '$JS.API.STREAM.MSG.GET.*',
  '$JS.API.DIRECT.GET.>',
  '$JS.API.CONSUMER.CREATE.>',
  '$JS.API.CONSUMER.MSG.NEXT.>',
  '$JS.API.CONSUMER.INFO.>',
  // Flow control of ordered consumers.
  '$JS.FC.>',
];

/**
 * Streams a host never reads: job records and results, services and the controller's state are the
 * gateway's (a host gets what it needs in each request), and tenants' guest logs are their owners' (the
 * gateway's log routes). Denied although JS_READ allows every stream.
 */
const GATEWAY_STREAMS = [
  ...Object.values(JobBuckets), ...Object.values(ServiceBuckets), ...Object.values(ControllerBuckets),
].map((bucket) => `KV_${bucket}`).concat(ResultsStream, FailuresStream, JobEventsStream, GuestLogsStream);

function readsOf(stream: string): string[] {
  return [
    `$JS.API.STREAM.INFO.${stream}`, `$JS.API.STREAM.MSG.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}`, `$JS.API.DIRECT.GET.${stream}.>`,
    `$JS.API.CONSUMER.CREATE.${stream}`, `$JS.API.CONSUMER.CREATE.${stream}.>`, `$JS.API.CONSUMER.MSG.NEXT.${stream}.>`, `$JS.API.CONSUMER.INFO.${stream}.>`,
  ];
}

/** Every service instance's request subject (`flurry.svc.<tenant>.<service>.<instance>`). */
const SERVICE_REQUESTS = 'flurry.svc.*.*.*';

export function gatewayPermissions(): Permissions {
  return {
    publish: { allow: ['>'] },
    subscribe: { allow: ['flurry.>', `${inboxPrefixFor(GATEWAY_USER)}.>`] },
    allowResponses: true,
  };
}

export function hostPermissions(hostId: string): Permissions {
  return {
    subscribe: {
      allow: [
        `flurry.host.${hostId}.>`,
        Subjects.invoke('*', '*', '*'),
        Subjects.allParentsFreed,
        Subjects.pageRequests('*', '*'),
        Subjects.pages('*', '*'),
        `${Subjects.unicastPages('*', '*', hostId)}.>`,
        SERVICE_REQUESTS,
        `${inboxPrefixFor(hostUser(hostId))}.>`,
      ],
    },
    publish: {
      allow: [
        // Results and failures of clones (the coordinator refuses those of attempts it did not send to this host).
        JobSubjects.allResults,
        JobSubjects.allFailures,
        JobSubjects.progress('*', '*'),
        // A task clone asks its job's task server for tasks (the coordinator answers only attempts it sent to this host).
        JobSubjects.tasks('*', '*'),
        // Results to a driver's or a reduce's own inbox (fork-client.ts, job-run.ts).
        'flurry.fork.*',
        'flurry.reduce.*',
        Subjects.allEvents,
        // What guests logged, into the guest logs stream (the gateway creates it; a host only adds to it).
        GuestLogSubjects.all,
        Subjects.allParentsFreed,
        Subjects.pageRequests('*', '*'),
        Subjects.pages('*', '*'),
        `${Subjects.unicastPages('*', '*', '*')}.>`,
        // Migration steps and forwarded requests to the target host.
        'flurry.host.*.instance.receive',
        'flurry.host.*.instance.direct.*',
        // A host that exits asks the controller to move its instances away: its own, named by the subject.
        ControllerSubjects.exiting(hostId),
        // Its own host record, and nobody else's.
        `$KV.${Buckets.hosts}.${hostId}`,
        // Large clone outputs, into their own object store (chunks and their metadata); job specs and inputs are the gateway's.
        `$O.${JobOutputObjects}.C.>`,
        `$O.${JobOutputObjects}.M.>`,
        // connectFabric opens, and creates when missing, the buckets every process shares.
        `$JS.API.STREAM.CREATE.KV_${Buckets.hosts}`,
        `$JS.API.STREAM.CREATE.KV_${Buckets.functions}`,
        `$JS.API.STREAM.CREATE.OBJ_${ObjectStores.modules}`,
        ...JS_READ,
      ],
      deny: [
        // Job events are the coordinator's; a host's own events (host.up, function.placed) stay allowed.
        JobSubjects.allEvents,
        ...JS_DESTRUCTIVE,
        ...GATEWAY_STREAMS.flatMap(readsOf),
      ],
    },
    allowResponses: true,
  };
}

/** The users of one fleet and their passwords. */
export class FleetCredentials {
  private constructor(
    readonly admin: NatsAuth,
    readonly gateway: NatsAuth,
    private readonly hosts: Map<string, NatsAuth>,
  ) {}

  static generate(hostIds: string[] = []): FleetCredentials {
    const creds = new FleetCredentials(userAuth(ADMIN_USER, '_INBOX'), userAuth(GATEWAY_USER), new Map());
    for (const id of hostIds) creds.addHost(id);
    return creds;
  }

  /** Adds a host's user (its password stays the same when it is there already). */
  addHost(hostId: string): NatsAuth {
    if (!HOST_ID_PATTERN.test(hostId)) throw new Error(`host id "${hostId}" must be 1-64 letters, digits, _ or -`);
    let auth = this.hosts.get(hostId);
    if (!auth) this.hosts.set(hostId, (auth = userAuth(hostUser(hostId))));
    return auth;
  }

  host(hostId: string): NatsAuth {
    const auth = this.hosts.get(hostId);
    if (!auth) throw new Error(`no NATS user for host ${hostId}`);
    return auth;
  }

  hostIds(): string[] {
    return [...this.hosts.keys()];
  }

  /** The `authorization { users = [...] }` block for nats-server's configuration. */
  authorizationConfig(): string {
    return authorizationBlock(this.hostIds(), (user) => this.byUser(user).password);
  }

  private byUser(user: string): NatsAuth {
    if (user === this.admin.user) return this.admin;
    if (user === this.gateway.user) return this.gateway;
    const auth = [...this.hosts.values()].find((a) => a.user === user);
    if (!auth) throw new Error(`no NATS user ${user}`);
    return auth;
  }

  /** What a process is given to connect as `auth` (NATS_USER, NATS_PASSWORD, NATS_INBOX_PREFIX). */
  static env(auth: NatsAuth): Record<string, string> {
    return { NATS_USER: auth.user, NATS_PASSWORD: auth.password, NATS_INBOX_PREFIX: auth.inboxPrefix };
  }
}

function userAuth(user: string, inboxPrefix = inboxPrefixFor(user)): NatsAuth {
  return { user, password: randomBytes(32).toString('base64url'), inboxPrefix };
}

/** The permissions of each user of a fleet with these hosts, by user name (admin: none, it may do anything). */
export function fleetUsers(hostIds: string[]): { user: string; permissions?: Permissions }[] {
  for (const id of hostIds) if (!HOST_ID_PATTERN.test(id)) throw new Error(`host id "${id}" must be 1-64 letters, digits, _ or -`);
  return [
    { user: ADMIN_USER },
    { user: GATEWAY_USER, permissions: gatewayPermissions() },
    ...hostIds.map((id) => ({ user: hostUser(id), permissions: hostPermissions(id) })),
  ];
}

/**
 * The `authorization { users = [...] }` block of a fleet with these hosts, each user's password
 * written in (a local fleet) or referenced from nats-server's environment (a deployment: nats-config.ts).
 */
export function authorizationBlock(hostIds: string[], passwordOf: (user: string) => SecretValue): string {
  const users = fleetUsers(hostIds).map(({ user, permissions }) => userEntry(user, passwordOf(user), permissions));
  return ['authorization {', '  users = [', ...users, '  ]', '}', ''].join('\n');
}

function userEntry(user: string, password: SecretValue, p: Permissions | undefined): string {
  if (!p) return `    { user: ${q(user)}, password: ${secret(password)} }`;
  const list = (xs: string[]) => `[${xs.map(q).join(', ')}]`;
  const side = (s: { allow: string[]; deny?: string[] }) => `{ allow: ${list(s.allow)}${s.deny?.length ? `, deny: ${list(s.deny)}` : ''} }`;
  return [
    `    { user: ${q(user)}, password: ${secret(password)}, permissions: {`,
    `        publish: ${side(p.publish)}`,
    `        subscribe: ${side(p.subscribe)}`,
    ...(p.allowResponses ? ['        allow_responses: true'] : []),
    '    } }',
  ].join('\n');
}

function q(s: string): string {
  return JSON.stringify(s);
}
