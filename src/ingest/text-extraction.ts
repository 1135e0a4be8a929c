import { isUtf8 } from 'node:buffer';
import { extname } from 'node:path';
import { Parser } from 'htmlparser2';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { normalizeText, opensUnit } from './chunker.js';
import { EXTRACTION_LIMITS, type ExtractionLimits } from './extraction-limits.js';

export { EXTRACTION_LIMITS, type ExtractionLimits } from './extraction-limits.js';

export const INGEST_FORMATS = ['txt', 'md', 'html', 'docx', 'pdf'] as const;
export type IngestFormat = (typeof INGEST_FORMATS)[number];
/** Formats that can be sent as JSON `text`. */
export const TEXT_FORMATS = ['txt', 'md', 'html'] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

const BY_EXTENSION: Record<string, IngestFormat> = {
  '.txt': 'txt',
  '.text': 'txt',
  '.md': 'md',
  '.markdown': 'md',
  '.html': 'html',
  '.htm': 'html',
  '.docx': 'docx',
  '.pdf': 'pdf',
};

const BY_MIME_TYPE: Record<string, IngestFormat> = {
  'text/plain': 'txt',
  'text/markdown': 'md',
  'text/x-markdown': 'md',
  'text/html': 'html',
  'application/xhtml+xml': 'html',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'docx',
  'application/pdf': 'pdf',
};

/** File extensions the ingestion accepts, for messages and the CLI's folder walk. */
export const SUPPORTED_EXTENSIONS: readonly string[] = Object.keys(BY_EXTENSION);

/** Why a file could not be turned into text; the service maps it to a 4xx. */
export class ExtractionError extends Error {
  constructor(
    message: string,
    /**
     * 'empty': the file holds no text; 'unreadable': it is not a valid file of its format;
     * 'too-large': it unpacks to more than its parser is given (DOCX_XML_MAX_BYTES, DOCX_PARAGRAPHS_MAX,
     * PDF_PAGES_MAX, the heap of a .docx or PDF reader); 'too-slow': reading it took longer than its
     * time budget; 'busy': READERS_AT_ONCE other files were being read for all of the time budget.
     */
    readonly reason: 'empty' | 'unreadable' | 'too-large' | 'too-slow' | 'busy',
  ) {
    super(message);
    this.name = 'ExtractionError';
  }
}

/**
 * The format of a file: by its extension first (clients often send application/octet-stream),
 * else by its MIME type; null when neither is supported.
 */
export function detectFormat(fileName: string | undefined, mimeType?: string): IngestFormat | null {
  const byExtension = fileName ? BY_EXTENSION[extname(fileName).toLowerCase()] : undefined;
  if (byExtension) return byExtension;
  const mime = mimeType?.split(';')[0].trim().toLowerCase();
  return (mime && BY_MIME_TYPE[mime]) || null;
}

/** Extracts the plain text of a file (NFC, `\n` line ends); headings become markdown `#` lines. */
export async function extractText(
  buffer: Buffer,
  format: IngestFormat,
  limits: Readonly<ExtractionLimits> = EXTRACTION_LIMITS,
): Promise<string> {
  switch (format) {
    case 'txt':
    case 'md':
    case 'html':
      return textOf(decodeText(buffer, format), format, limits.readTimeoutMs);
    case 'docx':
      return finish(await docxToText(buffer, limits), format);
    case 'pdf':
      return finish(await pdfToText(buffer, limits), format);
  }
}

/** The plain text of a text-format source that arrived as a string (JSON `text`). */
export async function textOf(
  source: string,
  format: TextFormat,
  readTimeoutMs = EXTRACTION_LIMITS.readTimeoutMs,
): Promise<string> {
  return finish(format === 'html' ? await htmlToText(source, { readTimeoutMs }) : source, format);
}

/** Each format as the messages refusing a file of it name it (no text, too slow, too large, unreadable). */
const FORMAT_WHAT: Record<IngestFormat, string> = {
  txt: 'The document',
  md: 'The markdown document',
  html: 'The HTML document',
  docx: 'The .docx document',
  pdf: 'The PDF',
};

function finish(raw: string, format: IngestFormat): string {
  // PostgreSQL text cannot hold U+0000: a .docx may spell it `&#0;`, and pdf.js may give it for a
  // glyph its font maps to no character. The rest of the text is readable: the character goes.
  // Nor can it hold half of a surrogate pair, which a .docx or HTML may spell `&#xD800;`: jsonb
  // refused it in a heading's section_title (a 400 naming no field), and the driver silently
  // changed it elsewhere. It becomes U+FFFD here, for the whole text alike.
  const text = tidy(normalizeText(raw.replaceAll('\u0000', '').toWellFormed()));
  if (text === '') {
    const hint = format === 'pdf' ? ' (a scanned PDF needs OCR, which is not supported)' : '';
    throw new ExtractionError(`${FORMAT_WHAT[format]} contains no text${hint}`, 'empty');
  }
  return text;
}

/** How far into an HTML file a `<meta charset>` is looked for (as browsers do: the first 1024 bytes). */
const HTML_CHARSET_PREFIX_BYTES = 1024;

/**
 * `<meta charset="…">` or `<meta http-equiv="Content-Type" content="text/html; charset=…">`: the
 * label. Run over at most HTML_CHARSET_PREFIX_BYTES characters, so its backtracking is bounded.
 */
