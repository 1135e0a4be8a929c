import { Document, HeadingLevel, Packer, Paragraph } from 'docx';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { deflateSync } from 'node:zlib';

/** One file of the test corpus, built in memory. */
export interface CorpusFile {
  fileName: string;
  buffer: Buffer;
  mimeType: string;
  /** What the file is about (each file has its own topic). */
  topic: string;
  /** A query whose best-matching chunk is in this file (it shares its distinctive sentence's words). */
  question: string;
  /** The file's distinctive sentence, as it appears in the extracted text. */
  sentence: string;
}

/** A Vietnamese legal text with Chương / Mục / Điều / khoản / điểm (plain text). */
export const LEGAL_SENTENCE =
  'Người nuôi ong mật phải đăng ký đàn ong với Ủy ban nhân dân cấp xã trước ngày 31 tháng 3 hằng năm.';
export const LEGAL_TEXT = `LUẬT NUÔI ONG MẬT

Chương I
QUY ĐỊNH CHUNG

Điều 1. Phạm vi điều chỉnh
Luật này quy định về hoạt động nuôi ong mật, khai thác và tiêu thụ mật ong trên lãnh thổ Việt Nam.

Điều 2. Giải thích từ ngữ
Trong Luật này, các từ ngữ dưới đây được hiểu như sau:
1. Đàn ong là tập hợp ong thợ, ong đực và một ong chúa sống trong cùng một thùng.
2. Trại ong là nơi đặt từ mười thùng ong trở lên.

Chương II
ĐĂNG KÝ VÀ QUẢN LÝ ĐÀN ONG

Mục 1
ĐĂNG KÝ

Điều 3. Đăng ký đàn ong
1. ${LEGAL_SENTENCE}
2. Hồ sơ đăng ký gồm:
a) Tờ khai số lượng thùng ong;
b) Sơ đồ vị trí đặt trại ong;
c) Bản sao giấy tờ tùy thân của chủ trại.

Mục 2
PHÒNG BỆNH

Điều 4. Phòng bệnh cho đàn ong
Chủ trại ong phải kiểm tra bệnh thối ấu trùng ít nhất hai lần mỗi mùa hoa.
`;

export const MARKDOWN_SENTENCE = 'Kính đèn hải đăng phải được lau bằng cồn isopropyl mỗi tuần một lần.';
export const MARKDOWN_TEXT = `# Sổ tay bảo dưỡng hải đăng

Tài liệu này dành cho nhân viên trực đèn biển.

## Bảo dưỡng kính

${MARKDOWN_SENTENCE} Không dùng khăn có sợi len.

## Nguồn điện

Ắc quy dự phòng phải được sạc đầy trước mỗi mùa bão.

### Máy phát

Máy phát diesel chạy thử mười lăm phút vào sáng thứ hai.
`;

export const HTML_SENTENCE = 'Cà phê phin ngon nhất khi nước sôi được để nguội đúng chín mươi hai độ.';
export const HTML_TEXT = `<!doctype html>
<html><head><title>Pha cà phê</title><style>body { color: red }</style></head>
<body>
  <script>console.log('không phải nội dung');</script>
  <h1>Quy trình pha cà phê phin</h1>
  <p>Chuẩn bị phin nhôm, cà phê xay vừa và ly thủy tinh.</p>
  <h2>Nhiệt độ nước</h2>
  <p>${HTML_SENTENCE}</p>
  <h2>Thời gian chiết</h2>
  <ul><li>Ủ cà phê ba mươi giây.</li><li>Rót nước lần hai và chờ năm phút.</li></ul>
</body></html>`;

export const DOCX_SENTENCE = 'Ruộng lúa trên đất phèn cần được rửa phèn bằng nước mưa đầu mùa trước khi gieo sạ.';
export const PDF_SENTENCE =
  'Thermal drones measure glacier surface melt every fourteen days at the Vatnajokull station.';

async function makeDocx(): Promise<Buffer> {
  const doc = new Document({
    sections: [
      {
        children: [
          new Paragraph({ text: 'Canh tác lúa trên đất phèn', heading: HeadingLevel.HEADING_1 }),
          new Paragraph({ text: 'Hướng dẫn dành cho nông dân vùng Đồng Tháp Mười.' }),
          new Paragraph({ text: 'Cải tạo đất', heading: HeadingLevel.HEADING_2 }),
          new Paragraph({ text: DOCX_SENTENCE }),
          new Paragraph({ text: 'Bón phân', heading: HeadingLevel.HEADING_2 }),
          new Paragraph({ text: 'Bón vôi bột mười ngày trước khi bón lân để giảm độ chua.' }),
        ],
      },
    ],
  });
  return Packer.toBuffer(doc);
}

