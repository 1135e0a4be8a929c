import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Inject, Injectable, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiBody,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiUnprocessableEntityResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { NO_NUL_PARAM } from '../common/validation.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { VectorBodyPipe } from './dto/vector-body.pipe.js';
import {
  CREATE_EMBEDDINGS_EXAMPLES,
  CreateEmbeddingsDto,
  CreateEmbeddingsResponseDto,
  DeleteEmbeddingsDto,
  DeleteEmbeddingsResponseDto,
  EmbeddingResponseDto,
  MAX_DELETE_IDS,
} from './dto/embedding.dto.js';
import { EmbeddingsService, tooManyItemsMessage } from './embeddings.service.js';
import { ApiEmbeddingProviderResponses, EMBEDDING_INPUT_TOO_LONG } from '../common/openapi-errors.js';

const itemPaths = (body: Record<string, unknown>, property: string) =>
  Array.isArray(body.items) ? body.items.map((_, i) => ['items', i, property]) : [];

/**
 * The POST /embeddings body, with at most EMBEDDINGS_MAX_BATCH items (refused before they are
 * validated), every item's embedding checked in one loop, its metadata not copied, and the items
 * checked by the DTO's compiled rules. Nest creates it, with the configuration.
 */
@Injectable()
export class EmbeddingsBodyPipe extends VectorBodyPipe<CreateEmbeddingsDto> {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super(
      CreateEmbeddingsDto,
      (body) => itemPaths(body, 'embedding'),
      (body) => itemPaths(body, 'metadata'),
      ['items'],
      { property: 'items', max: config.embeddings.maxBatch, message: tooManyItemsMessage },
    );
  }
}

@ApiTags('embeddings')
@Controller('embeddings')
export class EmbeddingsController {
  constructor(private readonly embeddings: EmbeddingsService) {}

  @Post()
  @ApiOperation({
    summary: 'Add or update chunks (upsert on id, as LangChain does)',
    description:
      'Missing ids are generated and missing vectors computed by the configured provider. All vectors of a ' +
      'collection share one dimension. The whole batch is written in one transaction, or nothing is; the ' +
      'total_chunks of the documents named in the chunk metadata is kept right.',
  })
  @ApiEmbeddingProviderResponses()
  @ApiBody({ type: CreateEmbeddingsDto, examples: CREATE_EMBEDDINGS_EXAMPLES })
  @ApiCreatedResponse({ type: CreateEmbeddingsResponseDto })
  @ApiBadRequestResponse({
    description:
      'Invalid body, too many items, dimension mismatch, duplicate ids, or a blank text without an embedding',
  })
  @ApiUnprocessableEntityResponse({ description: `An item without embedding: ${EMBEDDING_INPUT_TOO_LONG}` })
  @ApiConflictResponse({
    description: 'Concurrent writers kept moving chunks of this batch through three attempts; nothing written, retry',
  })
  // Readonly<…>, a mapped type: its runtime type metadata is Object, so the global ValidationPipe
  // passes the body through and VectorBodyPipe applies the same rules without walking every vector.
  add(@Body(EmbeddingsBodyPipe) body: Readonly<CreateEmbeddingsDto>): Promise<CreateEmbeddingsResponseDto> {
    return this.embeddings.add(body);
  }

  @Post('delete')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: "Delete chunks by id, keeping their documents' total_chunks right",
    description:
      "The bulk form of DELETE /embeddings/:id, and what LangChain's delete(ids) does: the chunks of the ids that " +
      'exist are deleted, in any collection, and their documents recounted, in one transaction; the answer lists ' +
      "the ids deleted and the ids no chunk had. (LangChain JS's delete({ ids }) fails on this schema's varchar ids.)",
  })
  @ApiBody({ type: DeleteEmbeddingsDto })
  @ApiOkResponse({ type: DeleteEmbeddingsResponseDto })
  @ApiBadRequestResponse({
    description: `Invalid body: no ids, more than ${MAX_DELETE_IDS}, or an id that is not 1-1000 characters`,
  })
  @ApiConflictResponse({
    description:
      'Concurrent writers kept moving these chunks between documents through three attempts; nothing deleted, retry',
  })
  removeMany(@Body() body: DeleteEmbeddingsDto): Promise<DeleteEmbeddingsResponseDto> {
    return this.embeddings.removeMany(body);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One chunk with its vector' })
  @ApiOkResponse({ type: EmbeddingResponseDto })
  @ApiBadRequestResponse({ description: 'id contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No chunk with this id' })
  get(@Param('id', NO_NUL_PARAM) id: string): Promise<EmbeddingResponseDto> {
    return this.embeddings.get(id);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: "Delete one chunk, keeping its document's total_chunks right" })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiBadRequestResponse({ description: 'id contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No chunk with this id' })
  @ApiConflictResponse({
    description:
      'Concurrent writers kept moving this chunk between documents through three attempts; nothing deleted, retry',
  })
  remove(@Param('id', NO_NUL_PARAM) id: string): Promise<void> {
    return this.embeddings.remove(id);
  }
}
