import { setFlagsFromString } from 'node:v8';

/**
 * Turns off V8's allocation-site pretenuring for the server process. Imported first by main.ts, so
 * it is set before any request is served.
 *
 * Why: pretenuring allocates objects straight in the old generation once most objects from the same
 * allocation site have survived scavenges. An ingest request lives for hundreds of milliseconds
 * while its megabytes of body are parsed and written, so the objects every request creates (Fastify's
 * and Nest's request objects, promises, pg's rows) survive during ingest, and their sites are
 * marked. After that the same sites keep allocating in the old generation for short reads too, and
 * each scavenge faults in old-space pages for them: measured on a list of 50 documents, 0.4 → 6.8
 * page faults and 478 → 711 µs of CPU per request after 60 ingest batches; with pretenuring off
 * 545 µs and 0.4 faults, and ingest itself no slower (docs/PERFORMANCE.md).
 */
setFlagsFromString('--no-allocation-site-pretenuring');