const HTML_META_CHARSET = /<meta\s[^>]*?charset\s*=\s*["']?\s*([^\s"';>/]+)/i;

/**
 * The characters of a text file: UTF-16 (little or big endian) after its byte order mark; else
 * UTF-8, or for an HTML file that is not valid UTF-8, the encoding its `<meta charset>` names
 * (windows-1258, windows-1252…: Node's TextDecoder knows the WHATWG encodings). Valid UTF-8 comes
 * first: a page saved as UTF-8 often keeps the `<meta>` of its source, and legacy text is almost
 * never valid UTF-8 by chance. A legacy encoding's text may come out decomposed (windows-1258 writes
 * tone marks as combining characters): finish makes it NFC.
 */
function decodeText(buffer: Buffer, format: TextFormat): string {
  let encoding = 'utf-8';
  if (buffer[0] === 0xff && buffer[1] === 0xfe) encoding = 'utf-16le';
  else if (buffer[0] === 0xfe && buffer[1] === 0xff) encoding = 'utf-16be';
  else if (format === 'html' && !isUtf8(buffer)) {
    const label = HTML_META_CHARSET.exec(buffer.toString('latin1', 0, HTML_CHARSET_PREFIX_BYTES))?.[1];
    if (label !== undefined) {
      try {
        encoding = new TextDecoder(label).encoding;
      } catch {
        throw new ExtractionError(
          `The HTML document declares the character encoding "${label}", which is not supported: convert it to UTF-8`,
          'unreadable',
        );
      }
      // A file whose <meta> can be read byte by byte is not UTF-16 (the HTML standard reads it as UTF-8).
      if (encoding === 'utf-16le' || encoding === 'utf-16be') encoding = 'utf-8';
    }
  }
  let text: string;
  try {
    // The byte order mark, if any, is left out (ignoreBOM: false).
    text = new TextDecoder(encoding, { fatal: true, ignoreBOM: false }).decode(buffer);
  } catch {
    throw new ExtractionError(
      encoding === 'utf-8'
        ? 'The file is not valid UTF-8 text: convert it to UTF-8 (a UTF-16 file needs its byte order mark; an HTML file may name its encoding in <meta charset>)'
        : `The file is not valid ${encoding} text: convert it to UTF-8`,
      'unreadable',
    );
  }
  // PostgreSQL text cannot hold NUL; a NUL byte also means "binary file".
  if (text.includes('\u0000')) throw new ExtractionError('The file contains NUL bytes: not a text file', 'unreadable');
  return text;
}

/** Trailing spaces off, at most one blank line in a row, no leading/trailing blank lines. */
function tidy(text: string): string {
  return text
    .split('\n')
    .map(withoutTrailingBlanks)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * `line` without its trailing spaces and tabs. A loop, not `/[ \t]+$/`: that expression tries the
 * end of the line from every space of a run that something else follows, so a line of a million
 * spaces and a letter kept the event loop (every request of the service) busy for minutes.
 */
function withoutTrailingBlanks(line: string): string {
  let end = line.length;
  while (end > 0 && (line.charCodeAt(end - 1) === 0x20 || line.charCodeAt(end - 1) === 0x09)) end -= 1;
  return end === line.length ? line : line.slice(0, end);
}

const SKIPPED_ELEMENTS = new Set(['script', 'style', 'noscript', 'template', 'head', 'svg', 'iframe', 'object']);
/** Elements that end a paragraph. */
const BLOCK_ELEMENTS = new Set([
  'address',
  'article',
  'aside',
  'blockquote',
  'body',
  'caption',
  'details',
  'div',
  'dl',
  'fieldset',
  'figcaption',
  'figure',
  'footer',
  'form',
  'header',
  'hr',
  'html',
  'main',
  'nav',
  'ol',
  'p',
  'pre',
  'section',
  'summary',
  'table',
  'ul',
]);
/** Elements that end a line. */
const LINE_ELEMENTS = new Set(['li', 'dt', 'dd']);

/** A table's rows and cells: each row is one line, its cells joined by TABLE_CELL_SEPARATOR. */
const TABLE_PARTS = new Set(['tr', 'td', 'th']);
const TABLE_CELL_SEPARATOR = ' | ';

/**
 * Where htmlToText's elements end a line or a paragraph, until the text is put together: an element's
 * start and its end each ask for one, and a run of them makes one line break (one blank line if any
 * asked for a paragraph), where pushing "\n" for each made a blank line between two list items or
 * table rows. Two Unicode noncharacters (kept for a program's internal use, never text): the
 * document's own, if any, are dropped.
 */
const LINE_BREAK = '\uFDD0';
const PARAGRAPH_BREAK = '\uFDD1';
const BREAK_MARKS = /[\uFDD0\uFDD1]/g;
/** A run of break marks and the blanks between them; linear: each attempt starts at a mark. */
const BREAK_RUN = /(?:[\uFDD0\uFDD1][ \t\n]*)+/g;

/** A list htmlToText is reading. */
interface OpenList {
  ordered: boolean;
  /** The number of its next item. */
  next: number;
  /** Before its items' numbers: the number of the ordered list item it is in, and a dot ("2."). */
  prefix: string;
  /** The innermost ordered list it is in, itself excepted. */
  nearestOrdered: OpenList | null;
}

/** Deepest element nesting an HTML document may have (real documents stay under a hundred). */
export const HTML_MAX_DEPTH = 10_000;

/** What a message refusing a file too large or too slow for a reader advises. */
const SPLIT_ADVICE = ': split the document or send its text';

/** How long htmlToText may take, and how its refusals (too slow, nested too deep) name the document. */
interface HtmlReadBudget {
  /** The budget (default EXTRACTION_LIMITS.readTimeoutMs), counted from startedAt. */
  readTimeoutMs?: number;
  /** When the document's reading began (performance.now()); default: when htmlToText is called. */
  startedAt?: number;
  /** The document in the messages ("The HTML document"). */
  what?: string;
  /** What the messages end with, after "took more than N s to read" or "nests elements more than N deep". */
  advice?: string;
  /**
   * Word's numbering (.docx): a numbered list that only paragraphs interrupt goes on counting.
   * mammoth writes a Word list broken by an unnumbered paragraph (a clause's second paragraph) as
   * two <ol>, and counting the second from 1 made two different clauses "1.". In an HTML page two
   * lists are two lists.
   */
  continueNumbering?: boolean;
}

/** Characters of HTML parsed between two turns of the event loop. */
const HTML_SLICE_CHARS = 64 * 1024;

/**
 * Visible text of an HTML document: block elements become paragraphs, list items lines, table rows
 * lines of their cells (`a | b | c`, so that a chunk does not part a row from its cells), and h1–h6
 * markdown headings, so the chunker sees the same structure as in a markdown file.
 *
 * Streamed through htmlparser2's parser, which builds no tree: node-html-parser's clean-up of
 * unclosed elements was quadratic (a 0.64 MB cascade of `<p><font>…</p>` took 19.5 s, held the
 * event loop and with it every request of the service; htmlparser2 17 ms). The parser's own
 * stack still costs a step per open element for each tag, so nesting beyond HTML_MAX_DEPTH is
 * refused (422), and the document is parsed in slices with a turn of the event loop between
 * them, within the time budget (EXTRACTION_LIMITS): a hostile document of unmatched end tags slows only its own
 * request.
 */
export async function htmlToText(html: string, budget: HtmlReadBudget = {}): Promise<string> {
  const {
    readTimeoutMs = EXTRACTION_LIMITS.readTimeoutMs,
    startedAt = performance.now(),
    what = FORMAT_WHAT.html,
    advice = ' (malformed markup?): convert it to text first',
  } = budget;
  const out: string[] = [];
  let depth = 0;
  // Open elements inside a skipped one (script, style…), counting it: its text is not read.
  let skipped = 0;
  // A heading or <pre> being read: its text is collected until its own end tag.
  let heading: { level: number; parts: string[]; open: number } | null = null;
  let pre: { parts: string[]; open: number } | null = null;
  // The table row being read, opened at element depth `depth`; `cell`, the text of its cell being
  // read (opened at `cellDepth`; 0 between cells, where stray text makes a cell of its own). Only the
  // outermost row is one: a table inside a cell is that cell's text, so each text is copied once
  // (collecting each nested row's line into its parent's took time of the text times the nesting).
  let row: { depth: number; cells: string[]; cell: string[] | null; cellDepth: number } | null = null;
  // Where text goes: the row's cell being read, else the document.
  const target = (): string[] => (row === null ? out : (row.cell ??= []));
  const endCell = (): void => {
    if (row === null) return;
    if (row.cell !== null)
      row.cells.push(
        row.cell
          .join('')
          .replace(/[\s\uFDD0\uFDD1]+/g, ' ')
          .trim(),
      );
    [row.cell, row.cellDepth] = [null, 0];
  };
  const endRow = (): void => {
    endCell();
    const line = row!.cells.filter((cell) => cell !== '').join(TABLE_CELL_SEPARATOR);
    row = null;
    if (line !== '') out.push(LINE_BREAK, line, LINE_BREAK);
  };
  // The lists being read, innermost last. An ordered list's items are numbered from its `start`
  // ("1. ", "2. ", as Word's automatic numbering shows them, which mammoth leaves out), an ordered
  // list's inside an item of another after that item's number ("2.1. ": the chunker takes a "1." line
  // inside an article for a clause, which a nested item is not); an unordered list's items "- ".
  const lists: OpenList[] = [];
  // Where the last top-level numbered list stopped, while only paragraphs follow it (continueNumbering).
  let resumable: number | null = null;
  // The marker of the list item being read, until its first text: breaks before it (an item's <p>)
  // are left out, so that the marker and the text stay on one line.
  let marker: string | null = null;
  const integer = (value: string | undefined): number | null =>
    value !== undefined && /^\s*-?\d{1,15}\s*$/.test(value) ? Number(value) : null;
  const openList = (tag: string, start: string | undefined): void => {
    const top = lists.at(-1);
    const nearestOrdered = top === undefined ? null : top.ordered ? top : top.nearestOrdered;
    const prefix = tag === 'ol' && nearestOrdered !== null ? `${nearestOrdered.next - 1}.` : '';
    const resumed = tag === 'ol' && top === undefined && budget.continueNumbering === true ? resumable : null;
    lists.push({ ordered: tag === 'ol', next: integer(start) ?? resumed ?? 1, prefix, nearestOrdered });
    if (top === undefined) resumable = null;
  };
  const closeList = (): void => {
    const list = lists.pop();
    if (list !== undefined && lists.length === 0) resumable = list.ordered ? list.next : null;
  };
  const markerOf = (value: string | undefined): string => {
    const list = lists.at(-1);
    if (list === undefined || !list.ordered) return '- ';
    const number = integer(value) ?? list.next;
    list.next = number + 1;
    return `${list.prefix}${number}. `;
  };
  const breakOf = (tag: string): string | null =>
    (tag === 'ol' || tag === 'ul') && lists.length > 0
      ? LINE_BREAK // a list inside a list item
      : BLOCK_ELEMENTS.has(tag)
        ? PARAGRAPH_BREAK
        : LINE_ELEMENTS.has(tag)
          ? LINE_BREAK
          : null;
  const pushBreak = (tag: string): void => {
    const mark = breakOf(tag);
    if (mark !== null && marker === null) target().push(mark);
  };
  const parser = new Parser(
    {
      onopentag(tag, attributes) {
        depth += 1;
        if (depth > HTML_MAX_DEPTH) {
          throw new ExtractionError(`${what} nests elements more than ${HTML_MAX_DEPTH} deep${advice}`, 'unreadable');
        }
        if (skipped > 0 || SKIPPED_ELEMENTS.has(tag)) {
          skipped += 1;
          return;
        }
        if (heading !== null) {
          heading.open += 1;
          // A line break stays one (the words either side were glued); a block inside, a space.
          if (tag === 'br') heading.parts.push('\n');
          else if (breakOf(tag) !== null || TABLE_PARTS.has(tag)) heading.parts.push(' ');
          return;
        }
        if (pre !== null) {
          pre.open += 1;
          if (tag === 'br') pre.parts.push('\n');
          return;
        }
        const level = /^h([1-6])$/.exec(tag);
        // A heading, a table or code between two numbered lists: the second starts anew.
        if (level || tag === 'pre' || TABLE_PARTS.has(tag)) resumable = null;
        // A list item that opens with a heading or code: its marker goes before them, not onto the
        // next text after them (the next item's, when the item holds nothing else).
        if ((level || tag === 'pre') && marker !== null) {
          target().push(marker);
          marker = null;
        }
        if (level) heading = { level: Number(level[1]), parts: [], open: 1 };
        else if (tag === 'pre') pre = { parts: [], open: 1 };
        else if (TABLE_PARTS.has(tag)) {
          if (row !== null && row.cellDepth > 0) {
            target().push(' '); // a table inside a cell
          } else if (tag === 'tr') {
            if (row !== null) endRow();
            row = { depth, cells: [], cell: null, cellDepth: 0 };
          } else {
            // A cell outside a row is a row of its own.
            row ??= { depth, cells: [], cell: null, cellDepth: 0 };
            endCell();
            [row.cell, row.cellDepth] = [[], depth];
          }
        } else if (tag === 'br') target().push('\n');
        else {
          pushBreak(tag);
          if (tag === 'ol' || tag === 'ul') openList(tag, attributes.start);
          else if (tag === 'li') marker = markerOf(attributes.value);
        }
      },
      ontext(raw) {
        if (skipped > 0) return;
        const text = raw.replace(BREAK_MARKS, '');
        if (heading !== null) heading.parts.push(text.replace(/\s+/g, ' '));
        else if (pre !== null) pre.parts.push(text);
        else {
          const words = text.replace(/\s+/g, ' ');
          if (marker !== null && words.trim() !== '') {
            target().push(marker);
            marker = null;
          }
          target().push(words);
        }
      },
      onclosetag(tag) {
        // The depth at which the element opened.
        const at = depth;
        depth -= 1;
        if (skipped > 0) {
          skipped -= 1;
          return;
        }
        if (heading !== null) {
          heading.open -= 1;
          if (heading.open > 0) return;
          // A line break ends the heading's line; what follows it is the next line, as in a text file
          // ("Chương I" then "QUY ĐỊNH CHUNG": the chunker takes a capital line after a bare legal
          // label for its title, "Chương I. QUY ĐỊNH CHUNG").
          const lines = heading.parts
            .join('')
            .split('\n')
            .map((line) => line.replace(/ {2,}/g, ' ').trim())
            .filter((line) => line !== '');
          // In a table's cell, its text only: the row stays one line.
          if (row !== null) target().push(` ${lines.join(' ')} `);
          else if (lines.length > 0) {
            out.push(PARAGRAPH_BREAK, `${'#'.repeat(heading.level)} ${lines.join('\n')}`, PARAGRAPH_BREAK);
          }
          heading = null;
          return;
        }
        if (pre !== null) {
          pre.open -= 1;
          if (pre.open > 0) return;
          target().push(PARAGRAPH_BREAK, pre.parts.join(''), PARAGRAPH_BREAK);
          pre = null;
          return;
        }
        if (row !== null && at === row.cellDepth) endCell();
        if (row !== null && at === row.depth) endRow();
        else {
          if (tag === 'li') marker = null;
          if (tag === 'ol' || tag === 'ul') closeList();
          pushBreak(tag);
        }
      },
    },
    { decodeEntities: true },
  );
  for (let at = 0; at < html.length; at += HTML_SLICE_CHARS) {
    if (at > 0) {
      // Other requests run between two slices.
      await new Promise((resolve) => setImmediate(resolve));
      if (performance.now() - startedAt > readTimeoutMs) {
        throw new ExtractionError(`${what} took more than ${readTimeoutMs / 1000} s to read${advice}`, 'too-slow');
      }
    }
    parser.write(html.slice(at, at + HTML_SLICE_CHARS));
  }
  parser.end();
  // Spaces around the newlines come from the source's indentation.
  return out
    .join('')
    .replace(BREAK_RUN, (run) => (run.includes(PARAGRAPH_BREAK) ? '\n\n' : '\n'))
    .split('\n')
    .map((line) => line.trim())
    .join('\n');
}

/**
 * What a .docx may unpack to before mammoth reads it. mammoth builds a document tree of the whole
 * file, in the request's thread: a 40 KB .docx whose document.xml held 400,000 empty paragraphs
 * (13.6 MB) took 58 s and 2.5 GB, and under a 1 GB heap killed the process; 1,000,000 empty runs
 * (6 MB) took 10 s and 760 MB. INGEST_MAX_FILE_BYTES bounds only the compressed file. The bounds
 * hold for the XML parts together (docxXmlParts): every part named .xml or .rels, and every part
 * mammoth reads whatever its name. A long real document (1,000 pages) stays well inside them.
 */
export const DOCX_XML_MAX_BYTES = 16 * 1024 * 1024;
export const DOCX_PARAGRAPHS_MAX = 50_000;
export const DOCX_ELEMENTS_MAX = 500_000;

/**
 * A paragraph start under any namespace prefix, or none (mammoth maps elements by namespace URI,
 * not by prefix: `<p>` under a default namespace, `<x:p>` or `<é:p>` are paragraphs too): `p`
 * followed by anything but an ASCII name character (`<w:p>`, `<w:p/>`, `<w:p\n…>`, and what
 * xmldom also takes for a blank, such as U+0080; not `<w:pPr>`). The text is latin1, one character
 * per byte, so a prefix of UTF-8 letters is a run of bytes above 0x7f; only XML's own blanks end it
 * (`\s` would also stop at 0xa0, a byte of à). Linear: each attempt starts at a `<`, and the prefix
 * cannot run past one.
 */
const DOCX_PARAGRAPH = /<(?:[^ \t\r\n<>/:=!?]+:)?p(?![A-Za-z0-9_.:-])/g;
/** Any element start (not `</`, `<?`, `<!`): in XML a `<` outside markup is escaped. */
const DOCX_ELEMENT = /<[^ \t\r\n<>/!?]/g;

function countMatches(pattern: RegExp, text: string): number {
  pattern.lastIndex = 0;
  let count = 0;
  while (pattern.exec(text) !== null) count += 1;
  return count;
}

/**
 * One zip entry unpacked up to `maxBytes`: null for a corrupt entry (mammoth reports it),
 * 'too-large' past the bound, where unpacking stops: a bomb is not unpacked whole.
 */
function unpackPart(part: import('jszip').JSZipObject, maxBytes: number): Promise<Buffer | null | 'too-large'> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    // JSZip's stream (readable-stream 2) is not async-iterable: read by events.
    const stream = part.nodeStream('nodebuffer');
    stream.on('data', (data: Buffer) => {
      bytes += data.length;
      if (bytes <= maxBytes) return void chunks.push(data);
      stream.pause();
      resolve('too-large');
    });
    stream.on('error', () => resolve(null));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/**
 * The XML parts of a .docx whose size, paragraphs and elements are bounded, each passed to `read`:
 * every part named .xml or .rels (the relationships first, so mammoth's own resolution below reads
 * only bounded parts), then the parts mammoth reads whatever their names and contents, found by
 * mammoth's own code (its docx-reader's findPartPaths: the main part `_rels/.rels` names, its
 * comments, endnotes, footnotes, numbering and styles, each with its relationships), reading
 * through `read`. Replicating that resolution missed parts (relationships in comments, attribute
 * values holding `>`, XML whitespace): mammoth's answer is the one that counts. Images and other
 * binary parts are left out: mammoth is told not to read images, nor an embedded style map.
 */
async function docxXmlParts(zip: import('jszip'), read: (path: string) => Promise<Buffer | null>): Promise<void> {
  const named = Object.values(zip.files).filter((part) => !part.dir && /\.(?:xml|rels)$/i.test(part.name));
  for (const part of named.sort((a, b) => Number(!a.name.endsWith('.rels')) - Number(!b.name.endsWith('.rels')))) {
    await read(part.name);
  }
  // Internal to mammoth, hence its exact version in package.json: its part resolution, over this zip and `read`.
  const [{ _findPartPaths: findPartPaths }, { joinPath, splitPath }] = await Promise.all([
    import('mammoth/lib/docx/docx-reader.js'),
    import('mammoth/lib/zipfile.js'),
  ]);
  let paths: Awaited<ReturnType<typeof findPartPaths>>;
  try {
    paths = await findPartPaths({
      exists: (path) => zip.file(path) !== null,
      read: async (path, encoding) => {
        const xml = (await read(path)) ?? Buffer.alloc(0);
        return encoding ? new TextDecoder(encoding).decode(xml) : new Uint8Array(xml);
      },
    });
  } catch (err) {
    // No main part, or relationships that are not XML: the file's fault, as mammoth would say it.
    if (err instanceof ExtractionError) throw err;
    throw notReadableDocx(errorText(err));
  }
  for (const path of Object.values(paths)) {
    await read(path);
    const { dirname, basename } = splitPath(path);
    await read(joinPath(dirname, '_rels', `${basename}.rels`));
  }
}

/** Refuses a .docx whose XML parts unpack beyond DOCX_XML_MAX_BYTES, DOCX_PARAGRAPHS_MAX paragraphs or DOCX_ELEMENTS_MAX elements. */
async function assertDocxWithinBounds(buffer: Buffer): Promise<void> {
  const { default: JSZip } = await import('jszip');
  let zip: import('jszip');
  try {
    zip = await JSZip.loadAsync(buffer);
  } catch {
    return; // not a zip: mammoth says so in its own words
  }
  const tooLarge = (what: string): ExtractionError =>
    new ExtractionError(`${FORMAT_WHAT.docx} ${what}${SPLIT_ADVICE}`, 'too-large');
  let bytes = 0;
  let paragraphs = 0;
  let elements = 0;
  const seen = new Map<string, Buffer | null>();
  await docxXmlParts(zip, async (path) => {
    if (seen.has(path)) return seen.get(path)!;
    const part = zip.file(path);
    const xml = part ? await unpackPart(part, DOCX_XML_MAX_BYTES - bytes) : null;
    if (xml === 'too-large') throw tooLarge(`unpacks to more than ${DOCX_XML_MAX_BYTES} bytes of XML`);
    seen.set(path, xml);
    if (xml === null) return null;
    bytes += xml.length;
    // latin1: one character per byte, so a count is linear and a name's UTF-8 bytes stay in one run.
    const text = xml.toString('latin1');
    paragraphs += countMatches(DOCX_PARAGRAPH, text);
    elements += countMatches(DOCX_ELEMENT, text);
    return xml;
  });
  if (paragraphs > DOCX_PARAGRAPHS_MAX) {
    throw tooLarge(`has ${paragraphs} paragraphs, more than the ${DOCX_PARAGRAPHS_MAX} read from one file`);
  }
  if (elements > DOCX_ELEMENTS_MAX) {
    throw tooLarge(`has ${elements} XML elements, more than the ${DOCX_ELEMENTS_MAX} read from one file`);
  }
}

/**
 * A .docx that mammoth cannot read, its reason on one line: xmldom's messages hold a tab, a newline
 * and where it stopped (`@#[line:undefined,col:undefined]`, often without numbers), which broke the
 * CLI's one line per failed file.
 */
function notReadableDocx(detail: string): ExtractionError {
  const reason = detail
    .replace(/@[^#\s]*#\[line:([^,\]]*),col:([^\]]*)\]/g, (_, line: string, column: string) =>
      /^\d+$/.test(line) && /^\d+$/.test(column) ? ` (line ${line}, column ${column})` : '',
    )
    .replace(/\s+/g, ' ')
    .trim();
  return new ExtractionError(`The file is not a readable .docx document (${reason})`, 'unreadable');
}

/** What the .docx converter's worker (docx-html.worker.mjs) posts. */
type DocxConverterMessage = { kind: 'html'; html: string } | { kind: 'not-a-docx'; detail: string };

const DOCX_CONVERTER = new URL('./docx-html.worker.mjs', import.meta.url);

/**
 * The text of a .docx: its bounds checked here, then mammoth's HTML (in a worker thread of its own,
 * docx-html.worker.mjs) read as HTML. mammoth is given only files within the bounds, but within them
 * it may still take seconds and hundreds of MB.
 */
async function docxToText(buffer: Buffer, limits: Readonly<ExtractionLimits>): Promise<string> {
  await assertDocxWithinBounds(buffer);
  const startedAt = performance.now();
  const html = await readInWorker(
    {
      script: DOCX_CONVERTER,
      buffer,
      workerData: {},
      what: FORMAT_WHAT.docx,
      interpret: (message: DocxConverterMessage) => {
        switch (message.kind) {
          case 'html':
            return { text: message.html };
          case 'not-a-docx':
            return notReadableDocx(message.detail);
        }
      },
    },
    limits,
  );
  // Its HTML is read within what is left of the same budget, and a stop names the .docx.
  return await htmlToText(html, {
    readTimeoutMs: limits.readTimeoutMs,
    startedAt,
    what: FORMAT_WHAT.docx,
    advice: SPLIT_ADVICE,
    continueNumbering: true,
  });
}

/**
 * Readers (.docx and PDF workers) that run at once in this process, one per CPU: each may use up to
 * readerHeapMb of heap beside the service's own, so uploads at once would otherwise add 512 MB each.
 * A file waits for a reader at most its time budget, then is refused as busy (503).
 */
export const READERS_AT_ONCE = Math.max(1, availableParallelism());
let readersRunning = 0;
const waitingForReader: Array<() => void> = [];

/** Takes a reader's slot, waiting at most `waitMs` for one; false when none came free in time. */
async function takeReaderSlot(waitMs: number): Promise<boolean> {
  if (readersRunning < READERS_AT_ONCE) {
    readersRunning += 1;
    return true;
  }
  return new Promise<boolean>((resolve) => {
    // Called with the slot of a reader that ended (readersRunning stays as it is).
    const handOver = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      waitingForReader.splice(waitingForReader.indexOf(handOver), 1);
      resolve(false);
    }, waitMs);
    waitingForReader.push(handOver);
  });
}

function releaseReaderSlot(): void {
  const next = waitingForReader.shift();
  if (next) next();
  else readersRunning -= 1;
}

/** What a reader's worker answers, as its caller reads it: the text, where it is, or its failure. */
type ReaderOutcome = { text: string } | { at: string } | ExtractionError;

/** One file for a reader's worker. */
interface ReaderJob<M> {
  /** The worker's script. */
  script: URL;
  /** The file; a copy goes to the worker, the memory moving with it. */
  buffer: Buffer;
  /** What the worker is given beside the file's bytes. */
  workerData: Record<string, unknown>;
  /** The file in the messages of a stopped read ("The PDF"). */
  what: string;
  /** The text, where the reader is, or its failure, from each message of the worker. */
  interpret: (message: M) => ReaderOutcome;
}

/**
 * Runs a reader script in a worker thread of its own for one file, and answers the text its
 * messages give. The worker is stopped once limits.readTimeoutMs have passed, whatever it is doing
 * (422), and its heap is bounded by limits.readerHeapMb (413). Starting a worker and loading its
 * parser costs about 0.3 s per file. At most READERS_AT_ONCE run at once.
 */
export async function readInWorker<M>(job: ReaderJob<M>, limits: Readonly<ExtractionLimits>): Promise<string> {
  const { readTimeoutMs } = limits;
  if (!(await takeReaderSlot(readTimeoutMs))) {
    throw new ExtractionError(
      `The service is reading ${READERS_AT_ONCE} other files and none finished within ${readTimeoutMs / 1000} s: retry shortly`,
      'busy',
    );
  }
  try {
    return await readInOwnWorker(job, limits);
  } finally {
    releaseReaderSlot();
  }
}

/** readInWorker once its reader's slot is taken. */
async function readInOwnWorker<M>(
  { script, buffer, workerData, what, interpret }: ReaderJob<M>,
  limits: Readonly<ExtractionLimits>,
): Promise<string> {
  const { readTimeoutMs, readerHeapMb } = limits;
  const bytes = new Uint8Array(buffer);
  const reader = new Worker(script, {
    workerData: { ...workerData, bytes },
    transferList: [bytes.buffer],
    resourceLimits: { maxOldGenerationSizeMb: readerHeapMb },
  });
  // Where the reader is (" (page 3 of 10)"), for the messages of a stopped read.
  let at = '';
  // Whether its parser is loaded (the worker's first message).
  let ready = false;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await new Promise<string>((resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new ExtractionError(
            `${what} took more than ${readTimeoutMs / 1000} s to read${at}${SPLIT_ADVICE}`,
            'too-slow',
          ),
        );
      }, readTimeoutMs);
      reader.on('message', (message: M | { kind: 'ready' }) => {
        if ((message as { kind: string }).kind === 'ready') {
          ready = true;
          return;
        }
        const outcome = interpret(message as M);
        if (outcome instanceof ExtractionError) reject(outcome);
        else if ('text' in outcome) resolve(outcome.text);
        else at = outcome.at;
      });
      reader.on('error', (err: (Error & { code?: string }) | null) => {
        // Before its parser is loaded, a failure is the service's (a missing module, no memory to
        // start a thread): a 500, its details in the log, not a 422 blaming the file.
        if (!ready) return reject(new Error(`${what} reader could not start: ${errorText(err)}`));
        reject(
          err?.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? new ExtractionError(
                `${what} needs more than ${readerHeapMb} MB of memory to read${at}${SPLIT_ADVICE}`,
                'too-large',
              )
            : new ExtractionError(`${what} could not be read (${errorText(err)})`, 'unreadable'),
        );
      });
      // After an answer or an error this changes nothing: a promise settles once.
      reader.on('exit', (code) => {
        reject(
          ready
            ? new ExtractionError(`${what} could not be read (its reader stopped with code ${code})`, 'unreadable')
            : new Error(`${what} reader stopped with code ${code} before it started`),
        );
      });
    });
  } finally {
    clearTimeout(timer);
    await reader.terminate();
  }
}

