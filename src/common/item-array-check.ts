import type { Type } from '@nestjs/common';
import { TransformationType } from 'class-transformer';
// class-transformer's metadata (@Type, @Transform, @Expose, @Exclude) has no public reader.
import { defaultMetadataStorage } from 'class-transformer/cjs/storage.js';
import {
  getMetadataStorage,
  ValidationTypes,
  type ValidationArguments,
  type ValidatorConstraintInterface,
} from 'class-validator';
import type { ValidationMetadata } from 'class-validator/types/metadata/ValidationMetadata.js';
import { MAX_JSON_DEPTH } from '../limits/json-body.js';
import { IS_JSON_OBJECT } from './validation.js';

/** The rules of one property: its IsOptional/ValidateIf conditions, then its validators in order. */
interface PropertyRules {
  conditions: Array<(object: object, value: unknown) => boolean>;
  validators: Array<{ validator: ValidatorConstraintInterface; constraints: unknown[] }>;
  /** An IsJsonObject property: the pipe hands its object on as it is, every key kept. */
  jsonObject: boolean;
}

/** The check of an array property and of its items (see compileItemArrayCheck). */
export interface ItemArrayCheck {
  /** True only if the ValidationPipe would accept `array` as `parent[property]` and every item as it is. */
  passes(array: unknown[], parent: object): boolean;
}

/**
 * A fast "yes" for a large array of nested DTOs (the 500 items of a POST /embeddings batch): true
 * only when the global ValidationPipe (whitelist, forbidNonWhitelisted) would accept the array and
 * every item, and would hand each item on unchanged but for being a class instance. The pipe costs
 * about 20 µs per item in class-validator and class-transformer (10 ms per batch of 500), this check
 * about 1. It runs class-validator's own validators, read from the DTO's metadata, so a rule added to
 * the DTO is a rule checked here; a false sends the body the usual way, so every 400 still comes
 * from the pipe, worded by it.
 *
 * Null when the DTOs use a feature the check does not reproduce: validators other than plain custom
 * ones (every built-in decorator is one) and IsOptional/ValidateIf, `each`, async validators,
 * @IsDefined, nested validation inside an item, or class-transformer metadata on an item (which
 * would change its values). The array property itself may carry validators, IsOptional,
 * @ValidateNested and the @Type naming its item class, which is required.
 */
export function compileItemArrayCheck(parentClass: Type<object>, property: string): ItemArrayCheck | null {
  const itemType = defaultMetadataStorage.findTypeMetadata(parentClass, property);
  const itemClass = itemType?.typeFunction() as Type<object> | undefined;
  if (!itemClass || hasTransformMetadata(parentClass, property, false)) return null;
  const arrayRules = propertyRules(parentClass, { only: property, allowNested: true })?.get(property);
  const item = compileObjectCheck(itemClass);
  if (!arrayRules || !item) return null;
  return {
    passes(array: unknown[], parent: object): boolean {
      if (!satisfies(arrayRules, parentClass.name, property, array, parent)) return false;
      for (let i = 0; i < array.length; i++) {
        if (!item.passes(array[i])) return false;
      }
      return true;
    },
  };
}

/** The check of one object against a DTO class (see compileObjectCheck). */
export interface ObjectCheck {
  /** True only if the ValidationPipe would accept `value` as the class and hand it on unchanged but for being an instance. */
  passes(value: unknown): boolean;
}

/**
 * The same fast "yes" for one object of a DTO class without nested DTOs: an item of a batch, or a
 * whole body (POST /ask, whose pipe took about 0.27 ms of a request where this check takes a few
 * µs). What the pipe hands on is an instance of the class; what passes here is handed on as the
 * plain object it is, with the same values, which is all a service reads. Null under the same
 * conditions as compileItemArrayCheck's items, and for a class whose instances start with a value
 * (a field initializer: the pipe's copy would carry the default where the body has none).
 */
export function compileObjectCheck(target: Type<object>): ObjectCheck | null {
  const rules = propertyRules(target, { allowNested: false });
  if (!rules || rules.size === 0) return null;
  for (const name of rules.keys()) if (hasTransformMetadata(target, name, true)) return null;
  if (defaultMetadataStorage.getStrategy(target) !== 'none') return null;
  if (Object.values(new target()).some((value) => value !== undefined)) return null;
  return { passes: (value) => objectPasses(rules, target.name, value) };
}

function hasTransformMetadata(target: Type<object>, property: string, includeType: boolean): boolean {
  return (
    (includeType && defaultMetadataStorage.findTypeMetadata(target, property) !== undefined) ||
    defaultMetadataStorage.findTransformMetadatas(target, property, TransformationType.PLAIN_TO_CLASS).length > 0 ||
    defaultMetadataStorage.findExcludeMetadata(target, property) !== undefined ||
    defaultMetadataStorage.findExposeMetadata(target, property) !== undefined
  );
}

/**
 * The class's validation metadata as the pipe reads it (no groups, `always` off), grouped by
 * property; null if any of it is outside what the check reproduces. `allowNested` lets the array
 * property keep its @ValidateNested, which the item check stands for.
 */
