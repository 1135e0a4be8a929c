import { ValidationPipe } from '@nestjs/common';
import { CreateEmbeddingsDto, vectorProblem } from './embedding.dto.js';

/** The options of the global pipe (app.factory.ts), so this body gets the 400s every other body gets. */
const validation = new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Validates and transforms a POST /embeddings body exactly as the global ValidationPipe would a
 * CreateEmbeddingsDto, minus the walks over the vectors. The pipe visits every component of every
 * vector four times (gap closing, prototype-key stripping, class-transformer's copy, validation):
 * 192,000 numbers per batch of 500 × 384, most of its time. So each vector is checked once here
 * with IsVector's own rule and replaced by a one-component stand-in that passes the same rule; the
 * pipe then validates everything else, and the checked vectors are put back into its result. An
 * invalid vector is left in place, so the pipe reports it with its usual message and order.
 */
export async function validateCreateEmbeddings(body: unknown): Promise<CreateEmbeddingsDto> {
  const checked = new Map<number, number[]>();
  if (isRecord(body) && Array.isArray(body.items)) {
    (body.items as unknown[]).forEach((item, i) => {
      if (isRecord(item) && vectorProblem(item.embedding, 'embedding') === null) {
        checked.set(i, item.embedding as number[]);
        item.embedding = [0];
      }
    });
  }
  const dto = (await validation.transform(body, {
    type: 'body',
    metatype: CreateEmbeddingsDto,
  })) as CreateEmbeddingsDto;
  // A JSON array has no gaps, so the pipe's items keep the body's indexes.
  checked.forEach((vector, i) => (dto.items[i].embedding = vector));
  return dto;
}
