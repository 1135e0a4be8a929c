import type { FastifyReply } from 'fastify';

/**
 * Sets `Location` on a 201: the path of the resource the request created, each segment
 * percent-encoded (a documentId may hold `/`, `?` or `#`), so a client can GET it without
 * building the URL itself. A segment of dots cannot arise: `.` and `..` are refused as documentId
 * and collection name, since URL parsers resolve them away even percent-encoded.
 */
export function setCreatedLocation(reply: FastifyReply, ...segments: string[]): void {
  void reply.header('location', `/${segments.map(encodeURIComponent).join('/')}`);
}

/** The `Location` header of a 201, for @ApiCreatedResponse({ headers }). */
export function createdLocationHeader(example: string): Record<string, { description: string; schema: object }> {
  return {
    Location: {
      description: 'Path of the created resource (segments percent-encoded)',
      schema: { type: 'string', example },
    },
  };
}
