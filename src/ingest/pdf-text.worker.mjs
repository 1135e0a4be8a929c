// Reads the text of a PDF page after page, in a worker thread that text-extraction.ts's pdfToText
// starts per file: pdf.js parses a page's content in one go, so a hostile page would otherwise hold
// the service's event loop (every request) for as long as it takes, and its heap for all it needs.
// The worker can be stopped mid-page, and its heap is bounded (resourceLimits).
// Plain JavaScript: the worker runs outside the TypeScript build and jest's module system alike.
import { parentPort, workerData } from 'node:worker_threads';
import { getDocumentProxy } from 'unpdf';

// Its parser is loaded: a failure from here on is the file's, not the service's.
parentPort.postMessage({ kind: 'ready' });

/** @param {unknown} err */
const detail = (err) => (err instanceof Error ? err.message : String(err));

/**
 * @param {{ bytes: Uint8Array, maxPages: number }} input
 * @returns {Promise<{ kind: 'pages', pages: string[] } | { kind: 'not-a-pdf' | 'page-failed', detail: string } | { kind: 'too-many-pages', pages: number } | { kind: 'password-protected' }>}
 */
async function read({ bytes, maxPages }) {
  let pdf;
  try {
    pdf = await getDocumentProxy(bytes, { verbosity: 0 });
  } catch (err) {
    // No password is ever given: pdf.js's own words for it were only "(No password given)".
    if (err instanceof Error && err.name === 'PasswordException') return { kind: 'password-protected' };
    return { kind: 'not-a-pdf', detail: detail(err) };
  }
  try {
    if (pdf.numPages > maxPages) return { kind: 'too-many-pages', pages: pdf.numPages };
    const pages = [];
    for (let number = 1; number <= pdf.numPages; number++) {
      // Which page is being read, for the message of a read stopped by its time budget.
      parentPort.postMessage({ kind: 'page', number, of: pdf.numPages });
      const page = await pdf.getPage(number);
      const content = await page.getTextContent();
      // As unpdf's extractText joins a page's items: each string, a line break where pdf.js sees one.
      pages.push(content.items.map((item) => ('str' in item ? item.str + (item.hasEOL ? '\n' : '') : '')).join(''));
      page.cleanup();
    }
    // Joined by text-extraction.ts's joinPdfPages, which drops running headers and footers first.
    return { kind: 'pages', pages };
  } catch (err) {
    return { kind: 'page-failed', detail: detail(err) };
  } finally {
    await pdf.destroy();
  }
}

parentPort.postMessage(await read(workerData));
