// User search text -> an FTS5 MATCH expression that can never be a syntax error.
// Every token becomes a quoted string (a double quote inside is doubled, FTS5 §3.1), so
// operators, parentheses, colons and stray quotes are searched as text rather than parsed.
// "Quoted phrases" stay phrases; the last bare token is a prefix ("astr" finds "astronaut")
// so results follow the user while they type. Tokens are ANDed.

const WORDISH = /[\p{L}\p{N}]/u;

export function ftsMatch(text: string): string | null {
  const parts: { text: string; phrase: boolean }[] = [];
  const re = /"([^"]*)"?|(\S+)/g;
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) parts.push({ text: m[1], phrase: true });
    else parts.push({ text: m[2]!.replace(/"/g, ''), phrase: false });
  }
  const kept = parts.filter((p) => WORDISH.test(p.text));
  if (kept.length === 0) return null;
  const endsInSpace = /\s$/.test(text);
  return kept
    .map((p, i) => {
      const quoted = `"${p.text.replace(/"/g, '""')}"`;
      return i === kept.length - 1 && !p.phrase && !endsInSpace ? `${quoted}*` : quoted;
    })
    .join(' ');
}
