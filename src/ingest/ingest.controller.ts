import type { Multipart } from '@fastify/multipart';
import {
  BadRequestException,
  Controller,
  HttpException,
  HttpStatus,
  Inject,
  PayloadTooLargeException,
  Post,
  Req,
  Res,
  UnsupportedMediaTypeException,
} from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiExtraModels,
  ApiOkResponse,
  ApiOperation,
  ApiPayloadTooLargeResponse,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnprocessableEntityResponse,
  ApiUnsupportedMediaTypeResponse,
  getSchemaPath,
} from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import {
  IngestFileDto,
  IngestFormFieldsDto,
  IngestResultDto,
  IngestTextDto,
  INGEST_TEXT_EXAMPLES,
  UploadedFileNameDto,
} from './dto/ingest.dto.js';
import { IngestService } from './ingest.service.js';
import { createValidationPipe } from '../common/validation.js';
import { ApiEmbeddingProviderResponses, EMBEDDING_INPUT_TOO_LONG } from '../common/openapi-errors.js';
import { createdLocationHeader, setCreatedLocation } from '../common/location.js';

/** The global pipe's settings, applied by hand: one route takes two body shapes. */
const validation = createValidationPipe();

/** @fastify/multipart's limit errors, by code, as the HTTP errors they mean. */
function multipartError(error: unknown, maxFileBytes: number): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  switch (typeof code === 'string' ? code : '') {
    case 'FST_REQ_FILE_TOO_LARGE':
      return new PayloadTooLargeException(`The file is larger than the limit of ${maxFileBytes} bytes`);
    case 'FST_FILES_LIMIT':
      return new BadRequestException('Send exactly one file, in the field "file"');
    case 'FST_FIELDS_LIMIT':
    case 'FST_PARTS_LIMIT':
      return new BadRequestException('Too many form fields');
    case 'FST_PROTO_VIOLATION':
      return new BadRequestException('Invalid form field name');
    case 'FST_MP_PREMATURE_CLOSE':
      return new BadRequestException('The upload ended before the form was complete');
    default:
      // The multipart parser's own errors ("Multipart: Boundary not found", "Unexpected end of
      // multipart data") carry no code: a malformed body is the client's, not a 500.
      return error instanceof Error && !(error instanceof HttpException)
        ? new BadRequestException(`Malformed multipart body: ${error.message}`)
        : error;
  }
}

/**
 * Reads and drops what is left of a multipart body once it has been refused part-way. The body is
 * piped into the multipart parser, which stops reading when a part nobody consumes fills its
 * buffer; Node drops an unread body itself only when nothing consumes it, so the rest of a large
 * upload would stay on the wire, and the next request on that keep-alive connection would wait
 * behind it until the server's header timeout (60 s and more).
 */
function discardRestOfBody(request: FastifyRequest): void {
  const body = request.raw;
  if (body.readableEnded || body.destroyed) return;
  body.unpipe();
  body.resume();
}

