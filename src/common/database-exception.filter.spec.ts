import { vectorDimensionProblem } from './database-exception.filter.js';

describe('vectorDimensionProblem', () => {
  // The messages pgvector 0.8 raises with SQLSTATE 22000 (seen on the test server).
  it('rewords two dimensions meeting in a distance, for each vector type', () => {
    for (const type of ['vector', 'halfvec', 'sparsevec']) {
      expect(vectorDimensionProblem(new Error(`different ${type} dimensions 2 and 3`))).toBe(
        'Vectors of 2 and 3 dimensions met: the collection holds vectors of more than one dimension, which cannot be compared',
      );
    }
  });

  it('rewords a vector cast to a sized type of another dimension', () => {
    expect(vectorDimensionProblem(new Error('expected 3 dimensions, not 2'))).toBe(
      'A vector has 2 dimensions where 3 are expected',
    );
  });

  it('leaves every other message to the generic answer', () => {
    expect(vectorDimensionProblem(new Error('NaN not allowed in vector'))).toBeNull();
    expect(vectorDimensionProblem(new Error('different vector dimensions 2 and 3; DROP TABLE x'))).toBeNull();
    expect(vectorDimensionProblem('different vector dimensions 2 and 3')).toBeNull();
  });
});
