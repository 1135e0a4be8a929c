import { float32Base64, float32Values } from '../../../test/support/float32-base64.js';
import { FLOAT4_MAX, MAX_EMBEDDING_DIMENSIONS, parseVector, vectorProblem } from './embedding.dto.js';

const NOT_A_VECTOR = 'embedding must be an array of numbers or a base64 string of little-endian float32 values';
const NOT_BASE64 =
  'embedding must be base64 in the standard alphabet (A-Z a-z 0-9 + /), padded with = to a multiple of 4 characters';

describe('parseVector', () => {
  it('decodes base64 to the float32 values it holds, little-endian, as a Float32Array', () => {
    const values = [0.1, -0.1, 1 / 3, 0.5, -0, 1.8e19, -1.4e-45, 123456.789];
    const parsed = parseVector(float32Base64(values), 'embedding') as { vector: Float32Array };
    expect(parsed.vector).toBeInstanceOf(Float32Array);
    expect(Array.from(parsed.vector)).toEqual(float32Values(values));
    // Exactly, bit for bit: -0 stays -0.
    expect(Object.is(parsed.vector[4], -0)).toBe(true);
    // Byte order fixed by the format, not the platform: 1.0f is 00 00 80 3f.
    expect(parseVector('AACAPw==', 'embedding')).toEqual({ vector: Float32Array.of(1) });
    expect(parseVector('AACAPwAAAEA=', 'v')).toEqual({ vector: Float32Array.of(1, 2) });
    expect(parseVector(float32Base64(Array(MAX_EMBEDDING_DIMENSIONS).fill(0.25)), 'v')).toEqual({
      vector: new Float32Array(MAX_EMBEDDING_DIMENSIONS).fill(0.25),
    });
  });

  it.each([
    ['not a multiple of 4 characters', 'AACAPw', NOT_BASE64],
    ['the URL-safe alphabet', 'AACA_w==', NOT_BASE64],
    ['a character outside the alphabet', 'AAC*Pw==', NOT_BASE64],
    ['white space', 'AACA Pw=', NOT_BASE64],
    ['padding inside', 'AA==AACAPw==', NOT_BASE64],
    ['three padding characters', 'AAAAA===', NOT_BASE64],
    // 'x' where the encoder writes 'w': the same byte 3f, then a set bit that encodes nothing.
    [
      'bits set after its last byte',
      'AACAPx==',
      'embedding base64 has bits set after its last byte (not canonical, RFC 4648 section 3.5)',
    ],
    [
      'a byte length not a multiple of 4',
      'AAAAAAAAAAAAAA==',
      'embedding base64 holds 10 bytes, not a whole number of float32 values',
    ],
    ['no bytes', '', 'embedding must contain at least 1 elements'],
    [
      'too many values',
      float32Base64(Array(MAX_EMBEDDING_DIMENSIONS + 1).fill(0)),
      `embedding must contain no more than ${MAX_EMBEDDING_DIMENSIONS} elements`,
    ],
    ['a NaN', float32Base64([1, NaN, 2]), 'each value in embedding must be a finite number'],
    ['an Infinity', float32Base64([Infinity]), 'each value in embedding must be a finite number'],
    ['a -Infinity', float32Base64([0, -Infinity]), 'each value in embedding must be a finite number'],
    [
      'a float32 above FLOAT4_MAX',
      float32Base64([3.4028e38]),
      `each value in embedding must not be greater than ${FLOAT4_MAX}`,
    ],
    [
      'a float32 below -FLOAT4_MAX',
      float32Base64([-3.4028e38]),
      `each value in embedding must not be less than ${-FLOAT4_MAX}`,
    ],
  ])('refuses base64 with %s', (_label, text, problem) => {
    expect(parseVector(text, 'embedding')).toEqual({ problem });
    expect(vectorProblem(text, 'embedding')).toBe(problem);
  });

  it('hands a valid array back as it is, and refuses an invalid one as before', () => {
    const vector = [0.5, -1, 2, 1.8e19];
    expect((parseVector(vector, 'embedding') as { vector: number[] }).vector).toBe(vector);
    expect(vectorProblem(vector, 'embedding')).toBeNull();
    // Small, but with a float32 norm: fine.
    expect(vectorProblem([1e-18], 'embedding')).toBeNull();
    expect(vectorProblem(Array(384).fill(1e-19), 'embedding')).toBeNull();
    // Large, with a float32 norm: fine (16,000 × 1e34 = 1.6e38).
    expect(vectorProblem([1e19, -1e19], 'embedding')).toBeNull();
    expect(vectorProblem(Array(MAX_EMBEDDING_DIMENSIONS).fill(9.9e16), 'embedding')).toBeNull();
    const cases: Array<[unknown, string]> = [
      [[], 'embedding must contain at least 1 elements'],
      [
        Array(MAX_EMBEDDING_DIMENSIONS + 1).fill(0),
        `embedding must contain no more than ${MAX_EMBEDDING_DIMENSIONS} elements`,
      ],
      [[1, '2'], 'each value in embedding must be a number conforming to the specified constraints'],
      [[1, NaN], 'each value in embedding must be a number conforming to the specified constraints'],
      [[1, null], 'each value in embedding must be a number conforming to the specified constraints'],
      [[1e39], `each value in embedding must not be greater than ${FLOAT4_MAX}`],
      [[-1e39], `each value in embedding must not be less than ${-FLOAT4_MAX}`],
      // Squares beyond the largest float32: 2e19 alone, 1e19 twice (2e38 fits, 3e38 does not), 1e18 in 384.
      ...[[2e19], [1e19, 1e19, 1e19, 1e19], Array(384).fill(1e18), [-3.4e38, 1]].map((value): [unknown, string] => [
        value,
        'embedding is too large: the sum of its float32 squares overflows, so its cosine distance to any vector is undefined',
      ]),
      ...[[0, 0, -0], [1e-50, 0], Array(384).fill(1e-30), [1e-20, 1e-20]].map((value): [unknown, string] => [
        value,
        'embedding must not be all zeros, or so close to it that its float32 norm underflows: its cosine distance to any vector is undefined',
      ]),
    ];
    for (const [value, problem] of cases) {
      expect(parseVector(value, 'embedding')).toEqual({ problem });
      expect(vectorProblem(value, 'embedding')).toBe(problem);
    }
  });

  it.each([[5], [null], [undefined], [{ 0: 1 }], [true]])('refuses %p, neither an array nor a string', (value) => {
    expect(parseVector(value, 'embedding')).toEqual({ problem: NOT_A_VECTOR });
  });
});
