import type { DocumentSort, ListDocumentsQueryDto } from './dto/document.dto.js';
import { PREPARED_STATEMENTS, type PreparedStatementName } from '../database/read-replicas.service.js';

/**
 * The read statements of DocumentsService, exported so the benchmark's driver floor
 * (bench/lib/floor.mjs) sends exactly the same SQL.
 */

/** Every column of documents, aliased to DocumentEntity's (and DocumentDto's) property names. */
export const DOCUMENT_COLUMNS = `id, document_id AS "documentId", document_name AS "documentName", category,
  document_type AS "documentType", source_file AS "sourceFile", file_name AS "fileName",
  total_chunks AS "totalChunks", status, created_at AS "createdAt", updated_at AS "updatedAt"`;

/** One document by its documentId ($1). */
export const GET_DOCUMENT_SQL = `SELECT ${DOCUMENT_COLUMNS} FROM documents WHERE document_id = $1`;

/** Sort keys of the API → column and its alias in DOCUMENT_COLUMNS (a fixed list: never an identifier from the request). */
const SORT_COLUMNS: Record<DocumentSort, { column: string; alias: string }> = {
  createdAt: { column: 'created_at', alias: '"createdAt"' },
  updatedAt: { column: 'updated_at', alias: '"updatedAt"' },
  documentName: { column: 'document_name', alias: '"documentName"' },
  documentId: { column: 'document_id', alias: '"documentId"' },
};

/** Escapes LIKE wildcards so the user's text matches literally (escape character: backslash). */
function likeContains(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

type ListQuery = Pick<
  ListDocumentsQueryDto,
  'documentType' | 'category' | 'status' | 'search' | 'limit' | 'offset' | 'sort' | 'order'
>;

/**
 * A page of documents and the number of documents matching the filters, in one statement (one
 * round trip, one snapshot): the count is the outer row, the page is joined to it, so an empty page
 * still returns one row, with `total` and every document column NULL.
 */
export function listDocumentsStatement(q: ListQuery): {
  sql: string;
  parameters: unknown[];
  name: PreparedStatementName;
} {
  const parameters: unknown[] = [];
  const conditions: string[] = [];
  const bind = (value: unknown): string => `$${parameters.push(value)}`;
  // Whether a filter is present decides both its condition and one digit of the statement's
  // prepared name, in one place: the name can never stand for two texts.
  const shape: string[] = [];
  const filter = (present: boolean, condition: () => string): void => {
    shape.push(present ? '1' : '0');
    if (present) conditions.push(condition());
  };
  filter(q.documentType !== undefined, () => `document_type = ${bind(q.documentType)}`);
  filter(q.category !== undefined, () => `category = ${bind(q.category)}`);
  filter(q.status !== undefined, () => `status = ${bind(q.status)}`);
  // NFC, as chunk text is stored and as keyboards type: a decomposed term ("Lua\u0323\u0302t", as
  // some macOS tools send) finds "Luật". And NFD too when it differs: names are stored as their
  // writer sent them, and a file name from macOS (or a row the Python service wrote) may be
  // decomposed. The number of forms is the search's digit of the shape: each form is a parameter.
  const searchForms =
    q.search === undefined || q.search === ''
      ? []
      : [...new Set([q.search.normalize('NFC'), q.search.normalize('NFD')])];
  shape.push(String(searchForms.length));
  if (searchForms.length > 0) {
    const matches = searchForms.map((form) => {
      const search = bind(likeContains(form));
      return `document_name ILIKE ${search} ESCAPE '\\' OR document_id ILIKE ${search} ESCAPE '\\'`;
    });
    conditions.push(`(${matches.join(' OR ')})`);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const direction = q.order === 'asc' ? 'ASC' : 'DESC';
  const sort = SORT_COLUMNS[q.sort];
  const sql = `SELECT t.total, p.*
  FROM (SELECT count(*)::int AS total FROM documents ${where}) t
  LEFT JOIN LATERAL (
    SELECT ${DOCUMENT_COLUMNS} FROM documents ${where}
     ORDER BY ${sort.column} ${direction}, id ${direction}
     LIMIT ${bind(q.limit)} OFFSET ${bind(q.offset)}
  ) p ON true
  ORDER BY p.${sort.alias} ${direction}, p.id ${direction}`;
  // One prepared statement per shape of the text: which filters are present, the sort key (one of
  // SORT_COLUMNS) and the direction; at most 2 × 2 × 2 × 3 × 4 × 2 = 192 names (three filters
  // present or not, the search in 0, 1 or 2 forms), none of them from the request.
  const name = `${PREPARED_STATEMENTS.listDocuments}_${shape.join('')}_${q.sort}_${direction.toLowerCase()}` as const;
  return { sql, parameters, name };
}
