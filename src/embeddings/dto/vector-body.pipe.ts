import { type PipeTransform, type Type } from '@nestjs/common';
import { createValidationPipe } from '../../common/validation.js';
import { vectorProblem } from './embedding.dto.js';

/** Where a vector may sit in a body: property names and array indexes from the body's root. */
export type VectorPath = ReadonlyArray<string | number>;

/**
 * Validates and transforms a body exactly as the global ValidationPipe would a `metatype`, minus
 * the walks over its vectors. The pipe visits every component of a vector four times (gap closing,
 * prototype-key stripping, class-transformer's copy, validation): 192,000 numbers for a batch of
 * 500 × 384 on POST /embeddings, and 0.3 ms of a 3 ms indexed /ask. So each vector at `vectorPaths`
 * is checked once with IsVector's own rule and replaced by a one-component stand-in that passes the
 * same rule; the pipe then validates everything else, and the checked vectors are put back into
 * its result. An invalid vector is left in place, so the pipe reports it with its usual message,
 * in its usual order.
 *
 * The route must declare the body with a type whose runtime metadata is Object (`unknown`, or a
 * mapped type such as `Readonly<Dto>`), so that the global pipe passes it through to this one.
 */
export class VectorBodyPipe<T extends object> implements PipeTransform<unknown, Promise<T>> {
  private readonly validation = createValidationPipe();

  constructor(
    private readonly metatype: Type<T>,
    private readonly vectorPaths: (body: Record<string, unknown>) => VectorPath[],
  ) {}

  async transform(body: unknown): Promise<T> {
    const checked: Array<[VectorPath, unknown]> = [];
    if (isRecord(body)) {
      for (const path of this.vectorPaths(body)) {
        const slot = locate(body, path);
        if (slot && vectorProblem(slot.holder[slot.key], slot.key) === null) {
          checked.push([path, slot.holder[slot.key]]);
          slot.holder[slot.key] = [0];
        }
      }
    }
    const dto = (await this.validation.transform(body, { type: 'body', metatype: this.metatype })) as T;
    // Whitelisting removes properties, never array elements: the paths lead to the same places.
    for (const [path, vector] of checked) {
      const slot = locate(dto, path);
      if (slot) slot.holder[slot.key] = vector;
    }
    return dto;
  }
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
