/** `postgres://user:secret@host` → `postgres://user:***@host`: driver and pool errors may quote the URL. */
const CONNECTION_STRING_PASSWORD = /\b(postgres(?:ql)?:\/\/[^:/?#@\s]*):[^@\s]*@/gi;

export function redactConnectionStrings(text: string): string {
  return text.replace(CONNECTION_STRING_PASSWORD, '$1:***@');
}
