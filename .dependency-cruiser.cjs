/**
 * The layers of `src/` and the directions their imports may point, checked by `npm run lint`
 * (`depcruise src`). Type-only imports count: a type is a dependency too.
 *
 * From the top (may import anything below it) to the bottom (imports nothing of ours):
 *
 *   main.ts cli.ts runtime.ts composition.ts dependencies.ts   entry points, wiring of every role
 *   api/                                                        HTTP: routes, auth middleware, envelope
 *   workers/                                                    one processor per job kind, the pool
 *   plugins/                                                    plugin catalog, sandbox, PluginAPI
 *   emoji/                                                      emoji uploads and sending
 *   ingress/  adapters/  tenants/                               the send path; adapters; tenant deletion
 *   configuration/                                              effective configuration: cache, writes, invalidation
 *   auth/  llm/  queues/  delivery/                             identity; LLM access; queues; how replies leave
 *   db/  redis/  services/  telemetry/                          SQL; Redis scripts, keys, availability; servers; measurements
 *   domain/                                                     pure rules, schemas, ids, clock
 *   config.ts logger.ts errors.ts lifecycle.ts jwtKeys.ts       the kernel every layer may use
 *   projectRoot.ts                                              (paths into the installation)
 *
 * Each rule below names one layer and lists what it may import (besides itself and the kernel);
 * anything else under `src/` is a violation. To let a layer use a new one, change its list here,
 * where the reviewer sees the direction change.
 */

/** Files every layer may import; they import only each other. */
const KERNEL = [
  'config\\.ts',
  'logger\\.ts',
  'errors\\.ts',
  'lifecycle\\.ts',
  'jwtKeys\\.ts',
  'projectRoot\\.ts',
];

/**
 * A rule: files under `src/<layer>` may import only `src/<allowed>` (folders or top-level files),
 * themselves, and the kernel.
 */
function layer(name, comment, allowed) {
  const targets = [`${name}/`, ...allowed, ...KERNEL].join('|');
  return {
    name: `layer-${name}`,
    comment,
    severity: 'error',
    from: { path: `^src/${name}/` },
    to: { path: '^src/', pathNot: `^src/(${targets})` },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment:
        'Modules form a tree of layers; a cycle means two of them are really one, or one is misplaced.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'kernel-is-a-leaf',
      comment:
        'config, logger, errors, closeAll, the JWT key file parser and the project root are used everywhere, so they import none of the layers.',
      severity: 'error',
      from: { path: `^src/(${KERNEL.join('|')})$` },
      to: { path: '^src/', pathNot: `^src/(${KERNEL.join('|')})$` },
    },
    {
      name: 'entry-points-are-not-imported',
      comment:
        'main.ts, cli.ts and runtime.ts start processes and handle signals; composition.ts wires the parts and only the entry points call it.',
      severity: 'error',
      from: { pathNot: '^src/(main|cli|runtime)\\.ts$' },
      to: { path: '^src/(main|cli|runtime|composition)\\.ts$' },
    },
    layer('api', 'HTTP only: it may use every layer below it and the Dependencies type, never the workers.', [
      'dependencies\\.ts',
      'ingress/',
      'adapters/',
      'tenants/',
      'configuration/',
      'emoji/',
      'plugins/',
      'auth/',
      'llm/',
      'queues/',
      'delivery/',
      'db/',
      'redis/',
      'telemetry/',
      'domain/',
    ]),
    layer(
      'workers',
      'Processors run jobs: queues bring them, db/llm/delivery do the work (adapters/ only for its pure platform ids and message shapes). They never reach into the API or the send path.',
      [
        'configuration/',
        'emoji/',
        'plugins/',
        'auth/',
        'llm/',
        'queues/',
        'delivery/',
        'adapters/',
        'db/',
        'redis/',
        'telemetry/',
        'domain/',
      ],
    ),
    layer(
      'plugins',
      "The plugin system: manifests, the catalog, the sandbox (worker threads) and the PluginAPI that plugins reach the tenant's data through (memories, emoji, their own state), never the database, Redis or the environment directly.",
      ['emoji/', 'queues/', 'delivery/', 'db/', 'redis/', 'domain/'],
    ),
    layer(
      'emoji',
      'Emoji packs and sending: uploads (decode, sniff, deduplicate) and the send that stores an emoji as a bot message and hands it to the delivery job.',
      ['queues/', 'delivery/', 'db/', 'redis/', 'domain/'],
    ),
    layer(
      'ingress',
      'The send path below HTTP: identity and scope (auth), admission (redis), enqueue (queues). Its dependencies are declared in ingress/types.ts, not taken from the composition.',
      ['configuration/', 'auth/', 'queues/', 'db/', 'redis/', 'domain/'],
    ),
    layer(
      'adapters',
      'Pure translation of OneBot / maim_message payloads into one SendInput, and of replies into maim_message frames.',
      ['ingress/types\\.ts', 'domain/'],
    ),
    layer('tenants', 'Tenant lifecycle across the stores: rows, cached meta, queues and Redis keys.', [
      'auth/',
      'queues/',
      'db/',
      'redis/',
      'domain/',
    ]),
    layer(
      'configuration',
      'Effective configuration (tenant < agent < platform < chat): the one read function, its per-process cache and pub/sub invalidation, and the versioned writes. SQL through db/, channels through redis/.',
      ['db/', 'redis/', 'domain/'],
    ),
    layer('auth', 'Identity: credentials, tokens, principals and scopes, their caches. Nothing of HTTP.', [
      'db/',
      'redis/',
      'domain/',
    ]),
    layer(
      'llm',
      'LLM access and key sealing; services/ only for the development server key kept next to the private servers.',
      ['db/', 'redis/', 'services/', 'domain/'],
    ),
    layer(
      'queues',
      'Queue names, per-tenant queues, the fair scheduler and dispatcher: BullMQ and Redis only, no SQL, no job logic.',
      ['redis/', 'domain/'],
    ),
    layer(
      'delivery',
      "How replies leave: webhook signing, OneBot actions and routes, and the relay that reaches the API process holding a bot's socket (Redis pub/sub); adapters/ only for its pure platform ids.",
      ['adapters/', 'redis/', 'domain/'],
    ),
    layer('db', 'The pool, units of work and SQL; it knows the isolation context and nothing above it.', [
      'domain/',
    ]),
    layer(
      'redis',
      'Redis plumbing: scripts, key names, availability. No knowledge of what the keys hold.',
      [],
    ),
    layer('services', 'Finding or starting PostgreSQL and Redis (connecting through redis/connect).', [
      'redis/connect\\.ts',
    ]),
    layer(
      'telemetry',
      "What every process measures (latency histograms, totals, heartbeats), summed across processes in Redis; the API reads it, the API and the workers write it. Knows nothing of HTTP or jobs' contents.",
      ['redis/', 'domain/'],
    ),
    layer('domain', 'Pure rules and types: the clock and the random source are passed in.', []),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
