import { createHash } from 'node:crypto';
import http from 'node:http';
import JSZip from 'jszip';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { EXTRACTION_LIMITS, extractText, READERS_AT_ONCE, textOf } from '../src/ingest/text-extraction.js';
import {
  type CorpusFile,
  encryptedPdf,
  LEGAL_SENTENCE,
  LEGAL_TEXT,
  makeCorpus,
  pdfOfOneLongPage,
} from './support/corpus.js';
import { startTestApp, type TestApp } from './support/test-app.js';

interface IngestBody {
  documentId: string;
  documentName: string;
  chunks: number;
  skipped: boolean;
  contentHash: string;
  collection: string;
}

interface StoredChunk {
  id: string;
  collection: string;
  document: string;
  cmetadata: Record<string, unknown>;
}

async function storedChunks(t: TestApp, documentId: string): Promise<StoredChunk[]> {
  return t.dataSource.query<StoredChunk[]>(
    `SELECT e.id, c.name AS collection, e.document, e.cmetadata
       FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id
      WHERE e.cmetadata->>'document_id' = $1
      ORDER BY (e.cmetadata->>'chunk_index')::int`,
    [documentId],
  );
}

async function counts(t: TestApp): Promise<{ documents: number; chunks: number }> {
  const [row] = await t.dataSource.query<Array<{ documents: number; chunks: number }>>(
    `SELECT (SELECT count(*)::int FROM documents) AS documents,
            (SELECT count(*)::int FROM langchain_pg_embedding) AS chunks`,
  );
  return row;
}

function upload(
  t: TestApp,
  file: Pick<CorpusFile, 'buffer' | 'fileName' | 'mimeType'>,
  fields: Record<string, string>,
) {
  const req = request(t.server).post('/documents/ingest');
  for (const [name, value] of Object.entries(fields)) void req.field(name, value);
  return req.attach('file', file.buffer, { filename: file.fileName, contentType: file.mimeType });
}

