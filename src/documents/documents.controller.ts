import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Inject,
  Injectable,
  Param,
  Patch,
  Post,
  Query,
  Res,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { createdLocationHeader, setCreatedLocation } from '../common/location.js';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiUnprocessableEntityResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { NO_NUL_PARAM } from '../common/validation.js';
import { RouteSchema } from '@nestjs/platform-fastify';
import { VectorBodyPipe } from '../embeddings/dto/vector-body.pipe.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { DocumentsService, tooManyChunksMessage } from './documents.service.js';
import {
  CreateDocumentDto,
  DocumentChunkListDto,
  DocumentDto,
  DocumentListDto,
  ListChunksQueryDto,
  ListDocumentsQueryDto,
  RecountDocumentsDto,
  RecountResultDto,
  UpdateDocumentDto,
  CREATE_DOCUMENT_EXAMPLES,
} from './dto/document.dto.js';
import { DOCUMENT_LIST_RESPONSE_SCHEMA, DOCUMENT_RESPONSE_SCHEMA } from './dto/document.response-schema.js';
import { ApiEmbeddingProviderResponses, EMBEDDING_INPUT_TOO_LONG } from '../common/openapi-errors.js';

/**
 * The POST /documents body, with at most EMBEDDINGS_MAX_BATCH chunks (refused before they are
 * validated), every chunk's embedding checked (and a base64 one decoded) and the chunks checked by
 * the DTO's compiled rules, by VectorBodyPipe. Nest creates it, with the configuration.
 */
@Injectable()
export class CreateDocumentBodyPipe extends VectorBodyPipe<CreateDocumentDto> {
  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    super(
      CreateDocumentDto,
      (body) => (Array.isArray(body.chunks) ? body.chunks.map((_, i) => ['chunks', i, 'embedding']) : []),
      () => [],
      ['chunks'],
      { property: 'chunks', max: config.embeddings.maxBatch, message: tooManyChunksMessage },
    );
  }
}

@ApiTags('documents')
@Controller('documents')
export class DocumentsController {
  constructor(private readonly documents: DocumentsService) {}

  @Get()
  @ApiOperation({ summary: 'List documents with filters, case-insensitive search, sorting and pagination' })
  @ApiOkResponse({ type: DocumentListDto })
  @ApiBadRequestResponse({ description: 'Invalid query parameter' })
  // Hot read: Fastify serializes the 200 body with a compiled serializer (see document.response-schema.ts).
  @RouteSchema({ response: { 200: DOCUMENT_LIST_RESPONSE_SCHEMA } })
  list(@Query() query: ListDocumentsQueryDto): Promise<DocumentListDto> {
    return this.documents.list(query);
  }

  @Get(':documentId')
  @ApiOperation({ summary: 'One document by its documentId' })
  @ApiOkResponse({ type: DocumentDto })
  @ApiBadRequestResponse({ description: 'documentId contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No document with this documentId' })
  @RouteSchema({ response: { 200: DOCUMENT_RESPONSE_SCHEMA } })
  get(@Param('documentId', NO_NUL_PARAM) documentId: string): Promise<DocumentDto> {
    return this.documents.get(documentId);
  }

  @Get(':documentId/chunks')
  @ApiOperation({ summary: "The document's chunks, ordered by chunk_index then id" })
  @ApiOkResponse({ type: DocumentChunkListDto })
  @ApiBadRequestResponse({
    description:
      'Invalid query parameter; or the chunks of the page hold more than CHUNKS_PAGE_MAX_BYTES (64 MiB) of ' +
      'text and metadata (the message names the limit that fits); or documentId contains a NUL character',
  })
  @ApiNotFoundResponse({ description: 'No document with this documentId' })
  chunks(
    @Param('documentId', NO_NUL_PARAM) documentId: string,
    @Query() query: ListChunksQueryDto,
  ): Promise<DocumentChunkListDto> {
    return this.documents.listChunks(documentId, query);
  }

  @Post()
  @ApiOperation({
    summary: 'Create a document, optionally with its chunks, in one transaction',
    description:
      'Missing chunk ids are generated and missing vectors computed by the configured provider. Chunk metadata ' +
      'gets document_id, chunk_id, chunk_index, total_chunks, document_type, category and status. All or nothing.',
  })
  @ApiCreatedResponse({ type: DocumentDto, headers: createdLocationHeader('/documents/luat-dat-dai-2024') })
  @ApiBadRequestResponse({
    description:
      'Invalid body, too many chunks, dimension mismatch, duplicate chunk ids, or a blank text without an embedding',
  })
  @ApiConflictResponse({ description: 'documentId exists, or a chunk id belongs to another document' })
  @ApiUnprocessableEntityResponse({ description: `A chunk without embedding: ${EMBEDDING_INPUT_TOO_LONG}` })
  @ApiEmbeddingProviderResponses()
  @ApiBody({ type: CreateDocumentDto, examples: CREATE_DOCUMENT_EXAMPLES })
  // Readonly<…>, a mapped type: its runtime type metadata is Object, so the global ValidationPipe
  // passes the body through to CreateDocumentBodyPipe, which decodes base64 chunk embeddings.
  async create(
    @Body(CreateDocumentBodyPipe) dto: Readonly<CreateDocumentDto>,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<DocumentDto> {
    const created = await this.documents.create(dto);
    setCreatedLocation(reply, 'documents', created.documentId);
    return created;
  }

  @Post('recount')
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: "Set each document's totalChunks to the number of its chunks where they differ",
    description:
      'For the given documentIds, or every document. Writers that bypass the service (LangChain, SQL, the Python ' +
      'service before adoption) leave totalChunks as it was; GET /stats counts the differences. Without ids, one ' +
      'scan of the chunk table (0.6-0.7 s at a million 384-dimension chunks). Each batch of 500 documents is locked and ' +
      'recounted in one transaction, as chunk writes lock them. dryRun reports the differences and changes nothing. ' +
      'The body is optional: none (with or without a Content-Type), {} or null recounts every document.',
  })
  @ApiBody({ type: RecountDocumentsDto, required: false })
  @ApiOkResponse({ type: RecountResultDto })
  @ApiBadRequestResponse({ description: 'Invalid body' })
  @ApiNotFoundResponse({ description: 'One of documentIds names no document; nothing is changed' })
  recount(@Body() dto: RecountDocumentsDto): Promise<RecountResultDto> {
    return this.documents.recountTotalChunks(dto);
  }

  @Patch(':documentId')
  @ApiOperation({
    summary: 'Update document fields; status, documentType and category are written into every chunk too',
    description:
      'Only fields whose value differs from the stored one are written: a PATCH that changes nothing leaves updatedAt as it was.',
  })
  @ApiOkResponse({ type: DocumentDto })
  @ApiBadRequestResponse({ description: 'Invalid body, or documentId contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No document with this documentId' })
  update(@Param('documentId', NO_NUL_PARAM) documentId: string, @Body() dto: UpdateDocumentDto): Promise<DocumentDto> {
    return this.documents.update(documentId, dto);
  }

  @Delete(':documentId')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: 'Delete a document and its chunks in one transaction' })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiBadRequestResponse({ description: 'documentId contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No document with this documentId' })
  remove(@Param('documentId', NO_NUL_PARAM) documentId: string): Promise<void> {
    return this.documents.remove(documentId);
  }
}
