// Converts a .docx to HTML with mammoth, in a worker thread that text-extraction.ts's docxToText
// starts per file once the file passed its bounds check: within those bounds mammoth may still take
// seconds and hundreds of MB, which on the service's thread held every other request meanwhile.
// The worker can be stopped at the time budget, and its heap is bounded (resourceLimits).
// Plain JavaScript: the worker runs outside the TypeScript build and jest's module system alike.
import { parentPort, workerData } from 'node:worker_threads';
import mammoth from 'mammoth';

// Its parser is loaded: a failure from here on is the file's, not the service's.
parentPort.postMessage({ kind: 'ready' });

/** @param {unknown} err */
const detail = (err) => (err instanceof Error ? err.message : String(err));

/**
 * @param {{ bytes: Uint8Array }} input
 * @returns {Promise<{ kind: 'html', html: string } | { kind: 'not-a-docx', detail: string }>}
 */
async function convert({ bytes }) {
  try {
    // Through HTML rather than extractRawText: headings (Heading 1–6 styles) survive as h1–h6.
    const { value } = await mammoth.convertToHtml(
      { buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) },
      {
        // Images are not read: the default converter unpacks each one whole (a small zip entry can
        // inflate to hundreds of MB) to inline it as a data URI that the text drops anyway.
        convertImage: mammoth.images.imgElement(() => Promise.resolve({ src: '' })),
        // A style map the file carries (mammoth/style-map, neither XML nor bounded) is not read.
        includeEmbeddedStyleMap: false,
      },
    );
    return { kind: 'html', html: value };
  } catch (err) {
    return { kind: 'not-a-docx', detail: detail(err) };
  }
}

parentPort.postMessage(await convert(workerData));