@ApiTags('documents')
@Controller('documents')
export class IngestController {
  constructor(
    private readonly ingestion: IngestService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('ingest')
  @ApiOperation({
    summary: 'Ingest a file (multipart) or a text (JSON): extract, chunk, embed and store in one transaction',
    description:
      'Formats: .txt, .md, .html/.htm, .docx, .pdf (by extension, else Content-Type). Chunks follow markdown ' +
      'headings and Vietnamese legal units (Phần, Chương, Mục, Điều, khoản, điểm) and carry hierarchy, level and ' +
      'section_title in their metadata. An existing documentId is re-ingested: 200 with skipped=true when the ' +
      'text and chunking options are unchanged, and all of its chunks are still stored, in the requested collection, ' +
      'with vectors of the configured embedding model (its chunks and vectors kept; changed document fields written ' +
      'to the document and its chunks as PATCH does), else its chunks are replaced (201).',
    // One schema per media type: a form takes a file and IngestOptionsDto's fields, JSON a text.
    requestBody: {
      required: true,
      content: {
        'multipart/form-data': { schema: { $ref: getSchemaPath(IngestFileDto) } },
        'application/json': {
          schema: { $ref: getSchemaPath(IngestTextDto) },
          examples: INGEST_TEXT_EXAMPLES,
        },
      },
    },
  })
  @ApiExtraModels(IngestFileDto, IngestTextDto)
  @ApiCreatedResponse({
    type: IngestResultDto,
    description: 'Document created, or its chunks replaced',
    headers: createdLocationHeader('/documents/luat-dat-dai-2024'),
  })
  @ApiOkResponse({
    type: IngestResultDto,
    description: 'Same text and options as the last ingest: chunks kept, only changed fields written',
  })
  @ApiBadRequestResponse({
    description:
      'Invalid field, missing or empty file, chunkOverlap more than half of chunkSize, or vectors of another ' +
      'dimension than the collection (or its vector index) holds',
  })
  @ApiPayloadTooLargeResponse({
    description:
      'File or text larger than INGEST_MAX_FILE_BYTES, whose text makes more than 100,000 chunks, a .docx whose XML unpacks beyond 16 MiB, 50,000 paragraphs or 500,000 elements, a PDF of more than 10,000 pages, or a .docx or PDF that needs more than INGEST_READER_HEAP_MB (512) MB of heap to read',
  })
  @ApiServiceUnavailableResponse({
    description:
      'The database is busy, restarting or unreachable, or the embedding provider is unreachable or rate-limits; ' +
      'or, for a .docx or PDF, as many other files as the service reads at once were being read for all of the ' +
      'INGEST_READ_TIMEOUT_MS a file may wait (Retry-After: 5)',
  })
  @ApiUnsupportedMediaTypeResponse({
    description:
      'File format not supported (the message lists the allowed ones), or a JSON text whose fileName names a ' +
      'format that is not text (.pdf, .docx: upload those as multipart/form-data)',
  })
  @ApiUnprocessableEntityResponse({
    description:
      'The file cannot be read, or holds no text; or reading the HTML, .docx or PDF took more than ' +
      `INGEST_READ_TIMEOUT_MS; or ${EMBEDDING_INPUT_TOO_LONG}`,
  })
  @ApiEmbeddingProviderResponses()
  async ingest(
    @Req() request: FastifyRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<IngestResultDto> {
    const result = request.isMultipart() ? await this.fromMultipart(request) : await this.fromJson(request);
    void reply.status(result.skipped ? HttpStatus.OK : HttpStatus.CREATED);
    if (!result.skipped) setCreatedLocation(reply, 'documents', result.documentId);
    return result;
  }

  private async fromJson(request: FastifyRequest): Promise<IngestResultDto> {
    const contentType = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(contentType)) {
      throw new UnsupportedMediaTypeException('Content-Type must be multipart/form-data or application/json');
    }
    const dto = (await validation.transform(request.body ?? {}, {
      type: 'body',
      metatype: IngestTextDto,
    })) as IngestTextDto;
    return this.ingestion.ingest(dto);
  }

  private async fromMultipart(request: FastifyRequest): Promise<IngestResultDto> {
    const { maxFileBytes } = this.config.ingest;
    const fields: Record<string, string> = {};
    let file: { buffer: Buffer; fileName: string; mimeType: string } | undefined;
    try {
      for await (const part of request.parts() as AsyncIterable<Multipart>) {
        if (part.type === 'file') {
          if (part.fieldname !== 'file') {
            throw new BadRequestException(`Unexpected file field "${part.fieldname}": send the file as "file"`);
          }
          const buffer = await part.toBuffer();
          // What a browser form sends when no file was chosen: no name, no bytes.
          if (part.filename === '' && buffer.length === 0) continue;
          file = { buffer, fileName: part.filename, mimeType: part.mimetype };
        } else if (part.fieldname === 'file') {
          // curl's -F file=abc (without @) sends the text "abc", not a file.
          throw new BadRequestException(
            'Field "file" must be a file (a part with a filename, as curl -F file=@path sends it), not a text field',
          );
        } else if (Object.hasOwn(fields, part.fieldname)) {
          throw new BadRequestException(`Field "${part.fieldname}" appears more than once`);
        } else if (typeof part.value !== 'string') {
          // @fastify/multipart parses a field sent as application/json; every field here is text.
          throw new BadRequestException(`Field "${part.fieldname}" must be plain text, not ${part.mimetype}`);
        } else {
          fields[part.fieldname] = part.value;
        }
      }
    } catch (error) {
      discardRestOfBody(request);
      throw multipartError(error, maxFileBytes);
    }
    const dto = (await validation.transform(fields, {
      type: 'body',
      metatype: IngestFormFieldsDto,
    })) as IngestFormFieldsDto;
    if (!file) throw new BadRequestException('file is required: send the document in the multipart field "file"');
    // The upload's name becomes the document's fileName (and its name by default): the same rules as in JSON.
    if (file.fileName !== '') {
      await validation.transform({ fileName: file.fileName }, { type: 'body', metatype: UploadedFileNameDto });
    }
    return this.ingestion.ingest({
      ...dto,
      buffer: file.buffer,
      fileName: file.fileName || undefined,
      mimeType: file.mimeType,
    });
  }
}