function propertyRules(
  target: Type<object>,
  { only, allowNested }: { only?: string; allowNested: boolean },
): Map<string, PropertyRules> | null {
  const storage = getMetadataStorage();
  const rules = new Map<string, PropertyRules>();
  for (const metadata of storage.getTargetValidationMetadatas(target, '', false, false)) {
    if (only !== undefined && metadata.propertyName !== only) continue;
    const rule = rules.get(metadata.propertyName) ?? { conditions: [], validators: [], jsonObject: false };
    rules.set(metadata.propertyName, rule);
    if (!addRule(rule, metadata, allowNested)) return null;
  }
  return rules;
}

function addRule(rule: PropertyRules, metadata: ValidationMetadata, allowNested: boolean): boolean {
  switch (metadata.type) {
    case ValidationTypes.CONDITIONAL_VALIDATION:
      rule.conditions.push(metadata.constraints[0] as (object: object, value: unknown) => boolean);
      return true;
    case ValidationTypes.WHITELIST:
      return true;
    case ValidationTypes.NESTED_VALIDATION:
      return allowNested;
    case ValidationTypes.CUSTOM_VALIDATION: {
      if (metadata.each || (metadata as { validateIf?: unknown }).validateIf !== undefined) return false;
      const constraints = getMetadataStorage().getTargetValidatorConstraints(metadata.constraintCls);
      if (constraints.length === 0 || constraints.some((c) => c.async)) return false;
      if (metadata.name === IS_JSON_OBJECT) rule.jsonObject = true;
      for (const c of constraints) {
        rule.validators.push({
          validator: c.instance,
          constraints: metadata.constraints,
        });
      }
      return true;
    }
    default:
      return false; // IS_DEFINED, PROMISE_VALIDATION, anything newer
  }
}

/** Whether the value passes every validator of the property (its conditions allowing), as class-validator runs them. */
function satisfies(rule: PropertyRules, targetName: string, property: string, value: unknown, object: object): boolean {
  for (const condition of rule.conditions) if (!condition(object, value)) return true;
  for (const { validator, constraints } of rule.validators) {
    const args: ValidationArguments = { targetName, property, object, value, constraints };
    // A promise (a validator async after all) is not a yes.
    if (validator.validate(value, args) !== true) return false;
  }
  return true;
}

function objectPasses(rules: Map<string, PropertyRules>, targetName: string, item: unknown): boolean {
  if (typeof item !== 'object' || item === null || Object.getPrototypeOf(item) !== Object.prototype) return false;
  const record = item as Record<string, unknown>;
  // forbidNonWhitelisted: a key without rules is a 400, worded by the pipe.
  for (const key of Object.keys(record)) {
    const rule = rules.get(key);
    if (!rule) return false;
    // The pipe hands on a copy of an object value (prototype keys stripped), or an IsJsonObject
    // property's object as it is: equal only for plain JSON.
    const value = record[key];
    if (typeof value === 'object' && value !== null && !isPlainJson(value, rule.jsonObject)) return false;
  }
  for (const [property, rule] of rules) {
    if (!satisfies(rule, targetName, property, record[property], record)) return false;
  }
  return true;
}

/**
 * Keys the ValidationPipe drops from an object value that is not an IsJsonObject property
 * (JsonPreservingValidationPipe keeps those whole): stripProtoKeys deletes `__proto__`,
 * `prototype` and `constructor`, and class-transformer's copy skips every key that names a member
 * of Object.prototype (`toString`, `hasOwnProperty`, …).
 */
const DROPPED_KEYS: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);

/**
 * Whether the ValidationPipe would hand `value` back unchanged but for being a copy: an object or
 * array built the way JSON.parse builds values (plain objects, arrays without holes, strings,
 * numbers, booleans, null), no key of which is in DROPPED_KEYS unless `anyKey` (the value of an
 * IsJsonObject property, which the pipe does not copy). The walk keeps its own stack and gives up
 * past MAX_JSON_DEPTH levels (deeper JSON is refused before parsing).
 */
export function isPlainJson(value: object, anyKey = false): boolean {
  const stack: Array<[object, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (Array.isArray(node)) {
      if (Object.getPrototypeOf(node) !== Array.prototype) return false;
      for (let i = 0; i < node.length; i += 1) {
        const item: unknown = node[i];
        if (typeof item === 'object' && item !== null) {
          if (depth >= MAX_JSON_DEPTH) return false;
          stack.push([item, depth + 1]);
        } else if (!isJsonScalar(item)) {
          return false; // a hole, undefined, a function…
        }
      }
    } else {
      if (Object.getPrototypeOf(node) !== Object.prototype) return false;
      for (const key of Object.keys(node)) {
        if (!anyKey && DROPPED_KEYS.has(key)) return false;
        const item: unknown = (node as Record<string, unknown>)[key];
        if (typeof item === 'object' && item !== null) {
          if (depth >= MAX_JSON_DEPTH) return false;
          stack.push([item, depth + 1]);
        } else if (!isJsonScalar(item)) {
          return false;
        }
      }
    }
  }
  return true;
}

function isJsonScalar(value: unknown): boolean {
  return value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}
