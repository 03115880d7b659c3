// User search text -> an FTS5 MATCH expression that can never be a syntax error.
// Every token becomes a quoted string (a double quote inside is doubled, FTS5 §3.1), so
// operators, parentheses, colons and stray quotes are searched as text rather than parsed.
// "Quoted phrases" stay phrases; the last bare token is a prefix ("astr" finds "astronaut")
// so results follow the user while they type. Tokens are ANDed.
//
// Chinese and Japanese (and Thai) are written without spaces, so the unicode61 tokenizer sees a
// whole run such as 富士山の夕焼け as one token and a search for 夕焼け would find nothing.
// Tokens in those scripts are matched as substrings instead, in a second, trigram-tokenized
// index that holds only the items whose text has such characters (history.ts).

const WORDISH = /[\p{L}\p{N}]/u;
const UNSPACED = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Thai}]/u;

export function hasUnspacedScript(text: string): boolean {
  return UNSPACED.test(text);
}

export interface SearchText {
  /** FTS5 MATCH expression for the spaced-script tokens, or null when there are none. */
  match: string | null;
  /** Lower-cased substrings that must all occur somewhere in the item's text. */
  substrings: string[];
}

export function parseSearchText(text: string): SearchText {
  const parts: { text: string; phrase: boolean }[] = [];
  for (const m of text.matchAll(/"([^"]*)"?|(\S+)/g)) {
    if (m[1] !== undefined) parts.push({ text: m[1], phrase: true });
    else parts.push({ text: m[2]!.replace(/"/g, ''), phrase: false });
  }
  const kept = parts.filter((p) => WORDISH.test(p.text));
  const substrings = kept.filter((p) => UNSPACED.test(p.text)).map((p) => p.text.trim().toLowerCase());
  const spaced = kept.filter((p) => !UNSPACED.test(p.text));
  const endsInSpace = /\s$/.test(text);
  const match = spaced.length
    ? spaced
        .map((p, i) => {
          const quoted = `"${p.text.replace(/"/g, '""')}"`;
          const isLast = i === spaced.length - 1 && p === kept.at(-1);
          return isLast && !p.phrase && !endsInSpace ? `${quoted}*` : quoted;
        })
        .join(' ')
    : null;
  return { match, substrings };
}

/** The MATCH expression alone (spaced-script tokens only). */
export function ftsMatch(text: string): string | null {
  return parseSearchText(text).match;
}
