import { sliceWholeCharacters } from '../common/text.js';

/**
 * Structure-aware text chunking, pure (no I/O). A text is first parsed into a tree of structural
 * units — markdown headings and the units of Vietnamese legal documents (Phần, Chương, Mục, Điều,
 * Khoản / "1.", điểm "a)") — and each unit that fits in `chunkSize` becomes one chunk. A unit that
 * does not fit is split into its own text and its children; small clauses and points of one unit are
 * packed together, and text that is still too long is split on paragraphs, then lines, sentences,
 * words and finally characters, with `chunkOverlap` characters repeated between consecutive pieces.
 */

/**
 * The version of how text is extracted and chunked, part of every ingest's content hash. A change
 * that makes other chunks of the same text (code fences, headings carried into their text, table
 * rows…) bumps it, so that the next ingest of an unchanged file re-chunks it instead of keeping the
 * old chunks as "unchanged". 1: until 2026-12-07; 2: fences, headings never alone, tables, lists.
 */
export const CHUNKING_VERSION = 2;

export const CHUNK_LEVELS = [
  'part',
  'chapter',
  'section',
  'article',
  'clause',
  'point',
  'heading1',
  'heading2',
  'heading3',
  'heading4',
  'heading5',
  'heading6',
  'paragraph',
] as const;
export type ChunkLevel = (typeof CHUNK_LEVELS)[number];

export interface ChunkOptions {
  /** Largest chunk, in characters (UTF-16 code units; one per letter for NFC Vietnamese). */
  chunkSize: number;
  /** Characters repeated from the end of a piece at the start of the next piece of the same unit. */
  chunkOverlap: number;
}

export interface ChunkMetadata {
  /** Labels of the enclosing units, outermost first: "Chương I > Mục 1 > Điều 3"; '' outside any unit. */
  hierarchy: string;
  /** Kind of the innermost unit the chunk belongs to; 'paragraph' outside any unit. */
  level: ChunkLevel;
  /** Heading line of the innermost titled unit ("Điều 3. Giải thích từ ngữ"), when there is one. */
  section_title?: string;
}

export interface TextChunk {
  content: string;
  metadata: ChunkMetadata;
}

/** A heading line recognised by detectHeading. */
interface Heading {
  level: Exclude<ChunkLevel, 'paragraph'>;
  /** Nesting depth: a heading closes every open unit of the same or a larger rank. */
  rank: number;
  /** Short name used in `hierarchy`. */
  label: string;
  /** The heading line without markdown markers; null for clauses and points (their line is body text). */
  title: string | null;
  /** A bare label ("Chương I") whose title usually follows on the next line in capitals. */
  bare: boolean;
}

interface Unit {
  heading: Heading | null;
  title: string | null;
  /** The unit's own lines: its heading line and the text before its first child. */
  lines: string[];
  /** How many of `lines` are heading: the heading line, plus the capital title line of a bare label. */
  headingLines: number;
  children: Unit[];
}

const RANK: Record<Exclude<ChunkLevel, 'paragraph'>, number> = {
  part: 1,
  chapter: 2,
  section: 3,
  article: 4,
  clause: 5,
  point: 6,
  heading1: 1,
  heading2: 2,
  heading3: 3,
  heading4: 4,
  heading5: 5,
  heading6: 6,
};

