import fc from 'fast-check';
import { encodeTextArray, encodeVector, encodeVectorArray } from './chunk.store.js';

/** The header of PostgreSQL's binary array format, written field by field. */
function referenceHeader(size: number, elementTypeOid: number, length: number, hasNull: boolean): Buffer {
  const out = Buffer.alloc(size);
  out.writeInt32BE(1, 0);
  out.writeInt32BE(hasNull ? 1 : 0, 4);
  out.writeUInt32BE(elementTypeOid, 8);
  out.writeInt32BE(length, 12);
  out.writeInt32BE(1, 16);
  return out;
}

/** `vector[]` in binary, one writeFloatBE per component (the encoder before the Float32Array view). */
function referenceVectorArray(vectors: number[][], vectorTypeOid: number): Buffer {
  let size = 20;
  for (const v of vectors) size += 8 + 4 * v.length;
  const out = referenceHeader(size, vectorTypeOid, vectors.length, false);
  let at = 20;
  for (const v of vectors) {
    at = out.writeInt32BE(4 + 4 * v.length, at);
    at = out.writeInt16BE(v.length, at);
    at = out.writeInt16BE(0, at);
    for (const x of v) at = out.writeFloatBE(x, at);
  }
  return out;
}

/** `text[]` in binary, one Buffer.from per string (the encoder before writing straight into the parameter). */
function referenceTextArray(values: Array<string | null>, elementTypeOid: number): Buffer {
  const bytes = values.map((v) => (v === null ? null : Buffer.from(v, 'utf8')));
  let size = 20;
  for (const b of bytes) size += 4 + (b?.length ?? 0);
  const out = referenceHeader(size, elementTypeOid, values.length, bytes.includes(null));
  let at = 20;
  for (const b of bytes) {
    if (b === null) {
      at = out.writeInt32BE(-1, at);
    } else {
      at = out.writeInt32BE(b.length, at);
      at += b.copy(out, at);
    }
  }
  return out;
}

/** float4 edge cases: the extremes, denormals, rounding to even, underflow, negative zero. */
const EDGES = [
  0,
  -0,
  1,
  -1,
  0.1,
  1 / 3,
  3.4e38,
  -3.4e38,
  3.4028235677973366e38, // rounds to float4's largest finite value
  1.17549435e-38, // float4's smallest normal
  1.4e-45, // float4's smallest denormal
  -1.4e-45,
  7e-46, // halfway to the smallest denormal: rounds to even (zero)
  1e-50, // underflows to zero
  -1e-50, // … to negative zero
  5.877471754111438e-39, // a denormal
  123456.789,
  16_777_217, // not a float4: rounds to 16777216
  0.30000000000000004,
];

/** Any number a vector component may be (it fits a float4), denormals and zero included. */
const component = fc.oneof(
  fc.double({ min: -3.4e38, max: 3.4e38, noNaN: true }),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map(Number),
  fc.double({ min: -1e-37, max: 1e-37, noNaN: true }),
);

const VECTOR_OID = 16_385;
const TEXT_OID = 25;

describe('encodeVectorArray', () => {
  it('writes the bytes one writeFloatBE per component writes, float4 edge cases included', () => {
    const cases: number[][][] = [[EDGES], [[7]], [EDGES, [1, 2, 3], EDGES.slice(3)], []];
    for (const vectors of cases) {
      expect(encodeVectorArray(vectors, VECTOR_OID)).toEqual(referenceVectorArray(vectors, VECTOR_OID));
    }
  });

  it('writes the bytes the reference writes for random vectors', () => {
    fc.assert(
      fc.property(fc.array(fc.array(component, { minLength: 1, maxLength: 40 }), { maxLength: 8 }), (vectors) => {
        expect(encodeVectorArray(vectors, VECTOR_OID)).toEqual(referenceVectorArray(vectors, VECTOR_OID));
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeVector', () => {
  /** One vector in pgvector's binary format: an element of the reference `vector[]` without its length. */
  const referenceVector = (v: number[]): Buffer => referenceVectorArray([v], VECTOR_OID).subarray(24);

  it('writes the bytes of one element of encodeVectorArray, float4 edge cases included', () => {
    for (const v of [EDGES, [7], []]) expect(encodeVector(v)).toEqual(referenceVector(v));
    expect(encodeVector(new Float32Array(EDGES))).toEqual(referenceVector(EDGES));
  });

  it('writes the bytes the reference writes for random vectors', () => {
    fc.assert(
      fc.property(fc.array(component, { maxLength: 40 }), (v) => {
        expect(encodeVector(v)).toEqual(referenceVector(v));
      }),
      { numRuns: 300 },
    );
  });
});

describe('encodeTextArray', () => {
  it('writes the UTF-8 bytes Buffer.from writes, NULL elements, lone surrogates and 4-byte characters included', () => {
    const cases: Array<Array<string | null>> = [
      ['Điều 1. Phạm vi điều chỉnh', '', null, 'ascii', '😀 𝄞', '\ud800', 'a\udc00b', '\u0000x', '\uffff'],
      [null],
      [],
      ['x'.repeat(70_000), 'ệ'.repeat(30_000)],
    ];
    for (const values of cases) {
      expect(encodeTextArray(values, TEXT_OID)).toEqual(referenceTextArray(values, TEXT_OID));
    }
  });

  it('writes the bytes the reference writes for random strings', () => {
    const value = fc.option(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.string()), {
      freq: 5,
    });
    fc.assert(
      fc.property(fc.array(value, { maxLength: 10 }), (values) => {
        expect(encodeTextArray(values, TEXT_OID)).toEqual(referenceTextArray(values, TEXT_OID));
      }),
      { numRuns: 300 },
    );
  });
});
