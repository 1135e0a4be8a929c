import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Put } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiBody,
  ApiConflictResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { NO_NUL_PARAM } from '../common/validation.js';
import { RequiredScope } from '../auth/auth.decorators.js';
import { BuildVectorIndexDto, VectorIndexDto } from './dto/vector-index.dto.js';
import { VectorIndexService } from './vector-index.service.js';

const LOCK_WAIT_CONFLICT =
  "Another build or drop of the collection's index held its lock for longer than HTTP_REQUEST_TIMEOUT_MS " +
  '(one hour when that is 0); retry later';

@ApiTags('vector indexes')
@Controller()
export class VectorIndexController {
  constructor(private readonly indexes: VectorIndexService) {}

  @Get('vector-indexes')
  @ApiOperation({ summary: 'The per-collection HNSW indexes, with their dimension, validity and size' })
  @ApiOkResponse({ type: [VectorIndexDto] })
  list(): Promise<VectorIndexDto[]> {
    return this.indexes.list();
  }

  @Put('collections/:name/vector-index')
  @RequiredScope('admin')
  @ApiOperation({
    summary: "Build the collection's HNSW index (idempotent; same as npm run index:create)",
    description:
      'A partial expression index for the dimension of the vectors the collection holds (halfvec above 2000 dimensions), ' +
      'built CONCURRENTLY on a server so writers are not blocked. The request lasts as long as the build. ' +
      'The body is optional: {m, efConstruction}, as npm run index:create -- --m … --ef-construction … takes them. ' +
      'A new index gets m 16 and ef_construction 128 unless the body says otherwise. An index already built is kept ' +
      'as it is when it has the parameters the body names (none named: whatever it was built with); one built with ' +
      'others is a 409 (drop it first).',
  })
  @ApiBody({ type: BuildVectorIndexDto, required: false })
  @ApiOkResponse({ type: VectorIndexDto })
  @ApiBadRequestResponse({
    description:
      'The collection holds no vectors, mixes dimensions, or has more than 4000; above 2000 dimensions, a component ' +
      'beyond ±65504 (halfvec cannot hold it); name contains a NUL character; m or efConstruction out of range, ' +
      'or efConstruction under 2 × m',
  })
  @ApiNotFoundResponse({ description: 'No collection with this name' })
  @ApiConflictResponse({
    description: `${LOCK_WAIT_CONFLICT}; or the index is built, with other parameters than the body names`,
  })
  async create(
    @Param('name', NO_NUL_PARAM) name: string,
    @Body() parameters: BuildVectorIndexDto,
  ): Promise<VectorIndexDto> {
    return (await this.indexes.create(name, { m: parameters.m, efConstruction: parameters.efConstruction })).index;
  }

  @Delete('collections/:name/vector-index')
  @RequiredScope('admin')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ summary: "Drop the collection's HNSW index (search falls back to exact distances)" })
  @ApiNoContentResponse({ description: 'Dropped, or there was none' })
  @ApiBadRequestResponse({ description: 'name contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No collection with this name' })
  @ApiConflictResponse({ description: LOCK_WAIT_CONFLICT })
  async drop(@Param('name', NO_NUL_PARAM) name: string): Promise<void> {
    await this.indexes.drop(name);
  }
}