/**
 * Pages read from one PDF. unpdf's extractText asks pdf.js for every page at once (Promise.all): a
 * PDF of many thousand small pages held them all in memory together. They are read one after the
 * other; a 25 MB file of tiny pages is refused by count first.
 */
export const PDF_PAGES_MAX = 10_000;

/** What the PDF reader's worker (pdf-text.worker.mjs) posts. */
type PdfReaderMessage =
  | { kind: 'page'; number: number; of: number }
  | { kind: 'pages'; pages: string[] }
  | { kind: 'not-a-pdf' | 'page-failed'; detail: string }
  | { kind: 'too-many-pages'; pages: number }
  | { kind: 'password-protected' };

const PDF_READER = new URL('./pdf-text.worker.mjs', import.meta.url);

/**
 * The text of a PDF, read by pdf.js in a worker thread of its own (pdf-text.worker.mjs). pdf.js
 * parses a page's content in one go: on the request's thread, one hostile page held the event loop,
 * and with it every request of the service, for as long as it took (between pages only could the
 * time budget be checked), and its heap for all it needed. Its pages are joined by joinPdfPages.
 */
async function pdfToText(buffer: Buffer, limits: Readonly<ExtractionLimits>): Promise<string> {
  return readInWorker(
    {
      script: PDF_READER,
      buffer,
      workerData: { maxPages: PDF_PAGES_MAX },
      what: FORMAT_WHAT.pdf,
      interpret: (message: PdfReaderMessage) => {
        switch (message.kind) {
          case 'page':
            return { at: ` (page ${message.number} of ${message.of})` };
          case 'pages':
            return { text: joinPdfPages(message.pages) };
          case 'not-a-pdf':
            return new ExtractionError(`The file is not a readable PDF document (${message.detail})`, 'unreadable');
          case 'password-protected':
            // Its text is encrypted with a password to open it (one that only restricts printing
            // or copying opens without it, and is read).
            return new ExtractionError(
              'The PDF is password-protected: upload a copy saved without the password',
              'unreadable',
            );
          case 'page-failed':
            return new ExtractionError(`The PDF's text could not be read (${message.detail})`, 'unreadable');
          case 'too-many-pages':
            return new ExtractionError(
              `The PDF has ${message.pages} pages, more than the ${PDF_PAGES_MAX} read from one file${SPLIT_ADVICE}`,
              'too-large',
            );
        }
      },
    },
    limits,
  );
}

