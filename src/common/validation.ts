import {
  type ArgumentMetadata,
  BadRequestException,
  type PipeTransform,
  type Type,
  ValidationPipe,
  type ValidationPipeOptions,
  applyDecorators,
} from '@nestjs/common';
// class-transformer's metadata (@Type) has no public reader.
import { Transform } from 'class-transformer';
import { defaultMetadataStorage } from 'class-transformer/cjs/storage.js';
import {
  buildMessage,
  getMetadataStorage,
  isObject,
  ValidateBy,
  ValidateIf,
  ValidationTypes,
  type ValidationError,
  type ValidationOptions,
} from 'class-validator';

/**
 * The options of the global ValidationPipe (app.factory.ts). Routes that validate a body by hand
 * (two body shapes, vectors checked separately) use the same, so every body gets the same 400s.
 */
export const VALIDATION_OPTIONS: ValidationPipeOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
};

/** A ValidationPipe with the global options; it hands free-form JSON objects on as sent. */
export function createValidationPipe(): ValidationPipe {
  return new JsonPreservingValidationPipe(VALIDATION_OPTIONS);
}

/**
 * A query or multipart field that holds an integer, converted from its decimal digits only.
 * `@Type(() => Number)` took whatever Number() takes: `?limit=0x10` as 16, `?limit=1e2` as 100,
 * `?offset=` as 0. Anything else stays as sent, for @IsInt to name. A JSON number passes as it is.
 */
export function DecimalInteger(): PropertyDecorator {
  return Transform(({ value }: { value: unknown }) =>
    typeof value === 'string' && /^-?\d{1,15}$/.test(value) ? Number(value) : value,
  );
}

/** The name of IsOptionalNotNull's validator. */
const IS_NOT_NULL = 'isNotNull';

/**
 * An optional property that may be absent but not null. class-validator's IsOptional skips every
 * rule for null as for undefined, so `{"status": null}` passed and reached the database as NULL;
 * here only undefined (the key absent) skips them, and null is a 400 `<property> must not be null`
 * (JsonPreservingValidationPipe leaves out the messages of the other rules null fails). For a
 * property where null means something (documented as nullable in the API), keep IsOptional.
 */
export function IsOptionalNotNull(options?: ValidationOptions): PropertyDecorator {
  return applyDecorators(
    ValidateIf((_object: object, value: unknown) => value !== undefined, options),
    ValidateBy(
      {
        name: IS_NOT_NULL,
        validator: {
          validate: (value: unknown) => value !== null,
          defaultMessage: buildMessage((each) => `${each}$property must not be null`, options),
        },
      },
      options,
    ),
  );
}

/** The name of IsJsonObject's validator, by which JsonPreservingValidationPipe finds its properties. */
export const IS_JSON_OBJECT = 'isJsonObject';

/**
 * A free-form JSON object (chunk or collection metadata, a search filter): IsObject's rule and
 * message, and the object is handed on exactly as the body had it (JsonPreservingValidationPipe),
 * every key kept, `constructor` and `toString` included.
 */
export function IsJsonObject(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: IS_JSON_OBJECT,
      validator: {
        validate: (value: unknown) => isObject(value),
        defaultMessage: buildMessage((each) => `${each}$property must be an object`, options),
      },
    },
    options,
  );
}

/** Where the IsJsonObject properties of a class are: its own, and those of its nested DTOs. */
interface JsonObjectSchema {
  own: string[];
  nested: Array<[string, JsonObjectSchema]>;
}

/** A step of a path into a body: a property name or an array index. */
type PathStep = string | number;

const schemas = new WeakMap<object, JsonObjectSchema | null>();

/** The class's JsonObjectSchema; null when neither it nor its nested DTOs have an IsJsonObject property. */
function jsonObjectSchema(target: Type<unknown>, visiting = new Set<object>()): JsonObjectSchema | null {
  if (schemas.has(target)) return schemas.get(target) ?? null;
  if (visiting.has(target)) return null;
  visiting.add(target);
  const own = new Set<string>();
  const nestedNames = new Set<string>();
  for (const metadata of getMetadataStorage().getTargetValidationMetadatas(target, '', true, false)) {
    if (metadata.name === IS_JSON_OBJECT) own.add(metadata.propertyName);
    else if (metadata.type === ValidationTypes.NESTED_VALIDATION) nestedNames.add(metadata.propertyName);
  }
  const nested: Array<[string, JsonObjectSchema]> = [];
  for (const name of nestedNames) {
    const type = defaultMetadataStorage.findTypeMetadata(target, name)?.typeFunction() as Type<unknown> | undefined;
    const schema = typeof type === 'function' ? jsonObjectSchema(type, visiting) : null;
    if (schema) nested.push([name, schema]);
  }
  visiting.delete(target);
  const schema = own.size > 0 || nested.length > 0 ? { own: [...own], nested } : null;
  schemas.set(target, schema);
  return schema;
}

/** A plain object, as JSON.parse builds them (of any realm: a test's structuredClone makes them in another). */
function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === null || Object.getPrototypeOf(prototype) === null;
}

