import { LocalEmbeddingProvider } from './local-embedding.provider.js';

const cosine = (a: number[], b: number[]): number => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a: number[]): number => Math.sqrt(cosine(a, a));

describe('LocalEmbeddingProvider', () => {
  const provider = new LocalEmbeddingProvider(384);

  it('names its model after the dimension', () => {
    expect(provider.model).toBe('local-hash-ngram-384');
    expect(new LocalEmbeddingProvider(16).model).toBe('local-hash-ngram-16');
  });

  it('is deterministic across calls and instances', async () => {
    const text = 'Điều 1. Phạm vi điều chỉnh của Luật Thuế thu nhập cá nhân';
    const [a] = await provider.embed([text]);
    const [b] = await new LocalEmbeddingProvider(384).embed([text]);
    expect(a).toEqual(b);
  });

  it('returns one vector of the configured dimension per text, in order', async () => {
    const vectors = await new LocalEmbeddingProvider(32).embed(['một', 'hai', 'ba']);
    expect(vectors).toHaveLength(3);
    vectors.forEach((v) => expect(v).toHaveLength(32));
    expect(vectors[0]).not.toEqual(vectors[1]);
    expect(await new LocalEmbeddingProvider(32).embed([])).toEqual([]);
  });

  it('returns unit vectors of finite numbers', async () => {
    const vectors = await provider.embed(['Thuế thu nhập cá nhân', 'labour code', 'a', '12 34']);
    for (const v of vectors) {
      expect(v.every(Number.isFinite)).toBe(true);
      expect(norm(v)).toBeCloseTo(1, 10);
    }
  });

  it('puts similar texts closer than unrelated ones', async () => {
    const [tax, taxAgain, labour] = await provider.embed([
      'thuế thu nhập cá nhân đối với người lao động',
      'quyết toán thuế thu nhập cá nhân',
      'hợp đồng bảo hiểm xe cơ giới',
    ]);
    expect(cosine(tax, taxAgain)).toBeGreaterThan(cosine(tax, labour) + 0.1);
  });

  it('treats Unicode normalisation forms and case alike', async () => {
    const [nfc, nfd, upper] = await provider.embed(['Điều khoản', 'Điều khoản'.normalize('NFD'), 'ĐIỀU KHOẢN']);
    expect(nfd).toEqual(nfc);
    expect(upper).toEqual(nfc);
  });

  it('gives empty and punctuation-only texts a fixed unit vector, not zeros', async () => {
    const [empty, punct] = await provider.embed(['', ' ,.;!? ']);
    expect(norm(empty)).toBeCloseTo(1, 10);
    expect(empty[0]).toBe(1);
    expect(punct).toEqual(empty);
  });
});
