import { BadRequestException } from '@nestjs/common';
import { Transform, Type } from 'class-transformer';
import { ArrayMaxSize, IsArray, IsDefined, IsString, ValidateNested } from 'class-validator';
import { AskRequestDto } from '../ask/dto/ask.dto.js';
import { CreateDocumentDto } from '../documents/dto/document.dto.js';
import { CreateEmbeddingsDto } from '../embeddings/dto/embedding.dto.js';
import { compileItemArrayCheck, compileObjectCheck } from './item-array-check.js';
import { createValidationPipe } from './validation.js';

/** The global pipe's verdict on a body: its output, or the messages of its 400. */
async function pipeVerdict(
  body: unknown,
  metatype: new () => object = CreateEmbeddingsDto,
): Promise<{ output: unknown } | { messages: string[] }> {
  try {
    return { output: await createValidationPipe().transform(body, { type: 'body', metatype }) };
  } catch (error) {
    if (!(error instanceof BadRequestException)) throw error;
    return { messages: (error.getResponse() as { message: string[] }).message };
  }
}

/**
 * Every object with one of `values[key]` for each key (a key whose value is undefined left out),
 * each over a copy of one of `bases`.
 */
function everyCombination(
  values: Record<string, unknown[]>,
  bases: Array<Record<string, unknown>> = [{}],
): Array<Record<string, unknown>> {
  let objects = bases.map((base) => ({ ...base }));
  for (const [key, options] of Object.entries(values)) {
    objects = objects.flatMap((object) =>
      options.map((value) => (value === undefined ? { ...object } : { ...object, [key]: value })),
    );
  }
  return objects;
}

const valid = () => ({ id: 'chunk-1', content: 'Điều 1. Phạm vi', metadata: { document_id: 'law-1' }, embedding: [1] });

/** One change to an item each: every one of them is a 400, or a value the pipe would not hand on as it is. */
const CHANGES: Array<[string, (item: Record<string, unknown>) => unknown]> = [
  ['content missing', ({ content: _, ...rest }) => rest],
  ['content a number', (item) => ({ ...item, content: 7 })],
  ['content null', (item) => ({ ...item, content: null })],
  ['content with NUL', (item) => ({ ...item, content: 'a\u0000b' })],
  ['content too long', (item) => ({ ...item, content: 'x'.repeat(100_001) })],
  ['id empty', (item) => ({ ...item, id: '' })],
  ['id too long', (item) => ({ ...item, id: 'i'.repeat(256) })],
  ['id a number', (item) => ({ ...item, id: 12 })],
  ['id with NUL', (item) => ({ ...item, id: 'a\u0000' })],
  ['an unknown key', (item) => ({ ...item, extra: 1 })],
  ['a constructor key', (item) => JSON.parse(JSON.stringify({ ...item, constructor: 'x' })) as unknown],
  ['metadata an array', (item) => ({ ...item, metadata: [1] })],
  ['metadata a string', (item) => ({ ...item, metadata: 'm' })],
  ['metadata null', (item) => ({ ...item, metadata: null })],
  ['id null', (item) => ({ ...item, id: null })],
  ['embedding null', (item) => ({ ...item, embedding: null })],
  ['metadata holding a Date', (item) => ({ ...item, metadata: { at: new Date(0) } })],
  ['embedding a string', (item) => ({ ...item, embedding: 'not base64!' })],
  ['embedding empty', (item) => ({ ...item, embedding: [] })],
  ['the item null', () => null],
  ['the item an array', () => [valid()]],
  ['the item a string', () => 'item'],
  ['the item a class instance', (item) => Object.assign(new (class Item {})(), item)],
];

