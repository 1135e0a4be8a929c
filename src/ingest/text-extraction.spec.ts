import { corruptPdf, type CorpusFile, encryptedPdf, makeCorpus, pdfOfOneLongPage } from '../../test/support/corpus.js';
import { Document, HeadingLevel, LevelFormat, Packer, Paragraph, Table, TableCell, TableRow, TextRun } from 'docx';
import JSZip from 'jszip';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { chunkText } from './chunker.js';
import {
  detectFormat,
  DOCX_ELEMENTS_MAX,
  DOCX_PARAGRAPHS_MAX,
  DOCX_XML_MAX_BYTES,
  EXTRACTION_LIMITS,
  PDF_PAGES_MAX,
  READERS_AT_ONCE,
  readInWorker,
  ExtractionError,
  extractText,
  HTML_MAX_DEPTH,
  htmlToText,
  joinPdfPages,
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
    expect(html).toMatch(/^- Ủ cà phê ba mươi giây\.$/m);
    expect(html).not.toMatch(/console|color: red|Pha cà phê\n/);
    const docx = await extractText(corpus.find((f) => f.fileName.endsWith('.docx'))!.buffer, 'docx');
    expect(docx).toMatch(/^# Canh tác lúa trên đất phèn$/m);
    expect(docx).toMatch(/^## Cải tạo đất$/m);
  });

  it('reads the pdf text in order', async () => {
    const pdf = await extractText(corpus.find((f) => f.fileName.endsWith('.pdf'))!.buffer, 'pdf');
    expect(pdf.indexOf('Chapter 1. Survey method')).toBeLessThan(pdf.indexOf('Chapter 2. Data handling'));
  });

  it('reads a PDF page after page, each its own paragraphs, and refuses more than PDF_PAGES_MAX pages by count', async () => {
    const pdfOf = async (pages: string[]): Promise<Buffer> => {
      const pdf = await PDFDocument.create();
      const font = await pdf.embedFont(StandardFonts.Helvetica);
      for (const text of pages) pdf.addPage([200, 200]).drawText(text, { x: 10, y: 100, size: 12, font });
      return Buffer.from(await pdf.save());
    };
    expect(await extractText(await pdfOf(['Page one', 'Page two', 'Page three']), 'pdf')).toBe(
      'Page one\n\nPage two\n\nPage three',
    );
    const many = await PDFDocument.create();
    for (let i = 0; i <= PDF_PAGES_MAX; i++) many.addPage([10, 10]);
    await expect(extractText(Buffer.from(await many.save()), 'pdf')).rejects.toMatchObject({
      reason: 'too-large',
      message: `The PDF has ${PDF_PAGES_MAX + 1} pages, more than the ${PDF_PAGES_MAX} read from one file: split the document or send its text`,
    });
  });

  describe('a PDF of 3 pages or more', () => {
    const HEADER = 'CÔNG BÁO/Số 45 + 46/Ngày 20-01-2024';
    // A decree's pages as pdf.js read the probe's: its running header and footer after the body.
    const BODIES = [
      'Điều 1. Phạm vi điều chỉnh\nNghị định này quy định chi tiết một số điều của Luật Đất đai.\nĐiều 2. Đối tượng áp dụng\nCơ quan nhà nước, người sử dụng đất.',
      'Điều 3. Giải thích từ ngữ\nTrong Nghị định này, các từ ngữ dưới đây được hiểu như sau:\n1. Thửa đất là phần diện tích đất được giới hạn bởi ranh giới.',
      'Điều 4. Nguyên tắc giao đất\nViệc giao đất phải theo Điều 5 của Nghị định này và theo quy định',
      'đó, bảo đảm công khai, minh bạch.\nĐiều 5. Thời hạn\nThời hạn sử dụng đất là 50 năm.',
      'Điều 6. Hồ sơ\nHồ sơ gồm:\na) Đơn đề nghị;\nb) Bản sao giấy tờ về quyền sử dụng đất.',
      'Điều 7. Hiệu lực thi hành\nNghị định này có hiệu lực từ ngày 01 tháng 3 năm 2024.',
    ];
    const decree = BODIES.map((body, i) => `${body}\n${HEADER}\nTrang ${i + 1}/6\n`);

    it('drops running headers and footers, keeps every body line, and rejoins a sentence across pages', async () => {
      // Before, "…theo quy định\nCÔNG BÁO/Số 45 + 46/Ngày 20-01-2024\nTrang 3/6\n\nđó, bảo đảm…".
      const text = joinPdfPages(decree);
      expect(text).toBe(`${BODIES.slice(0, 3).join('\n\n')}\n${BODIES.slice(3).join('\n\n')}`);
      // A line break, not a paragraph: the chunker keeps the sentence in one piece, as within a page.
      const chunks = [...chunkText(await textOf(text, 'txt'), { chunkSize: 200, chunkOverlap: 0 })];
      expect(chunks.map((chunk) => chunk.content)).toContainEqual(
        expect.stringContaining('và theo quy định\nđó, bảo đảm công khai, minh bạch.'),
      );
      expect(chunks.every((chunk) => !/CÔNG BÁO|Trang \d/.test(chunk.content))).toBe(true);
    });

    it('drops a bare page number, and a header on most pages whose page number changes sides', () => {
      const pages = [
        'CÔNG BÁO\nSố 45 + 46\nLời nói đầu của số này.\n1',
        `${HEADER} 2\nĐiều 1. Phạm vi\nNội dung trang hai.\n2`,
        `3 ${HEADER}\nĐiều 2. Đối tượng\nNội dung trang ba.\n3`,
        `${HEADER} 4\nĐiều 3. Giải thích\nNội dung trang bốn.\n4`,
      ];
      expect(joinPdfPages(pages)).toBe(
        'CÔNG BÁO\nSố 45 + 46\nLời nói đầu của số này.\n\nĐiều 1. Phạm vi\nNội dung trang hai.\n\n' +
          'Điều 2. Đối tượng\nNội dung trang ba.\n\nĐiều 3. Giải thích\nNội dung trang bốn.',
      );
    });

    it('keeps a line repeated in the body, at the edge of too few pages, or opening a unit', () => {
      const words = ['một', 'hai', 'ba', 'bốn', 'năm', 'sáu'];
      const pages = words.map(
        (word, i) =>
          `Điều ${i + 1}\n${i < 3 ? 'Mục lục' : 'Quy định'} số ${i + 1}\nNội dung.\nXem Điều 5.\nHết phần ${word}.\n- ${i + 1} -`,
      );
      // "Xem Điều 5." is on every page, but never at its edge; "Mục lục số N" at the top of 3 pages of
      // 6, less than 60%; "Điều N" at the top of all of them, but a heading; "- N -" a footer.
      expect(joinPdfPages(pages)).toBe(pages.map((page) => page.slice(0, page.lastIndexOf('\n'))).join('\n\n'));
      // At least 3 pages: a line at the bottom of 2 pages of 3, or of 2 of 4, stays.
      expect(joinPdfPages(['A\nB\nTrang 1', 'C\nD\nTrang 2', 'E\nF\nG'])).toBe(
        'A\nB\nTrang 1\n\nC\nD\nTrang 2\n\nE\nF\nG',
      );
      // Nor is a PDF's every line dropped: one line a page, alike but for its number.
      expect(joinPdfPages(['Bảng 1', 'Bảng 2', 'Bảng 3'])).toBe('Bảng 1\n\nBảng 2\n\nBảng 3');
      const twice = [...decree.slice(0, 2), 'G\nH', 'I\nJ'];
      expect(joinPdfPages(twice)).toBe(twice.map((page) => page.trim()).join('\n\n'));
    });

    it('runs a page on only when its last line ends no sentence and the next page starts in lower case', () => {
      const cases: Array<[last: string, first: string, join: string]> = [
        ['các khoản sau', 'đ) Khoản tiền', '\n'],
        ['theo quy định', '“đó” là', '\n\n'],
        ['các khoản sau:', 'a) Khoản tiền', '\n\n'],
        ['theo quy định của', 'Luật Đất đai', '\n\n'],
        ['(xem Điều 5.)', 'và theo', '\n\n'],
        ['“Đất ở.”', 'và theo', '\n\n'],
        ['vân vân…', 'và theo', '\n\n'],
      ];
      for (const [last, first, join] of cases) {
        expect(joinPdfPages([`Đầu\n${last}`, `${first}\nGiữa`, 'Cuối'])).toBe(
          `Đầu\n${last}${join}${first}\nGiữa\n\nCuối`,
        );
      }
    });

    it('leaves a PDF of 1 or 2 pages as it was', () => {
      expect(joinPdfPages(decree.slice(0, 2))).toBe(decree.slice(0, 2).join('\n\n'));
      expect(joinPdfPages(decree.slice(2, 4))).toBe(decree.slice(2, 4).join('\n\n'));
    });

    it('reads a PDF that way, through its worker, and a 2-page one as it was', async () => {
      // The standard fonts encode no Vietnamese beyond Latin-1: "So", "Ngay".
      const header = 'CÔNG BÁO/So 45 + 46/Ngay 20-01-2024';
      const bodies = [
        ['Article 1. Scope', 'This decree details the land law.'],
        ['Article 2. Principles', 'Land is allocated as Article 5 provides and as provided'],
        ['therein, publicly and openly.', 'Article 3. Term'],
        ['Land is used for 50 years.'],
      ];
      const pdfOf = async (pages: string[][]): Promise<Buffer> => {
        const pdf = await PDFDocument.create();
        const font = await pdf.embedFont(StandardFonts.Helvetica);
        pages.forEach((body, p) => {
          const page = pdf.addPage([400, 400]);
          [header, ...body, `Trang ${p + 1}/${pages.length}`].forEach((line, i) =>
            page.drawText(line, { x: 20, y: 370 - i * 20, size: 10, font }),
          );
        });
        return Buffer.from(await pdf.save());
      };
      expect(await extractText(await pdfOf(bodies), 'pdf')).toBe(
        'Article 1. Scope\nThis decree details the land law.\n\n' +
          'Article 2. Principles\nLand is allocated as Article 5 provides and as provided\n' +
          'therein, publicly and openly.\nArticle 3. Term\n\nLand is used for 50 years.',
      );
      expect(await extractText(await pdfOf(bodies.slice(0, 2)), 'pdf')).toBe(
        `${header}\nArticle 1. Scope\nThis decree details the land law.\nTrang 1/2\n\n` +
          `${header}\nArticle 2. Principles\nLand is allocated as Article 5 provides and as provided\nTrang 2/2`,
      );
    });
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
    await expect(extractText(Buffer.from([0x41, 0xc3, 0x28]), 'txt')).rejects.toBeInstanceOf(ExtractionError);
    await expect(extractText(Buffer.from('<html><script>x</script></html>'), 'html')).rejects.toMatchObject({
      reason: 'empty',
      message: 'The HTML document contains no text',
    });
    await expect(extractText(Buffer.from(' \n\n '), 'md')).rejects.toMatchObject({
      reason: 'empty',
      message: 'The markdown document contains no text',
    });
    await expect(extractText(Buffer.from(' '), 'txt')).rejects.toMatchObject({
      message: 'The document contains no text',
    });
    // Named as the other messages name them ("The pdf document", "The docx document" before).
    const blank = await PDFDocument.create();
    blank.addPage([100, 100]);
    await expect(extractText(Buffer.from(await blank.save()), 'pdf')).rejects.toMatchObject({
      reason: 'empty',
      message: 'The PDF contains no text (a scanned PDF needs OCR, which is not supported)',
    });
    const noText = await Packer.toBuffer(new Document({ sections: [{ children: [new Paragraph('')] }] }));
    await expect(extractText(noText, 'docx')).rejects.toMatchObject({
      reason: 'empty',
      message: 'The .docx document contains no text',
    });
  });

  it('refuses a password-protected PDF as such; a truncated or image-only one as before', async () => {
    // pdf.js's own words were all the message said: "The file is not a readable PDF document (No password given)".
    await expect(extractText(encryptedPdf(), 'pdf')).rejects.toMatchObject({
      reason: 'unreadable',
      message: 'The PDF is password-protected: upload a copy saved without the password',
    });
    const whole = corpus.find((f) => f.fileName.endsWith('.pdf'))!.buffer;
    await expect(extractText(whole.subarray(0, whole.length / 2), 'pdf')).rejects.toMatchObject({
      reason: 'unreadable',
      message: 'The file is not a readable PDF document (Invalid PDF structure.)',
    });
    const scan = await PDFDocument.create();
    const pixel = await scan.embedPng(
      Buffer.from(
        'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==',
        'base64',
      ),
    );
    scan.addPage([100, 100]).drawImage(pixel, { x: 0, y: 0, width: 100, height: 100 });
    await expect(extractText(Buffer.from(await scan.save()), 'pdf')).rejects.toMatchObject({
      reason: 'empty',
      message: 'The PDF contains no text (a scanned PDF needs OCR, which is not supported)',
    });
  });

  it('keeps a line break inside a heading (HTML <br>, a .docx break run) as one: no glued words, a chapter titled as in plain text', async () => {
    const plain = 'Chương I\nQUY ĐỊNH CHUNG\nChương này quy định chung.\n\nChương II\nTHI HÀNH';
    const chapters = (text: string) =>
      [...chunkText(text, { chunkSize: 60, chunkOverlap: 0 })].map((chunk) => chunk.metadata);
    const expected = [
      { hierarchy: 'Chương I', level: 'chapter', section_title: 'Chương I. QUY ĐỊNH CHUNG' },
      { hierarchy: 'Chương II', level: 'chapter', section_title: 'Chương II. THI HÀNH' },
    ];
    expect(chapters(plain)).toEqual(expected);
    const html = await textOf(
      '<h2>Chương I<br>QUY ĐỊNH\n  CHUNG</h2><p>Chương này quy định chung.</p><h2>Chương II<br/>THI HÀNH</h2>',
      'html',
    );
    expect(html).toBe('## Chương I\nQUY ĐỊNH CHUNG\n\nChương này quy định chung.\n\n## Chương II\nTHI HÀNH');
    expect(chapters(html)).toEqual(expected);
    // Inside <pre> too; a block inside a heading is a space.
    expect(await textOf('<pre>a<br>b</pre><h1><div>Điều</div><div>khoản</div></h1>', 'html')).toBe(
      'a\nb\n\n# Điều khoản',
    );
    // mammoth writes a Word line break (w:br) as <br />.
    const heading = (first: string, second: string) =>
      new Paragraph({
        heading: HeadingLevel.HEADING_2,
        children: [new TextRun(first), new TextRun({ text: second, break: 1 })],
      });
    const docx = await Packer.toBuffer(
      new Document({
        sections: [
          {
            children: [
              heading('Chương I', 'QUY ĐỊNH CHUNG'),
              new Paragraph('Chương này quy định chung.'),
              heading('Chương II', 'THI HÀNH'),
            ],
          },
        ],
      }),
    );
    const docxText = await extractText(docx, 'docx');
    expect(docxText).toBe(html);
    expect(chapters(docxText)).toEqual(expected);
  });

  it('reads a table row (HTML or .docx) as one line of its cells joined by " | ", so a chunk keeps every row whole', async () => {
    const cells = (n: number) => [`${n}`, `Phí thẩm định hồ sơ loại ${n}`, `${n * 10}.000 đồng`];
    const line = (n: number) => cells(n).join(' | ');
    const numbers = Array.from({ length: 80 }, (_, i) => i + 1);
    // Empty cells are left out; a cell's paragraphs and a table inside it are its text, on the row's line.
    const html =
      '<p>Biểu phí</p><table><thead><tr><th>STT</th><th>Loại phí</th><th>Mức thu</th><th></th></tr></thead>\n<tbody>' +
      numbers
        .map(
          (n) =>
            `<tr>\n  <td>${n}</td><td><p>Phí thẩm định</p><p>hồ sơ loại ${n}</p></td><td>${n * 10}.000 đồng</td><td> </td></tr>`,
        )
        .join('\n') +
      '</tbody></table><p>Ghi chú <table><tr><td>a</td><td>b</td></tr></table></p>' +
      '<table><tr><td>Điều 1</td><td>x<table><tr><td>y</td><td>z</td></tr></table></td></tr></table>';
    const text = await textOf(html, 'html');
    expect(text).toBe(
      `Biểu phí\n\nSTT | Loại phí | Mức thu\n${numbers.map(line).join('\n')}\n\nGhi chú\n\na | b\n\nĐiều 1 | x y z`,
    );
    const tableCell = (children: Paragraph[]) => new TableCell({ children });
    const docx = await Packer.toBuffer(
      new Document({
        sections: [
          {
            children: [
              new Paragraph('Biểu phí'),
              new Table({
                rows: numbers.map(
                  (n) =>
                    new TableRow({
                      children: [
                        tableCell([new Paragraph(`${n}`)]),
                        tableCell([new Paragraph('Phí thẩm định'), new Paragraph(`hồ sơ loại ${n}`)]),
                        tableCell([new Paragraph(`${n * 10}.000 đồng`)]),
                      ],
                    }),
                ),
              }),
            ],
          },
        ],
      }),
    );
    const docxText = await extractText(docx, 'docx');
    expect(docxText).toBe(`Biểu phí\n\n${numbers.map(line).join('\n')}`);
    for (const extracted of [text, docxText]) {
      const chunks = [...chunkText(extracted, { chunkSize: 300, chunkOverlap: 60 })].map((chunk) => chunk.content);
      expect(chunks.length).toBeGreaterThan(10);
      for (const n of numbers) {
        const rows = chunks.flatMap((chunk) => chunk.split('\n')).filter((row) => row.includes(`loại ${n} `));
        expect(rows.length).toBeGreaterThan(0);
        expect(new Set(rows)).toEqual(new Set([line(n)]));
      }
    }
  });

  it('numbers ordered list items (from start, nested after their item) and marks unordered ones, in HTML and .docx', async () => {
    expect(
      await textOf(
        '<p>Hồ sơ gồm:</p><ul><li>Tờ khai;</li><li><p>Sơ đồ.</p></li></ul>' +
          '<ol start="3"><li>Ba<ol><li>Ba một</li><li>Ba hai<ul><li>gạch</li></ul></li></ol></li><li value="7">Bảy</li><li>Tám</li></ol>',
        'html',
      ),
    ).toBe('Hồ sơ gồm:\n\n- Tờ khai;\n- Sơ đồ.\n\n3. Ba\n3.1. Ba một\n3.2. Ba hai\n- gạch\n7. Bảy\n8. Tám');
    // Word's automatic numbering, which mammoth writes as <ol><li> without the numbers: in a law, the
    // clauses of an article. Its second level (a), b)…) is numbered after its clause: no clause of its own.
    const numbered = (text: string, level: number) => new Paragraph({ text, numbering: { reference: 'khoan', level } });
    const docx = await Packer.toBuffer(
      new Document({
        numbering: {
          config: [
            {
              reference: 'khoan',
              levels: [
                { level: 0, format: LevelFormat.DECIMAL, text: '%1.' },
                { level: 1, format: LevelFormat.LOWER_LETTER, text: '%2)' },
              ],
            },
          ],
        },
        sections: [
          {
            children: [
              new Paragraph('Điều 3. Đăng ký đàn ong'),
              numbered('Người nuôi ong mật phải đăng ký đàn ong với Ủy ban nhân dân cấp xã.', 0),
              numbered('Hồ sơ đăng ký gồm:', 0),
              numbered('Tờ khai số lượng thùng ong;', 1),
              numbered('Sơ đồ vị trí đặt trại ong.', 1),
              // A clause's second paragraph, unnumbered: Word goes on counting after it, and so do we
              // (mammoth writes the list as two <ol>).
              new Paragraph('Hồ sơ nộp trực tiếp hoặc qua bưu điện.'),
              numbered('Ủy ban nhân dân cấp xã cấp giấy xác nhận.', 0),
            ],
          },
        ],
      }),
    );
    const text = await extractText(docx, 'docx');
    expect(text).toBe(
      'Điều 3. Đăng ký đàn ong\n\n1. Người nuôi ong mật phải đăng ký đàn ong với Ủy ban nhân dân cấp xã.\n' +
        '2. Hồ sơ đăng ký gồm:\n2.1. Tờ khai số lượng thùng ong;\n2.2. Sơ đồ vị trí đặt trại ong.\n\n' +
        'Hồ sơ nộp trực tiếp hoặc qua bưu điện.\n\n3. Ủy ban nhân dân cấp xã cấp giấy xác nhận.',
    );
    // An item that opens with code or a heading keeps its marker.
    expect(await extractText(Buffer.from('<ol><li><pre>only code</pre></li><li>b</li></ol>'), 'html')).toBe(
      '1.\n\nonly code\n\n2. b',
    );
    // In an HTML page, two lists are two lists.
    expect(await extractText(Buffer.from('<ol><li>a</li></ol><p>b</p><ol><li>c</li></ol>'), 'html')).toBe(
      '1. a\n\nb\n\n1. c',
    );
    // The article's heading opens its first clause's chunk; the second clause keeps its sub-items.
    expect([...chunkText(text, { chunkSize: 100, chunkOverlap: 0 })]).toEqual([
      {
        content: 'Điều 3. Đăng ký đàn ong\n1. Người nuôi ong mật phải đăng ký đàn ong với Ủy ban nhân dân cấp xã.',
        metadata: { hierarchy: 'Điều 3', level: 'article', section_title: 'Điều 3. Đăng ký đàn ong' },
      },
      {
        content: '2. Hồ sơ đăng ký gồm:\n2.1. Tờ khai số lượng thùng ong;\n2.2. Sơ đồ vị trí đặt trại ong.',
        metadata: { hierarchy: 'Điều 3 > Khoản 2', level: 'clause', section_title: 'Điều 3. Đăng ký đàn ong' },
      },
      {
        content: 'Hồ sơ nộp trực tiếp hoặc qua bưu điện.',
        metadata: { hierarchy: 'Điều 3 > Khoản 2', level: 'clause', section_title: 'Điều 3. Đăng ký đàn ong' },
      },
      {
        content: '3. Ủy ban nhân dân cấp xã cấp giấy xác nhận.',
        metadata: { hierarchy: 'Điều 3 > Khoản 3', level: 'clause', section_title: 'Điều 3. Đăng ký đàn ong' },
      },
    ]);
  });

  it('reads UTF-16 text after its byte order mark, and HTML in the encoding its <meta> names, as NFC', async () => {
    const law = 'Điều 1. Phạm vi điều chỉnh\nLuật này quy định về đất đai.';
    const utf16le = (text: string) => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
    const utf16be = (text: string) => utf16le(text).swap16();
    for (const format of ['txt', 'md'] as const) {
      expect(await extractText(utf16le(law), format)).toBe(law);
      expect(await extractText(utf16be(law), format)).toBe(law);
    }
    const page = (text: string) => `<html><body><p>${text.replace('\n', '</p><p>')}</p></body></html>`;
    expect(await extractText(utf16be(page(law)), 'html')).toBe(law.replace('\n', '\n\n'));
    // windows-1258 writes Vietnamese with some letters composed and the tone marks as combining ones.
    const windows1258 = new TextDecoder('windows-1258');
    const byteOf = new Map(Array.from({ length: 256 }, (_, byte) => [windows1258.decode(Uint8Array.of(byte)), byte]));
    const tones = /[\u0300\u0301\u0303\u0309\u0323]/gu;
    const encode1258 = (text: string): Buffer => {
      const bytes: number[] = [];
      for (const letter of text) {
        // A letter it has not as one character: the letter without its tone mark, then the mark.
        const [base, marks] = [letter.normalize('NFD').replace(tones, '').normalize('NFC'), letter.normalize('NFD')];
        if (byteOf.has(letter)) bytes.push(byteOf.get(letter)!);
        else bytes.push(byteOf.get(base)!, ...Array.from(marks.matchAll(tones), ([mark]) => byteOf.get(mark)!));
      }
      return Buffer.from(bytes);
    };
    const meta = '<meta http-equiv="Content-Type" content="text/html; charset=windows-1258">';
    const legacy = encode1258(`<html><head>${meta}</head><body>${page(law)}</body></html>`);
    expect(legacy.toString('latin1')).toContain('\xcc'); // a combining grave accent: decomposed text
    const read = await extractText(legacy, 'html');
    expect(read).toBe(law.replace('\n', '\n\n'));
    expect(read).toBe(read.normalize('NFC'));
    const latin = Buffer.from('<meta charset="ISO-8859-1"><p>Caf\xe9 cr\xe8me</p>', 'latin1');
    expect(await extractText(latin, 'html')).toBe('Café crème');
    // A page saved as UTF-8 that kept the <meta> of its source: valid UTF-8 is read as UTF-8.
    expect(await extractText(Buffer.from(`<meta charset="windows-1258"><p>${law}</p>`), 'html')).toBe(
      law.replace('\n', ' '),
    );
    await expect(
      extractText(Buffer.from('<meta charset="x-klingon"><p>Caf\xe9</p>', 'latin1'), 'html'),
    ).rejects.toMatchObject({
      reason: 'unreadable',
      message:
        'The HTML document declares the character encoding "x-klingon", which is not supported: convert it to UTF-8',
    });
    // Without a byte order mark or a <meta>, text that is not UTF-8 is refused, saying what to do.
    for (const format of ['txt', 'md', 'html'] as const) {
      await expect(extractText(Buffer.from('Caf\xe9', 'latin1'), format)).rejects.toMatchObject({
        reason: 'unreadable',
        message:
          'The file is not valid UTF-8 text: convert it to UTF-8 (a UTF-16 file needs its byte order mark; an HTML file may name its encoding in <meta charset>)',
      });
    }
    // UTF-16 whose byte order mark is followed by half of a surrogate pair is not UTF-16.
    await expect(extractText(Buffer.from([0xff, 0xfe, 0x00, 0xd8, 0x41, 0x00]), 'txt')).rejects.toMatchObject({
      message: 'The file is not valid utf-16le text: convert it to UTF-8',
    });
  });

  it('refuses a .docx without a main part, or whose relationships or document are not XML, as unreadable, in one line', async () => {
    const real = corpus.find((f) => f.fileName.endsWith('.docx'))!.buffer;
    const damaged = async (part: string): Promise<Buffer> => {
      const zip = await JSZip.loadAsync(real);
      zip.file(part, '<Relationships><broken');
      return zip.generateAsync({ type: 'nodebuffer' });
    };
    const onlyText = new JSZip().file('hello.txt', 'xin chào');
    // The relationships were parsed by the bounds check before mammoth's conversion: their errors were 500s.
    const xmlError =
      'error: [xmldom error] element parse error: Error: Hierarchy request error: Only one element can be added and only after doctype';
    const cases: Array<[string, Buffer, string]> = [
      [
        'a zip of one text file',
        await onlyText.generateAsync({ type: 'nodebuffer' }),
        'Could not find main document part. Are you sure this is a valid .docx file?',
      ],
      ['broken _rels/.rels', await damaged('_rels/.rels'), xmlError],
      ['broken word/_rels/document.xml.rels', await damaged('word/_rels/document.xml.rels'), xmlError],
      ['broken word/document.xml', await damaged('word/document.xml'), xmlError],
    ];
    for (const [label, docx, reason] of cases) {
      const refused = await extractText(docx, 'docx').then(
        () => 'read',
        (error: unknown) => error,
      );
      expect({ label, refused }).toEqual({
        label,
        refused: expect.objectContaining({
          name: 'ExtractionError',
          reason: 'unreadable',
          message: `The file is not a readable .docx document (${reason})`,
        }),
      });
    }
  });
});

