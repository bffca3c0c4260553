'use strict';
// wexec's type-check server (runtime/compiler/tsc.py starts one per server process).
// TypeScript is loaded once and the library files and wexec.d.ts are parsed once, so a check
// costs only the script's own parse and check. Protocol: one JSON line in per check,
// {"id", "name", "code"}, one JSON line out, {"id", "diagnostics": [...]} or {"id", "error"}.
// argv: the typescript package's folder, wexec.d.ts, the compiler options as JSON.

const ts = require(process.argv[2]);
const readline = require('readline');

const ROOT = '/wexec/';
const DECLARATIONS = ROOT + 'wexec.d.ts';
const declarations = ts.sys.readFile(process.argv[3]);
const { options, errors } = ts.convertCompilerOptionsFromJson(
  JSON.parse(process.argv[4]), ROOT);
if (errors.length) throw new Error(ts.flattenDiagnosticMessageText(errors[0].messageText, '\n'));
const libDir = ts.getDirectoryPath(ts.getDefaultLibFilePath(options));

const parsed = new Map(); // file name -> SourceFile, for the files every check shares
let previous; // the last program, so the next one reuses its structure

function shared(fileName, languageVersion) {
  let file = parsed.get(fileName);
  if (file === undefined) {
    const text = fileName === DECLARATIONS ? declarations
      : fileName.startsWith(libDir) ? ts.sys.readFile(fileName) : undefined;
    if (text === undefined) return undefined;
    file = ts.createSourceFile(fileName, text, languageVersion);
    parsed.set(fileName, file);
  }
  return file;
}

// wexec runs a script as a function body, so it may `return` at its top level. TypeScript
// reports that (TS1108) and then skips checking the returned expression, so each top-level
// `return` is checked as a `throw` (same control flow, same narrowing): `return x` becomes
// `throw  x` in place; a bare `return` becomes `throw 0`, one character longer, and positions
// after it are mapped back.
function asChecked(original) {
  const inserted = [];
  let code = '';
  let from = 0;
  const visit = (node) => {
    if (ts.isFunctionLike(node) || ts.isClassLike(node)) return;
    if (ts.isReturnStatement(node)) {
      const at = node.getStart(original);
      code += original.text.slice(from, at) + (node.expression ? 'throw ' : 'throw 0');
      from = at + 'return'.length;
      if (!node.expression) inserted.push(from);
    }
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(original, visit);
  code += original.text.slice(from);
  const back = (pos) => pos - inserted.filter((at) => at < pos).length;
  return { code, back };
}

function check(name, text) {
  const script = ROOT + name;
  const original = ts.createSourceFile(script, text, options.target);
  const { code, back } = asChecked(original);
  const known = (f) => f === script || f === DECLARATIONS || (f.startsWith(libDir) && ts.sys.fileExists(f));
  const host = {
    getSourceFile: (f, v) => (f === script ? ts.createSourceFile(f, code, v) : shared(f, v)),
    getDefaultLibFileName: (o) => ts.getDefaultLibFilePath(o),
    getDefaultLibLocation: () => libDir,
    writeFile: () => {},
    getCurrentDirectory: () => ROOT,
    getCanonicalFileName: (f) => f,
    useCaseSensitiveFileNames: () => true,
    getNewLine: () => '\n',
    fileExists: known,
    readFile: (f) => (f === script ? code : f === DECLARATIONS ? declarations
      : known(f) ? ts.sys.readFile(f) : undefined),
    directoryExists: (d) => d === ROOT.slice(0, -1) || d.startsWith(libDir),
    getDirectories: () => [],
  };
  const program = ts.createProgram({ rootNames: [DECLARATIONS, script], options, host,
    oldProgram: previous });
  previous = program;
  const file = program.getSourceFile(script);
  const found = [...program.getSyntacticDiagnostics(file), ...program.getSemanticDiagnostics(file)];
  return found.map((d) => {
    const at = d.file && d.start !== undefined
      ? original.getLineAndCharacterOfPosition(back(d.start)) : undefined;
    return {
      code: d.code,
      message: ts.flattenDiagnosticMessageText(d.messageText, '\n'),
      line: at ? at.line + 1 : null,
      column: at ? at.character + 1 : null,
    };
  });
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
  let id = null;
  let answer;
  try {
    const request = JSON.parse(line);
    id = request.id;
    answer = { id, diagnostics: check(request.name, request.code) };
  } catch (err) {
    answer = { id, error: String(err && err.stack || err) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
});
lines.on('close', () => process.exit(0));
process.stdout.write(JSON.stringify({ ready: ts.version }) + '\n');
