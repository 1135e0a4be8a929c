import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Param, Post, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { createdLocationHeader, setCreatedLocation } from '../common/location.js';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import { NO_NUL_PARAM } from '../common/validation.js';
import { RequiredScope } from '../auth/auth.decorators.js';
import { CollectionsService } from './collections.service.js';
import { CollectionResponseDto, CreateCollectionDto } from './dto/collection.dto.js';

@ApiTags('collections')
@Controller('collections')
export class CollectionsController {
  constructor(private readonly collections: CollectionsService) {}

  @Get()
  @ApiOperation({ summary: 'List collections with their chunk counts and vector dimensions' })
  @ApiOkResponse({ type: [CollectionResponseDto] })
  list(): Promise<CollectionResponseDto[]> {
    return this.collections.list();
  }

  @Post()
  @ApiOperation({
    summary: 'Create a collection',
    description: "metadata records the configured provider's embedding_model and dimensions unless given.",
  })
  @ApiCreatedResponse({ type: CollectionResponseDto, headers: createdLocationHeader('/collections/laws') })
  @ApiBadRequestResponse({ description: 'Invalid body' })
  @ApiConflictResponse({ description: 'A collection with this name exists' })
  async create(
    @Body() dto: CreateCollectionDto,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): Promise<CollectionResponseDto> {
    const created = await this.collections.create(dto);
    setCreatedLocation(reply, 'collections', created.name);
    return created;
  }

  @Get(':name')
  @ApiOperation({ summary: 'One collection by name' })
  @ApiOkResponse({ type: CollectionResponseDto })
  @ApiBadRequestResponse({ description: 'name contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No collection with this name' })
  get(@Param('name', NO_NUL_PARAM) name: string): Promise<CollectionResponseDto> {
    return this.collections.get(name);
  }

  @Delete(':name')
  @RequiredScope('admin') // drops every chunk of the collection
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({
    summary: 'Delete a collection and its chunks',
    description:
      'Chunks cascade; total_chunks of the documents that lost chunks is corrected in the same transaction. ' +
      "After the commit the collection's HNSW index is dropped too.",
  })
  @ApiNoContentResponse({ description: 'Deleted' })
  @ApiBadRequestResponse({ description: 'name contains a NUL character' })
  @ApiNotFoundResponse({ description: 'No collection with this name' })
  @ApiConflictResponse({
    description: 'Chunks for other documents kept arriving through three attempts; nothing deleted, retry',
  })
  remove(@Param('name', NO_NUL_PARAM) name: string): Promise<void> {
    return this.collections.remove(name);
  }
}
