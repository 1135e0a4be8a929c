import fc from 'fast-check';
import { chunkText, type ChunkOptions, markdownHeading, splitText, type TextChunk } from './chunker.js';

const LEGAL = `LUẬT NUÔI ONG MẬT

Chương I
QUY ĐỊNH CHUNG

Điều 1. Phạm vi điều chỉnh
Luật này quy định về hoạt động nuôi ong mật, khai thác và tiêu thụ mật ong.

Điều 2. Giải thích từ ngữ
Trong Luật này, các từ ngữ dưới đây được hiểu như sau:
1. Đàn ong là tập hợp ong thợ, ong đực và một ong chúa sống trong cùng một thùng gỗ.
2. Trại ong là nơi đặt từ mười thùng ong trở lên, cách khu dân cư ít nhất năm mươi mét.

Chương II
ĐĂNG KÝ VÀ QUẢN LÝ

Mục 1
ĐĂNG KÝ

Điều 3. Đăng ký đàn ong
1. Người nuôi ong mật phải đăng ký đàn ong với Ủy ban nhân dân cấp xã trước ngày 31 tháng 3.
2. Hồ sơ đăng ký gồm:
a) Tờ khai số lượng thùng ong của từng trại;
b) Sơ đồ vị trí đặt trại ong và đường vào trại;
đ) Bản sao giấy tờ tùy thân của chủ trại ong.

Mục 2
PHÒNG BỆNH

Điều 4. Phòng bệnh
Chủ trại ong phải kiểm tra bệnh thối ấu trùng ít nhất hai lần mỗi mùa hoa.
`;

function chunks(text: string, options: ChunkOptions): TextChunk[] {
  return [...chunkText(text, options)];
}

function find(list: TextChunk[], needle: string): TextChunk {
  const found = list.find((c) => c.content.includes(needle));
  if (!found) throw new Error(`no chunk contains "${needle}"`);
  return found;
}

/** Letters and digits only: what every chunking must keep, whatever whitespace it drops. */
function skeleton(text: string): string {
  return text.normalize('NFC').replace(/[^\p{L}\p{N}]/gu, '');
}

