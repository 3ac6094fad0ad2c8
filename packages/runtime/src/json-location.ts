/**
 * Locates the first syntax error in JSON text (Node 20's `JSON.parse` messages no longer carry a position),
 * so a malformed config file can be reported as `file:line:column`.
 */

export interface JsonErrorLocation {
  offset: number;
  line: number;
  column: number;
  problem: string;
}

class Stop extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(problem);
  }
}

/** Returns where `text` stops being valid JSON (RFC 8259), or `undefined` if it is valid. */
export function locateJsonError(text: string): JsonErrorLocation | undefined {
  let i = 0;
  const n = text.length;
  const ws = () => {
    while (i < n && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  };
  const what = () => (i >= n ? 'end of file' : `\`${text[i]}\``);
  const expect = (c: string, ctx: string) => {
    if (text[i] !== c) throw new Stop(i, `expected \`${c}\` ${ctx}, found ${what()}`);
    i++;
  };
  const str = () => {
    expect('"', 'to start a string');
    for (;;) {
      if (i >= n) throw new Stop(i, 'unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) throw new Stop(i, 'control character in a string');
      if (c === 0x5c) {
        const e = text[i + 1];
        if (e !== undefined && '"\\/bfnrt'.includes(e)) i += 2;
        else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else throw new Stop(i, 'invalid escape in a string');
      } else {
        i++;
      }
    }
  };
  const num = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m || m[0] === '-' || m[0] === '') throw new Stop(i, `unexpected ${what()}`);
    i += m[0].length;
  };
  const value = (depth: number): void => {
    if (depth > 512) throw new Stop(i, 'nested too deeply');
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') throw new Stop(i, `expected a "quoted" key, found ${what()}`);
        str();
        ws();
        expect(':', 'after a key');
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect('}', 'or `,` in an object');
        return;
      }
    }
    if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value(depth + 1);
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        expect(']', 'or `,` in an array');
        return;
      }
    }
    if (c === '"') {
      str();
      return;
    }
    for (const lit of ['true', 'false', 'null']) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    num();
  };
  try {
    value(0);
    ws();
    if (i < n) throw new Stop(i, `unexpected ${what()} after the JSON value`);
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const before = text.slice(0, err.offset);
    const line = before.split('\n').length;
    const column = err.offset - before.lastIndexOf('\n');
    return { offset: err.offset, line, column, problem: err.problem };
  }
}
