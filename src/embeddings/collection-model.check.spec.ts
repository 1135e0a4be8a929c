import { describeMissingDefaultCollection, describeModelMismatch } from './collection-model.check.js';

describe('describeModelMismatch', () => {
  const provider = { model: 'text-embedding-3-small', dimensions: 1536 };

  it('is null when the recorded model and dimension match the provider', () => {
    expect(
      describeModelMismatch(
        { name: 'docs', cmetadata: { embedding_model: 'text-embedding-3-small', dimensions: 1536, extra: 1 } },
        provider,
      ),
    ).toBeNull();
    // Dimensions written as a string by another tool still compare as numbers.
    expect(
      describeModelMismatch(
        { name: 'docs', cmetadata: { embedding_model: 'text-embedding-3-small', dimensions: '1536' } },
        provider,
      ),
    ).toBeNull();
  });

  it('is null when the collection records neither (nothing to compare)', () => {
    expect(describeModelMismatch({ name: 'legacy', cmetadata: null }, provider)).toBeNull();
    expect(describeModelMismatch({ name: 'legacy', cmetadata: { source: 'python' } }, provider)).toBeNull();
  });

  it('names the collection, what it recorded and what is configured when the model differs', () => {
    expect(
      describeModelMismatch(
        { name: 'docs', cmetadata: { embedding_model: 'local-hash-ngram-384', dimensions: 384 } },
        provider,
      ),
    ).toBe(
      'Collection "docs" was embedded with model "local-hash-ngram-384", 384 dimensions, but the configured provider ' +
        'is model "text-embedding-3-small", 1536 dimensions: its vectors are not comparable with new query vectors. ' +
        'Configure EMBEDDINGS_PROVIDER/EMBEDDINGS_MODEL/EMBEDDINGS_DIMENSIONS to match, or re-embed the collection.',
    );
  });

  it('reports a dimension difference alone, and a model difference alone', () => {
    expect(
      describeModelMismatch(
        { name: 'docs', cmetadata: { embedding_model: 'text-embedding-3-small', dimensions: 512 } },
        provider,
      ),
    ).toMatch(/^Collection "docs" was embedded with model "text-embedding-3-small", 512 dimensions, but/);
    expect(describeModelMismatch({ name: 'old', cmetadata: { embedding_model: 'ada-002' } }, provider)).toMatch(
      /^Collection "old" was embedded with model "ada-002", but the configured provider is model "text-embedding-3-small", 1536 dimensions/,
    );
  });
});

describe('describeMissingDefaultCollection', () => {
  it('is null on an empty database, and when the default collection exists', () => {
    expect(describeMissingDefaultCollection([], 'docs')).toBeNull();
    expect(describeMissingDefaultCollection(['laws', 'docs'], 'docs')).toBeNull();
  });

  it("names the stored collections, and LangChain's default when it is there", () => {
    expect(describeMissingDefaultCollection(['langchain'], 'docs')).toBe(
      'DEFAULT_COLLECTION is "docs", but the database has no collection of that name; it has "langchain" ' +
        '(LangChain\'s default collection is "langchain": set DEFAULT_COLLECTION=langchain to serve it). ' +
        'Searches that name no collection answer 404, and writes that name none create it.',
    );
    expect(describeMissingDefaultCollection(['a', 'b', 'c', 'd', 'e', 'f', 'g'], 'docs')).toBe(
      'DEFAULT_COLLECTION is "docs", but the database has no collection of that name; it has "a", "b", "c", "d", "e", and 2 more. ' +
        'Searches that name no collection answer 404, and writes that name none create it.',
    );
  });
});
