import { BadRequestException } from '@nestjs/common';
import { float32Base64 } from '../../../test/support/float32-base64.js';
import { CreateEmbeddingsDto } from './embedding.dto.js';
import { VectorBodyPipe } from './vector-body.pipe.js';

const itemPaths = (body: Record<string, unknown>, property: string) =>
  Array.isArray(body.items) ? body.items.map((_, i) => ['items', i, property]) : [];

/** The POST /embeddings pipe, with or without the compiled check of its items. */
function pipe(itemArrays: string[]): VectorBodyPipe<CreateEmbeddingsDto> {
  return new VectorBodyPipe(
    CreateEmbeddingsDto,
    (body) => itemPaths(body, 'embedding'),
    (body) => itemPaths(body, 'metadata'),
    itemArrays,
  );
}

function batch(size: number): { collection: string; items: Array<Record<string, unknown>> } {
  return {
    collection: 'docs',
    items: Array.from({ length: size }, (_, i) => ({
      id: `chunk-${i}`,
      content: `Điều ${i}`,
      metadata: { document_id: 'law-1', chunk_index: i, hierarchy: ['Chương I', `Điều ${i}`] },
      embedding: i % 2 === 0 ? [i, 0.5, -1] : float32Base64([i, 0.5, -1]),
    })),
  };
}

async function messages(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof BadRequestException) return (error.getResponse() as { message: string[] }).message;
    throw error;
  }
  throw new Error('expected a 400');
}

describe('VectorBodyPipe with the compiled item check', () => {
  it('hands on the same values as the pipe that validates every item', async () => {
    const fast = await pipe(['items']).transform(batch(6));
    const full = await pipe([]).transform(batch(6));
    expect(fast.items.map((item) => ({ ...item, embedding: Array.from(item.embedding!) }))).toEqual(
      full.items.map((item) => ({ ...item, embedding: Array.from(item.embedding!) })),
    );
    expect(fast.collection).toBe('docs');
    expect(fast.items[1].embedding).toBeInstanceOf(Float32Array);
  });

  it('reports an invalid item where it is, in the words of the full validation', async () => {
    const body = batch(6);
    body.items[3].content = 7;
    body.items[4].extra = true;
    const expected = await messages(pipe([]).transform(structuredClone(body)));
    expect(expected).toEqual(['items.3.content must be a string', 'items.4.property extra should not exist']);
    expect(await messages(pipe(['items']).transform(body))).toEqual(expected);
  });

  it('refuses to build for an array whose items it cannot check', () => {
    expect(() => pipe(['collection'])).toThrow(/collection/);
  });
});
