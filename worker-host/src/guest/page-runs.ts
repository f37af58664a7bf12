/** Which 4 KiB pages of a memory hold data: as runs of data pages (for copying) or as a zero-page bitmap (for the snapshot descriptor and page stores). */
import { PAGE_SIZE } from '@flurry/core/basics';

/** [firstPage, endPage) pairs of the pages holding non-zero bytes. */
export function findDataRuns(bytes: Uint8Array): Uint32Array {
  const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  const wordsPerPage = PAGE_SIZE / 4;
  const pages = bytes.length / PAGE_SIZE;
  const runs: number[] = [];
  let runStart = -1;
  for (let page = 0; page < pages; page++) {
    let hasData = false;
    for (let w = page * wordsPerPage, end = w + wordsPerPage; w < end; w++) {
      if (words[w] !== 0) {
        hasData = true;
        break;
      }
    }
    if (hasData && runStart < 0) runStart = page;
    else if (!hasData && runStart >= 0) {
      runs.push(runStart, page);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push(runStart, pages);
  return Uint32Array.from(runs);
}

/** Data runs from a zero-page bitmap (bit p of byte p >> 3, LSB first, set when page p is zero). */
export function dataRunsFromZeroBitmap(zeroPages: Uint8Array, pages: number): Uint32Array {
  const runs: number[] = [];
  let runStart = -1;
  for (let page = 0; page < pages; page++) {
    const zero = (zeroPages[page >> 3] & (1 << (page & 7))) !== 0;
    if (!zero && runStart < 0) runStart = page;
    else if (zero && runStart >= 0) {
      runs.push(runStart, page);
      runStart = -1;
    }
  }
  if (runStart >= 0) runs.push(runStart, pages);
  return Uint32Array.from(runs);
}

/** The zero-page bitmap of a memory of `pages` pages whose data pages are `dataRuns`. */
export function zeroBitmapFromDataRuns(dataRuns: Uint32Array, pages: number): Uint8Array {
  const bitmap = new Uint8Array(Math.ceil(pages / 8)).fill(0xff);
  // Bits past the last page stay clear, as in @flurry/core's describeMemory.
  if (pages % 8 !== 0) bitmap[bitmap.length - 1] = (1 << (pages % 8)) - 1;
  for (let i = 0; i < dataRuns.length; i += 2) {
    for (let page = dataRuns[i]; page < dataRuns[i + 1]; page++) bitmap[page >> 3] &= ~(1 << (page & 7));
  }
  return bitmap;
}
