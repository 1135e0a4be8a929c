// The benchmark's data set, generated deterministically from a seed: the same (seed, chunks, dims)
// gives the same documents, chunks, vectors and query vectors in every process (the bench runner
// and the floor worker each generate the rows they need, by index, instead of sending them).
//
// Shape, like the real data: documents of 20–80 chunks (chunk_index 0…n−1, total_chunks n), five
// document types, four statuses, seven categories, and the chunk metadata keys the service and the
// Python service write. Vectors are clustered, as real embeddings are (random points on the unit
// sphere are the hardest case for an HNSW graph and unlike any embedding model's output): 64 topics,
// each document near its topic, each chunk near its document; all unit length, rounded to
// 7 decimals (pgvector stores float4 anyway). Query vectors are perturbed chunk vectors, as a question lies
// near the chunks that answer it.

export const DOCUMENT_TYPES = ['law', 'decree', 'circular', 'guide', 'other'];
export const STATUSES = ['active', 'active', 'active', 'inactive', 'processing', 'expired'];
export const CATEGORIES = ['dat-dai', 'thue', 'lao-dong', 'doanh-nghiep', 'hinh-su', 'dan-su', 'hanh-chinh'];
const TOPICS = 64;
const WORDS = (
  'quy định tổ chức cá nhân trách nhiệm thực hiện quản lý sử dụng bảo vệ tài nguyên phạm vi được giao cơ quan nhà nước ' +
  'thẩm quyền hồ sơ thủ tục giấy phép đất đai thuế thu nhập lao động hợp đồng doanh nghiệp xử phạt vi phạm hành chính ' +
  'điều khoản chương mục hiệu lực thi hành ngày tháng năm ban hành sửa đổi bổ sung người nộp thuế khấu trừ kê khai quyết toán'
).split(' ');

/** mulberry32: a small, fast, well-distributed 32-bit PRNG; returns floats in [0, 1). */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A 32-bit seed from a few integers (so every chunk, document and query has its own stream). */
function mix(...parts) {
  let h = 0x811c9dc5;
  for (const p of parts) {
    h = Math.imul(h ^ (p >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
  }
  return h ^ (h >>> 15);
}

function gaussianVector(random, dims) {
  const v = new Float64Array(dims);
  for (let i = 0; i < dims; i += 2) {
    const u = 1 - random();
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * random();
    v[i] = r * Math.cos(theta);
    if (i + 1 < dims) v[i + 1] = r * Math.sin(theta);
  }
  return v;
}

function normalize(v) {
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm) || 1;
  const out = new Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.round((v[i] / norm) * 1e7) / 1e7;
  return out;
}

/** base + scale × (gaussian noise of unit expected norm), unnormalised. */
function perturb(base, random, scale) {
  const noise = gaussianVector(random, base.length);
  const k = scale / Math.sqrt(base.length);
  const out = new Float64Array(base.length);
  for (let i = 0; i < base.length; i++) out[i] = base[i] + k * noise[i];
  return out;
}

export class BenchData {
  constructor({ seed = 42, chunks, dims }) {
    this.seed = seed;
    this.chunks = chunks;
    this.dims = dims;
    const random = prng(mix(seed, 1));
    // Documents: sizes 20–80 until the chunk count is reached (the last one takes the remainder).
    this.documents = [];
    let start = 0;
    for (let d = 0; start < chunks; d++) {
      const size = Math.min(20 + Math.floor(random() * 61), chunks - start);
      this.documents.push({
        index: d,
        documentId: `bench-doc-${String(d).padStart(6, '0')}`,
        documentType: DOCUMENT_TYPES[Math.floor(random() * DOCUMENT_TYPES.length)],
        status: STATUSES[Math.floor(random() * STATUSES.length)],
        category: CATEGORIES[Math.floor(random() * CATEGORIES.length)],
        topic: Math.floor(random() * TOPICS),
        firstChunk: start,
        size,
      });
      start += size;
    }
    this.docOfChunk = new Int32Array(chunks);
    for (const doc of this.documents) this.docOfChunk.fill(doc.index, doc.firstChunk, doc.firstChunk + doc.size);
    this.topicVectors = [];
    this.docVectors = new Map();
  }

  topicVector(t) {
    this.topicVectors[t] ??= gaussianVector(prng(mix(this.seed, 2, t)), this.dims);
    return this.topicVectors[t];
  }

  documentVector(d) {
    let v = this.docVectors.get(d);
    if (!v) {
      const topic = this.topicVector(this.documents[d].topic);
      // Topic vectors have norm ≈ √dims; scale the spread to match.
      v = perturb(topic, prng(mix(this.seed, 3, d)), 0.9 * Math.sqrt(this.dims));
      this.docVectors.set(d, v);
    }
    return v;
  }

  chunkVectorRaw(i) {
    return perturb(this.documentVector(this.docOfChunk[i]), prng(mix(this.seed, 4, i)), 0.8 * Math.sqrt(this.dims));
  }

  /**
   * Chunk i as the service's POST /embeddings item (id, content, metadata, embedding).
   * `variant` prefixes the id and the document_id for the comparison copies (LangChain, COPY), so
   * they never touch the service's documents or their total_chunks.
   */
  chunk(i, variant = '') {
    const doc = this.documents[this.docOfChunk[i]];
    const chunkIndex = i - doc.firstChunk;
    const prefix = variant ? `${variant}-` : '';
    const id = `${prefix}bench-chunk-${String(i).padStart(8, '0')}`;
    const random = prng(mix(this.seed, 5, i));
    const words = [];
    let length = 0;
    const target = 500 + Math.floor(random() * 500);
    while (length < target) {
      const w = WORDS[Math.floor(random() * WORDS.length)];
      words.push(w);
      length += w.length + 1;
    }
    const content = `Điều ${chunkIndex + 1}. ${words.join(' ')}.`;
    return {
      id,
      content,
      metadata: {
        document_id: `${prefix}${doc.documentId}`,
        chunk_id: id,
        chunk_index: chunkIndex,
        total_chunks: doc.size,
        document_type: doc.documentType,
        status: doc.status,
        category: doc.category,
        source_file: `/data/bench/${doc.documentId}.pdf`,
        section_title: `Chương ${1 + Math.floor(chunkIndex / 10)}`,
        level: 2,
        hierarchy: [`Chương ${1 + Math.floor(chunkIndex / 10)}`, `Điều ${chunkIndex + 1}`],
        document_info: { document_status: doc.status },
        processing_metadata: { processing_status: 'completed', status_change_history: [] },
      },
      embedding: normalize(this.chunkVectorRaw(i)),
    };
  }

  /** Query q: a chunk's vector moved a little, unit length. */
  queryVector(q) {
    const random = prng(mix(this.seed, 6, q));
    const near = Math.floor(random() * this.chunks);
    return normalize(perturb(this.chunkVectorRaw(near), random, 0.5 * Math.sqrt(this.dims)));
  }

  /** The document as POST /documents takes it (no chunks: they come through POST /embeddings). */
  documentBody(d) {
    const doc = this.documents[d];
    return {
      documentId: doc.documentId,
      documentName: `Văn bản số ${doc.index + 1}/${2000 + (doc.index % 25)}/QH`,
      documentType: doc.documentType,
      category: doc.category,
      sourceFile: `/data/bench/${doc.documentId}.pdf`,
      status: doc.status,
    };
  }
}
