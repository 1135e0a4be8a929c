import { corruptPdf, type CorpusFile, makeCorpus } from '../../test/support/corpus.js';
import JSZip from 'jszip';
import {
  detectFormat,
  DOCX_PARAGRAPHS_MAX,
  DOCX_XML_MAX_BYTES,
  ExtractionError,
  extractText,
  HTML_MAX_DEPTH,
  htmlToText,
  textOf,
} from './text-extraction.js';

describe('text extraction', () => {
  let corpus: CorpusFile[];

  beforeAll(async () => {
    corpus = await makeCorpus();
  });

  it('reads every corpus format and finds its distinctive sentence', async () => {
    for (const file of corpus) {
      const format = detectFormat(file.fileName, file.mimeType);
      expect(format).not.toBeNull();
      const text = await extractText(file.buffer, format!);
      expect(text).toContain(file.sentence);
      expect(text).toBe(text.normalize('NFC'));
    }
  });

  it('keeps html and docx headings as markdown headings, drops scripts and styles', async () => {
    const html = await extractText(corpus.find((f) => f.fileName.endsWith('.html'))!.buffer, 'html');
    expect(html).toMatch(/^# Quy trình pha cà phê phin$/m);
    expect(html).toMatch(/^## Nhiệt độ nước$/m);
    expect(html).toMatch(/^Ủ cà phê ba mươi giây\.$/m);
    expect(html).not.toMatch(/console|color: red|Pha cà phê\n/);
    const docx = await extractText(corpus.find((f) => f.fileName.endsWith('.docx'))!.buffer, 'docx');
    expect(docx).toMatch(/^# Canh tác lúa trên đất phèn$/m);
    expect(docx).toMatch(/^## Cải tạo đất$/m);
  });

  it('reads the pdf text in order', async () => {
    const pdf = await extractText(corpus.find((f) => f.fileName.endsWith('.pdf'))!.buffer, 'pdf');
    expect(pdf.indexOf('Chapter 1. Survey method')).toBeLessThan(pdf.indexOf('Chapter 2. Data handling'));
  });

  it('normalises decomposed text, line ends and blank lines', async () => {
    expect(await textOf('Đi\u0300eu 1.\r\n\r\n\r\n\r\nNội   dung  \r\n', 'txt')).toBe(
      'Đìeu 1.\n\nNội   dung'.normalize('NFC'),
    );
    expect(await htmlToText('<p>a&amp;b <i>c</i></p><p>d<br>e</p>')).toMatch(/a&b c\n+d\ne/);
  });

  it('detects formats by extension first, then by MIME type', () => {
    expect(detectFormat('A.PDF', 'application/octet-stream')).toBe('pdf');
    expect(detectFormat('notes.markdown')).toBe('md');
    expect(detectFormat('page.htm')).toBe('html');
    expect(detectFormat('blob', 'text/plain; charset=utf-8')).toBe('txt');
    expect(detectFormat('report.doc', 'application/msword')).toBeNull();
    expect(detectFormat(undefined, 'application/octet-stream')).toBeNull();
  });

  it('rejects unreadable and empty files with an ExtractionError', async () => {
    await expect(extractText(corruptPdf(), 'pdf')).rejects.toMatchObject({
      name: 'ExtractionError',
      reason: 'unreadable',
    });
    await expect(extractText(Buffer.from('not a zip'), 'docx')).rejects.toMatchObject({ reason: 'unreadable' });
    await expect(extractText(Buffer.from([0xff, 0xfe, 0x00, 0x41]), 'txt')).rejects.toBeInstanceOf(ExtractionError);
    await expect(extractText(Buffer.from('<html><script>x</script></html>'), 'html')).rejects.toMatchObject({
      reason: 'empty',
    });
    await expect(extractText(Buffer.from(' \n\n '), 'md')).rejects.toMatchObject({ reason: 'empty' });
  });
});

describe('text extraction on hostile input', () => {
  it('tidies a line with a million spaces inside at once (a regular expression took minutes)', async () => {
    expect(await textOf(`a${' '.repeat(1_000_000)}b \t`, 'txt')).toBe(`a${' '.repeat(1_000_000)}b`);
  });

  it('reads HTML nested up to HTML_MAX_DEPTH deep, and refuses deeper nesting as unreadable', async () => {
    const nested = (n: number) => `<div>${'<span>'.repeat(n)}x${'</span>'.repeat(n)}</div><p>y</p>`;
    expect(await textOf(nested(HTML_MAX_DEPTH - 1), 'html')).toBe('x\n\ny');
    await expect(textOf(nested(100_000), 'html')).rejects.toMatchObject({
      reason: 'unreadable',
      message: `The HTML document nests elements more than ${HTML_MAX_DEPTH} deep (unclosed tags?): convert it to text first`,
    });
  });

  it('reads a heading with thousands of nested inline elements', async () => {
    const heading = `<h2>${'<b>'.repeat(5_000)}Điều 1 &amp; 2${'</b>'.repeat(5_000)}</h2>`;
    expect((await textOf(`${heading}<p>y</p>`, 'html')) === '## Điều 1 & 2\n\ny').toBe(true);
  });

  it('reads a megabyte cascade of unclosed elements, as old Word exports write them, in one pass', async () => {
    // node-html-parser's clean-up took 19.5 s for 0.64 MB of these: linear now, so this finishes
    // well inside the test's timeout rather than minutes.
    const cascade = '<html><body>' + '<p><font>Điều khoản thi hành</p>'.repeat(32_000);
    const text = await textOf(cascade, 'html');
    expect(text.split('\n\n')).toHaveLength(32_000);
  });

  it('refuses a .docx that unpacks to more paragraphs or bytes than mammoth is given, before mammoth reads it', async () => {
    const docx = async (body: string): Promise<Buffer> => {
      const zip = new JSZip();
      zip.file(
        'word/document.xml',
        `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${body}</w:body></w:document>`,
      );
      return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
    };
    // 60,000 empty paragraphs: a few KB packed.
    const many = await docx('<w:p><w:pPr/><w:r><w:t>a</w:t></w:r></w:p>'.repeat(DOCX_PARAGRAPHS_MAX + 10_000));
    expect(many.length).toBeLessThan(100_000);
    await expect(extractText(many, 'docx')).rejects.toMatchObject({
      reason: 'too-large',
      message: `The .docx document has ${DOCX_PARAGRAPHS_MAX + 10_000} paragraphs, more than the ${DOCX_PARAGRAPHS_MAX} read from one file: split the document or send its text`,
    });
    const huge = await docx(`<w:p><w:r><w:t>${'a'.repeat(DOCX_XML_MAX_BYTES)}</w:t></w:r></w:p>`);
    await expect(extractText(huge, 'docx')).rejects.toMatchObject({
      reason: 'too-large',
      message: `The .docx document's text part unpacks to more than ${DOCX_XML_MAX_BYTES} bytes: split the document or send its text`,
    });
  });

  it('drops U+0000, which a .docx can spell &#0; and PostgreSQL text cannot hold', async () => {
    expect(await textOf('Điều 1. Phạm vi\u0000 điều chỉnh', 'txt')).toBe('Điều 1. Phạm vi điều chỉnh');
  });

  it('replaces half of a surrogate pair, which HTML or a .docx can spell &#xD800;, by U+FFFD', async () => {
    const text = await textOf('<h1>Điều 1. A&#xD800;B</h1><p>C&#xDC00;</p>', 'html');
    expect(text.isWellFormed()).toBe(true);
    expect(text).toContain('Điều 1. A\uFFFDB');
    expect(text).toContain('C\uFFFD');
  });
});
