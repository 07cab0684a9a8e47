// What the settings page checks as you type, against the engine's own definitions: the schema from
// GET /api/v1/settings/schema (placeholders, reserved command segments, the bounds of every numeric
// setting). Nothing here keeps its own copy of those lists. Pure functions, no page access, so the
// same code can be run outside the page.

/** The bounds of the setting at `field` (`lookup.timeout_ms`), or null. */
export function limitOf(schema, field) {
  return (schema && schema.limits || []).find((l) => l.field === field) || null;
}

/** "" when `value` is a whole number within `limit` (and at most `atMost`, when given), else why not. */
export function checkNumber(value, limit, atMost) {
  const s = String(value ?? "").trim();
  if (!limit) return "";
  const max = atMost === undefined || atMost === null ? limit.max : Math.min(limit.max, Number(atMost));
  const n = Number(s);
  if (!/^\d+$/.test(s) || n < limit.min || n > max) return `Enter a whole number from ${limit.min} to ${max}.`;
  return "";
}

/**
 * "" when `text` is a template the engine accepts, else why not. Read as the engine reads it:
 * `$$` is a literal `$`, `${name}` and `$name` (letters, digits and `_` after a letter) are
 * placeholders, case-insensitive.
 */
export function checkTemplate(text, schema) {
  const known = (schema && schema.placeholders || []).map((p) => p.name);
  const s = String(text || "");
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== "$") continue;
    const next = s[i + 1];
    let name;
    if (next === "$") {
      i += 1;
      continue;
    } else if (next === "{") {
      const close = s.indexOf("}", i + 2);
      if (close < 0) return `"\${" at position ${i} is not closed with "}".`;
      name = s.slice(i + 2, close);
      i = close;
    } else if (next && /[A-Za-z]/.test(next)) {
      const m = s.slice(i + 1).match(/^[A-Za-z0-9_]+/);
      name = m[0];
      i += name.length;
    } else {
      return `A $ at position ${i} is not followed by a placeholder name (write $$ for a literal $).`;
    }
    if (!known.includes(name.toLowerCase())) return `$${name} is not a placeholder; use one of $${known.join(", $")}.`;
  }
  return "";
}

/** "" when `value` is a usable URL template, else why not. Empty is allowed when `optional`. */
export function checkUrl(value, optional, schema) {
  const s = String(value || "").trim();
  if (!s) return optional ? "" : "Enter the URL to call.";
  if (!/^https?:\/\/[^\s/$?#]+/i.test(s) && !/^https?:\/\/\$/i.test(s)) return "Start with http:// or https:// and a host.";
  if (/\s/.test(s)) return "A URL cannot contain spaces.";
  return checkTemplate(s, schema);
}

/** "" when `value` can be the command segment `name`, given the other segments in `all`. */
export function checkSegment(name, value, all, schema) {
  const s = String(value).trim().replace(/^\/+|\/+$/g, "");
  const maxLen = (schema && schema.segment_max_len) || 64;
  const reserved = (schema && schema.reserved_segments) || [];
  if (!s) return "A command needs a path segment.";
  if (s.length > maxLen) return `At most ${maxLen} characters.`;
  const bad = s.match(/[^A-Za-z0-9_-]/);
  if (bad) return `"${bad[0]}" is not allowed: use letters, digits, - and _.`;
  if (reserved.includes(s.toLowerCase())) return `"${s}" is reserved for CallBridge's own paths.`;
  for (const other of Object.keys(all)) {
    if (other !== name && other !== "port" && String(all[other]).trim().toLowerCase() === s.toLowerCase()) return `Same as the ${other} command; each needs its own.`;
  }
  return "";
}

/** The element key of an engine error's field: `notification[2].url` → `{ rule: 2 }`, else `{ field }`. */
export function locate(field) {
  const m = /^notification\[(\d+)\]/.exec(String(field || ""));
  if (m) return { rule: Number(m[1]) };
  return { field: String(field || "") };
}
