// Parser for libiscsi's iscsi-test-cu (CUnit) verbose output, shared by the conformance and read-only runs.

export interface CuTest {
  suite: string;
  test: string;
  result: 'passed' | 'FAILED';
  skipped?: string;
}

/** Parses `iscsi-test-cu -v` output: one entry per test run, with the first [SKIPPED] reason if any. */
export function parseCuOutput(out: string): { tests: CuTest[]; summary?: { total: number; passed: number; failed: number } } {
  const tests: CuTest[] = [];
  let suite = '';
  // The verdict is a bare passed/FAILED; "[FAILED] …" lines inside a test are log messages of expected errors.
  const re = /^Suite: (.+)$|^ {2}Test: (.+?) \.\.\.([\s\S]*?)(?<![[\w])(passed|FAILED)(?![\]\w])/gm;
  for (let m = re.exec(out); m; m = re.exec(out)) {
    if (m[1] !== undefined) {
      suite = m[1].trim();
      continue;
    }
    const skip = /\[SKIPPED\]\s*(.*)/.exec(m[3]);
    tests.push({ suite, test: m[2], result: m[4] as CuTest['result'], skipped: skip ? skip[1].trim() : undefined });
  }
  const s = /^\s+tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(out);
  return { tests, summary: s ? { total: Number(s[1]), passed: Number(s[3]), failed: Number(s[4]) } : undefined };
}
