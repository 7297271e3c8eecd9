// Starts `graphdsl lsp` (stdio) for .gdsl files; the command is a setting, so a
// virtualenv's python -m graphdsl.cli works as well as an installed `graphdsl`.
const vscode = require("vscode");
const { LanguageClient, TransportKind } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("graphdsl")
    .get("server.command", ["graphdsl", "lsp"]);
  const server = { command, args, transport: TransportKind.stdio };
  client = new LanguageClient(
    "graphdsl",
    "graphdsl language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "gdsl" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