describe('chunkText: Vietnamese legal structure', () => {
  const small = { chunkSize: 200, chunkOverlap: 40 };

  it('gives each article, clause and point its hierarchy, level and section title', () => {
    const list = chunks(LEGAL, small);
    expect(find(list, 'Phạm vi điều chỉnh').metadata).toEqual({
      hierarchy: 'Chương I > Điều 1',
      level: 'article',
      section_title: 'Điều 1. Phạm vi điều chỉnh',
    });
    // Điều 3 does not fit: its heading and its first clause are packed together, the second clause
    // (with its points) is a chunk of its own.
    expect(find(list, 'Ủy ban nhân dân cấp xã').metadata).toEqual({
      hierarchy: 'Chương II > Mục 1 > Điều 3',
      level: 'article',
      section_title: 'Điều 3. Đăng ký đàn ong',
    });
    expect(find(list, 'Hồ sơ đăng ký').metadata).toEqual({
      hierarchy: 'Chương II > Mục 1 > Điều 3 > Khoản 2',
      level: 'clause',
      section_title: 'Điều 3. Đăng ký đàn ong',
    });
    // Mục 2 fits whole; its only content is Điều 4, which therefore labels the chunk.
    expect(find(list, 'thối ấu trùng').metadata).toEqual({
      hierarchy: 'Chương II > Mục 2 > Điều 4',
      level: 'article',
      section_title: 'Điều 4. Phòng bệnh',
    });
    expect(find(list, 'LUẬT NUÔI ONG MẬT').metadata).toEqual({ hierarchy: '', level: 'paragraph' });
  });

  it('puts a heading-only chapter or section at the start of its first chunk, not in a chunk of its own', () => {
    const list = chunks(LEGAL, small);
    expect(list.some((c) => c.content.trim() === 'Chương I\nQUY ĐỊNH CHUNG')).toBe(false);
    expect(find(list, 'Phạm vi điều chỉnh').content).toMatch(/^Chương I\nQUY ĐỊNH CHUNG\nĐiều 1\./);
    expect(find(list, 'Mục 2').content).toMatch(/^Mục 2\nPHÒNG BỆNH\n+Điều 4\./);
  });

  it('splits a large clause into its points (điểm a, b, đ)', () => {
    const list = chunks(LEGAL, { chunkSize: 60, chunkOverlap: 10 });
    expect(find(list, 'đường vào trại').metadata.hierarchy).toBe('Chương II > Mục 1 > Điều 3 > Khoản 2 > Điểm b');
    expect(find(list, 'giấy tờ tùy thân').metadata).toMatchObject({
      hierarchy: 'Chương II > Mục 1 > Điều 3 > Khoản 2 > Điểm đ',
      level: 'point',
      section_title: 'Điều 3. Đăng ký đàn ong',
    });
  });

  it('keeps a whole chapter in one chunk when it fits', () => {
    const list = chunks(LEGAL, { chunkSize: 2000, chunkOverlap: 0 });
    expect(list).toHaveLength(1);
    expect(list[0].metadata).toEqual({ hierarchy: '', level: 'paragraph' });
    const perChapter = chunks(LEGAL, { chunkSize: 480, chunkOverlap: 0 });
    expect(find(perChapter, 'Phạm vi điều chỉnh').metadata).toEqual({
      hierarchy: 'Chương I',
      level: 'chapter',
      section_title: 'Chương I. QUY ĐỊNH CHUNG',
    });
  });

  it('packs small clauses of a large article together under the article', () => {
    const article = `Điều 7. Nghĩa vụ\n${Array.from({ length: 12 }, (_, i) => `${i + 1}. Nghĩa vụ số ${i + 1} của chủ trại.`).join('\n')}`;
    const list = chunks(article, { chunkSize: 200, chunkOverlap: 0 });
    expect(list.length).toBeGreaterThan(1);
    expect(list.length).toBeLessThan(12);
    expect(list[0].content).toMatch(/^Điều 7\. Nghĩa vụ\n1\. /);
    expect(list[0].metadata).toEqual({ hierarchy: 'Điều 7', level: 'article', section_title: 'Điều 7. Nghĩa vụ' });
    expect(skeleton(list.map((c) => c.content).join(''))).toBe(skeleton(article));
  });

  it('recognises units written in capitals, Phần, and arabic chapter numbers', () => {
    const text = 'PHẦN THỨ NHẤT\nNHỮNG QUY ĐỊNH CHUNG\nCHƯƠNG 2\nĐIỀU 5. Áp dụng\nNội dung điều năm.';
    const [only] = chunks(text, { chunkSize: 1000, chunkOverlap: 0 });
    expect(only.content).toBe(text);
    expect(only.metadata).toEqual({
      hierarchy: 'Phần THỨ NHẤT > Chương 2 > Điều 5',
      level: 'article',
      section_title: 'ĐIỀU 5. Áp dụng',
    });
    const list = chunks(`${text}\n${'Thêm một câu dài. '.repeat(10)}`, { chunkSize: 100, chunkOverlap: 0 });
    expect(find(list, 'Nội dung điều năm').metadata).toMatchObject({
      hierarchy: 'Phần THỨ NHẤT > Chương 2 > Điều 5',
      level: 'article',
    });
  });

  it('bounds the section title every chunk of a unit carries: a heading line of megabytes is not copied into each', () => {
    // A flattened text: one line, "Điều 1." and then 200,000 characters, emoji among them.
    const line = `Điều 1. ${'Người sử dụng đất 😀 '.repeat(10_000)}`;
    const list = chunks(line, { chunkSize: 1000, chunkOverlap: 100 });
    expect(list.length).toBeGreaterThan(100);
    for (const chunk of list) {
      const title = chunk.metadata.section_title as string;
      expect(title.length).toBeLessThanOrEqual(300);
      expect(title.startsWith('Điều 1. Người sử dụng đất')).toBe(true);
      expect(title.endsWith('…')).toBe(true);
      expect(title.isWellFormed()).toBe(true);
    }
  });

  it('bounds the unit labels of the hierarchy every chunk carries: a number of megabytes is not copied into each', () => {
    // "Chương" and "Điều" numbers of 100,000 digits, then a text that makes many chunks of that unit.
    const digits = '1'.repeat(100_000);
    const text = `Chương ${digits}\nĐiều ${digits}. Phạm vi\n${'Người sử dụng đất có quyền. '.repeat(2_000)}`;
    const list = chunks(text, { chunkSize: 1000, chunkOverlap: 100 });
    expect(list.length).toBeGreaterThan(50);
    for (const chunk of list) {
      const [chapter, article] = chunk.metadata.hierarchy.split(' > ');
      expect(chapter).toMatch(/^Chương 1{60,}…$/);
      expect(article).toMatch(/^Điều 1{60,}…$/);
      expect(chapter.length).toBeLessThanOrEqual(80);
      expect(article.length).toBeLessThanOrEqual(80);
    }
  });

  it('does not take a sentence starting with "Điều 5 của" or a numbered list outside articles for units', () => {
    const text = `Điều 5 của Luật này áp dụng cho mọi trại.\n1. Mục thứ nhất của danh sách.\n${'Câu. '.repeat(40)}`;
    for (const c of chunks(text, { chunkSize: 100, chunkOverlap: 0 })) {
      expect(c.metadata).toEqual({ hierarchy: '', level: 'paragraph' });
    }
  });

  it('gives decomposed (NFD) Vietnamese the same chunks as NFC, in NFC', () => {
    const nfc = chunks(LEGAL, small);
    const nfd = chunks(LEGAL.normalize('NFD'), small);
    expect(nfd).toEqual(nfc);
    expect(nfd.every((c) => c.content === c.content.normalize('NFC'))).toBe(true);
  });
});