describe('POST /documents/ingest', () => {
  let t: TestApp;
  let corpus: CorpusFile[];

  beforeAll(async () => {
    t = await startTestApp({ INGEST_MAX_FILE_BYTES: '65536' });
    corpus = await makeCorpus();
  });
  afterAll(async () => {
    await t.close();
  });

  it('ingests each corpus file (multipart): 201, the document and its chunks with structure metadata', async () => {
    for (const file of corpus) {
      const documentId = `corpus-${file.fileName.replace(/\W+/g, '-')}`;
      const res = await upload(t, file, { documentType: 'guide', category: 'corpus', documentId, chunkSize: '300' });
      expect(res.status).toBe(201);
      const body = res.body as IngestBody;
      expect(body).toMatchObject({ documentId, documentName: file.fileName, skipped: false, collection: 'docs' });
      expect(body.contentHash).toMatch(/^[0-9a-f]{64}$/);
      expect(body.chunks).toBeGreaterThan(0);

      const doc = await request(t.server).get(`/documents/${documentId}`).expect(200);
      expect(doc.body).toMatchObject({
        documentName: file.fileName,
        fileName: file.fileName,
        sourceFile: file.fileName,
        documentType: 'guide',
        category: 'corpus',
        status: 'active',
        totalChunks: body.chunks,
      });
      const chunks = await storedChunks(t, documentId);
      expect(chunks).toHaveLength(body.chunks);
      chunks.forEach((c, index) => {
        expect(c.document.length).toBeLessThanOrEqual(300);
        expect(c.cmetadata).toMatchObject({
          document_id: documentId,
          chunk_id: c.id,
          chunk_index: index,
          total_chunks: body.chunks,
          document_type: 'guide',
          status: 'active',
          content_hash: body.contentHash,
        });
        expect(typeof c.cmetadata.hierarchy).toBe('string');
        expect(typeof c.cmetadata.level).toBe('string');
      });
      expect(chunks.some((c) => c.document.includes(file.sentence))).toBe(true);
    }
    const legal = await storedChunks(t, 'corpus-luat-nuoi-ong-txt');
    expect(legal.find((c) => c.document.includes(LEGAL_SENTENCE))!.cmetadata).toMatchObject({
      hierarchy: expect.stringMatching(/^Chương II > Mục 1 > Điều 3/) as unknown,
      section_title: 'Điều 3. Đăng ký đàn ong',
    });
    const docx = await storedChunks(t, 'corpus-lua-dat-phen-docx');
    expect(docx.some((c) => String(c.cmetadata.hierarchy).startsWith('Canh tác lúa trên đất phèn'))).toBe(true);
  });

  it('ingests JSON text; re-ingesting the same text is skipped (200), changed text replaces the chunks', async () => {
    const body = {
      documentId: 'luat-ong-json',
      documentType: 'law',
      category: 'nong-nghiep',
      documentName: 'Luật Nuôi ong',
      text: LEGAL_TEXT,
      fileName: 'luat-nuoi-ong.md',
      chunkSize: 200,
      chunkOverlap: 20,
      collection: 'laws',
    };
    const first = await request(t.server).post('/documents/ingest').send(body).expect(201);
    const created = first.body as IngestBody;
    expect(created).toMatchObject({ documentId: 'luat-ong-json', documentName: 'Luật Nuôi ong', collection: 'laws' });
    const before = await storedChunks(t, 'luat-ong-json');
    expect(before).toHaveLength(created.chunks);
    expect(before.every((c) => c.collection === 'laws')).toBe(true);
    expect(before.map((c) => c.cmetadata.level)).toContain('clause');

    const again = await request(t.server).post('/documents/ingest').send(body).expect(200);
    expect(again.body).toEqual({ ...created, skipped: true });
    expect((await storedChunks(t, 'luat-ong-json')).map((c) => c.id)).toEqual(before.map((c) => c.id));

    // The same text with other fields: the chunks (and vectors) stay, the fields are written to the
    // document and its chunks' metadata as PATCH writes them.
    const refiled = await request(t.server)
      .post('/documents/ingest')
      .send({ ...body, documentType: 'decree', category: 'thue', status: 'inactive', documentName: 'Nghị định' })
      .expect(200);
    expect(refiled.body).toEqual({ ...created, documentName: 'Nghị định', skipped: true });
    const refiledChunks = await storedChunks(t, 'luat-ong-json');
    expect(refiledChunks.map((c) => c.id)).toEqual(before.map((c) => c.id));
    for (const c of refiledChunks) {
      expect(c.cmetadata).toMatchObject({ document_type: 'decree', category: 'thue', status: 'inactive' });
      expect(c.cmetadata.processing_metadata).toMatchObject({
        processing_status: 'inactive',
        status_change_history: [expect.objectContaining({ from: 'active', to: 'inactive' })],
      });
    }
    const refiledDoc = await request(t.server).get('/documents/luat-ong-json').expect(200);
    expect(refiledDoc.body).toMatchObject({
      documentType: 'decree',
      category: 'thue',
      status: 'inactive',
      documentName: 'Nghị định',
      totalChunks: created.chunks,
    });
    // Sent again unchanged: nothing is written, not even updated_at.
    await request(t.server)
      .post('/documents/ingest')
      .send({ ...body, documentType: 'decree', category: 'thue', documentName: 'Nghị định' })
      .expect(200);
    const untouched = await request(t.server).get('/documents/luat-ong-json').expect(200);
    expect(untouched.body).toEqual(refiledDoc.body);
    expect((await storedChunks(t, 'luat-ong-json'))[0].cmetadata).toEqual(refiledChunks[0].cmetadata);
    // Re-sent without fileName (format given instead): the stored file name and source stay, nothing is written.
    await request(t.server)
      .post('/documents/ingest')
      .send({
        ...body,
        fileName: undefined,
        format: 'md',
        documentType: 'decree',
        category: 'thue',
        documentName: 'Nghị định',
      })
      .expect(200);
    expect((await request(t.server).get('/documents/luat-ong-json').expect(200)).body).toEqual(refiledDoc.body);
    expect(refiledDoc.body).toMatchObject({ fileName: 'luat-nuoi-ong.md', sourceFile: 'luat-nuoi-ong.md' });
    await request(t.server)
      .post('/documents/ingest')
      .send({ ...body, status: 'active' })
      .expect(200);

    // A chunk deleted since (its document recounted): the same text writes every chunk again.
    await request(t.server).delete(`/embeddings/${before[1].id}`).expect(204);
    const repaired = await request(t.server).post('/documents/ingest').send(body).expect(201);
    expect(repaired.body).toMatchObject({ skipped: false, chunks: created.chunks });
    const repairedChunks = await storedChunks(t, 'luat-ong-json');
    expect(repairedChunks.map((c) => c.cmetadata.chunk_index)).toEqual(before.map((c) => c.cmetadata.chunk_index));
    expect((await request(t.server).get('/documents/luat-ong-json').expect(200)).body.totalChunks).toBe(created.chunks);

    // Chunks stored by the release before CHUNKING_VERSION 2, which chunked the same text otherwise
    // and hashed the text and options alone: the same text is chunked again once, then skipped.
    const olderHash = createHash('sha256')
      .update(await textOf(LEGAL_TEXT, 'md'))
      .update('\u0000200\u000020')
      .digest('hex');
    await t.dataSource.query(
      `UPDATE langchain_pg_embedding SET cmetadata = cmetadata || jsonb_build_object('content_hash', $2::text)
        WHERE cmetadata->>'document_id' = $1`,
      ['luat-ong-json', olderHash],
    );
    expect(olderHash).not.toBe(created.contentHash);
    const rechunked = await request(t.server).post('/documents/ingest').send(body).expect(201);
    expect(rechunked.body).toMatchObject({ skipped: false, contentHash: created.contentHash });
    await request(t.server).post('/documents/ingest').send(body).expect(200);

    // Other chunking options make other chunks: not skipped.
    const resized = await request(t.server)
      .post('/documents/ingest')
      .send({ ...body, chunkSize: 1000 })
      .expect(201);
    expect((resized.body as IngestBody).contentHash).not.toBe(created.contentHash);

    const changed = `${LEGAL_TEXT}\nĐiều 5. Hiệu lực thi hành\nLuật này có hiệu lực từ ngày 01 tháng 01 năm 2027.\n`;
    const replaced = await request(t.server)
      .post('/documents/ingest')
      .send({ ...body, text: changed, status: 'inactive' })
      .expect(201);
    const after = await storedChunks(t, 'luat-ong-json');
    expect(after).toHaveLength((replaced.body as IngestBody).chunks);
    expect(after.map((c) => c.id).filter((id) => before.some((b) => b.id === id))).toEqual([]);
    expect(after.some((c) => c.document.includes('Hiệu lực thi hành'))).toBe(true);
    expect(after.every((c) => c.cmetadata.status === 'inactive')).toBe(true);
    const doc = await request(t.server).get('/documents/luat-ong-json').expect(200);
    expect(doc.body).toMatchObject({ totalChunks: after.length, status: 'inactive', documentName: 'Luật Nuôi ong' });
  });

  it('reads JSON text as html or markdown by format or by fileName; inline when no fileName', async () => {
    const res = await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'guide', category: 'web', text: '<h1>Tiêu đề</h1><p>Nội dung trang.</p>', format: 'html' })
      .expect(201);
    const { documentId, documentName } = res.body as IngestBody;
    expect(documentName).toBe('inline');
    const [chunk] = await storedChunks(t, documentId);
    expect(chunk.document).toBe('# Tiêu đề\n\nNội dung trang.');
    expect(chunk.cmetadata).toMatchObject({ hierarchy: 'Tiêu đề', level: 'heading1', section_title: 'Tiêu đề' });
    const doc = await request(t.server).get(`/documents/${documentId}`).expect(200);
    expect(doc.body).toMatchObject({ sourceFile: 'inline', fileName: 'inline' });
  });

  it('stores each table row of an upload on one line with all of its cells, in whichever chunk holds it', async () => {
    const numbers = Array.from({ length: 80 }, (_, i) => i + 1);
    const line = (n: number) => `${n} | Phí thẩm định hồ sơ loại ${n} | ${n * 10}.000 đồng`;
    const html = Buffer.from(
      `<h1>Biểu phí</h1><table><tr><th>STT</th><th>Loại phí</th><th>Mức thu</th></tr>${numbers
        .map((n) => `<tr><td>${n}</td><td>Phí thẩm định hồ sơ loại ${n}</td><td>${n * 10}.000 đồng</td></tr>`)
        .join('')}</table>`,
    );
    const res = await upload(
      t,
      { buffer: html, fileName: 'bieu-phi.html', mimeType: 'text/html' },
      { documentType: 'fee', category: 'phi', chunkSize: '300', chunkOverlap: '60' },
    ).expect(201);
    const chunks = await storedChunks(t, (res.body as IngestBody).documentId);
    expect(chunks.length).toBeGreaterThan(10);
    const lines = chunks.flatMap((chunk) => chunk.document.split('\n'));
    for (const n of numbers) {
      const rows = lines.filter((row) => row.includes(`loại ${n} `));
      expect({ n, rows: [...new Set(rows)] }).toEqual({ n, rows: [line(n)] });
    }
    expect(chunks.every((chunk) => chunk.cmetadata.hierarchy === 'Biểu phí')).toBe(true);
  });

  it('rejects an unsupported file type with 415 naming the allowed formats', async () => {
    const before = await counts(t);
    const res = await upload(
      t,
      { buffer: Buffer.from('MZ binary'), fileName: 'tool.exe', mimeType: 'application/octet-stream' },
      { documentType: 'x', category: 'y' },
    ).expect(415);
    expect((res.body as { message: string }).message).toMatch(/tool\.exe.*\.txt.*\.md.*\.html.*\.docx.*\.pdf/);
    await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'x', category: 'y', text: 'abc', fileName: 'scan.pdf' })
      .expect(415);
    expect(await counts(t)).toEqual(before);
  });

  it('rejects a file over INGEST_MAX_FILE_BYTES with 413', async () => {
    const before = await counts(t);
    const big = Buffer.from('Một câu dài về ong mật. '.repeat(4000), 'utf8');
    const res = await upload(
      t,
      { buffer: big, fileName: 'big.txt', mimeType: 'text/plain' },
      { documentType: 'x', category: 'y' },
    );
    expect(res.status).toBe(413);
    expect((res.body as { message: string }).message).toContain('65536 bytes');
    await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'x', category: 'y', text: big.toString('utf8') })
      .expect(413);
    expect(await counts(t)).toEqual(before);
  });

  it('rejects bad fields, a missing or empty file and unreadable content with 400/422, writing nothing', async () => {
    const before = await counts(t);
    const txt = { buffer: Buffer.from('Nội dung.'), fileName: 'a.txt', mimeType: 'text/plain' };
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ category: 'y' }, /documentType/],
      [{ documentType: 'x', category: 'y', chunkSize: 'many' }, /chunkSize must be an integer/],
      [{ documentType: 'x', category: 'y', chunkSize: '50' }, /chunkSize must not be less than 100/],
      [{ documentType: 'x', category: 'y', status: 'gone' }, /status/],
      [{ documentType: 'x', category: 'y', documentId: 'has space' }, /documentId/],
      [{ documentType: 'x', category: 'y', extra: '1' }, /property extra should not exist/],
      [
        { documentType: 'x', category: 'y', chunkSize: '200', chunkOverlap: '200' },
        /chunkOverlap \(200\) must be at most half of chunkSize \(200\)/,
      ],
      [
        { documentType: 'x', category: 'y', chunkSize: '100', chunkOverlap: '51' },
        /chunkOverlap \(51\) must be at most half of chunkSize \(100\)/,
      ],
    ];
    for (const [fields, message] of bad) {
      const res = await upload(t, txt, fields).expect(400);
      expect(JSON.stringify((res.body as { message: unknown }).message)).toMatch(message);
    }
    const noFile = await request(t.server)
      .post('/documents/ingest')
      .field('documentType', 'x')
      .field('category', 'y')
      .expect(400);
    expect((noFile.body as { message: string }).message).toMatch(/file is required/);
    await upload(t, { ...txt, buffer: Buffer.alloc(0) }, { documentType: 'x', category: 'y' }).expect(400);
    await request(t.server).post('/documents/ingest').send({ documentType: 'x', category: 'y', text: '' }).expect(400);
    // A form sends its integers as text; JSON sends numbers, and a string there is refused, as on every JSON route.
    for (const options of [{ chunkSize: '1000' }, { chunkOverlap: '20' }]) {
      const [field] = Object.keys(options);
      const json = await request(t.server)
        .post('/documents/ingest')
        .send({ documentType: 'x', category: 'y', text: 'Nội dung.', ...options });
      expect([json.status, json.body.message]).toEqual([400, [`${field} must be an integer`]]);
    }
    // Multipart bodies as browsers and other clients write them.
    const raw = (...parts: string[]) =>
      request(t.server)
        .post('/documents/ingest')
        .set('content-type', 'multipart/form-data; boundary=b')
        .send(`${parts.map((p) => `--b\r\n${p}\r\n`).join('')}--b--\r\n`);
    const field = (name: string, value: string, type = '') =>
      `Content-Disposition: form-data; name="${name}"${type ? `\r\nContent-Type: ${type}` : ''}\r\n\r\n${value}`;
    const filePart = (disposition: string, body: string) =>
      `Content-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: application/octet-stream\r\n\r\n${body}`;
    const refusals: Array<[request.Test, string]> = [
      // A form whose file input was left empty.
      [
        raw(field('documentType', 'x'), field('category', 'y'), filePart('filename=""', '')),
        'file is required: send the document in the multipart field "file"',
      ],
      // An empty file is empty whatever its type (it was a 415 for a name without a known extension).
      [raw(field('documentType', 'x'), field('category', 'y'), filePart('filename="a.bin"', '')), 'The file is empty'],
      [
        raw(field('documentType', 'x'), field('category', 'y'), field('documentName', '{"a":1}', 'application/json')),
        'Field "documentName" must be plain text, not application/json',
      ],
      [
        raw(field('documentType', 'x'), field('category', 'y'), field('file', 'Nội dung.')),
        'Field "file" must be a file (a part with a filename, as curl -F file=@path sends it), not a text field',
      ],
      [
        raw(field('documentType', 'x'), field('category', 'y'), filePart("filename*=UTF-8''a%00.txt", 'Nội dung.')),
        'fileName must not contain NUL characters',
      ],
      [
        raw(field('documentType', 'x'), field('category', 'y'), filePart(`filename="${'n'.repeat(1021)}.txt"`, 'x')),
        'fileName must be shorter than or equal to 1024 characters',
      ],
    ];
    for (const [sent, message] of refusals) {
      const res = await sent;
      expect({ status: res.status, message: [(res.body as { message: unknown }).message].flat().join('; ') }).toEqual({
        status: 400,
        message,
      });
    }

    const corrupt = await upload(
      t,
      { buffer: Buffer.from('%PDF-1.7 nothing'), fileName: 'bad.pdf', mimeType: 'application/pdf' },
      { documentType: 'x', category: 'y' },
    ).expect(422);
    expect((corrupt.body as { message: string }).message).toMatch(/not a readable PDF/);
    const locked = await upload(
      t,
      { buffer: encryptedPdf(), fileName: 'locked.pdf', mimeType: 'application/pdf' },
      { documentType: 'x', category: 'y' },
    ).expect(422);
    expect((locked.body as { message: string }).message).toBe(
      'The PDF is password-protected: upload a copy saved without the password',
    );
    // Relationships that are not XML: the bounds check read them before the conversion, and its error was a 500.
    const docx = await JSZip.loadAsync(corpus.find((f) => f.fileName.endsWith('.docx'))!.buffer);
    docx.file('_rels/.rels', '<Relationships><broken');
    const brokenDocx = await upload(
      t,
      { buffer: await docx.generateAsync({ type: 'nodebuffer' }), fileName: 'broken.docx', mimeType: 'text/plain' },
      { documentType: 'x', category: 'y' },
    ).expect(422);
    expect((brokenDocx.body as { message: string }).message).toMatch(
      /^The file is not a readable \.docx document \(error: \[xmldom error\] element parse error: [^\n\t]+\)$/,
    );
    await upload(
      t,
      { buffer: Buffer.from('  \n\n'), fileName: 'blank.md', mimeType: 'text/markdown' },
      { documentType: 'x', category: 'y' },
    ).expect(422);
    // A fileName within its 1,024 characters whose bytes a btree index entry cannot hold: it is stored
    // as the document's sourceFile, but the 400 names the field the client sent.
    let seed = 7;
    const cjk = Array.from({ length: 1000 }, () => {
      seed = (seed * 48271) % 2147483647;
      return String.fromCodePoint(0x4e00 + (seed % 20000));
    }).join('');
    const unindexable = await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'x', category: 'y', fileName: `${cjk}.txt`, text: 'Nội dung.' })
      .expect(400);
    expect((unindexable.body as { message: string }).message).toBe(
      'fileName is too large to be indexed: a btree index entry holds about 2,700 bytes (after compression)',
    );
    expect(await counts(t)).toEqual(before);
  });

  it('refuses a collection of vectors of another dimension than the provider makes, naming both, writing nothing', async () => {
    await request(t.server)
      .post('/embeddings')
      .send({ collection: 'three-dims', items: [{ id: 'td-1', content: 'a', embedding: [1, 0, 0] }] })
      .expect(201);
    const before = await counts(t);
    const dimensions = t.config.embeddings.dimensions;
    const res = await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'x', category: 'y', collection: 'three-dims', text: 'Điều 1. Nội dung.' })
      .expect(400);
    // Before: "Embedding dimension mismatch … item 0 has 384", once every chunk's vector was computed.
    expect((res.body as { message: string }).message).toBe(
      `Collection "three-dims" holds 3-dimensional vectors, and the embedding model "local-hash-ngram-${dimensions}" ` +
        `makes ${dimensions}-dimensional ones: ingest into another collection, or configure the model that filled ` +
        'this one (EMBEDDINGS_PROVIDER, EMBEDDINGS_MODEL, EMBEDDINGS_DIMENSIONS)',
    );
    expect(await counts(t)).toEqual(before);
  });

  it('is in the OpenAPI document with both content types, each with its own schema', async () => {
    const res = await request(t.server).get('/docs-json').expect(200);
    const op = (res.body as { paths: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }> })
      .paths['/documents/ingest'].post;
    // A form takes a file and the options; JSON a text (its form fields are 400s in a form).
    expect(op.requestBody.content).toEqual({
      'multipart/form-data': { schema: { $ref: '#/components/schemas/IngestFileDto' } },
      'application/json': expect.objectContaining({ schema: { $ref: '#/components/schemas/IngestTextDto' } }),
    });
  });

  it('stores an uploaded heading holding half of a surrogate pair (&#xD800;) with U+FFFD in its place', async () => {
    const html = Buffer.from('<h1>Điều 1. Phạm vi&#xD800;</h1><p>Luật này quy định về đất đai.</p>');
    const res = await upload(
      t,
      { buffer: html, fileName: 'half-pair.html', mimeType: 'text/html' },
      {
        documentType: 'law',
        category: 'dat-dai',
      },
    ).expect(201);
    const [chunk] = await storedChunks(t, res.body.documentId);
    expect(chunk.cmetadata.section_title).toBe('Điều 1. Phạm vi\uFFFD');
    expect(chunk.document).toContain('Phạm vi\uFFFD');
  });
});

