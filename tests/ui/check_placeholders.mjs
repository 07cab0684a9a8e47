// Runs every placeholder the engine serves through the settings page's own validation (ui/validate.js):
//   node tests/ui/check_placeholders.mjs SCHEMA.json
// SCHEMA.json is what GET /api/v1/settings/schema answered. Prints one JSON line,
// {"accepted": [...], "refused": [{"url", "problem"}], "unknown_refused": bool}, and exits 1 when a
// served placeholder is refused or a made-up one is accepted.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const schema = JSON.parse(readFileSync(process.argv[2], "utf8"));
// ui/validate.js is an ES module in a folder without package.json: load it by its text.
const source = readFileSync(fileURLToPath(new URL("../../ui/validate.js", import.meta.url)), "utf8");
const { checkUrl } = await import(`data:text/javascript,${encodeURIComponent(source)}`);

const accepted = [];
const refused = [];
for (const { name } of schema.placeholders) {
  for (const url of [
    `https://crm.example.com/calls?value=$${name}`,
    `https://crm.example.com/calls/\${${name}}/x`,
    `https://crm.example.com/calls?value=$${name.toUpperCase()}&cost=$$5`,
  ]) {
    const problem = checkUrl(url, false, schema);
    if (problem) refused.push({ url, problem });
    else accepted.push(url);
  }
}
const unknown = checkUrl("https://crm.example.com/calls?value=$no_such_placeholder", false, schema);
console.log(JSON.stringify({ accepted, refused, unknown_refused: unknown !== "" }));
process.exit(refused.length === 0 && unknown !== "" && schema.placeholders.length > 0 ? 0 : 1);
