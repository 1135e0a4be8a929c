/**
 * `postgres://user:secret@host` → `postgres://user:***@host`: driver and pool errors may quote the
 * URL, and an embedding provider's error its own (redis://, mysql://, https://…), so any scheme.
 * Up to the last `@` of the URL: a password may hold a raw `@` (the URL still parses, and pg
 * decodes it), and stopping at the first left the rest of it in the text.
 */
const CONNECTION_STRING_PASSWORD = /\b([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^\s/?#]*@/gi;
/** `?password=secret` / `&password=secret`, the query-string form libpq and pg also take. */
const PASSWORD_PARAMETER = /([?&]password=)[^&\s]*/gi;

export function redactConnectionStrings(text: string): string {
  return text.replace(CONNECTION_STRING_PASSWORD, '$1:***@').replace(PASSWORD_PARAMETER, '$1***');
}
