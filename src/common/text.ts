/**
 * `text.slice(0, end)`, one unit shorter when that would end between the two halves of a surrogate
 * pair: a lone half cannot be stored (jsonb refuses it) and reads as garbage elsewhere.
 */
export function sliceWholeCharacters(text: string, end: number): string {
  const last = text.charCodeAt(end - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? end - 1 : end);
}
