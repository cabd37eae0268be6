import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { MAX_FILE_LINES, MAX_FUNCTION_LINES, measureSource, sourceFiles } from '../support/structure';

const ROOT = path.resolve(__dirname, '../..');

describe('structure: short files and functions', () => {
  it(`keeps every function in srcs/ and packages/ under ${MAX_FUNCTION_LINES} lines and every file under ${MAX_FILE_LINES}`, () => {
    const files = ['srcs', 'packages'].flatMap((top) =>
      fs.readdirSync(path.join(ROOT, top)).map((name) => path.join(ROOT, top, name, 'src')).filter((dir) => fs.existsSync(dir)).flatMap(sourceFiles),
    );
    assert.ok(files.length > 40, `found only ${files.length} source files`);
    const oversize = files.flatMap((file) => measureSource(path.relative(ROOT, file), fs.readFileSync(file, 'utf8')));
    assert.deepEqual(
      oversize.map((o) => `${o.file}:${o.line} ${o.what}: ${o.lines} lines (limit ${o.limit})`),
      [],
    );
  });

  it('reports a function and a file over their limits', () => {
    const body = Array.from({ length: MAX_FUNCTION_LINES - 1 }, (_, i) => `  const v${i} = ${i};`).join('\n');
    const long = `export function tooLong(): void {\n${body}\n}\n`; // 71 lines
    const ok = `const fine = (): number => {\n  return 1;\n};\n`;
    const padding = '\n'.repeat(MAX_FILE_LINES);
    const found = measureSource('x.ts', `${long}${ok}${padding}`);
    assert.deepEqual(
      found.map((o) => [o.what, o.lines]),
      [
        ['<file>', MAX_FUNCTION_LINES + 1 + 3 + MAX_FILE_LINES],
        ['tooLong', MAX_FUNCTION_LINES + 1],
      ],
    );
    assert.deepEqual(measureSource('y.ts', ok), []);
  });

  it('counts a method, an arrow and a constructor by their own lines', () => {
    const lines = (n: number) => Array.from({ length: n }, () => '    work();').join('\n');
    const text = `class A {\n  constructor() {\n${lines(MAX_FUNCTION_LINES)}\n  }\n  m() {\n${lines(3)}\n  }\n}\nconst f = () => {\n${lines(MAX_FUNCTION_LINES)}\n};\n`;
    assert.deepEqual(
      measureSource('z.ts', text).map((o) => o.what),
      ['constructor', 'f'],
    );
  });
});
