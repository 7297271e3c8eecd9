// Tokenizes files with the extension's TextMate grammar, as VS Code does
// (vscode-textmate on the Oniguruma regex engine), and prints one JSON line per
// file: [[text, innermost scope], ...]. Used by tests/test_editors_vscode.py.
//   NODE_PATH=<dir with vscode-textmate, vscode-oniguruma> node tokenize.js FILE...
const fs = require("fs");
const path = require("path");
const textmate = require("vscode-textmate");
const oniguruma = require("vscode-oniguruma");

const wasm = fs.readFileSync(path.join(path.dirname(require.resolve("vscode-oniguruma")), "onig.wasm"));
const onigLib = oniguruma.loadWASM(wasm.buffer).then(() => ({
  createOnigScanner: (sources) => new oniguruma.OnigScanner(sources),
  createOnigString: (s) => new oniguruma.OnigString(s),
}));
const grammarPath = path.join(__dirname, "..", "syntaxes", "gdsl.tmLanguage.json");
const registry = new textmate.Registry({
  onigLib,
  loadGrammar: async () => textmate.parseRawGrammar(fs.readFileSync(grammarPath, "utf8"), grammarPath),
});

registry.loadGrammar("source.gdsl").then((grammar) => {
  for (const file of process.argv.slice(2)) {
    let state = textmate.INITIAL;
    const out = [];
    for (const line of fs.readFileSync(file, "utf8").split("\n")) {
      const result = grammar.tokenizeLine(line, state);
      for (const t of result.tokens) {
        const text = line.substring(t.startIndex, t.endIndex);
        if (text.trim()) out.push([text, t.scopes[t.scopes.length - 1]]);
      }
      state = result.ruleStack;
    }
    process.stdout.write(JSON.stringify(out) + "\n");
  }
});