describe('chunkText: markdown', () => {
  const md = `# Sổ tay\n\nGiới thiệu ngắn.\n\n## Bảo dưỡng kính\n\n${'Lau kính bằng cồn mỗi tuần. '.repeat(8)}\n\n## Nguồn điện\n\nẮc quy sạc đầy.\n\n### Máy phát\n\nChạy thử mười lăm phút.\n`;

  it('follows headings: hierarchy of heading texts, levels heading1..heading6', () => {
    const list = chunks(md, { chunkSize: 150, chunkOverlap: 30 });
    expect(find(list, 'Giới thiệu').metadata).toEqual({
      hierarchy: 'Sổ tay',
      level: 'heading1',
      section_title: 'Sổ tay',
    });
    expect(find(list, 'Lau kính').metadata).toEqual({
      hierarchy: 'Sổ tay > Bảo dưỡng kính',
      level: 'heading2',
      section_title: 'Bảo dưỡng kính',
    });
    // A section that fits stays whole, its subsections included.
    expect(find(list, 'Chạy thử').metadata).toMatchObject({ hierarchy: 'Sổ tay > Nguồn điện', level: 'heading2' });
    expect(find(chunks(md, { chunkSize: 40, chunkOverlap: 0 }), 'Chạy thử').metadata).toMatchObject({
      hierarchy: 'Sổ tay > Nguồn điện > Máy phát',
      level: 'heading3',
    });
  });

  it('recognises legal units written as markdown headings', () => {
    const list = chunks(`## Chương I\n\n### Điều 1. Phạm vi\n\n${'Nội dung. '.repeat(30)}`, {
      chunkSize: 120,
      chunkOverlap: 0,
    });
    expect(list.every((c) => c.metadata.hierarchy === 'Chương I > Điều 1')).toBe(true);
    expect(list[0].metadata).toMatchObject({ level: 'article', section_title: 'Điều 1. Phạm vi' });
  });
});