describe('POST /documents/ingest with the default INGEST_MAX_FILE_BYTES (25 MB)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(() => t.close());

  it('reads the rest of an upload it refuses part-way, so the keep-alive connection answers its next request', async () => {
    await t.app.listen(0, '127.0.0.1');
    const { port } = t.server.address() as AddressInfo;
    // One socket: each request must wait for the one before it to be sent completely.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    // Settles once the answer has arrived and the whole request has been sent: a server that stops
    // reading an upload leaves the client writing it, and its next request waiting for the socket.
    const send = (path: string, body?: Buffer) =>
      new Promise<{ status: number; message: unknown }>((resolve, reject) => {
        let answer: { status: number; message: unknown } | undefined;
        let sent = false;
        const settle = () => {
          if (answer && sent) resolve(answer);
        };
        const req = http.request(
          {
            host: '127.0.0.1',
            port,
            path,
            agent,
            method: body ? 'POST' : 'GET',
            headers: body ? { 'content-type': 'multipart/form-data; boundary=b' } : {},
          },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => {
              const text = Buffer.concat(chunks).toString();
              answer = { status: res.statusCode ?? 0, message: (JSON.parse(text) as { message?: unknown }).message };
              settle();
            });
          },
        );
        // Far below the minute the next request had waited behind an unread upload.
        const timer = setTimeout(() => {
          reject(new Error(`${path}: ${answer ? 'answered, but the request body was not read' : 'no answer'} in 20 s`));
          req.destroy();
        }, 20_000);
        req.on('close', () => clearTimeout(timer));
        req.on('finish', () => {
          sent = true;
          settle();
        });
        req.on('socket', (socket) => sockets.add(socket));
        req.on('error', reject);
        req.end(body);
      });
    // Larger than what loopback socket buffers hold, so the server must read it for the client to finish sending.
    const large = Buffer.alloc(16 * 1024 * 1024, 'a');
    const part = (disposition: string, type: string, content: string | Buffer) =>
      Buffer.concat([
        Buffer.from(`--b\r\nContent-Disposition: form-data; ${disposition}\r\nContent-Type: ${type}\r\n\r\n`),
        Buffer.from(content),
        Buffer.from('\r\n'),
      ]);
    const form = (...parts: Buffer[]) => Buffer.concat([...parts, Buffer.from('--b--\r\n')]);
    const file = part('name="file"; filename="a.txt"', 'text/plain', large);
    const refused: Array<[Buffer, string]> = [
      [
        form(part('name="other"; filename="o.txt"', 'text/plain', large), file),
        'Unexpected file field "other": send the file as "file"',
      ],
      [
        form(part('name="category"', 'text/plain', 'a'), part('name="category"', 'text/plain', 'b'), file),
        'Field "category" appears more than once',
      ],
      [
        form(part('name="documentName"', 'application/json', '{}'), file),
        'Field "documentName" must be plain text, not application/json',
      ],
    ];
    const before = await counts(t);
    try {
      for (const [body, message] of refused) {
        expect(await send('/documents/ingest', body)).toEqual({ status: 400, message });
        expect(await send('/health/live')).toEqual({ status: 200, message: undefined });
      }
    } finally {
      agent.destroy();
    }
    expect(sockets.size).toBe(1);
    expect(await counts(t)).toEqual(before);
  });

  it('refuses with 413, writing nothing, a text that would make more than 100,000 chunks', async () => {
    const before = await counts(t);
    // 10.5 MB: about 105,000 chunks of 100 characters.
    const res = await request(t.server)
      .post('/documents/ingest')
      .send({ documentType: 'x', category: 'y', chunkSize: 100, chunkOverlap: 0, text: 'word '.repeat(2_100_000) })
      .expect(413);
    expect((res.body as { message: string }).message).toMatch(
      /^The text makes \d+ chunks at chunkSize 100, more than the limit of 100000 per document/,
    );
    expect(await counts(t)).toEqual(before);
  });
});