describe('compileItemArrayCheck', () => {
  const check = compileItemArrayCheck(CreateEmbeddingsDto, 'items')!;

  it('compiles for the batch bodies that use it', () => {
    expect(check).not.toBeNull();
    expect(compileItemArrayCheck(CreateDocumentDto, 'chunks')).not.toBeNull();
  });

  it('passes valid items, which the pipe accepts and hands on with the same values', async () => {
    // Metadata is handed on as sent, keys named like Object.prototype members included (IsJsonObject).
    const prototypeNamed = JSON.parse('{"constructor": 1, "toString": "x", "a": {"valueOf": 2}}') as unknown;
    const items = [
      valid(),
      { content: 'no id, no metadata' },
      { ...valid(), id: 'i'.repeat(255), metadata: prototypeNamed },
    ];
    const body = { collection: 'docs', items };
    expect(check.passes(items, body)).toBe(true);
    const verdict = await pipeVerdict(structuredClone(body));
    expect(verdict).toEqual({ output: body });
  });

  it.each(CHANGES)('refuses an array with one item changed: %s', (_label, change) => {
    const items = [valid(), change(valid()), valid()];
    expect(check.passes(items, { items })).toBe(false);
  });

  it('passes only items the pipe accepts and hands on unchanged (every combination of these values)', async () => {
    const items = everyCombination({
      id: [undefined, 'a', '', 'x'.repeat(255), 'x'.repeat(256), 5, null, 'a\u0000'],
      content: [undefined, '', 'text', 5, null, 'a\u0000'],
      metadata: [undefined, null, {}, { a: [1, { b: null }] }, [1], 'm', JSON.parse('{"constructor": 1}') as unknown],
      embedding: [undefined, [1], [], 'x', null],
    });
    let passed = 0;
    for (const item of items) {
      const body = { items: [item, valid()] };
      if (!check.passes(body.items, body)) continue;
      passed += 1;
      expect(await pipeVerdict(structuredClone(body))).toEqual({ output: body });
    }
    // Both answers occur: the check is neither a constant nor the test empty.
    expect(passed).toBeGreaterThan(20);
    expect(passed).toBeLessThan(items.length / 2);
  });

  it('refuses an array that breaks the array rules', () => {
    class Limited {
      @IsArray()
      @ArrayMaxSize(2)
      @ValidateNested({ each: true })
      @Type(() => Item)
      items: Item[];
    }
    class Item {
      @IsString()
      content: string;
    }
    const limited = compileItemArrayCheck(Limited, 'items')!;
    expect(limited.passes([{ content: 'a' }, { content: 'b' }], {})).toBe(true);
    expect(limited.passes([{ content: 'a' }, { content: 'b' }, { content: 'c' }], {})).toBe(false);
  });

  it('does not compile for item classes whose rules it does not reproduce', () => {
    class Defined {
      @IsDefined()
      content: string;
    }
    class Transformed {
      @IsString()
      @Transform(({ value }: { value: string }) => value.trim())
      content: string;
    }
    const parentOf = (item: new () => object) => {
      class Parent {
        @IsArray()
        @ValidateNested({ each: true })
        @Type(() => item)
        items: object[];
      }
      return Parent;
    };
    expect(compileItemArrayCheck(parentOf(Defined), 'items')).toBeNull();
    expect(compileItemArrayCheck(parentOf(Transformed), 'items')).toBeNull();
    // No @Type: the item class is unknown.
    class Untyped {
      @IsArray()
      items: object[];
    }
    expect(compileItemArrayCheck(Untyped, 'items')).toBeNull();
  });
});

describe('compileObjectCheck', () => {
  const check = compileObjectCheck(AskRequestDto)!;

  it("compiles for POST /ask's body, and not for bodies with nested DTOs or fields that start with a value", () => {
    expect(check).not.toBeNull();
    expect(compileObjectCheck(CreateEmbeddingsDto)).toBeNull();
    class WithDefault {
      @IsString()
      mode: string = 'vector';
    }
    expect(compileObjectCheck(WithDefault)).toBeNull();
  });

  it('passes only bodies the pipe accepts and hands on with the same values (every combination of these values)', async () => {
    const bodies = everyCombination(
      {
        question: [undefined, 'Thuế suất?', '', ' ', 'a\u0000', 5, 'x'.repeat(4001)],
        k: [undefined, 1, 100, 0, 101, 2.5, '5', null],
        filter: [
          undefined,
          { document_type: 'law', n: { $lt: 3 } },
          {},
          [1],
          'f',
          null,
          JSON.parse('{"constructor": 1}'),
        ],
      },
      [
        {},
        { mode: 'hybrid', exact: true, answer: false },
        { mode: 'other' },
        { mode: null },
        { exact: null, answer: null },
        { exact: 'yes' },
        { collection: 'docs', minScore: 0.3 },
        { collection: 'bad name!' },
        { minScore: 2 },
        { queryEmbedding: [1] },
        { queryEmbedding: 'not base64!' },
        { extra: 1 },
        JSON.parse('{"__proto__": {"k": 1}}') as Record<string, unknown>,
      ],
    );
    let passed = 0;
    for (const body of bodies) {
      if (!check.passes(body)) continue;
      passed += 1;
      expect(await pipeVerdict(structuredClone(body), AskRequestDto)).toEqual({ output: body });
    }
    // Both answers occur: the check is neither a constant nor the test empty.
    expect(passed).toBeGreaterThan(20);
    expect(passed).toBeLessThan(bodies.length / 4);
  });
});