describe('text extraction on hostile input', () => {
  it('reads a PDF in a worker that is stopped mid-page at the time budget, and whose heap is bounded', async () => {
    expect((await extractText(pdfOfOneLongPage(1000), 'pdf')).split('\n')).toHaveLength(1000);
    // One page that pdf.js reads in one go, for 3 s or more here: before the worker, the budget was
    // checked between pages only, and this page was read to its end, holding the event loop meanwhile.
    const page = pdfOfOneLongPage(400_000);
    await expect(extractText(page, 'pdf', { ...EXTRACTION_LIMITS, readTimeoutMs: 500 })).rejects.toMatchObject({
      reason: 'too-slow',
      // Stopped on the page, or before it when the worker took the whole budget to start.
      message: expect.stringMatching(
        /^The PDF took more than 0\.5 s to read( \(page 1 of 1\))?: split the document or send its text$/,
      ) as string,
    });
    await expect(extractText(page, 'pdf', { ...EXTRACTION_LIMITS, readerHeapMb: 16 })).rejects.toMatchObject({
      reason: 'too-large',
      message: 'The PDF needs more than 16 MB of memory to read (page 1 of 1): split the document or send its text',
    });
    // The reader is stopped either way; the next file reads as before.
    expect(await extractText(pdfOfOneLongPage(2), 'pdf')).toBe('ab\ncd');
  });

  it('tidies a line with a million spaces inside at once (a regular expression took minutes)', async () => {
    expect(await textOf(`a${' '.repeat(1_000_000)}b \t`, 'txt')).toBe(`a${' '.repeat(1_000_000)}b`);
  });

  it("joins a PDF's pages in time linear in their text, whatever their lines hold", () => {
    const million = 1_000_000;
    const pages = [
      `${'\n'.repeat(million)}a${' '.repeat(million)}`,
      `B ${' \t'.repeat(million)}.${')'.repeat(million)}`,
      `${' '.repeat(million)}c${'0 '.repeat(million)}`,
      ...Array.from({ length: 10_000 }, (_, i) => `Header\nTop ${i}\nBody ${i}.\nEnd ${i}\n${i + 1}`),
    ];
    const text = joinPdfPages(pages);
    expect(text.startsWith(`a${' '.repeat(million)}\n\nB `)).toBe(true);
    expect(text.endsWith('\n\nBody 9998.\n\nBody 9999.')).toBe(true);
  });

  it('reads HTML nested up to HTML_MAX_DEPTH deep, and refuses deeper nesting as unreadable', async () => {
    const nested = (n: number) => `<div>${'<span>'.repeat(n)}x${'</span>'.repeat(n)}</div><p>y</p>`;
    expect(await textOf(nested(HTML_MAX_DEPTH - 1), 'html')).toBe('x\n\ny');
    await expect(textOf(nested(100_000), 'html')).rejects.toMatchObject({
      reason: 'unreadable',
      message: `The HTML document nests elements more than ${HTML_MAX_DEPTH} deep (malformed markup?): convert it to text first`,
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
      message: `The .docx document unpacks to more than ${DOCX_XML_MAX_BYTES} bytes of XML: split the document or send its text`,
    });
  });

  it('runs at most READERS_AT_ONCE readers at once: a file that waits its whole time budget for one is refused as busy', async () => {
    const slow = pdfOfOneLongPage(400_000);
    // Each holds a reader until its page is read (3 s or more here) or its 2 s budget stops it.
    const holding = Array.from({ length: READERS_AT_ONCE }, () =>
      extractText(slow, 'pdf', { ...EXTRACTION_LIMITS, readTimeoutMs: 2000 }).catch((error: unknown) => error),
    );
    await expect(
      extractText(pdfOfOneLongPage(2), 'pdf', { ...EXTRACTION_LIMITS, readTimeoutMs: 300 }),
    ).rejects.toMatchObject({
      reason: 'busy',
      message: `The service is reading ${READERS_AT_ONCE} other files and none finished within 0.3 s: retry shortly`,
    });
    // A file that may wait long enough gets the first reader that comes free.
    const waiting = extractText(pdfOfOneLongPage(2), 'pdf');
    await Promise.all(holding);
    expect(await waiting).toBe('ab\ncd');
  });

  it("answers a reader that cannot start as the service's failure (a 500), not the file's", async () => {
    const missing = new URL('./no-such-reader.worker.mjs', import.meta.url);
    const failure = await readInWorker(
      {
        script: missing,
        buffer: Buffer.from('x'),
        workerData: {},
        what: 'The PDF',
        interpret: () => ({ text: 'never' }),
      },
      EXTRACTION_LIMITS,
    ).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(Error);
    expect(failure).not.toBeInstanceOf(ExtractionError);
    expect((failure as Error).message).toMatch(/^The PDF reader could not start: Cannot find module /);
  });

  it('stops reading HTML between two slices once its budget has passed, counted from when its reading began', async () => {
    const html = '<p>Điều khoản</p>'.repeat(20_000); // 340,000 characters: six slices
    const longAgo = performance.now() - 2000;
    await expect(htmlToText(html, { readTimeoutMs: 1000, startedAt: longAgo })).rejects.toMatchObject({
      reason: 'too-slow',
      message: 'The HTML document took more than 1 s to read (malformed markup?): convert it to text first',
    });
    // A .docx's HTML shares the budget its worker began (docxToText), and the message names the .docx.
    await expect(
      htmlToText(html, { readTimeoutMs: 1000, startedAt: longAgo, what: 'The .docx document', advice: ': split it' }),
    ).rejects.toMatchObject({ message: 'The .docx document took more than 1 s to read: split it' });
    // Within its budget the same document is read whole; one slice is never stopped.
    expect((await htmlToText(html, { readTimeoutMs: 60_000 })).match(/Điều khoản/g)).toHaveLength(20_000);
    expect((await htmlToText('<p>a</p>', { readTimeoutMs: 1000, startedAt: longAgo })).trim()).toBe('a');
  });

  it('converts a .docx in a worker whose heap and time are bounded, once the file passed its bounds check', async () => {
    const zip = new JSZip();
    zip.file(
      'word/document.xml',
      `<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>${'<w:p><w:r><w:t>Điều khoản</w:t></w:r></w:p>'.repeat(40_000)}</w:body></w:document>`,
    );
    // 40,000 paragraphs: within DOCX_PARAGRAPHS_MAX, so mammoth is given the file.
    const docx = await zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
    expect((await extractText(docx, 'docx')).split('\n\n')).toHaveLength(40_000);
    await expect(extractText(docx, 'docx', { ...EXTRACTION_LIMITS, readerHeapMb: 16 })).rejects.toMatchObject({
      reason: 'too-large',
      message: 'The .docx document needs more than 16 MB of memory to read: split the document or send its text',
    });
    // Less time than the worker takes to start: stopped before mammoth is done.
    await expect(extractText(docx, 'docx', { ...EXTRACTION_LIMITS, readTimeoutMs: 20 })).rejects.toMatchObject({
      reason: 'too-slow',
      message: 'The .docx document took more than 0.02 s to read: split the document or send its text',
    });
  });

  it('counts paragraphs however the XML spells them, in every part, and bounds all elements', async () => {
    const W = 'http://schemas.openxmlformats.org/wordprocessingml/2006/main';
    const zipOf = async (files: Record<string, string>): Promise<Buffer> => {
      const zip = new JSZip();
      for (const [name, content] of Object.entries(files)) zip.file(name, content);
      return zip.generateAsync({ type: 'nodebuffer', compression: 'DEFLATE' });
    };
    const over = DOCX_PARAGRAPHS_MAX + 1;
    const refusedParagraphs = {
      reason: 'too-large',
      message: `The .docx document has ${over} paragraphs, more than the ${DOCX_PARAGRAPHS_MAX} read from one file: split the document or send its text`,
    };
    const cases: Array<[string, Record<string, string>]> = [
      // A line break after the name is XML too.
      [
        'a newline after w:p',
        { 'word/document.xml': `<w:document xmlns:w="${W}"><w:body>${'<w:p\n/>'.repeat(over)}</w:body></w:document>` },
      ],
      // mammoth maps elements by namespace, not by prefix.
      [
        'the default namespace',
        { 'word/document.xml': `<document xmlns="${W}"><body>${'<p/>'.repeat(over)}</body></document>` },
      ],
      [
        'another prefix',
        { 'word/document.xml': `<x:document xmlns:x="${W}"><x:body>${'<x:p/>'.repeat(over)}</x:body></x:document>` },
      ],
      // mammoth finds the main part through _rels/.rels, under any name, beside a small decoy.
      [
        'another prefix, not ASCII',
        { 'word/document.xml': `<é:document xmlns:é="${W}"><é:body>${'<é:p/>'.repeat(over)}</é:body></é:document>` },
      ],
      // à is C3 A0 in UTF-8, and A0 a blank to \s.
      [
        'a prefix holding à',
        { 'word/document.xml': `<à:document xmlns:à="${W}"><à:body>${'<à:p/>'.repeat(over)}</à:body></à:document>` },
      ],
      [
        'a paragraph name ended by U+0080',
        {
          'word/document.xml': `<w:document xmlns:w="${W}"><w:body>${'<w:p\u0080/>'.repeat(over)}</w:body></w:document>`,
        },
      ],
      // A decoy relationship in a comment, which mammoth's XML reader skips.
      [
        'a decoy relationship in a comment',
        {
          '_rels/.rels':
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><!-- <Relationship Id="r0" ' +
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/> -->' +
            '<Relationship Id="r1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" ' +
            'Target="word/main.bin"/></Relationships>',
          'word/document.xml': `<w:document xmlns:w="${W}"><w:body><w:p/></w:body></w:document>`,
          'word/main.bin': `<w:document xmlns:w="${W}"><w:body>${'<w:p/>'.repeat(over - 1)}</w:body></w:document>`,
        },
      ],
      // mammoth finds the main part through _rels/.rels, under any name (entities decoded, in any
      // script), whatever its first bytes, beside a small decoy.
      ...[
        ['a main part named otherwise', 'word/main.bin', 'word/main.bin', ''],
        ['a main part named with an entity', 'word/m&#97;in.bin', 'word/main.bin', ''],
        ['a main part named in Vietnamese', '/word/chính.bin', 'word/chính.bin', ''],
        ['a main part after 100 blanks', 'word/main.bin', 'word/main.bin', ' '.repeat(100)],
      ].map(([label, target, path, lead]): [string, Record<string, string>] => [
        label,
        {
          '_rels/.rels':
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="r1" ' +
            `Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="${target}"/></Relationships>`,
          'word/document.xml': `<w:document xmlns:w="${W}"><w:body><w:p/></w:body></w:document>`,
          [path]: `${lead}<w:document xmlns:w="${W}"><w:body>${'<w:p/>'.repeat(over - 1)}</w:body></w:document>`,
        },
      ]),
    ];
    for (const [label, files] of cases) {
      const refused = await extractText(await zipOf(files), 'docx').then(
        () => 'read',
        (error: unknown) => error,
      );
      expect({ label, refused }).toEqual({ label, refused: expect.objectContaining(refusedParagraphs) });
    }
    // Few paragraphs of very many elements (1,000,000 empty runs took mammoth 10 s and 760 MB).
    const runs = await zipOf({
      'word/document.xml': `<w:document xmlns:w="${W}"><w:body>${`<w:p>${'<w:r/>'.repeat(DOCX_ELEMENTS_MAX)}</w:p>`}</w:body></w:document>`,
    });
    await expect(extractText(runs, 'docx')).rejects.toMatchObject({
      reason: 'too-large',
      message: `The .docx document has ${DOCX_ELEMENTS_MAX + 3} XML elements, more than the ${DOCX_ELEMENTS_MAX} read from one file: split the document or send its text`,
    });
    // Images, an SVG figure among them, are neither counted nor read (mammoth is told not to).
    const fine = await zipOf({
      'word/document.xml': `<w:document xmlns:w="${W}"><w:body><w:p><w:r><w:t>Điều 1</w:t></w:r></w:p></w:body></w:document>`,
      'word/media/image1.png': '\x89PNG' + '<p/>'.repeat(100_000),
      'word/media/figure.svg': `<svg xmlns="http://www.w3.org/2000/svg">${'<text/>'.repeat(DOCX_ELEMENTS_MAX + 1)}</svg>`,
    });
    expect(await extractText(fine, 'docx')).toBe('Điều 1');
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
