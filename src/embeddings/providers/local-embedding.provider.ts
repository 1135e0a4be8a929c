import type { EmbeddingProvider } from './embedding-provider.js';

/**
 * Offline, deterministic embeddings from hashed word unigrams/bigrams and character trigrams,
 * L2-normalised. It is lexical, not semantic: texts that share words score high, synonyms do not.
 * Good for tests, demos and laptops without a model; use a real provider for real retrieval.
 */
export class LocalEmbeddingProvider implements EmbeddingProvider {
  readonly model: string;

  constructor(readonly dimensions: number) {
    this.model = `local-hash-ngram-${dimensions}`;
  }

  embed(texts: string[]): Promise<number[][]> {
    return Promise.resolve(texts.map((t) => this.embedOne(t)));
  }

  embedOne(text: string): number[] {
    const vector = new Float64Array(this.dimensions);
    const words =
      text
        .normalize('NFC')
        .toLowerCase()
        .match(/[\p{L}\p{N}]+/gu) ?? [];
    const add = (feature: string, weight: number) => {
      const h = fnv1a(feature);
      // The hash's top bit picks the sign, so unrelated features cancel out on average.
      vector[h % this.dimensions] += h & 0x80000000 ? -weight : weight;
    };
    words.forEach((w, i) => {
      add(`w:${w}`, 1);
      if (i > 0) add(`b:${words[i - 1]} ${w}`, 0.5);
      const padded = ` ${w} `;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.25);
    });
    let norm = 0;
    for (const v of vector) norm += v * v;
    norm = Math.sqrt(norm);
    // An empty text gets a fixed unit vector rather than zeros (cosine distance of zero vectors is NaN).
    if (norm === 0) return Array.from(vector, (_, i) => (i === 0 ? 1 : 0));
    return Array.from(vector, (v) => v / norm);
  }
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