/**
 * Pages a PDF needs for its running headers to be looked for; fewer are joined as they are: a line
 * on both of two pages is too little to call it a running header.
 */
const RUNNING_LINES_MIN_PAGES = 3;
/** Non-blank lines at the top and at the bottom of a page where running headers, footers and page numbers are looked for. */
const PAGE_EDGE_LINES = 2;
/**
 * Share of the pages at whose edge (top or bottom) a line must be, digits aside, to be a running
 * header or footer: not all of them, as a first page often has its own masthead, and a page may be
 * blank, a scanned image, or a chapter's title page. Never fewer pages than RUNNING_LINES_MIN_PAGES.
 */
const RUNNING_LINE_SHARE = 0.6;

/**
 * A line's text as running headers are compared: blanks collapsed, each run of digits one "0"
 * ("Trang 4/6" as "Trang 5/6", "4" as "5"), and a page number set apart at either end left out (it
 * changes sides on facing pages: "4 CÔNG BÁO…", "CÔNG BÁO… 5").
 */
function runningLineKey(line: string): string {
  return line
    .trim()
    .replace(/\s+/g, ' ')
    .replace(/\d+/g, '0')
    .replace(/^0 (?=\S)|(?<=\S) 0$/g, '');
}

/** The indices of a page's first and last PAGE_EDGE_LINES non-blank lines. */
function pageEdges(lines: readonly string[]): { top: number[]; bottom: number[] } {
  const filled = lines.flatMap((line, i) => (line.trim() === '' ? [] : [i]));
  return { top: filled.slice(0, PAGE_EDGE_LINES), bottom: filled.slice(-PAGE_EDGE_LINES) };
}

