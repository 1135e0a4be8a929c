import { setFlagsFromString } from 'node:v8';

/**
 * V8 settings for the server process. Imported first by main.ts, so they hold before any request is
 * served. A flag given on node's command line wins over the value here (Node does not take these two
 * in NODE_OPTIONS).
 */

/** Whether `--name` (or `--no-name`, or the underscore spelling) is on this process's node command line. */
function givenByOperator(name: string): boolean {
  // Each element of execArgv is one argument: the flag ends at `=` or at the element's end.
  const pattern = new RegExp(`^--(no-)?${name.replace(/-/g, '[-_]')}(=|$)`);
  return process.execArgv.some((arg) => pattern.test(arg));
}

/**
 * Allocation-site pretenuring off. It allocates objects straight in the old generation once most
 * objects from the same allocation site have survived scavenges. An ingest request lives for
 * hundreds of milliseconds while its megabytes of body are parsed and written, so the objects every
 * request creates (Fastify's and Nest's request objects, promises, pg's rows) survive during ingest,
 * and their sites are marked. After that the same sites keep allocating in the old generation for
 * short reads too, and each scavenge faults in old-space pages for them: measured on a list of 50
 * documents, 0.4 → 6.8 page faults and 478 → 711 µs of CPU per request after 60 ingest batches; with
 * pretenuring off 545 µs and 0.4 faults, and ingest itself no slower (docs/PERFORMANCE-HISTORY.md).
 */
if (!givenByOperator('allocation-site-pretenuring')) setFlagsFromString('--no-allocation-site-pretenuring');

/**
 * The old generation may grow to twice what survived the last full collection before the next one
 * starts. With V8's own choice at this heap size (about 45 MB live), batches of 500 × 384-dimension
 * vectors, each allocating its parsed body and its parameters afresh, ran a full mark-compact every
 * second to sixth batch: 10–40 ms of incremental marking on the main thread and an 8–25 ms pause,
 * each time. With 2 it runs about every tenth batch: CPU per JSON-number batch 92–106 → 66–73 ms,
 * per base64 batch 56–68 → 41–51 ms, peak RSS the same (about 210 MiB; docs/PERFORMANCE-HISTORY.md).
 */
if (!givenByOperator('heap-growing-percent')) setFlagsFromString('--heap-growing-percent=100');
