import { ValidationPipe, type ValidationPipeOptions } from '@nestjs/common';

/**
 * The options of the global ValidationPipe (app.factory.ts). Routes that validate a body by hand
 * (two body shapes, vectors checked separately) use the same, so every body gets the same 400s.
 */
export const VALIDATION_OPTIONS: ValidationPipeOptions = {
  whitelist: true,
  forbidNonWhitelisted: true,
  transform: true,
};

/** A ValidationPipe with the global options. */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe(VALIDATION_OPTIONS);
}