/** The end of a sentence: . : ; ! ? or …, then any closing quotes or brackets. */
const SENTENCE_END = /[.:;!?…]["'”’»)\]]*$/u;

/**
 * A PDF's text from its pages' text. In a PDF of RUNNING_LINES_MIN_PAGES pages or more, running
 * headers, footers and page numbers are dropped: a line among the first or last PAGE_EDGE_LINES
 * non-blank lines of its page whose text, digits aside, is at that edge of RUNNING_LINE_SHARE of the
 * pages (at least RUNNING_LINES_MIN_PAGES). Kept, they landed in the middle of articles ("…theo quy
 * định\nCÔNG BÁO/Số 45 + 46…\nTrang 4/6\n\nđó, bảo đảm…"). A line that opens a unit (`Điều 5`
 * heading every page) is kept, and so is one repeated anywhere but at a page's edge. Pages are
 * paragraphs, except that a page whose last line ends no sentence, followed by one whose first line
 * starts in lower case, goes on with a line break: the sentence runs on, as over a line break within
 * a page, and a line it opens (`a) …`) still opens it. A PDF of fewer pages is joined as it was.
 */
export function joinPdfPages(pages: readonly string[]): string {
  if (pages.length < RUNNING_LINES_MIN_PAGES) return pages.join('\n\n');
  const lines = pages.map((page) => page.split('\n'));
  const edges = lines.map(pageEdges);
  const pagesAt = { top: new Map<string, number>(), bottom: new Map<string, number>() };
  lines.forEach((page, p) => {
    for (const edge of ['top', 'bottom'] as const) {
      for (const key of new Set(edges[p][edge].map((i) => runningLineKey(page[i])))) {
        pagesAt[edge].set(key, (pagesAt[edge].get(key) ?? 0) + 1);
      }
    }
  });
  const needed = Math.max(RUNNING_LINES_MIN_PAGES, Math.ceil(pages.length * RUNNING_LINE_SHARE));
  const kept = lines.map((page, p) => {
    const dropped = new Set<number>();
    for (const edge of ['top', 'bottom'] as const) {
      for (const i of edges[p][edge]) {
        if (pagesAt[edge].get(runningLineKey(page[i]))! >= needed && !opensUnit(page[i])) dropped.add(i);
      }
    }
    // Without the blank lines around it, which the join puts back as it sees fit (tidy would squash them).
    const filled = page.flatMap((line, i) => (line.trim() === '' || dropped.has(i) ? [] : [i]));
    if (filled.length === 0) return '';
    return page
      .slice(filled[0], filled[filled.length - 1] + 1)
      .filter((_, i) => !dropped.has(i + filled[0]))
      .join('\n');
  });
  let text = '';
  let last = '';
  for (const page of kept) {
    if (page === '') continue;
    if (text !== '') {
      const runsOn = !SENTENCE_END.test(last.trimEnd()) && /^\s*\p{Ll}/u.test(page);
      text += runsOn ? '\n' : '\n\n';
    }
    text += page;
    last = page.slice(page.lastIndexOf('\n') + 1);
  }
  // Every line was at an edge and alike ("Page 1", "Page 2"…, one line a page): none was a header to
  // the rest, and the text is not taken away.
  return text === '' ? pages.join('\n\n') : text;
}

function errorText(err: unknown): string {
  // An error a worker thread sends is not an `instanceof Error` of this thread's realm.
  const message = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof message === 'string' ? message : String(err);
}