// Legal units are matched as written in Vietnamese legal texts: capitalised or all capitals.
const ROMAN_OR_ARABIC = String.raw`([IVXLCDM]+|\d+)`;
const UNIT_END = String.raw`(?=$|[\s.:,\-–—])`;
const PART = new RegExp(String.raw`^(?:Phần|PHẦN)\s+((?:thứ|THỨ)\s+\p{L}+|[IVXLCDM]+|\d+)${UNIT_END}`, 'u');
const CHAPTER = new RegExp(String.raw`^(?:Chương|CHƯƠNG)\s+${ROMAN_OR_ARABIC}${UNIT_END}`, 'u');
const SECTION = new RegExp(String.raw`^(?:Mục|MỤC)\s+${ROMAN_OR_ARABIC}${UNIT_END}`, 'u');
// "Điều 5." or a bare "Điều 5": a sentence that merely starts with "Điều 5 của Luật…" is no heading.
const ARTICLE = /^(?:Điều|ĐIỀU)\s+(\d+[a-zđ]?)\s*(?:[.:]|$)/u;
const CLAUSE_WORD = /^(?:Khoản|KHOẢN)\s+(\d+)(?=$|[\s.:])/u;
const CLAUSE_NUMBER = /^(\d{1,3})\.\s+\S/u;
const POINT = /^([a-zđ])\)\s+\S/u;
const MARKDOWN_OPENING = /^(#{1,6})\s+/u;

/**
 * A Markdown ATX heading of a trimmed line: its level and text, without a closing run of `#` that
 * follows a space. What `/^(#{1,6})\s+(.+?)(?:\s+#+)?\s*$/u` matched, found without it: that
 * expression retried its end from every position of a run of spaces, so one heading line of a
 * million spaces took minutes.
 */
export function markdownHeading(text: string): { hashes: string; inner: string } | null {
  const opening = MARKDOWN_OPENING.exec(text);
  if (!opening) return null;
  let rest = text.slice(opening[0].length);
  let end = rest.length;
  while (end > 0 && rest.charCodeAt(end - 1) === 0x23) end -= 1;
  if (end > 0 && end < rest.length && /\s/u.test(rest[end - 1])) rest = rest.slice(0, end);
  rest = rest.trimEnd();
  return rest === '' ? null : { hashes: opening[1], inner: rest };
}

/** An open code fence: its character (` or ~) and how many of them opened it. */
interface Fence {
  char: string;
  length: number;
}

// CommonMark code fences: three or more backticks or tildes, then an info string ("```bash"). Any
// indentation, not only CommonMark's three spaces: a fence inside a list item is indented by the
// item, and the chunker does not track list items.
const FENCE = /^[ \t]*(`{3,}|~{3,})([^\n]*)$/u;

/** The fence a line opens, if it does: a backtick fence's info string has no backtick ("```x```" is code in a line). */
function fenceOpening(line: string): Fence | null {
  const m = FENCE.exec(line);
  if (!m || (m[1][0] === '`' && m[2].includes('`'))) return null;
  return { char: m[1][0], length: m[1].length };
}

/** A line that may close a fence: its character and length, when it is fence characters alone. */
function closingFence(line: string): Fence | null {
  const m = FENCE.exec(line);
  return m !== null && m[2].trim() === '' ? { char: m[1][0], length: m[1].length } : null;
}

/** Fences longer than this count as this long when matched (a 40-backtick fence is closed by 16 or more). */
const FENCE_LENGTH_CAP = 16;

/**
 * Which lines are code, in one linear pass each way: `true` for the lines of every fence that closes,
 * from its opening line to its closing line. A fence that never closes is no fence: CommonMark runs
 * it to the end of the text, but a stray row of "~~~~" in a law (a PDF's or a text's rule line) then
 * hid every article after it from the chunker.
 */
function codeLines(lines: string[]): boolean[] {
  // closer[i]: the nearest line after i that closes the fence line i opens, if any. Found backwards,
  // with, for each fence character and length, the nearest closing line below.
  const nearest: Record<string, number[]> = { '`': [], '~': [] };
  const closer = new Array<number>(lines.length).fill(-1);
  for (let i = lines.length - 1; i >= 0; i--) {
    const opening = fenceOpening(lines[i]);
    if (opening) closer[i] = nearest[opening.char][Math.min(opening.length, FENCE_LENGTH_CAP)] ?? -1;
    const closing = closingFence(lines[i]);
    if (closing) {
      const below = nearest[closing.char];
      for (let length = 3; length <= Math.min(closing.length, FENCE_LENGTH_CAP); length++) below[length] = i;
    }
  }
  const code = new Array<boolean>(lines.length).fill(false);
  for (let i = 0; i < lines.length; i++) {
    if (closer[i] === -1) continue;
    for (let j = i; j <= closer[i]; j++) code[j] = true;
    i = closer[i];
  }
  return code;
}

/** The longest label of a unit in a chunk's `hierarchy` (at most a dozen units are open at once). */
const LABEL_MAX = 80;

/** Recognises a structural heading at the start of a line; clauses and points only inside their parent. */
function detectHeading(line: string, open: readonly Unit[]): Heading | null {
  const text = line.trim();
  if (text === '') return null;
  const markdown = markdownHeading(text);
  if (markdown) {
    const inner = markdown.inner.trim();
    const legal = detectLegalUnit(inner, open);
    if (legal && legal.level !== 'clause' && legal.level !== 'point') return legal;
    const level = `heading${markdown.hashes.length}` as Heading['level'];
    return { level, rank: RANK[level], label: shorten(inner, LABEL_MAX), title: inner, bare: false };
  }
  return detectLegalUnit(text, open);
}

function detectLegalUnit(text: string, open: readonly Unit[]): Heading | null {
  const unit = (level: Heading['level'], label: string, bare: boolean): Heading => ({
    level,
    rank: RANK[level],
    // A number has no length limit ("Điều 111…1" of megabytes), and the label is copied into the
    // hierarchy of every chunk of its unit: shortened like a markdown heading's.
    label: shorten(label, LABEL_MAX),
    title: level === 'clause' || level === 'point' ? null : text,
    bare,
  });
  let m: RegExpExecArray | null;
  if ((m = PART.exec(text))) return unit('part', `Phần ${m[1]}`, text === m[0]);
  if ((m = CHAPTER.exec(text))) return unit('chapter', `Chương ${m[1]}`, text === m[0]);
  if ((m = SECTION.exec(text))) return unit('section', `Mục ${m[1]}`, text === m[0]);
  if ((m = ARTICLE.exec(text))) return unit('article', `Điều ${m[1]}`, text === m[0].trim());
  const inside = (levels: ReadonlyArray<Heading['level']>): boolean =>
    open.some((u) => u.heading !== null && levels.includes(u.heading.level));
  // Numbered lines are list items elsewhere; they are clauses only within an article.
  if (inside(['article'])) {
    if ((m = CLAUSE_WORD.exec(text) ?? CLAUSE_NUMBER.exec(text))) return unit('clause', `Khoản ${m[1]}`, false);
  }
  if (inside(['article', 'clause']) && (m = POINT.exec(text))) return unit('point', `Điểm ${m[1]}`, false);
  return null;
}

/** Open units inside an article, where every kind of unit opens (a clause, a point too). */
const IN_AN_ARTICLE: readonly Unit[] = [
  {
    heading: { level: 'article', rank: RANK.article, label: '', title: null, bare: false },
    title: null,
    lines: [],
    headingLines: 0,
    children: [],
  },
];

/** Whether a line opens a unit of some kind: a heading, a legal unit, or a clause or point inside an article. */
export function opensUnit(line: string): boolean {
  return detectHeading(line, IN_AN_ARTICLE) !== null;
}

/** A line of capitals (the title of a bare "Chương I"), e.g. "QUY ĐỊNH CHUNG". */
function isCapitalTitle(line: string): boolean {
  const letters = line.replace(/[^\p{L}]/gu, '');
  return letters.length >= 2 && letters === letters.toLocaleUpperCase('vi') && line.trim().length <= 200;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${sliceWholeCharacters(text, max - 1).trimEnd()}…`;
}

/**
 * The longest `section_title` a chunk carries (a heading's text, shortened): it is copied into
 * every chunk of its unit, so a heading line of megabytes (a flattened text starting with
 * "Điều 1.", a huge <h1>) had made gigabytes of metadata.
 */
const SECTION_TITLE_MAX = 300;

/**
 * Builds the unit tree; the root holds the text before the first heading. Nothing inside a code
 * fence is a unit ("# cài đặt" in a bash block is a comment, "1." a line of code); a fence that never
 * closes is plain text (codeLines).
 */
function parse(text: string): Unit {
  const root: Unit = { heading: null, title: null, lines: [], headingLines: 0, children: [] };
  const open: Unit[] = [root];
  let awaitingTitle: Unit | null = null;
  const lines = text.split('\n');
  const code = codeLines(lines);
  for (const [index, line] of lines.entries()) {
    if (code[index]) {
      open[open.length - 1].lines.push(line);
      // A bare heading's title is the line after it, never a fence line.
      awaitingTitle = null;
      continue;
    }
    const heading = detectHeading(line, open);
    if (heading) {
      while (open.length > 1 && open[open.length - 1].heading!.rank >= heading.rank) open.pop();
      const unit: Unit = { heading, title: heading.title, lines: [line], headingLines: 1, children: [] };
      open[open.length - 1].children.push(unit);
      open.push(unit);
      awaitingTitle = heading.bare ? unit : null;
      continue;
    }
    const current = open[open.length - 1];
    current.lines.push(line);
    if (awaitingTitle && line.trim() !== '') {
      if (awaitingTitle === current && current.lines.length === 2 && isCapitalTitle(line)) {
        current.title = `${current.title}. ${line.trim()}`;
        current.headingLines = 2;
      }
      awaitingTitle = null;
    }
  }
  return root;
}

function render(unit: Unit): string {
  return [...unit.lines, ...unit.children.map(render)].join('\n');
}

interface Path {
  labels: string[];
  level: ChunkLevel;
  title: string | undefined;
}

function childPath(path: Path, unit: Unit): Path {
  const heading = unit.heading!;
  return {
    labels: [...path.labels, heading.label],
    level: heading.level,
    // Clauses and points have no title of their own: they keep their article's.
    title: unit.title !== null ? shorten(unit.title, SECTION_TITLE_MAX) : path.title,
  };
}

function metadataOf(path: Path): ChunkMetadata {
  const meta: ChunkMetadata = { hierarchy: path.labels.join(' > '), level: path.level };
  if (path.title !== undefined) meta.section_title = path.title;
  return meta;
}

function joinLines(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('\n');
}

function isPackable(unit: Unit, text: string, options: ChunkOptions): boolean {
  const level = unit.heading?.level;
  return (level === 'clause' || level === 'point') && text.length <= options.chunkSize;
}

/**
 * Emits the chunks of one unit (whose own path is `path`). `prefix` is the heading of a parent that
 * has no text of its own ("Chương I\nQUY ĐỊNH CHUNG"): it opens this unit's first chunk instead of
 * becoming a chunk by itself.
 */
function* chunkUnit(unit: Unit, path: Path, options: ChunkOptions, prefix = ''): Generator<TextChunk> {
  const whole = joinLines(prefix, render(unit).trim());
  if (whole === '') return;
  if (whole.length <= options.chunkSize) {
    // Labelled by the deepest unit that holds all of the text: "# Title" alone over a body is the title's.
    let [inner, innerPath] = [unit, path];
    while (inner.children.length === 1 && inner.lines.slice(inner.headingLines).every((l) => l.trim() === '')) {
      inner = inner.children[0];
      innerPath = childPath(innerPath, inner);
    }
    yield { content: whole, metadata: metadataOf(innerPath) };
    return;
  }
  // Too large: pack the unit's own text and its small clauses/points together; larger units recurse.
  const children = unit.children.map((child) => ({ child, text: render(child).trim() })).filter((c) => c.text !== '');
  let packed: Array<{ text: string; path: Path }> = [];
  let packedLength = 0;
  function* flush(): Generator<TextChunk> {
    if (packed.length === 0) return;
    const text = packed.map((p) => p.text).join('\n');
    const meta = metadataOf(packed.length === 1 ? packed[0].path : path);
    packed = [];
    packedLength = 0;
    for (const content of splitText(text, options)) yield { content, metadata: meta };
  }
  const own = joinLines(prefix, unit.lines.join('\n').trim());
  const headingOnly = unit.heading !== null && unit.lines.slice(unit.headingLines).every((line) => line.trim() === '');
  let carry = '';
  if (own !== '') {
    const [first] = children;
    // A heading alone opens its first sub-unit's chunk: packed with it when both fit, carried into it
    // (which splits to make room) when they do not.
    if (
      headingOnly &&
      first !== undefined &&
      (!isPackable(first.child, first.text, options) || own.length + 1 + first.text.length > options.chunkSize)
    ) {
      carry = own;
    } else if (own.length <= options.chunkSize) {
      packed.push({ text: own, path });
      packedLength = own.length;
    } else {
      // The heading lines (a clause's or point's line is its text, not a heading) open the first piece.
      const heading = joinLines(
        prefix,
        unit.title !== null ? unit.lines.slice(0, unit.headingLines).join('\n').trim() : '',
      );
      const headLength = own.startsWith(heading) ? heading.length : 0;
      for (const content of splitText(own, options, headLength)) yield { content, metadata: metadataOf(path) };
    }
  }
  for (const { child, text } of children) {
    const packable = isPackable(child, text, options) && carry === '';
    if (packable && packedLength + (packed.length > 0 ? 1 : 0) + text.length <= options.chunkSize) {
      packedLength += (packed.length > 0 ? 1 : 0) + text.length;
      packed.push({ text, path: childPath(path, child) });
      continue;
    }
    yield* flush();
    if (packable) {
      packed.push({ text, path: childPath(path, child) });
      packedLength = text.length;
    } else {
      yield* chunkUnit(child, childPath(path, child), options, carry);
      carry = '';
    }
  }
  yield* flush();
}

/** Normalises line ends and Unicode (NFC) so decomposed Vietnamese matches the unit patterns. */
export function normalizeText(text: string): string {
  return text
    .normalize('NFC')
    .replace(/\r\n?/g, '\n')
    .replace(/[\u00a0\u2000-\u200a\u202f\u205f\u3000]/g, ' ');
}

export function validateChunkOptions(options: ChunkOptions): void {
  const { chunkSize, chunkOverlap } = options;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) throw new RangeError('chunkSize must be a positive integer');
  if (!Number.isInteger(chunkOverlap) || chunkOverlap < 0) {
    throw new RangeError('chunkOverlap must be a non-negative integer');
  }
  if (chunkOverlap >= chunkSize) throw new RangeError('chunkOverlap must be smaller than chunkSize');
}

/**
 * Chunks of `text`, in document order, lazily. Each chunk is non-empty, at most `chunkSize`
 * characters, and carries its place in the document's structure.
 */
export function* chunkText(text: string, options: ChunkOptions): Generator<TextChunk> {
  validateChunkOptions(options);
  const root = parse(normalizeText(text));
  yield* chunkUnit(root, { labels: [], level: 'paragraph', title: undefined }, options);
}

// ---------------------------------------------------------------------------------------------
// Size-based splitting of one unit's text.

/** Separators from coarse to fine; each keeps the separator at the end of the piece before it. */
const SEPARATORS: RegExp[] = [
  /(?<=\n[ \t]*\n)(?=[^\n])/u, // paragraphs (after a blank line)
  /(?<=\n)/u, // lines
  /(?<=[.!?…;:]["'”’)\]]*\s)(?<!(?:^|\n)[ \t]*\d{1,3}\.\s)/u, // sentences; a clause's "1. " ends none
  /(?<=\s)(?=\S)/u, // words
];

/** Splits `text` into pieces of at most `size` characters whose concatenation is `text`. */
function atomize(text: string, size: number, depth = 0): string[] {
  if (text.length <= size) return [text];
  if (depth >= SEPARATORS.length) {
    const out: string[] = [];
    let start = 0;
    while (start < text.length) {
      let end = Math.min(start + size, text.length);
      // Never cut a surrogate pair in two.
      if (end < text.length && /[\uD800-\uDBFF]/.test(text[end - 1])) end -= 1;
      out.push(text.slice(start, end));
      start = end;
    }
    return out;
  }
  const parts = text.split(SEPARATORS[depth]).filter((p) => p !== '');
  if (parts.length <= 1) return atomize(text, size, depth + 1);
  return parts.flatMap((part) => atomize(part, size, depth + 1));
}

/** The stretches of `text` in and out of code fences (codeLines), each from its first line to its last line's end. */
function* fencedSegments(text: string): Generator<{ text: string; fenced: boolean }> {
  const lines = text.split('\n');
  const code = codeLines(lines);
  let start = 0;
  let at = 0;
  for (let i = 0; i < lines.length; i++) {
    if (i > 0 && code[i] !== code[i - 1]) {
      yield { text: text.slice(start, at), fenced: code[i - 1] };
      start = at;
    }
    at += lines[i].length + 1;
  }
  if (start < text.length) yield { text: text.slice(start), fenced: code[lines.length - 1] };
}

/**
 * Splits `text` into atoms of at most `size` characters, as `atomize`, but a fenced code block is one
 * atom when it fits (like a paragraph; a blank line inside it is no paragraph break), and is cut
 * between its lines when it does not.
 */
function textAtoms(text: string, size: number): string[] {
  if (text.length <= size) return [text];
  const atoms: string[] = [];
  for (const segment of fencedSegments(text)) {
    for (const atom of atomize(segment.text, size, segment.fenced ? 1 : 0)) atoms.push(atom);
  }
  return atoms;
}

/**
 * The atoms of `text` whose first `headLength` characters are headings: they make one atom, and the
 * first atom of the text after them is cut finer when it does not fit beside it, so that the first
 * piece holds the headings and the start of their text, never the headings alone. Headings that
 * leave no room (nearly `size` long) are split like text.
 */
function headedAtoms(text: string, size: number, headLength: number): string[] {
  const blank = /\s*/uy;
  blank.lastIndex = headLength;
  blank.exec(text);
  const bodyStart = blank.lastIndex;
  // At least 2 left: a surrogate pair must fit.
  const room = size - bodyStart;
  if (headLength === 0 || bodyStart >= text.length || room < 2) return textAtoms(text, size);
  const body = textAtoms(text.slice(bodyStart), size);
  const first = body[0];
  const isFence = fenceOpening(first.slice(0, first.indexOf('\n') + 1 || first.length).trimEnd()) !== null;
  const atoms = [text.slice(0, bodyStart)];
  for (const atom of first.length <= room ? [first] : atomize(first, room, isFence ? 1 : 0)) atoms.push(atom);
  for (let i = 1; i < body.length; i++) atoms.push(body[i]);
  return atoms;
}

/**
 * Splits a text that may exceed `chunkSize` into trimmed, non-empty pieces of at most `chunkSize`
 * characters. Consecutive pieces share whole atoms (paragraphs, code blocks, lines, sentences or
 * words) at their seam, at most `chunkOverlap` characters of them. The first `headLength`
 * characters, a unit's heading, open the first piece together with the start of the text after them.
 */
export function splitText(text: string, options: ChunkOptions, headLength = 0): string[] {
  const { chunkSize, chunkOverlap } = options;
  const atoms = headedAtoms(text, chunkSize, headLength);
  const chunks: string[] = [];
  // The window is atoms[head..] of this array: dropping its first atom moves `head` instead of
  // shift(), which copies the array each time (beyond about 16,000 atoms, with a chunkSize of
  // 100,000, chunking 11.6 MB took 16 s instead of 3).
  let window: string[] = [];
  let head = 0;
  let length = 0;
  let fresh = false; // the window holds an atom not yet emitted
  const emit = (): void => {
    const chunk = window.slice(head).join('').trim();
    if (fresh && chunk !== '') chunks.push(chunk);
    fresh = false;
  };
  for (const atom of atoms) {
    if (length + atom.length > chunkSize && window.length > head) {
      emit();
      // Keep the tail of the window as overlap, as long as it is small enough and leaves room.
      while (window.length > head && (length > chunkOverlap || length + atom.length > chunkSize)) {
        length -= window[head].length;
        head += 1;
      }
      if (head > 1024 && head * 2 > window.length) {
        window = window.slice(head);
        head = 0;
      }
    }
    window.push(atom);
    length += atom.length;
    if (atom.trim() !== '') fresh = true;
  }
  emit();
  return chunks;
}
