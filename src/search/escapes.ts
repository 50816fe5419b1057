/**
 * Search value escapes: '\,' '\|' '\$' '\\' (search.html#escaping). Values are split level by
 * level (',' between alternatives, '$' between composite parts, '|' inside a token or quantity),
 * so splitting keeps the escapes for the next level and only the last one unescapes.
 */

/** Split on unescaped `sep`, keeping escapes for the next level. */
export function splitEscaped(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && i + 1 < s.length) {
      cur += c + s[i + 1];
      i++;
    } else if (c === sep) {
      out.push(cur);
      cur = '';
    } else {
      cur += c;
    }
  }
  out.push(cur);
  return out;
}

export function unescape(s: string): string {
  return s.includes('\\') ? s.replace(/\\([\\,|$])/g, '$1') : s;
}
