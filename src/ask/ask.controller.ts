import { Body, Controller, HttpCode, HttpStatus, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';
import { RequiredScope } from '../auth/auth.decorators.js';
import { VectorBodyPipe } from '../embeddings/dto/vector-body.pipe.js';
import { AskService } from './ask.service.js';
import { AskRequestDto, AskResponseDto, ASK_REQUEST_EXAMPLES } from './dto/ask.dto.js';
import { ApiEmbeddingProviderResponses, EMBEDDING_INPUT_TOO_LONG } from '../common/openapi-errors.js';

@ApiTags('ask')
@Controller('ask')
export class AskController {
  constructor(private readonly askService: AskService) {}

  @Post()
  @RequiredScope('read') // a search, though it is a POST
  @HttpCode(HttpStatus.OK)
  @ApiOperation({
    summary: 'Semantic or hybrid search over a collection, optionally with an LLM answer',
    description:
      'Embeds the question with the configured provider (or takes queryEmbedding), then returns the k most similar chunks ' +
      '(score = 1 − cosine distance). mode "hybrid" fuses that ranking with full-text ranking of the chunk text by ' +
      "reciprocal rank fusion. filter uses LangChain's metadata filter language, e.g. " +
      '{"document_type": "law", "chunk_index": {"$lt": 10}} or {"$or": [{"status": "active"}, {"year": {"$gte": 2020}}]}. ' +
      'A collection with an HNSW index (npm run index:create) is searched through it.',
  })
  @ApiOkResponse({ type: AskResponseDto })
  @ApiBadRequestResponse({
    description:
      'Invalid body or filter (the message names the part), a query vector of the wrong dimension, or answer: true without an LLM',
  })
  @ApiNotFoundResponse({ description: 'No collection with this name' })
  @ApiUnprocessableEntityResponse({ description: `The question: ${EMBEDDING_INPUT_TOO_LONG}` })
  @ApiEmbeddingProviderResponses('the LLM (answer: true)')
  @ApiBody({ type: AskRequestDto, examples: ASK_REQUEST_EXAMPLES })
  // Readonly<…>, a mapped type, on purpose: its runtime type metadata is Object, so the global
  // ValidationPipe passes the body through and VectorBodyPipe validates it (see there why).
  ask(
    @Body(new VectorBodyPipe(AskRequestDto, () => [['queryEmbedding']])) dto: Readonly<AskRequestDto>,
  ): Promise<AskResponseDto> {
    return this.askService.ask(dto);
  }
}
