/** `values` as float32, little-endian, in base64: what OpenAI returns with encoding_format "base64". */
export function float32Base64(values: number[]): string {
  const bytes = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => bytes.writeFloatLE(v, 4 * i));
  return bytes.toString('base64');
}

/** The float32 values `values` round to: what a base64 vector of them holds. */
export function float32Values(values: number[]): number[] {
  return Array.from(new Float32Array(values));
}
