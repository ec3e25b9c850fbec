// Validates an AsyncAPI document with the AsyncAPI project's own parser (@asyncapi/parser).
// Usage: node tools/asyncapi-validate.mjs asyncapi.json
// Prints one JSON line {"errors": [...], "warnings": N} and exits 1 when the parser reports an error.
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node tools/asyncapi-validate.mjs FILE");
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(await readFile(path, "utf8"));
const errors = diagnostics
  .filter((d) => d.severity === DiagnosticSeverity.Error)
  .map((d) => ({ code: d.code, message: d.message, path: d.path.join("/") }));
const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).length;
console.log(JSON.stringify({ errors, warnings, parsed: document !== undefined }));
process.exit(errors.length === 0 && document !== undefined ? 0 : 1);
