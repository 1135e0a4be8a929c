import type { FastifyReply } from 'fastify';

/**
 * Sets `Location` on a 201: the path of the resource the request created, each segment
 * percent-encoded (a documentId may hold `/`, `?` or spaces), so a client can GET it without
 * building the URL itself.
 */
export function setCreatedLocation(reply: FastifyReply, ...segments: string[]): void {
  void reply.header('location', `/${segments.map(encodeSegment).join('/')}`);
}

/** One path segment, percent-encoded; `.` and `..` too, which a client would otherwise resolve away (RFC 3986 §5.2.4). */
function encodeSegment(segment: string): string {
  return segment === '.' || segment === '..' ? segment.replace(/\./g, '%2E') : encodeURIComponent(segment);
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