/** An array without holes: class-transformer keeps its indexes, so a path into it leads to the same item. */
function isDenseArray(value: unknown): value is unknown[] {
  return Array.isArray(value) && Object.keys(value).length === value.length;
}

/** Replaces each plain object at an IsJsonObject property of `body` by `{}`, recording where and what it was. */
function takeJsonObjects(
  body: Record<string, unknown>,
  schema: JsonObjectSchema,
  path: PathStep[],
  taken: Array<{ holder: Record<string, unknown>; path: PathStep[]; value: unknown }>,
): void {
  for (const name of schema.own) {
    const value = body[name];
    if (Object.hasOwn(body, name) && isPlainRecord(value)) {
      taken.push({ holder: body, path: [...path, name], value });
      body[name] = {};
    }
  }
  for (const [name, nested] of schema.nested) {
    if (!Object.hasOwn(body, name)) continue;
    const value = body[name];
    if (isPlainRecord(value)) {
      takeJsonObjects(value, nested, [...path, name], taken);
    } else if (isDenseArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item = value[i];
        if (isPlainRecord(item)) takeJsonObjects(item, nested, [...path, name, i], taken);
      }
    }
  }
}

/**
 * Refuses a key of a DTO's body or query (outside its free-form JSON objects) that names a member
 * of Object.prototype (`constructor`, `toString`, `__proto__`…) or is `prototype`, as
 * forbidNonWhitelisted refuses any other unknown key: Nest's pipe deletes some of them and
 * class-transformer's copy skips the rest, so `{"constructor": 5}` beside a document's fields, or
 * `?toString=1`, was dropped without a word. The message is the pipe's own, with its path prefix.
 */
function refusePrototypeKeys(value: unknown, path = ''): void {
  if (typeof value !== 'object' || value === null) return;
  const problems: string[] = [];
  const visit = (node: unknown, prefix: string): void => {
    if (typeof node !== 'object' || node === null) return;
    for (const key of Object.keys(node)) {
      if (key === 'prototype' || Object.hasOwn(Object.prototype, key)) {
        problems.push(`${prefix}property ${key} should not exist`);
      } else {
        visit((node as Record<string, unknown>)[key], `${prefix}${key}.`);
      }
    }
  };
  visit(value, path);
  if (problems.length > 0) throw new BadRequestException(problems);
}

/** Sets the value at `path` of `root` if every step before the last leads to an object. */
function putBack(root: unknown, path: PathStep[], value: unknown): void {
  let node: unknown = root;
  for (const step of path.slice(0, -1)) {
    if (typeof node !== 'object' || node === null) return;
    node = (node as Record<PathStep, unknown>)[step];
  }
  if (typeof node === 'object' && node !== null) (node as Record<PathStep, unknown>)[path[path.length - 1]] = value;
}

/**
 * The ValidationPipe, except that the free-form JSON objects of a body (IsJsonObject properties, at
 * any depth of nested DTOs) reach the handler exactly as parsed. Nest's pipe deletes `__proto__`,
 * `prototype` and `constructor` keys from the whole body in place, and class-transformer's copy of
 * a plain object skips every key that names a member of Object.prototype (`toString`,
 * `hasOwnProperty`, …), at any depth: metadata `{"constructor": "x", "toString": "y", "a": 1}` was
 * stored as `{"a": 1}`, and the filter `{"toString": "x"}` became empty. Such an object is taken out
 * of the body before the pipe runs (an empty object stands in for it, which passes IsJsonObject's
 * rule like the original) and put back into the result at the same place, and into the body. A
 * JSON body holds no prototype-poisoning key (`__proto__`, or `constructor` holding `prototype`):
 * the JSON parser refuses it (limits/json-body.ts).
 */
export class JsonPreservingValidationPipe extends ValidationPipe {
  override async transform(value: unknown, metadata: ArgumentMetadata): Promise<unknown> {
    const validated = metadata.metatype !== undefined && this.toValidate(metadata);
    const schema = validated && isPlainRecord(value) ? jsonObjectSchema(metadata.metatype) : null;
    if (!schema || !isPlainRecord(value)) {
      if (validated) refusePrototypeKeys(value);
      return super.transform(value, metadata);
    }
    const taken: Array<{ holder: Record<string, unknown>; path: PathStep[]; value: unknown }> = [];
    takeJsonObjects(value, schema, [], taken);
    try {
      // After the free-form objects are out: their keys are anyone's to choose.
      refusePrototypeKeys(value);
      const result: unknown = await super.transform(value, metadata);
      for (const { path, value: original } of taken) putBack(result, path, original);
      return result;
    } finally {
      for (const { holder, path, value: original } of taken) holder[path[path.length - 1]] = original;
    }
  }