describe('POST /documents/ingest: INGEST_READ_TIMEOUT_MS and INGEST_READER_HEAP_MB', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ INGEST_READ_TIMEOUT_MS: '1500', THROTTLE_LIMIT: '0' });
  });
  afterAll(() => t.close());

  const uploadPdf = (app: TestApp, documentId: string, pdf: Buffer) =>
    upload(
      app,
      { buffer: pdf, fileName: `${documentId}.pdf`, mimeType: 'application/pdf' },
      { documentType: 'law', category: 'c', documentId },
    );

  it('answers 422 for a PDF that takes longer than INGEST_READ_TIMEOUT_MS to read, writing nothing', async () => {
    const before = await counts(t);
    // One page pdf.js reads for 3 s or more here.
    const res = await uploadPdf(t, 'slow-page', pdfOfOneLongPage(400_000));
    expect(res.status).toBe(422);
    expect((res.body as { message: string }).message).toMatch(
      /^The PDF took more than 1\.5 s to read( \(page 1 of 1\))?: split the document or send its text$/,
    );
    expect(await counts(t)).toEqual(before);
  });

  it('answers 503 with Retry-After when every reader stays busy for INGEST_READ_TIMEOUT_MS, writing nothing', async () => {
    const before = await counts(t);
    // The readers of this process, taken by reads of 3 s or more (the app runs in this process).
    const holding = Array.from({ length: READERS_AT_ONCE }, () =>
      extractText(pdfOfOneLongPage(400_000), 'pdf', { ...EXTRACTION_LIMITS, readTimeoutMs: 3000 }).catch(
        (error: unknown) => error,
      ),
    );
    const res = await uploadPdf(t, 'waits', pdfOfOneLongPage(2));
    await Promise.all(holding);
    expect([res.status, (res.body as { message: string }).message, res.headers['retry-after']]).toEqual([
      503,
      `The service is reading ${READERS_AT_ONCE} other files and none finished within 1.5 s: retry shortly`,
      '5',
    ]);
    expect(await counts(t)).toEqual(before);
  });

  it('answers 413 for a PDF that needs more heap than INGEST_READER_HEAP_MB', async () => {
    const small = await startTestApp({ INGEST_READER_HEAP_MB: '16', THROTTLE_LIMIT: '0' });
    try {
      const res = await uploadPdf(small, 'heavy', pdfOfOneLongPage(400_000));
      expect([res.status, (res.body as { message: string }).message]).toEqual([
        413,
        'The PDF needs more than 16 MB of memory to read (page 1 of 1): split the document or send its text',
      ]);
    } finally {
      await small.close();
    }
  });
});