describe('chunkText: a heading opens a chunk of its text, never one of its own', () => {
  const service = { chunkSize: 1000, chunkOverlap: 200 }; // INGEST_CHUNK_SIZE, INGEST_CHUNK_OVERLAP defaults
  const heading = 'Điều 7. Thu hồi đất vì mục đích quốc phòng, an ninh';

  it('joins an article heading to the start of a first clause that fits alone but not beside it', () => {
    const sentence = 'Nhà nước thu hồi đất để làm nơi đóng quân, trụ sở làm việc của đơn vị vũ trang. ';
    const clause = `1. ${sentence.repeat(12)}`.slice(0, 993).trimEnd();
    const text = `Chương VI\nTHU HỒI ĐẤT\n${heading}\n${clause}\n2. Khoản thứ hai ngắn.\n\nĐiều 8. Bồi thường\nNội dung.`;
    const list = chunks(text, service);
    expect(clause.length).toBeGreaterThan(1000 - heading.length);
    expect(list[0].content).toMatch(
      /^Chương VI\nTHU HỒI ĐẤT\nĐiều 7\. Thu hồi đất vì mục đích quốc phòng, an ninh\n1\. Nhà nước/,
    );
    expect(list[0].metadata).toMatchObject({ hierarchy: 'Chương VI > Điều 7 > Khoản 1', section_title: heading });
    for (const chunk of list) {
      expect(chunk.content.length).toBeLessThanOrEqual(1000);
      expect(skeleton(text)).toContain(skeleton(chunk.content));
    }
    // The clause is cut between its sentences, the rest of it in the next chunk.
    expect(list[0].content).toMatch(/\.$/);
    expect(find(list, 'Khoản thứ hai').metadata.hierarchy).toBe('Chương VI > Điều 7 > Khoản 2');
    expect(skeleton(list.map((c) => c.content).join(''))).toContain(skeleton(clause.slice(-300)));
  });

  it('joins a heading to the start of its own text when that text is split', () => {
    const body = 'Người sử dụng đất được Nhà nước giao đất có quyền chuyển nhượng. '.repeat(15).slice(0, 990);
    for (const text of [`${heading}\n${body}`, `# Quyền của người sử dụng đất\n\n${body}`]) {
      const list = chunks(text, service);
      expect(list.length).toBe(2);
      expect(list[0].content).toMatch(/\n+Người sử dụng đất/);
    }
    // Room for all but the last word of the clause: the heading takes what fits of it, not just its
    // "1." (which ends no sentence).
    const tight = `Chương I\nTHU HỒI ĐẤT\nĐiều 2. Đất thu hồi.\n1. Nhà nước thu hồi đất vì an ninh, bồi thường người dùng đất\n2. Đất.`;
    const [first] = chunks(tight, { chunkSize: 100, chunkOverlap: 0 });
    expect(first.content).toMatch(/\n1\. Nhà nước thu hồi đất vì an ninh, bồi thường người dùng$/);
  });

  it('never yields a chunk of headings alone when a text follows them (property)', () => {
    const words = (max: number): fc.Arbitrary<string> =>
      fc
        .array(fc.constantFrom('đất', 'quyền', 'người sử dụng', 'Nhà nước', 'thu hồi.', 'an ninh,', 'bồi thường'), {
          minLength: 1,
          maxLength: max,
        })
        .map((w) => w.join(' '));
    const body = fc.oneof(
      fc.array(words(60), { minLength: 1, maxLength: 3 }).map((cs) => cs.map((c, i) => `${i + 1}. ${c}`)),
      fc.array(words(80), { minLength: 1, maxLength: 3 }).map((ps) => ps.flatMap((p) => [p, ''])),
    );
    const article = fc
      .tuple(fc.nat({ max: 99 }), words(6), body)
      .map(([n, title, lines]) => [`Điều ${n}. ${title}`, ...lines]);
    const chapter = fc
      .tuple(
        fc.constantFrom('Chương I', 'Chương II'),
        fc.constantFrom('QUY ĐỊNH CHUNG', 'THU HỒI ĐẤT'),
        fc.array(article, { minLength: 1, maxLength: 3 }),
      )
      .map(([label, title, articles]) => [label, title, ...articles.flat()]);
    const section = fc
      .tuple(fc.integer({ min: 1, max: 3 }), words(6), body)
      .map(([n, title, lines]) => [`${'#'.repeat(n)} ${title}`, '', ...lines]);
    const document = fc.oneof(
      fc.array(chapter, { minLength: 1, maxLength: 3 }),
      fc.array(section, { minLength: 1, maxLength: 4 }),
    );
    const isHeading = (line: string): boolean =>
      /^(Chương |Điều \d+\. |#+ )/u.test(line) || line === line.toLocaleUpperCase('vi');
    fc.assert(
      fc.property(
        document.map((parts) => parts.flat().join('\n')),
        fc.integer({ min: 120, max: 500 }),
        fc.integer({ min: 0, max: 49 }),
        (text, chunkSize, overlapPercent) => {
          const list = chunks(text, { chunkSize, chunkOverlap: Math.floor((chunkSize * overlapPercent) / 100) });
          for (const chunk of list) {
            expect(chunk.content.length).toBeLessThanOrEqual(chunkSize);
            expect(chunk.content.split('\n').every((line) => line === '' || isHeading(line))).toBe(false);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('chunkText: code fences', () => {
  const guide = [
    '# Khởi động dịch vụ',
    '',
    '## Bước 1. Cài đặt',
    '',
    'Chạy các lệnh sau trên máy chủ, theo đúng thứ tự, bằng tài khoản có quyền quản trị hệ thống:',
    '',
    '```bash',
    '# cài đặt thư viện',
    'npm install',
    '',
    '## không phải tiêu đề',
    '1. không phải khoản',
    '```',
    '',
    `${'Sau đó kiểm tra phiên bản. '.repeat(6)}`,
    '',
    '## Bước 2. Cấu hình',
    '',
    `${'Sửa tệp cấu hình cho đúng cổng. '.repeat(6)}`,
    '',
    '## Bước 3. Chạy',
    '',
    'Chạy dịch vụ.',
  ].join('\n');
  const block = '```bash\n# cài đặt thư viện\nnpm install\n\n## không phải tiêu đề\n1. không phải khoản\n```';

  it('takes no line inside a fence for a heading: later sections keep their hierarchy', () => {
    const list = chunks(guide, { chunkSize: 200, chunkOverlap: 40 });
    expect(find(list, 'cài đặt thư viện').metadata).toEqual({
      hierarchy: 'Khởi động dịch vụ > Bước 1. Cài đặt',
      level: 'heading2',
      section_title: 'Bước 1. Cài đặt',
    });
    expect(find(list, 'cổng').metadata).toEqual({
      hierarchy: 'Khởi động dịch vụ > Bước 2. Cấu hình',
      level: 'heading2',
      section_title: 'Bước 2. Cấu hình',
    });
    expect(find(list, 'Chạy dịch vụ').metadata.hierarchy).toBe('Khởi động dịch vụ > Bước 3. Chạy');
    // The block fits: one chunk holds it whole, though it has a blank line and the section is split.
    expect(find(list, 'npm install').content).toContain(block);
  });

  it('cuts a fence that does not fit between its lines, and ends it at a fence of the same character at least as long', () => {
    const code = Array.from({ length: 40 }, (_, i) => `# bước ${i}\necho "dòng ${i}"`).join('\n');
    // A ~~~~ fence is not closed by ``` nor by ~~~ (shorter); the info string may follow the opening.
    const text = `## Triển khai\n\n~~~~ sh title="deploy"\n${code}\n\`\`\`\n~~~\n~~~~~\n\n# Phụ lục\n\nHết.`;
    const list = chunks(text, { chunkSize: 150, chunkOverlap: 30 });
    for (const chunk of list) expect(chunk.content.length).toBeLessThanOrEqual(150);
    const inCode = list.filter((c) => c.content.includes('echo'));
    expect(inCode.length).toBeGreaterThan(3);
    for (const chunk of inCode) {
      expect(chunk.metadata).toEqual({ hierarchy: 'Triển khai', level: 'heading2', section_title: 'Triển khai' });
      // Whole lines of the block, not the sentences or words of a line.
      for (const line of chunk.content.split('\n')) expect(`\n${text}\n`).toContain(`\n${line}\n`);
    }
    expect(find(list, 'Hết.').metadata).toEqual({ hierarchy: 'Phụ lục', level: 'heading1', section_title: 'Phụ lục' });
  });

  it('starts no legal unit inside a fence, and takes a fence that never closes for text', () => {
    const sample = `Điều 9. Không phải điều\n1. Không phải khoản\na) không phải điểm\n${'Dòng mẫu. '.repeat(20)}\nChương II\n# Không phải tiêu đề`;
    const legal = `Điều 1. Mẫu tệp\n\`\`\`text\n${sample}\n\`\`\`\nHết mẫu.`;
    const list = chunks(legal, { chunkSize: 100, chunkOverlap: 0 });
    expect(list.length).toBeGreaterThan(2);
    for (const chunk of list) {
      expect(chunk.metadata).toEqual({ hierarchy: 'Điều 1', level: 'article', section_title: 'Điều 1. Mẫu tệp' });
    }
    // A row of tildes or backticks that nothing closes (a rule line in a law, a PDF's ornament) hides
    // nothing after it: CommonMark would run it to the end of the text.
    const ruled = chunks(
      `Chương I\nQUY ĐỊNH CHUNG\n~~~~~~~~~~~~~~~~~~~~\nĐiều 1. Phạm vi\nNội dung một.\nĐiều 2. Đối tượng\nNội dung hai.\nChương II\nĐiều 3. Hiệu lực\nNội dung ba.`,
      { chunkSize: 100, chunkOverlap: 0 },
    );
    expect(ruled.map((c) => c.metadata.hierarchy)).toEqual([
      'Chương I',
      'Chương I > Điều 1',
      'Chương I > Điều 2',
      'Chương II > Điều 3',
    ]);
    // Code in a line ("```x```") opens no fence: the heading after it is one.
    const inline = chunks(`# Một\n\`\`\`x\`\`\` là mã\n${'Câu. '.repeat(30)}\n# Hai\nNội dung hai.`, {
      chunkSize: 100,
      chunkOverlap: 0,
    });
    expect(find(inline, 'Nội dung hai').metadata.hierarchy).toBe('Hai');
  });
});

describe('chunkText and splitText: sizes and overlap', () => {
  it('splits a long paragraph on sentences, then words, then characters, within chunkSize', () => {
    const sentences = Array.from({ length: 30 }, (_, i) => `Câu số ${i} nói về mật ong rừng U Minh.`).join(' ');
    const list = splitText(sentences, { chunkSize: 120, chunkOverlap: 0 });
    expect(list.length).toBeGreaterThan(5);
    for (const c of list) {
      expect(c.length).toBeLessThanOrEqual(120);
      expect(c).toMatch(/^Câu số \d+/); // cut between sentences
      expect(c).toMatch(/\.$/);
    }
    const word = 'x'.repeat(250);
    expect(splitText(word, { chunkSize: 100, chunkOverlap: 0 })).toEqual([
      'x'.repeat(100),
      'x'.repeat(100),
      'x'.repeat(50),
    ]);
  });

  it('repeats at most chunkOverlap characters of whole words between consecutive pieces', () => {
    const words = Array.from({ length: 200 }, (_, i) => `từ${i}`).join(' ');
    const list = splitText(words, { chunkSize: 100, chunkOverlap: 30 });
    // About 1,200 characters in pieces of at most 100: many consecutive pairs to compare.
    expect(list.length).toBeGreaterThan(10);
    for (let i = 1; i < list.length; i++) {
      const previous = list[i - 1].split(' ');
      const current = list[i].split(' ');
      // The shared words: a suffix of the previous piece that starts the next one.
      let shared = 0;
      for (let k = 1; k <= Math.min(previous.length, current.length); k++) {
        if (previous.slice(-k).join(' ') === current.slice(0, k).join(' ')) shared = k;
      }
      expect(shared).toBeGreaterThan(0);
      expect(current.slice(0, shared).join(' ').length).toBeLessThanOrEqual(30);
    }
  });

  it('rejects an overlap that is not smaller than the chunk size', () => {
    expect(() => chunks('abc', { chunkSize: 100, chunkOverlap: 100 })).toThrow(RangeError);
  });

  it('never yields an empty chunk or one above chunkSize, and loses no text (property)', () => {
    const piece = fc.oneof(
      fc.constantFrom(
        'Chương IV',
        'Mục 2',
        'Điều 12.',
        'Điều 3. Tên',
        '1.',
        '2. Khoản',
        'a)',
        'đ) điểm',
        '# Tiêu đề',
        '###',
        '```',
        '~~~~ sh',
      ),
      fc.constantFrom('\n', '\n\n', ' ', '. ', '\t'),
      fc.string({ unit: fc.constantFrom('a', 'ă', 'ệ', 'Đ', ' ', '.', '\n', 'x', '😀'), maxLength: 300 }),
    );
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 40 }).map((parts) => parts.join('')),
        fc.integer({ min: 10, max: 400 }),
        fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 99 })),
        (text, chunkSize, overlapPercent) => {
          const chunkOverlap = Math.floor((chunkSize * overlapPercent) / 100);
          const list = chunks(text, { chunkSize, chunkOverlap });
          for (const c of list) {
            expect(c.content.trim()).not.toBe('');
            expect(c.content.length).toBeLessThanOrEqual(chunkSize);
          }
          // Each chunk is a stretch of the text; without overlap, together they are the whole text.
          const all = skeleton(text);
          for (const c of list) expect(all).toContain(skeleton(c.content));
          if (chunkOverlap === 0) expect(list.map((c) => skeleton(c.content)).join('')).toBe(all);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('markdownHeading', () => {
  /** The expression it replaces: the same answers, in time quadratic in a run of spaces. */
  const PREVIOUS = /^(#{1,6})\s+(.+?)(?:\s+#+)?\s*$/u;

  it('finds what the previous regular expression found, on any trimmed line', () => {
    const piece = fc.constantFrom('#', '##', ' ', '\t', '\u00a0', 'a', 'Điều', '#x', ' #', '1.');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (pieces) => {
        const line = pieces.join('').trim();
        const previous = PREVIOUS.exec(line);
        expect(markdownHeading(line)).toEqual(previous ? { hashes: previous[1], inner: previous[2] } : null);
      }),
      { numRuns: 3000 },
    );
  });

  it('reads a heading line with a million spaces in it at once', () => {
    const line = `# a${' '.repeat(1_000_000)}b ##`;
    expect(markdownHeading(line)).toEqual({ hashes: '#', inner: `a${' '.repeat(1_000_000)}b` });
  });
});
