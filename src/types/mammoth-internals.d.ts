// mammoth's own part resolution and path helpers (lib/docx/docx-reader.js, lib/zipfile.js), which
// it exports without declaring them: the .docx bounds count what mammoth will read
// (src/ingest/text-extraction.ts).
declare module 'mammoth/lib/docx/docx-reader.js' {
  interface DocxFile {
    exists(path: string): boolean;
    read(path: string, encoding?: string): Promise<string | Uint8Array>;
  }
  export function _findPartPaths(docxFile: DocxFile): Promise<Record<string, string>>;
}
declare module 'mammoth/lib/zipfile.js' {
  export function splitPath(path: string): { dirname: string; basename: string };
  export function joinPath(...paths: string[]): string;
}
