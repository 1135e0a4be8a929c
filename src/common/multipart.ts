import multipart, { type FastifyMultipartOptions } from '@fastify/multipart';
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify';

/** Whether a request may carry a multipart body (the only kind for which @fastify/multipart has work). */
export function isMultipartRequest(request: FastifyRequest): boolean {
  const contentType = request.headers['content-type'];
  return typeof contentType === 'string' && /multipart\//i.test(contentType);
}

/** The request hooks whose work @fastify/multipart only does for multipart requests. */
const REQUEST_HOOKS = new Set(['onRequest', 'preValidation', 'onResponse']);

type AsyncRequestHook = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/**
 * @fastify/multipart with its request hooks skipped for requests that are not multipart. The plugin
 * adds global async hooks (onRequest adds a 'close' listener to every response, onResponse awaits a
 * cleanup) for the temporary files of `saveRequestFiles`, which only a multipart request can have;
 * on every JSON read they cost two promises and a listener. Its content-type parser and request
 * decorators are registered unchanged. Register with `app.register(multipartForUploads, options)`:
 * like the plugin itself it is not encapsulated, so its parser and decorators reach every route.
 */
export function multipartForUploads(
  fastify: FastifyInstance,
  options: FastifyMultipartOptions,
  done: (error?: Error) => void,
): void {
  // Called with the instance as `this` below, and put back as it was after registration.
  // eslint-disable-next-line @typescript-eslint/unbound-method
  const addHook = fastify.addHook;
  const onlyForMultipart = function (this: FastifyInstance, name: string, hook: unknown): FastifyInstance {
    if (!REQUEST_HOOKS.has(name) || typeof hook !== 'function' || hook.constructor.name !== 'AsyncFunction') {
      return Reflect.apply(addHook, this, [name, hook]) as FastifyInstance;
    }
    const asyncHook = hook as AsyncRequestHook;
    const skipping = function (
      this: FastifyInstance,
      request: FastifyRequest,
      reply: FastifyReply,
      next: HookHandlerDoneFunction,
    ): void {
      if (!isMultipartRequest(request)) return next();
      asyncHook.call(this, request, reply).then(() => next(), next);
    };
    return Reflect.apply(addHook, this, [name, skipping]) as FastifyInstance;
  };
  fastify.addHook = onlyForMultipart;
  try {
    // The plugin registers everything synchronously, then calls done.
    (multipart as unknown as (f: FastifyInstance, o: FastifyMultipartOptions, d: (e?: Error) => void) => void)(
      fastify,
      options,
      done,
    );
  } finally {
    fastify.addHook = addHook;
  }
}
// Not encapsulated (fastify-plugin's skip-override), like @fastify/multipart: the parser and the
// decorators belong to the root instance, where Nest registers its routes.
Object.assign(multipartForUploads, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: '@fastify/multipart (uploads only)',
});