/** ASCII only: the PDF standard fonts cannot encode Vietnamese. */
async function makePdf(): Promise<Buffer> {
  const pdf = await PDFDocument.create();
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  const lines = [
    'Glacier Monitoring Field Manual',
    '',
    'Chapter 1. Survey method',
    PDF_SENTENCE,
    'Each flight covers the outlet tongue and the ablation zone.',
    '',
    'Chapter 2. Data handling',
    'Raw infrared frames are stored on encrypted disks for ten years.',
  ];
  const page = pdf.addPage([612, 792]);
  lines.forEach((line, i) => {
    if (line !== '') page.drawText(line, { x: 40, y: 740 - i * 18, size: 11, font });
  });
  return Buffer.from(await pdf.save());
}

/** A PDF header followed by garbage: a file that claims to be a PDF and is not. */
export function corruptPdf(): Buffer {
  return Buffer.from('%PDF-1.7\n%garbage that is not a PDF body\n', 'latin1');
}

/**
 * A one-page PDF of `lines` lines of text, each its own text item for pdf.js, in a compressed content
 * stream: a few KB that pdf.js unpacks and parses in one go (100,000 lines took about 2 s here).
 */
export function pdfOfOneLongPage(lines: number): Buffer {
  const content = deflateSync(
    Buffer.from(`BT /F1 12 Tf 10 700 Td ${'0 -14 Td (ab) Tj 0 14 Td (cd) Tj '.repeat(lines / 2)}ET`),
  );
  const stream = Buffer.concat([
    Buffer.from(`<< /Length ${content.length} /Filter /FlateDecode >>\nstream\n`, 'latin1'),
    content,
    Buffer.from('\nendstream', 'latin1'),
  ]);
  return pdfOfObjects([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>',
    '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>',
    stream,
  ]);
}

/**
 * A one-page PDF encrypted with a password to open it (the standard security handler, RC4 40-bit):
 * its /U entry matches no empty password, so pdf.js asks for one. Nothing else in it is encrypted:
 * it holds no string or stream pdf.js reads before asking.
 */
export function encryptedPdf(): Buffer {
  const hex = (byte: string, count: number): string => `<${byte.repeat(count)}>`;
  return pdfOfObjects(
    [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
      `<< /Filter /Standard /V 1 /R 2 /O ${hex('11', 32)} /U ${hex('22', 32)} /P -4 >>`,
    ],
    `/Encrypt 4 0 R /ID [${hex('ab', 16)} ${hex('ab', 16)}]`,
  );
}

/** A PDF of these objects (numbered from 1, the first the catalog) with its cross-reference table. */
function pdfOfObjects(bodies: Array<string | Buffer>, trailer = ''): Buffer {
  const objects = bodies.map((body, i) =>
    Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, 'latin1'), Buffer.from(body), Buffer.from('\nendobj\n', 'latin1')]),
  );
  const header = Buffer.from('%PDF-1.4\n', 'latin1');
  const offsets: number[] = [];
  let at = header.length;
  for (const object of objects) {
    offsets.push(at);
    at += object.length;
  }
  const size = objects.length + 1;
  const xref = Buffer.from(
    `xref\n0 ${size}\n0000000000 65535 f \n${offsets.map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}` +
      `trailer\n<< /Size ${size} /Root 1 0 R ${trailer}>>\nstartxref\n${at}\n%%EOF\n`,
    'latin1',
  );
  return Buffer.concat([header, ...objects, xref]);
}

/** Five small documents, one per format, each on its own topic with one distinctive sentence. */
export async function makeCorpus(): Promise<CorpusFile[]> {
  return [
    {
      fileName: 'luat-nuoi-ong.txt',
      buffer: Buffer.from(LEGAL_TEXT, 'utf8'),
      mimeType: 'text/plain',
      topic: 'beekeeping law',
      question: 'Người nuôi ong mật phải đăng ký đàn ong với ai và trước ngày nào?',
      sentence: LEGAL_SENTENCE,
    },
    {
      fileName: 'bao-duong-hai-dang.md',
      buffer: Buffer.from(MARKDOWN_TEXT, 'utf8'),
      mimeType: 'text/markdown',
      topic: 'lighthouse maintenance',
      question: 'Kính đèn hải đăng được lau bằng gì?',
      sentence: MARKDOWN_SENTENCE,
    },
    {
      fileName: 'pha-ca-phe.html',
      buffer: Buffer.from(HTML_TEXT, 'utf8'),
      mimeType: 'text/html',
      topic: 'coffee brewing',
      question: 'Nước pha cà phê phin nên để nguội bao nhiêu độ?',
      sentence: HTML_SENTENCE,
    },
    {
      fileName: 'lua-dat-phen.docx',
      buffer: await makeDocx(),
      mimeType: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      topic: 'rice on acid sulfate soil',
      question: 'Làm sao rửa phèn cho ruộng lúa trước khi gieo sạ?',
      sentence: DOCX_SENTENCE,
    },
    {
      fileName: 'glacier-monitoring.pdf',
      buffer: await makePdf(),
      mimeType: 'application/pdf',
      topic: 'glacier monitoring',
      question: 'How often do thermal drones measure glacier surface melt?',
      sentence: PDF_SENTENCE,
    },
  ];
}
