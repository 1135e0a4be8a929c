import { BadRequestException, type PipeTransform, type Type } from '@nestjs/common';
import { isObject } from 'class-validator';
import { createValidationPipe } from '../../common/validation.js';
import {
  compileItemArrayCheck,
  compileObjectCheck,
  isPlainJson,
  type ItemArrayCheck,
  type ObjectCheck,
} from '../../common/item-array-check.js';
import { parseVector } from './embedding.dto.js';

/**
 * The most items an array property of the body may hold (EMBEDDINGS_MAX_BATCH), checked before
 * anything else: an array over it is refused whatever its items, without validating them (an
 * invalid item sends the whole array through class-validator, about 20 µs an item: 2 s of event
 * loop for the 100,000 the DTO's own bound allows).
 */
export interface ItemLimit {
  readonly property: string;
  readonly max: number;
  readonly message: (count: number, max: number) => string;
}

/** Where a value sits in a body: property names and array indexes from the body's root. */
export type VectorPath = ReadonlyArray<string | number>;

/**
 * Validates and transforms a body exactly as the global ValidationPipe would a `metatype`, minus
 * the walks over its vectors and free-form objects. The pipe visits every component of a vector
 * four times (gap closing, prototype-key stripping, class-transformer's copy, validation): 192,000
 * numbers for a batch of 500 × 384 on POST /embeddings, and 0.3 ms of a 3 ms indexed /ask. So each
 * vector at `vectorPaths` is checked once with IsVector's own rule (parseVector) and replaced by a
 * one-component stand-in that passes the same rule; the pipe then validates everything else, and
 * the checked vectors are put back into its result, a base64 one as the numbers it decodes to. An
 * invalid vector is left in place, so the pipe reports it with its usual message, in its usual order.
 *
 * `objectPaths` lead to free-form objects whose only rule is IsJsonObject's (chunk metadata): the
 * pipe validates nothing inside them and hands them on as they are (JsonPreservingValidationPipe),
 * after a walk over their keys that was 40 % of its time on a batch of 500 chunks. A plain JSON
 * object (isPlainJsonObject) is replaced by `{}` and put back; any other value is left in place
 * for the pipe, which reports it as it always does.
 *
 * `itemArrays` names top-level array properties of nested DTOs (the items of a batch). When
 * compileItemArrayCheck's check passes the whole array, the pipe validates its first item only (the
 * check's verdict confirmed by the pipe on one item) and the array is put back as it came: for a
 * batch of 500 that spares class-validator and class-transformer 499 items, 10 ms. Any doubt and the
 * pipe sees the whole array.
 *
 * A body class without nested DTOs (POST /ask) gets the same check for the whole body
 * (compileObjectCheck): a body it passes is handed on as it is, without the pipe, which took about
 * 0.27 ms of each search; any other body goes to the pipe, so every 400 is still the pipe's.
 *
 * The route must declare the body with a type whose runtime metadata is Object (`unknown`, or a
 * mapped type such as `Readonly<Dto>`), so that the global pipe passes it through to this one.
 */
export class VectorBodyPipe<T extends object> implements PipeTransform<unknown, Promise<T>> {
  private readonly validation = createValidationPipe();

  constructor(
    private readonly metatype: Type<T>,
    private readonly vectorPaths: (body: Record<string, unknown>) => VectorPath[],
    private readonly objectPaths: (body: Record<string, unknown>) => VectorPath[] = () => [],
    itemArrays: string[] = [],
    private readonly itemLimit?: ItemLimit,
  ) {
    this.itemArrayChecks = itemArrays.map((property) => {
      const check = compileItemArrayCheck(metatype, property);
      // A DTO change that the check cannot follow must be seen, not silently cost 10 ms a batch.
      if (!check)
        throw new Error(`${metatype.name}.${property}: its items use a rule compileItemArrayCheck does not reproduce`);
      return [property, check];
    });
    this.bodyCheck = compileObjectCheck(metatype);
  }

  private readonly itemArrayChecks: Array<[string, ItemArrayCheck]>;
  /** Null for a body with nested DTOs (their items have the array checks instead). */
  private readonly bodyCheck: ObjectCheck | null;

  async transform(body: unknown): Promise<T> {
    const limited = this.itemLimit && isRecord(body) ? body[this.itemLimit.property] : undefined;
    if (this.itemLimit && Array.isArray(limited) && limited.length > this.itemLimit.max) {
      throw new BadRequestException(this.itemLimit.message(limited.length, this.itemLimit.max));
    }
    const checked: Array<[VectorPath, unknown]> = [];
    const passedArrays: Array<[string, unknown[]]> = [];
    if (isRecord(body)) {
      for (const path of this.vectorPaths(body)) {
        const slot = locate(body, path);
        if (!slot) continue;
        const parsed = parseVector(slot.holder[slot.key], slot.key);
        if ('vector' in parsed) {
          checked.push([path, parsed.vector]);
          slot.holder[slot.key] = [1];
        }
      }
      for (const path of this.objectPaths(body)) {
        const slot = locate(body, path);
        if (slot && isPlainJsonObject(slot.holder[slot.key])) {
          checked.push([path, slot.holder[slot.key]]);
          slot.holder[slot.key] = {};
        }
      }
      // After the stand-ins: the items are checked as the pipe would see them.
      for (const [property, check] of this.itemArrayChecks) {
        const array = body[property];
        if (Array.isArray(array) && array.length > 1 && check.passes(array, body)) {
          passedArrays.push([property, array]);
          body[property] = [array[0]];
        }
      }
    }
    const dto = this.bodyCheck?.passes(body)
      ? (body as T)
      : ((await this.validation.transform(body, { type: 'body', metatype: this.metatype })) as T);
    // The arrays first: the paths of the checked values lead into them.
    for (const [property, array] of passedArrays) (dto as Record<string, unknown>)[property] = array;
    // Whitelisting removes properties, never array elements: the paths lead to the same places.
    for (const [path, value] of checked) {
      const slot = locate(dto, path);
      if (slot) slot.holder[slot.key] = value;
    }
    return dto;
  }
}

/**
 * Whether the ValidationPipe would hand `value`, an IsJsonObject property's, back as it is: a plain
 * object (passing the rule) built the way JSON.parse builds values, any key allowed (isPlainJson).
 */
export function isPlainJsonObject(value: unknown): boolean {
  return isObject(value) && Object.getPrototypeOf(value) === Object.prototype && isPlainJson(value, true);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The object holding the last step of `path`, and that step's key; undefined if the path breaks. */
function locate(root: unknown, path: VectorPath): { holder: Record<string, unknown>; key: string } | undefined {
  let node: unknown = root;
  for (const step of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string | number, unknown>)[step];
  }
  const key = path[path.length - 1];
  return isRecord(node) && typeof key === 'string' ? { holder: node, key } : undefined;
}
