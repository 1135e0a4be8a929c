/**
 * Recognises filter values written to probe for SQL injection, such as `law' OR '1'='1` or
 * `x'; DROP TABLE documents; --`.
 *
 * Every filter value is a bound parameter, so such a value could only ever be compared as data.
 * The service still refuses it with a 400, so that a probe is answered as the mistake it is, shows
 * in the logs and metrics as a client error, and is never mistaken for a query that "worked".
 *
 * The rules look for SQL syntax around a quote, a semicolon or a comment marker. Natural text, names
 * with apostrophes ("O'Brien", "Côte d'Or", "Rock 'n' roll") and identifiers do not match them. An
 * operator whose metadata really holds such values turns the check off with
 * FILTER_REJECT_SQL_PROBES=false. docs/FILTERS.md lists the rules.
 */

interface ProbeRule {
  /** What the rule found, for the error message, e.g. `a quote followed by OR`. */
  readonly description: string;
  readonly pattern: RegExp;
}

const Q = `['"\`\u2018\u2019]`;
/**
 * What follows OR/AND in a probe: a comparison, a parenthesised one, or a boolean literal. A quoted
 * word counts only before an operator that continues as SQL does (`'a'='a`, `'a' LIKE '`, `'a' IN (`,
 * `'a' IS NULL`): `'yes' and 'no' is hard` is a sentence.
 */
const CONDITION = `(\\d[\\d.]*\\s*(=|<|>|!|--|#|$)|\\(\\s*(\\d|${Q}|select\\b)|(true|false|null)\\b|[a-z_][\\w.]*\\s*(=|<|>|!=)|${Q}[^'"\`\u2018\u2019]{0,100}${Q}\\s*(=|<|>|!|like\\s*${Q}|in\\s*\\(|is\\s+(not\\s+)?(null|true|false)\\b))`;
// A C comment (slash-star … star-slash) holding no quote: matched so, a scan from each quote of a
// value stops at the next quote or at the comment's end, and a value of many `' /*` stays linear
// (a lazy "anything up to star-slash" made it quadratic).
const NOT_STAR_OR_QUOTE = `[^*'"\`\u2018\u2019]`;
const C_COMMENT = `/\\*${NOT_STAR_OR_QUOTE}*\\*+([^/*'"\`\u2018\u2019]${NOT_STAR_OR_QUOTE}*\\*+)*/`;
const SECOND_STATEMENT = [
  '(drop|truncate|alter)\\s+(table|database|schema|view|index|function|role|user|extension|sequence)\\b',
  '(delete\\s+from|insert\\s+into)\\b',
  'update\\s+[\\w."]+\\s+set\\b',
  'select\\s[^;]{0,200}?\\bfrom\\b',
  'copy\\s+[\\w."]+\\s+(from|to)\\b',
].join('|');

/** Ordered from the most to the least common probe, so the message names the likeliest intent. */
export const SQL_PROBE_RULES: readonly ProbeRule[] = [
  {
    description: 'a quote followed by OR or AND and a condition',
    pattern: new RegExp(`${Q}[\\s)]*(\\s(or|and)\\s+|(\\|\\||&&)\\s*)${CONDITION}`, 'i'),
  },
  { description: "a quoted comparison such as '1'='1", pattern: new RegExp(`${Q}\\s*(=|<>|!=)\\s*${Q}`) },
  {
    description: 'a quote followed by a SQL comment',
    // Right after the quote, or ending the value (`admin'--`, `admin' #`, `admin' -- -`, `admin' /**/`);
    // `"new" -- revised` and `"Best" #1` are text.
    pattern: new RegExp(`${Q}\\)*(;\\s*)?(--|#|/\\*)|${Q}[\\s)]*(;\\s*)?(--[\\s+-]*|#\\s*|${C_COMMENT}\\s*|/\\*\\s*)$`),
  },
  { description: 'a second SQL statement', pattern: new RegExp(`;\\s*(${SECOND_STATEMENT})`, 'i') },
  { description: 'UNION SELECT', pattern: /\bunion(\s+all|\s+distinct)?\s+select\b/i },
  { description: 'a tautology such as OR 1=1', pattern: /\bor\s+(\w+)\s*=\s*\1\b/i },
  { description: 'a time-delay function', pattern: /\b(pg_sleep(_for|_until)?\s*\(|waitfor\s+delay\b)/i },
];

/**
 * The description of the first rule `value` matches, or `undefined` when it looks like data.
 * The rules have no nested or adjacent unbounded quantifiers, so a long value cannot make them
 * backtrack for long.
 */
export function findSqlProbe(value: string): string | undefined {
  for (const rule of SQL_PROBE_RULES) {
    if (rule.pattern.test(value)) return rule.description;
  }
  return undefined;
}