  /**
   * One reason per field, the one that says what to send: a missing field is "required"; a value of
   * the wrong type names the type alone, not also every length or range rule it fails for having
   * none (`?limit=abc` was "must not be greater than 500", "must not be less than 1" and "must be an
   * integer number"); a null refused by IsOptionalNotNull names that rule alone.
   */
  protected override flattenValidationErrors(validationErrors: ValidationError[]): string[] {
    const stack = [...validationErrors];
    while (stack.length > 0) {
      const error = stack.pop()!;
      if (error.children) stack.push(...error.children);
      const constraints = error.constraints;
      if (constraints === undefined) continue;
      const notNull = constraints[IS_NOT_NULL];
      if (notNull !== undefined) {
        error.constraints = { [IS_NOT_NULL]: notNull };
      } else if (Object.hasOwn(error, 'value') && error.value === undefined) {
        // A field the body lacks (class-validator records its value); not the pipe's own error for a
        // body that is no object at all, which has no value.
        error.constraints = { isDefined: `${error.property} is required` };
      } else {
        const typeRules = Object.keys(constraints).filter((rule) => TYPE_RULES.has(rule));
        if (typeRules.length > 0) error.constraints = Object.fromEntries(typeRules.map((r) => [r, constraints[r]]));
      }
    }
    return super.flattenValidationErrors(validationErrors);
  }
}

/** class-validator's rules on a value's type: when one fails, the others (length, range, items) say nothing more. */
const TYPE_RULES = new Set(['isString', 'isInt', 'isNumber', 'isArray', 'isBoolean', 'isObject']);

/** The characters of a string as PostgreSQL counts them: code points (a surrogate pair is one). */
export function codePointLength(text: string): number {
  let length = text.length;
  for (let i = 0; i < text.length - 1; i++) {
    const unit = text.charCodeAt(i);
    if (unit >= 0xd800 && unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        length -= 1;
        i += 1;
      }
    }
  }
  return length;
}

/**
 * At most `max` characters as PostgreSQL counts them (codePointLength), the limit of a
 * varchar(max) column; MaxLength's name and message. class-validator's MaxLength leaves out
 * U+FE0E and U+FE0F (emoji presentation selectors), which PostgreSQL counts: 50 of "a\uFE0F" passed
 * it and failed the insert into varchar(50) with a 400 that named no field.
 */
export function MaxChars(max: number, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'maxLength',
      constraints: [max],
      validator: {
        validate: (value: unknown) => typeof value === 'string' && codePointLength(value) <= max,
        defaultMessage: buildMessage(
          (each) => `${each}$property must be shorter than or equal to $constraint1 characters`,
          options,
        ),
      },
    },
    options,
  );
}

/**
 * Text PostgreSQL can store as sent: without U+0000, which text cannot hold (the insert would fail),
 * and without unpaired UTF-16 surrogates (a JSON `"\ud800"` escape), which UTF-8 cannot encode: the
 * driver would write U+FFFD in their place and the stored text would differ from the one sent. A 400
 * naming the property and the problem.
 */
export function StorableText(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'storableText',
      validator: {
        validate: (value: unknown) => typeof value !== 'string' || storableTextProblem(value) === null,
        defaultMessage: buildMessage(
          (each, args) => `${each}$property ${storableTextProblem(String(args?.value)) ?? 'must be storable text'}`,
          options,
        ),
      },
    },
    options,
  );
}

/** What keeps a string from being stored as sent (see StorableText), or null when nothing does. */
export function storableTextProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain NUL characters';
  return text.isWellFormed() ? null : 'must not contain unpaired UTF-16 surrogates';
}

/**
 * The first key, string or number anywhere in a JSON value that cannot be stored as sent, and why.
 * A number beyond a double's range (`1e400`) is Infinity once parsed, and JSON.stringify writes it
 * as null: the stored metadata would silently differ from the body.
 */
function jsonTextProblem(value: unknown): string | null {
  if (typeof value === 'string') return storableTextProblem(value);
  if (typeof value === 'number') {
    return Number.isFinite(value)
      ? null
      : 'must not hold a number beyond the range of a double (it would be stored as null)';
  }
  if (Array.isArray(value)) {
    for (const item of value) {
      const problem = jsonTextProblem(item);
      if (problem) return problem;
    }
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      const problem = storableTextProblem(key) ?? jsonTextProblem(item);
      if (problem) return problem;
    }
  }
  return null;
}

/**
 * The 400 for a JSON value (metadata) at `field` with a key or string PostgreSQL's jsonb cannot
 * hold (U+0000, an unpaired surrogate), or a number it would not get as sent. Before anything is written.
 */
export function assertStorableJson(value: unknown, field: string): void {
  const problem = jsonTextProblem(value);
  if (problem) throw new BadRequestException(`${field} ${problem}`);
}

/**
 * A path parameter that names a stored row (a documentId, a collection name, a chunk id): a 400
 * `<name> must not contain NUL characters` for a value holding U+0000, which no stored text can
 * hold, instead of the database's generic refusal.
 */
export class NoNulParamPipe implements PipeTransform<string, string> {
  transform(value: string, metadata: ArgumentMetadata): string {
    if (typeof value === 'string' && value.includes('\u0000')) {
      throw new BadRequestException(`${metadata.data ?? 'parameter'} must not contain NUL characters`);
    }
    return value;
  }
}

/** The one NoNulParamPipe of the routes: `@Param('documentId', NO_NUL_PARAM)`. */
export const NO_NUL_PARAM = new NoNulParamPipe();
